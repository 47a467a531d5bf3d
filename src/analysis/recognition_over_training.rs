//! `recognition-over-training` (paper §4): one P_real run on the real training set; every
//! `every` steps, the accuracy and loss of the current model on each distilled set and on the
//! real test set. The paper finds BPTT and MTT sets classified perfectly within about 100
//! steps, when test accuracy is only about 0.56: distilled images are recognised early in
//! real training, another sign that they encode early training dynamics.

use serde::{Deserialize, Serialize};

use super::support::test_sample;
use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::report::plot::{LineChart, Series};
use crate::report::summary::{fixed_opt, Summary, Table};
use crate::stats::{self as st, Interval};
use crate::train::{evaluate_with_state, train_at, Control, Hook, StepContext, TrainConfig};
use crate::verdict::{Claim, Side, Verdict};

/// Settings of [`recognition_over_training`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotConfig {
    /// P_real steps (minibatch 256, SGD lr 0.01, momentum 0.9) on the real training set.
    pub steps: usize,
    /// Evaluate every this many steps (and at step 0 and the last step).
    pub every: usize,
    /// Real test images (class-balanced sample, seeded by `seed`); 0 = the whole test set.
    pub test_images: usize,
    /// Seed of the initialisation, the shuffling order and the test sample.
    pub seed: u64,
}

impl RotConfig {
    /// The defaults of a budget. Paper: 500 steps evaluated after every step on the whole
    /// test set. CPU: 150 steps, every 5, 1,000 test images. Smoke: 20 steps, every 2, 200
    /// test images.
    pub fn for_budget(budget: Budget, seed: u64) -> RotConfig {
        let (steps, every, test_images) = match budget {
            Budget::Paper => (500, 1, 0),
            Budget::Cpu => (150, 5, 1_000),
            Budget::Smoke => (20, 2, 200),
        };
        RotConfig {
            steps,
            every,
            test_images,
            seed,
        }
    }

    /// The training run on a real training set of `train_len` examples: P_real with `seed`,
    /// as many epochs as `steps` needs, stopped after `steps` steps. The initial parameters
    /// are `bundle.init_params(seed)`.
    pub fn train_config(&self, train_len: usize) -> TrainConfig {
        let per_epoch = train_len.div_ceil(256).max(1);
        TrainConfig {
            max_steps: Some(self.steps),
            ..TrainConfig::p_real(self.steps.div_ceil(per_epoch).max(1), self.seed)
        }
    }

    /// The steps at which the curves are recorded: 0, `every`, `2·every`, ... and `steps`.
    pub fn recorded_steps(&self) -> Vec<usize> {
        let every = self.every.max(1);
        let mut s: Vec<usize> = (0..=self.steps).step_by(every).collect();
        if s.last() != Some(&self.steps) {
            s.push(self.steps);
        }
        s
    }
}

/// Accuracy and loss of the model along training on one dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Curve {
    /// Name (`test` for the real test sample).
    pub name: String,
    /// Number of images.
    pub images: usize,
    /// Accuracy at each recorded step.
    pub accuracy: Vec<f64>,
    /// Mean cross-entropy at each recorded step.
    pub loss: Vec<f64>,
    /// First recorded step at which every image is classified as its label (`null`: never).
    pub first_step_all_correct: Option<usize>,
    /// First recorded step from which every image stays classified as its label until the
    /// end of the run (`null`: not all correct at the end).
    pub all_correct_from: Option<usize>,
    /// For a set: its accuracy minus the test accuracy at [`CLAIM_STEP`], with the wider of
    /// the two-sample bootstrap and Newcombe's score interval over the set's and the test
    /// images (`null` for the test curve or a run shorter than [`CLAIM_STEP`]).
    #[serde(default)]
    pub gap_at_claim_step: Option<Interval>,
}

/// The step at which the paper finds BPTT/MTT sets fully recognised while test accuracy is
/// about 0.56: the verdict compares set and test accuracy there.
pub const CLAIM_STEP: usize = 100;

/// Result of [`recognition_over_training`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotResult {
    /// The recorded steps.
    pub steps: Vec<usize>,
    /// The real test sample.
    pub test: Curve,
    /// Each set, in the order given.
    pub sets: Vec<Curve>,
}

/// Evaluates on every dataset at the recorded steps and reports progress.
struct Recorder<'a, 'p> {
    data: Vec<&'a Dataset>,
    every: usize,
    steps: Vec<usize>,
    accuracy: Vec<Vec<f64>>,
    loss: Vec<Vec<f64>>,
    /// Per dataset, whether each example is classified as its label at [`CLAIM_STEP`].
    at_claim: Vec<Vec<f64>>,
    progress: &'p mut dyn Progress,
}

impl Hook for Recorder<'_, '_> {
    fn on_step(&mut self, ctx: &StepContext<'_>) -> Result<Control> {
        self.progress.report("P_real", ctx.step, ctx.total_steps)?;
        let record = ctx.step.is_multiple_of(self.every) || ctx.step == ctx.total_steps;
        let claim = ctx.step == CLAIM_STEP;
        if record {
            self.steps.push(ctx.step);
        }
        if record || claim {
            for (k, d) in self.data.iter().enumerate() {
                let e = evaluate_with_state(ctx.bundle, ctx.params, ctx.state, d)?;
                if record {
                    self.accuracy[k].push(e.accuracy);
                    self.loss[k].push(e.loss);
                }
                if claim {
                    self.at_claim[k] = d
                        .labels()
                        .iter()
                        .zip(&e.predictions)
                        .map(|(&y, &p)| f64::from(u8::from(p as i64 == y)))
                        .collect();
                }
            }
        }
        Ok(Control::Continue)
    }
}

/// Trains one model with P_real for `config.steps` steps and records its accuracy and loss on
/// the test sample and on every set along the way.
pub fn recognition_over_training(
    model: &Bundle,
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &RotConfig,
    progress: &mut dyn Progress,
) -> Result<RotResult> {
    if config.steps == 0 {
        return Err(Error::invalid("steps", "must be at least 1"));
    }
    if config.every == 0 {
        return Err(Error::invalid("every", "must be at least 1"));
    }
    for s in sets {
        s.data.check_against(model.manifest())?;
    }
    let test = test_sample(real.test, config.test_images, config.seed)?;
    let mut data: Vec<&Dataset> = vec![&test];
    data.extend(sets.iter().map(|s| &s.data));
    let n = data.len();
    let tc = config.train_config(real.train.len());
    let mut rec = Recorder {
        data,
        every: config.every,
        steps: Vec::new(),
        accuracy: vec![Vec::new(); n],
        loss: vec![Vec::new(); n],
        at_claim: vec![Vec::new(); n],
        progress,
    };
    let recorded = config.recorded_steps();
    let mut at: Vec<usize> = recorded.clone();
    if CLAIM_STEP <= config.steps {
        at.push(CLAIM_STEP);
    }
    train_at(model, config.seed, real.train, &tc, &at, &mut [&mut rec])?;
    let Recorder {
        steps,
        accuracy,
        loss,
        at_claim,
        ..
    } = rec;
    let mut curves: Vec<Curve> = accuracy
        .into_iter()
        .zip(loss)
        .enumerate()
        .map(|(k, (accuracy, loss))| {
            let (name, images) = if k == 0 {
                ("test".to_string(), test.len())
            } else {
                (sets[k - 1].name.clone(), sets[k - 1].data.len())
            };
            let first_step_all_correct = accuracy.iter().position(|&a| a >= 1.0).map(|i| steps[i]);
            let tail = accuracy.iter().rev().take_while(|&&a| a >= 1.0).count();
            let all_correct_from = (tail > 0).then(|| steps[accuracy.len() - tail]);
            let gap_at_claim_step = (k > 0 && !at_claim[0].is_empty()).then(|| {
                let seed = config.seed.wrapping_add(k as u64);
                let (set, test) = (&at_claim[k], &at_claim[0]);
                let boot = st::bootstrap_difference(set, test, st::BOOTSTRAP_RESAMPLES, seed);
                let score =
                    st::newcombe_difference(st::mean(set), set.len(), st::mean(test), test.len());
                st::wider(boot, score)
            });
            Curve {
                name,
                images,
                accuracy,
                loss,
                first_step_all_correct,
                all_correct_from,
                gap_at_claim_step,
            }
        })
        .collect();
    let test_curve = curves.remove(0);
    Ok(RotResult {
        steps,
        test: test_curve,
        sets: curves,
    })
}

impl RotResult {
    fn chart(&self, title: &str, y_label: &str, pick: fn(&Curve) -> &[f64]) -> LineChart {
        let xs: Vec<f64> = self.steps.iter().map(|&s| s as f64).collect();
        let curve = |name: String, c: &Curve| {
            Series::new(
                name,
                xs.iter().copied().zip(pick(c).iter().copied()).collect(),
            )
        };
        let mut series: Vec<Series> = self.sets.iter().map(|c| curve(c.name.clone(), c)).collect();
        series.push(curve(
            format!("real test ({} images)", self.test.images),
            &self.test,
        ));
        LineChart {
            title: title.into(),
            x_label: "P_real step".into(),
            y_label: y_label.into(),
            series,
            log_x: false,
            markers: false,
            log_y: false,
            integer_x: true,
        }
    }

    /// Accuracy on each set and on the test sample against the training step.
    pub fn accuracy_chart(&self) -> LineChart {
        self.chart(
            "Recognition of distilled images during real training",
            "accuracy",
            |c| &c.accuracy,
        )
    }

    /// Loss on each set and on the test sample against the training step.
    pub fn loss_chart(&self) -> LineChart {
        self.chart(
            "Loss on distilled images during real training",
            "cross-entropy",
            |c| &c.loss,
        )
    }
}

/// [`recognition_over_training`] as an [`Analysis`].
pub struct RecognitionOverTraining;

impl Analysis for RecognitionOverTraining {
    const NAME: &'static str = "recognition-over-training";
    const ABOUT: &'static str =
        "One P_real run: accuracy and loss on each set and on the test set along training.";
    type Config = RotConfig;
    type Output = RotResult;

    fn config(budget: Budget, seed: u64) -> RotConfig {
        RotConfig::for_budget(budget, seed)
    }

    fn run(
        model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &RotConfig,
        progress: &mut dyn Progress,
    ) -> Result<RotResult> {
        recognition_over_training(model, real, sets, config, progress)
    }

    fn figures(output: &RotResult) -> Result<Vec<(String, Figure)>> {
        Ok(vec![
            (String::new(), Figure::Lines(output.accuracy_chart())),
            ("loss".to_string(), Figure::Lines(output.loss_chart())),
        ])
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`recognition_over_training`] tests.
pub const CLAIM: Claim = Claim {
    finding: "distilled images are recognised early in real training",
    claim: "Early in real training, a model already classifies distilled images correctly well \
            beyond its test accuracy (paper, CIFAR-10 IPC 10: BPTT/MTT sets fully recognised \
            within about 100 steps, when test accuracy is about 0.56).",
    effect: "accuracy on the set minus accuracy on the test sample at P_real step 100; the \
             wider of the two-sample bootstrap and Newcombe's score interval over the set's \
             images and the test images",
    null: 0.0,
    side: Side::Above,
};

/// The verdict of a result: each set's accuracy against the test accuracy at [`CLAIM_STEP`];
/// a run that stops earlier cannot measure the claim.
pub fn verdict(r: &RotResult) -> Verdict {
    let last = r.steps.last().copied().unwrap_or(0);
    let sets = r
        .sets
        .iter()
        .map(|c| match c.gap_at_claim_step {
            Some(gap) => CLAIM.judge(&c.name, gap),
            None if last < CLAIM_STEP => CLAIM.unmeasured(
                &c.name,
                format!("the run stopped at step {last}, before the paper's step {CLAIM_STEP}"),
            ),
            None => CLAIM.unmeasured(&c.name, format!("not measured at step {CLAIM_STEP}")),
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &RotResult) -> Summary {
    let (steps, test_acc) = (&r.steps, &r.test.accuracy);
    let mut t = Table {
        header: [
            "set",
            "images",
            "first recorded step with every image recognised",
            "test accuracy at that step",
            format!("set − test accuracy at step {CLAIM_STEP} [95% interval]").as_str(),
            "set accuracy at the last step",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for s in &r.sets {
        let first = s.first_step_all_correct;
        let test_then = first
            .and_then(|f| steps.iter().position(|&x| x == f))
            .and_then(|k| test_acc.get(k))
            .map_or("–".into(), |a| format!("{a:.3}"));
        t.rows.push(vec![
            s.name.clone(),
            s.images.to_string(),
            first.map_or("never".into(), |f| f.to_string()),
            test_then,
            s.gap_at_claim_step.map_or("–".into(), |g| g.display(3)),
            fixed_opt(s.accuracy.last().copied(), 3),
        ]);
    }
    Summary {
        title: "Recognition over training".into(),
        question: format!(
            "When does a model trained on real data start to recognise the distilled images? \
             One P_real run of {} steps (minibatch 256, SGD lr 0.01, momentum 0.9), evaluated \
             on each set and on {} test images. Paper: BPTT/MTT sets are fully recognised \
             within about 100 steps, when test accuracy is only about 0.56.",
            steps.last().copied().unwrap_or(0),
            r.test.images
        ),
        finding: None,
        tables: vec![t],
        ..Summary::default()
    }
}
