//! `recognition` (paper §3): do models trained on real data recognise distilled images? For
//! each model (ConvNet-3, ConvNet-Tiny and an MLP by default), the fraction of each set's
//! images that it classifies as their label, overall and per class. The paper finds MTT and
//! BPTT images recognised almost always (0.91-1.00) and DM/DC images much less (0.36-0.71):
//! trajectory-matching sets stay recognisable, distribution/gradient-matching ones less so.
//!
//! Each model either comes with trained parameters (`params`, files written by `ddlens train`
//! or by an earlier run of this analysis) or is trained here with P_real on the whole real
//! training set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::support::test_sample;
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::{resolve_bundle, Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::report::plot::{BarChart, Heatmap};
use crate::report::summary::{fixed, Summary, Table};
use crate::stats::{self as st, Interval};
use crate::train::{
    evaluate_with_state, load_params, load_state, save_model, train_at, Control, StepContext,
    TrainConfig,
};
use crate::verdict::{Claim, Side, Verdict};

/// The `models` entry that stands for the analysis's own model (`--model`).
pub const ANALYSIS_MODEL: &str = "model";

/// The default architectures: each a bundle-name prefix completed with the input shape
/// (`convnet3` → `convnet3-1x28x28` for Fashion-MNIST).
pub const DEFAULT_MODELS: [&str; 3] = ["convnet3", "convnettiny", "mlp"];

/// Settings of [`recognition`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecognitionConfig {
    /// The real-trained models, each [`ANALYSIS_MODEL`] (the analysis's model), a bundle name
    /// or folder, or an architecture prefix completed with the input shape
    /// (`convnet3` → `convnet3-1x28x28`).
    pub models: Vec<String>,
    /// Trained parameters per model (safetensors as written by `ddlens train`), keyed by the
    /// `models` entry or the bundle name; models without an entry are trained here.
    pub params: BTreeMap<String, String>,
    /// P_real epochs over the real training set for models trained here.
    pub train_epochs: usize,
    /// Stop each training after this many steps (`null`: all epochs).
    pub train_max_steps: Option<usize>,
    /// Real test images (class-balanced sample) on which each model's own accuracy is
    /// reported; 0 = the whole test set.
    pub test_images: usize,
    /// Folder where the parameters of models trained here are written
    /// (`<bundle name>.safetensors`), to pass as `params` next time; `null`: not written.
    pub params_out: Option<String>,
    /// Seed: model `m` is initialised and shuffled with `seed + m`; also seeds the test sample.
    pub seed: u64,
}

impl RecognitionConfig {
    /// The defaults of a budget. Paper: ConvNet-3, ConvNet-Tiny and MLP trained 30 epochs
    /// with P_real, full test set. CPU: the same models trained 100 steps (ConvNet-3 reaches
    /// about 0.85 test accuracy on Fashion-MNIST), 2,000 test images. Smoke: the analysis's
    /// model only, 20 steps, 500 test images.
    pub fn for_budget(budget: Budget, seed: u64) -> RecognitionConfig {
        let families = || DEFAULT_MODELS.iter().map(|s| s.to_string()).collect();
        let (models, train_epochs, train_max_steps, test_images) = match budget {
            Budget::Paper => (families(), 30, None, 0),
            Budget::Cpu => (families(), 1, Some(100), 2_000),
            Budget::Smoke => (vec![ANALYSIS_MODEL.to_string()], 1, Some(20), 500),
        };
        RecognitionConfig {
            models,
            params: BTreeMap::new(),
            train_epochs,
            train_max_steps,
            test_images,
            params_out: None,
            seed,
        }
    }

    /// The P_real training of model `m` (seed `seed + m`).
    pub fn train_config(&self, m: usize) -> TrainConfig {
        TrainConfig {
            max_steps: self.train_max_steps,
            ..TrainConfig::p_real(self.train_epochs, self.seed.wrapping_add(m as u64))
        }
    }
}

/// One real-trained model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// The `models` entry.
    pub entry: String,
    /// Bundle name.
    pub model: String,
    /// `given` (parameters from `params`) or `trained` (P_real here).
    pub source: String,
    /// The parameter file read or written, if any.
    pub params_file: Option<String>,
    /// P_real steps taken here (0 for given parameters).
    pub train_steps: usize,
    /// Accuracy on the real test sample.
    pub test_accuracy: f64,
}

/// How one model sees one set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecognition {
    /// Bundle name.
    pub model: String,
    /// Fraction of the set's images classified as their label.
    pub accuracy: f64,
    /// Number of images classified as their label.
    pub correct: usize,
    /// Accuracy per class (`null` for classes without images in the set).
    pub per_class: Vec<Option<f64>>,
}

/// Recognition of one set by every model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetRecognition {
    /// Set name.
    pub name: String,
    /// Number of images.
    pub images: usize,
    /// One entry per model, in model order.
    pub models: Vec<ModelRecognition>,
    /// The fraction of the models that classify an image as its label, mean over the
    /// images, with its bootstrap interval over the images.
    #[serde(default)]
    pub rate: Option<Interval>,
}

/// Result of [`recognition`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecognitionResult {
    /// Real test images each model's test accuracy was measured on.
    pub test_images: usize,
    /// The models, in `models` order.
    pub models: Vec<ModelRecord>,
    /// The sets, in the order given.
    pub sets: Vec<SetRecognition>,
    /// Classes of the data (chance recognition is `1 / classes`).
    #[serde(default)]
    pub classes: usize,
}

/// The analysis's model or another bundle opened for the analysis.
enum ModelRef<'a> {
    Main(&'a Bundle),
    Other(Box<Bundle>),
}

impl ModelRef<'_> {
    fn get(&self) -> &Bundle {
        match self {
            ModelRef::Main(b) => b,
            ModelRef::Other(b) => b,
        }
    }
}

/// Resolves a `models` entry: the analysis model, a bundle name or folder, or a prefix
/// completed with the input shape.
fn resolve_model<'a>(entry: &str, main: &'a Bundle) -> Result<ModelRef<'a>> {
    if entry == ANALYSIS_MODEL || entry == main.name() {
        return Ok(ModelRef::Main(main));
    }
    let [c, h, w] = main.manifest().input_shape;
    let shaped = format!("{entry}-{c}x{h}x{w}");
    let dir = resolve_bundle(entry)
        .or_else(|_| resolve_bundle(&shaped))
        .map_err(|_| {
            Error::invalid(
                "models",
                format!(
                    "`{entry}` is neither `{ANALYSIS_MODEL}`, a bundle name or folder, nor an \
                     architecture with a bundle `{shaped}`; bundles for {c}x{h}x{w} inputs: {}",
                    bundles_for_shape(main.manifest().input_shape)
                ),
            )
        })?;
    let other = Bundle::open(&dir)?;
    if other.name() == main.name() {
        return Ok(ModelRef::Main(main));
    }
    let (a, b) = (
        &main.manifest().normalization,
        &other.manifest().normalization,
    );
    if a.mean != b.mean || a.std != b.std {
        return Err(Error::invalid(
            "models",
            format!(
                "`{}` normalises inputs with mean {:?} / std {:?} but the data are normalised \
                 for `{}` (mean {:?} / std {:?})",
                other.name(),
                b.mean,
                b.std,
                main.name(),
                a.mean,
                a.std
            ),
        ));
    }
    Ok(ModelRef::Other(Box::new(other)))
}

fn bundles_for_shape(shape: [usize; 3]) -> String {
    let names: Vec<String> = crate::bundle::find_bundles()
        .into_iter()
        .filter_map(|(_, m)| m.ok())
        .filter(|m| m.input_shape == shape)
        .map(|m| m.name)
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Fraction of images classified as their label, overall and per class, by the model with
/// `params` and `state` (its BatchNorm running statistics; empty for a bundle without).
pub fn recognition_of(
    bundle: &Bundle,
    params: &Params,
    state: &Params,
    set: &Dataset,
) -> Result<Recognised> {
    let e = evaluate_with_state(bundle, params, state, set)?;
    let k = set.num_classes();
    let (mut right, mut count) = (vec![0usize; k], vec![0usize; k]);
    let mut per_image = Vec::with_capacity(set.len());
    for (&y, &p) in set.labels().iter().zip(&e.predictions) {
        let ok = p as i64 == y;
        count[y as usize] += 1;
        right[y as usize] += usize::from(ok);
        per_image.push(ok);
    }
    let per_class = right
        .iter()
        .zip(&count)
        .map(|(&r, &n)| (n > 0).then(|| r as f64 / n as f64))
        .collect();
    Ok(Recognised {
        correct: right.iter().sum(),
        per_class,
        per_image,
    })
}

/// The mean of per-image recognition rates with its 95% interval over the images: the wider
/// of the bootstrap interval and the Wilson interval of the mean rate over as many images.
/// (A bootstrap alone collapses to [1, 1] when every image is recognised by every model,
/// which 10 images cannot establish.)
fn recognition_rate(per_image: &[f64], seed: u64) -> Interval {
    let boot = st::bootstrap_mean(per_image, st::BOOTSTRAP_RESAMPLES, seed);
    st::wider(boot, st::wilson_interval(boot.estimate, per_image.len()))
}

/// How one model classifies one set ([`recognition_of`]).
#[derive(Debug, Clone)]
pub struct Recognised {
    /// Images classified as their label.
    pub correct: usize,
    /// Fraction per class (`None` for classes without images).
    pub per_class: Vec<Option<f64>>,
    /// Whether each image is classified as its label.
    pub per_image: Vec<bool>,
}

/// Recognition of each set by each model of `config.models`, trained on `real.train` with
/// P_real unless `config.params` gives its parameters.
pub fn recognition(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &RecognitionConfig,
    progress: &mut dyn Progress,
) -> Result<RecognitionResult> {
    if config.models.is_empty() {
        return Err(Error::invalid("models", "give at least one model"));
    }
    if config.train_epochs == 0 {
        return Err(Error::invalid("train_epochs", "must be at least 1"));
    }
    let bundles: Vec<ModelRef<'_>> = config
        .models
        .iter()
        .map(|e| resolve_model(e, model))
        .collect::<Result<_>>()?;
    for key in config.params.keys() {
        let known = config
            .models
            .iter()
            .zip(&bundles)
            .any(|(e, b)| key == e || key == b.get().name());
        if !known {
            return Err(Error::invalid(
                "params",
                format!(
                    "`{key}` names none of the models ({})",
                    config.models.join(", ")
                ),
            ));
        }
    }
    for b in &bundles {
        for s in sets {
            s.data.check_against(b.get().manifest())?;
        }
    }
    let test = test_sample(real.test, config.test_images, config.seed)?;
    let mut records = Vec::with_capacity(bundles.len());
    // Each model's parameters and state (BatchNorm running statistics; empty without).
    let mut trained: Vec<(Params, Params)> = Vec::with_capacity(bundles.len());
    for (m, (entry, b)) in config.models.iter().zip(&bundles).enumerate() {
        let bundle = b.get();
        let given = config
            .params
            .get(entry)
            .or_else(|| config.params.get(bundle.name()));
        let (params, state, source, file, steps) = match given {
            Some(path) => (
                load_params(Path::new(path), bundle.manifest())?,
                load_state(Path::new(path), bundle.manifest())?,
                "given",
                Some(path.clone()),
                0,
            ),
            None => {
                let tc = config.train_config(m);
                let steps = tc.total_steps(real.train.len());
                let stage = format!("train {}", bundle.name());
                let mut last_state = Params::empty();
                let mut hook = |ctx: &StepContext<'_>| {
                    progress.report(&stage, ctx.step, ctx.total_steps)?;
                    if ctx.step == steps {
                        last_state = ctx.state.clone();
                    }
                    Ok(Control::Continue)
                };
                // The hook must hear the last step (where the state is taken), replayed or not.
                let trained =
                    train_at(bundle, tc.seed, real.train, &tc, &[steps], &mut [&mut hook])?;
                let file = match &config.params_out {
                    Some(dir) => {
                        let dir = PathBuf::from(dir);
                        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                        let path = dir.join(format!("{}.safetensors", bundle.name()));
                        save_model(&path, bundle.manifest(), &trained, &last_state)?;
                        Some(path.display().to_string())
                    }
                    None => None,
                };
                (trained, last_state, "trained", file, steps)
            }
        };
        progress.report("evaluate on the test images", m, bundles.len())?;
        let test_accuracy = evaluate_with_state(bundle, &params, &state, &test)?.accuracy;
        records.push(ModelRecord {
            entry: entry.clone(),
            model: bundle.name().to_string(),
            source: source.to_string(),
            params_file: file,
            train_steps: steps,
            test_accuracy,
        });
        trained.push((params, state));
    }
    let mut out = Vec::with_capacity(sets.len());
    for (k, set) in sets.iter().enumerate() {
        progress.report("recognise", k, sets.len())?;
        let mut per_model = Vec::with_capacity(bundles.len());
        let mut rate = vec![0.0f64; set.data.len()];
        for (b, (params, state)) in bundles.iter().zip(&trained) {
            let r = recognition_of(b.get(), params, state, &set.data)?;
            for (acc, &ok) in rate.iter_mut().zip(&r.per_image) {
                *acc += f64::from(u8::from(ok)) / bundles.len() as f64;
            }
            per_model.push(ModelRecognition {
                model: b.get().name().to_string(),
                accuracy: r.correct as f64 / set.data.len().max(1) as f64,
                correct: r.correct,
                per_class: r.per_class,
            });
        }
        out.push(SetRecognition {
            name: set.name.clone(),
            images: set.data.len(),
            models: per_model,
            rate: Some(recognition_rate(&rate, config.seed.wrapping_add(k as u64))),
        });
    }
    progress.report("recognise", sets.len(), sets.len())?;
    Ok(RecognitionResult {
        test_images: test.len(),
        models: records,
        sets: out,
        classes: real.train.num_classes(),
    })
}

impl RecognitionResult {
    /// Bars: one category per model, one group (colour) per set.
    pub fn chart(&self) -> BarChart {
        BarChart {
            title: "Recognition of distilled images by real-trained models".into(),
            y_label: "fraction classified as their label".into(),
            categories: self
                .models
                .iter()
                .map(|m| format!("{} (test {:.2})", m.model, m.test_accuracy))
                .collect(),
            groups: self
                .sets
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.models.iter().map(|m| m.accuracy).collect(),
                    )
                })
                .collect(),
        }
    }

    /// Per-class recognition: one row per (set, model), one column per class.
    pub fn per_class_heatmap(&self) -> Heatmap {
        let classes = self
            .sets
            .iter()
            .flat_map(|s| s.models.iter().map(|m| m.per_class.len()))
            .max()
            .unwrap_or(0);
        let mut rows = Vec::new();
        let mut values = Vec::new();
        for s in &self.sets {
            for m in &s.models {
                rows.push(format!("{}/{}", s.name, short_model_name(&m.model)));
                values.push(
                    (0..classes)
                        .map(|c| m.per_class.get(c).copied().flatten().unwrap_or(f64::NAN))
                        .collect(),
                );
            }
        }
        Heatmap {
            title: "Recognition per class".into(),
            rows,
            cols: (0..classes).map(|c| format!("class {c}")).collect(),
            values,
            value_label: "fraction of the class's images classified as their label".into(),
        }
    }
}

/// A bundle name without its input-shape suffix (`convnet3-1x28x28` → `convnet3`).
fn short_model_name(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((stem, shape))
            if !stem.is_empty()
                && shape.split('x').count() == 3
                && shape.split('x').all(|d| d.parse::<usize>().is_ok()) =>
        {
            stem
        }
        _ => name,
    }
}

/// [`recognition`] as an [`Analysis`].
pub struct Recognition;

impl Analysis for Recognition {
    const NAME: &'static str = "recognition";
    const ABOUT: &'static str = "Recognition of distilled images by models trained on real data (ConvNet-3, ConvNet-Tiny, MLP by default): fraction classified as their label, per set, model and class.";
    type Config = RecognitionConfig;
    type Output = RecognitionResult;

    fn config(budget: Budget, seed: u64) -> RecognitionConfig {
        RecognitionConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &RecognitionConfig,
        progress: &mut dyn Progress,
    ) -> Result<RecognitionResult> {
        recognition(model, real, sets, config, progress)
    }

    fn figures(output: &RecognitionResult) -> Result<Vec<(String, Figure)>> {
        let mut figures = vec![(String::new(), Figure::Bars(output.chart()))];
        if !output.sets.is_empty() {
            figures.push((
                "per-class".to_string(),
                Figure::Heatmap(output.per_class_heatmap()),
            ));
        }
        Ok(figures)
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`recognition`] tests (against chance, `1 / classes`).
pub const CLAIM: Claim = Claim {
    finding: "real-trained models recognise distilled images",
    claim: "Models trained on real data classify distilled images as their labels far above \
            chance: distilled images keep real, recognisable semantics (paper, CIFAR-10 IPC \
            10: MTT/BPTT 0.91-1.00, DM/DC 0.36-0.71).",
    effect: "fraction of the real-trained models that classify an image as its label, mean \
             over the set's images; the wider of the bootstrap and the Wilson interval over \
             the images; no effect = chance",
    null: 0.1,
    side: Side::Above,
};

/// The verdict of a result: each set's recognition rate against chance.
pub fn verdict(r: &RecognitionResult) -> Verdict {
    let claim = Claim {
        null: if r.classes > 0 {
            1.0 / r.classes as f64
        } else {
            CLAIM.null
        },
        ..CLAIM
    };
    let sets = r
        .sets
        .iter()
        .map(|s| match s.rate {
            Some(rate) => claim.judge(&s.name, rate),
            None => claim.unmeasured(&s.name, "the result has no per-image rates"),
        })
        .collect();
    claim.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &RecognitionResult) -> Summary {
    let models: Vec<String> = r.models.iter().map(|m| m.model.clone()).collect();
    let mut header = vec!["set".to_string()];
    header.extend(models.iter().cloned());
    header.push("all models: mean [95% interval] (n images)".into());
    let mut t = Table {
        header,
        rows: Vec::new(),
    };
    for s in &r.sets {
        let mut row = vec![s.name.clone()];
        row.extend(s.models.iter().map(|m| fixed(m.accuracy, 3)));
        row.push(s.rate.map_or_else(String::new, |ci| ci.display(3)));
        t.rows.push(row);
    }
    let mut m = Table {
        header: ["model", "source", "P_real steps", "test accuracy"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    for rec in &r.models {
        m.rows.push(vec![
            rec.model.clone(),
            rec.source.clone(),
            rec.train_steps.to_string(),
            fixed(rec.test_accuracy, 3),
        ]);
    }
    Summary {
        title: "Recognition by real-trained models".into(),
        question: format!(
            "Do models trained on real data classify distilled images as their label? \
             Fraction of each set's images classified as their label, per model; the models' \
             own accuracy is on {} real test images. Paper: MTT/BPTT 0.91–1.00, DM/DC \
             0.36–0.71.",
            r.test_images
        ),
        finding: None,
        tables: vec![t, m],
        ..Summary::default()
    }
}
