//! `pixels` (paper §3): how the pixel values of distilled images are distributed next to real
//! ones, per channel. Distilled pixels are free parameters, so they can leave the range real
//! images occupy; the fraction outside the real range says how far.
//!
//! Values are in the normalised space the model sees (the space distilled images live in).

use serde::{Deserialize, Serialize};

use super::{Analysis, Budget, Figure, NamedSet, Progress, RealData};
use crate::bundle::Bundle;
use crate::data::{fraction_per_class, Dataset};
use crate::error::{Error, Result};
use crate::report::plot::{LineChart, Series};
use crate::report::summary::{fixed, Summary, Table};
use crate::stats::{self as st, Interval};
use crate::verdict::{Claim, Side, Verdict};

/// Settings of [`pixels`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelsConfig {
    /// Histogram bins over the common range of all values.
    pub bins: usize,
    /// Real training images sampled for the real distribution (class-balanced); 0 = all.
    pub real_images: usize,
    /// Seed of the real sample.
    pub seed: u64,
}

/// Range statistics of one set's pixels on one channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChannelStats {
    /// Mean value.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// 1st percentile.
    pub p01: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Fraction of values outside the real images' [min, max] on this channel.
    pub outside_real_range: f64,
}

/// One set's pixel distribution: statistics and histogram (density) per channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPixels {
    /// Set name (`real` for the real sample).
    pub name: String,
    /// Number of images.
    pub images: usize,
    /// Statistics per channel.
    pub channels: Vec<ChannelStats>,
    /// Density per channel per bin (integrates to 1 over the bin edges).
    pub density: Vec<Vec<f64>>,
    /// The fraction of its pixels (all channels) outside the real range, as a mean over
    /// images with its bootstrap interval over the images.
    #[serde(default)]
    pub outside: Option<Interval>,
}

/// Result of [`pixels`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PixelsResult {
    /// Bin edges (`bins + 1` values) shared by every histogram.
    pub bin_edges: Vec<f64>,
    /// The real sample first, then each distilled set in the order given.
    pub sets: Vec<SetPixels>,
}

impl PixelsConfig {
    /// The defaults of a budget: all 60,000 real images for the paper, 10,000 on CPU, 1,000
    /// for smoke runs (the histogram of a 10,000-image sample is indistinguishable).
    pub fn for_budget(budget: Budget, seed: u64) -> PixelsConfig {
        PixelsConfig {
            bins: 100,
            real_images: match budget {
                Budget::Paper => 0,
                Budget::Cpu => 10_000,
                Budget::Smoke => 1_000,
            },
            seed,
        }
    }
}

/// Pixel statistics and histograms of the real training images and of each set.
pub fn pixels(
    real: RealData<'_>,
    sets: &[NamedSet],
    config: &PixelsConfig,
    progress: &mut dyn Progress,
) -> Result<PixelsResult> {
    // Every set's histogram holds `bins` counts, allocated up front.
    const MAX_BINS: usize = 1 << 20;
    if !(1..=MAX_BINS).contains(&config.bins) {
        return Err(Error::invalid(
            "bins",
            format!("must be in 1..={MAX_BINS}, got {}", config.bins),
        ));
    }
    let sample = real_sample(real.train, config)?;
    let mut all: Vec<(&str, &Dataset)> = vec![("real", &sample)];
    all.extend(sets.iter().map(|s| (s.name.as_str(), &s.data)));
    let channels = sample.input_shape()[0];
    for (name, d) in &all {
        if d.input_shape()[0] != channels {
            return Err(Error::invalid(
                "sets",
                format!(
                    "set `{name}` has {} channels, the real data {channels}",
                    d.input_shape()[0]
                ),
            ));
        }
    }
    let values: Vec<Vec<Vec<f32>>> = all.iter().map(|(_, d)| per_channel(d)).collect();
    let (lo, hi) = values
        .iter()
        .flatten()
        .flatten()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let (lo, hi) = (lo as f64, (hi as f64).max(lo as f64 + 1e-6));
    let edges: Vec<f64> = (0..=config.bins)
        .map(|i| lo + (hi - lo) * i as f64 / config.bins as f64)
        .collect();
    let real_range: Vec<(f32, f32)> = values[0].iter().map(|c| min_max(c)).collect();
    let mut out = Vec::with_capacity(all.len());
    for (k, ((name, d), chans)) in all.iter().zip(&values).enumerate() {
        progress.report("pixels", k, all.len())?;
        let channels = chans
            .iter()
            .zip(&real_range)
            .map(|(c, &range)| stats(c, range))
            .collect();
        let density = chans.iter().map(|c| histogram(c, &edges)).collect();
        let per_image = outside_per_image(d, &real_range);
        out.push(SetPixels {
            name: name.to_string(),
            images: d.len(),
            channels,
            density,
            outside: Some(st::bootstrap_mean(
                &per_image,
                st::BOOTSTRAP_RESAMPLES,
                config.seed.wrapping_add(k as u64),
            )),
        });
    }
    progress.report("pixels", all.len(), all.len())?;
    Ok(PixelsResult {
        bin_edges: edges,
        sets: out,
    })
}

fn real_sample(train: &Dataset, config: &PixelsConfig) -> Result<Dataset> {
    if config.real_images == 0 || config.real_images >= train.len() {
        return Ok(train.clone());
    }
    let fraction = config.real_images as f64 / train.len() as f64;
    let idx = fraction_per_class(train, &vec![fraction; train.num_classes()], config.seed)?;
    train.select(&idx)
}

/// Values of every image, grouped by channel.
fn per_channel(d: &Dataset) -> Vec<Vec<f32>> {
    let images = d.images();
    let c = images.shape()[1];
    (0..c)
        .map(|ch| {
            images
                .index_axis(ndarray::Axis(1), ch)
                .iter()
                .copied()
                .collect()
        })
        .collect()
}

/// For each image, the fraction of its values (all channels) outside the real range of its
/// channel.
fn outside_per_image(d: &Dataset, real_range: &[(f32, f32)]) -> Vec<f64> {
    d.images()
        .outer_iter()
        .map(|image| {
            let mut outside = 0usize;
            for (channel, &(lo, hi)) in image.outer_iter().zip(real_range) {
                outside += channel.iter().filter(|&&x| x < lo || x > hi).count();
            }
            outside as f64 / image.len().max(1) as f64
        })
        .collect()
}

fn min_max(v: &[f32]) -> (f32, f32) {
    v.iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn stats(v: &[f32], (real_lo, real_hi): (f32, f32)) -> ChannelStats {
    let n = v.len().max(1) as f64;
    let wide: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
    let mean = crate::stats::mean(&wide);
    let mut sorted = v.to_vec();
    sorted.sort_by(f32::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64;
    let outside = v.iter().filter(|&&x| x < real_lo || x > real_hi).count();
    let (min, max) = min_max(v);
    ChannelStats {
        mean,
        std: crate::stats::sample_std(&wide),
        min: min as f64,
        max: max as f64,
        p01: pct(0.01),
        p99: pct(0.99),
        outside_real_range: outside as f64 / n,
    }
}

/// Density histogram of `v` over `edges` (values on the last edge fall in the last bin).
fn histogram(v: &[f32], edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let (lo, hi) = (edges[0], edges[bins]);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &x in v {
        let k = (((x as f64 - lo) / width) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let total = v.len().max(1) as f64 * width;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

impl PixelsResult {
    /// One density chart per channel (log-scaled counts would hide the tails less, but a
    /// density keeps sets of 10 and 60,000 images comparable).
    pub fn charts(&self) -> Vec<LineChart> {
        let channels = self.sets.first().map_or(0, |s| s.density.len());
        let centres: Vec<f64> = self
            .bin_edges
            .windows(2)
            .map(|w| 0.5 * (w[0] + w[1]))
            .collect();
        (0..channels)
            .map(|c| LineChart {
                title: if channels == 1 {
                    "Pixel values: real vs distilled".into()
                } else {
                    format!("Pixel values, channel {c}: real vs distilled")
                },
                x_label: "pixel value (normalised)".into(),
                y_label: "density".into(),
                series: self
                    .sets
                    .iter()
                    .map(|s| {
                        let pts = centres.iter().copied().zip(s.density[c].iter().copied());
                        Series::new(s.name.clone(), pts.collect())
                    })
                    .collect(),
                log_x: false,
                markers: false,
                log_y: true,
                integer_x: false,
            })
            .collect()
    }
}

/// [`pixels`] as an [`Analysis`].
pub struct Pixels;

impl Analysis for Pixels {
    const NAME: &'static str = "pixels";
    const ABOUT: &'static str = "Pixel-value distributions of real vs distilled images (per channel), with range statistics.";
    type Config = PixelsConfig;
    type Output = PixelsResult;

    fn config(budget: Budget, seed: u64) -> PixelsConfig {
        PixelsConfig::for_budget(budget, seed)
    }

    fn run(
        _model: &Bundle,
        real: RealData<'_>,
        sets: &[NamedSet],
        config: &PixelsConfig,
        progress: &mut dyn Progress,
    ) -> Result<PixelsResult> {
        pixels(real, sets, config, progress)
    }

    fn figures(output: &PixelsResult) -> Result<Vec<(String, Figure)>> {
        Ok(output
            .charts()
            .into_iter()
            .enumerate()
            .map(|(c, chart)| {
                let suffix = if c == 0 {
                    String::new()
                } else {
                    format!("channel{c}")
                };
                (suffix, Figure::Lines(chart))
            })
            .collect())
    }

    fn summary(output: &Self::Output) -> Summary {
        summary(output)
    }

    fn verdict(output: &Self::Output) -> Verdict {
        verdict(output)
    }
}

/// The claim [`pixels`] tests.
pub const CLAIM: Claim = Claim {
    finding: "distilled pixels leave the real range",
    claim: "Distilled pixels are free parameters and leave the range of real pixel values: \
            distilled images are not real-looking images.",
    effect: "fraction of a set's pixel values outside the real range (per channel), mean \
             over its images; bootstrap interval over the images",
    null: 0.0,
    side: Side::Above,
};

/// The verdict of a result: each distilled set's fraction of pixels outside the real range.
/// A set none of whose pixels leaves the range contradicts the claim outright.
pub fn verdict(r: &PixelsResult) -> Verdict {
    let sets = r
        .sets
        .iter()
        .skip(1)
        .map(|s| match s.outside {
            Some(ci) if ci.estimate == 0.0 => crate::verdict::SetVerdict {
                state: crate::analysis::State::Contradicts,
                reason: format!("no pixel of its {} images leaves the real range", s.images),
                ..CLAIM.judge(&s.name, ci)
            },
            Some(ci) => CLAIM.judge(&s.name, ci),
            None => CLAIM.unmeasured(&s.name, "the result has no per-image fractions"),
        })
        .collect();
    CLAIM.combine(sets)
}

/// The report's text for a result of this analysis (its JSON, as saved).
pub fn summary(r: &PixelsResult) -> Summary {
    let mut t = Table {
        header: [
            "set",
            "images",
            "channel",
            "mean",
            "std",
            "min",
            "max",
            "outside real range",
            "outside, mean over images [95% interval]",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for s in &r.sets {
        for (c, ch) in s.channels.iter().enumerate() {
            t.rows.push(vec![
                s.name.clone(),
                s.images.to_string(),
                c.to_string(),
                fixed(ch.mean, 3),
                fixed(ch.std, 3),
                fixed(ch.min, 3),
                fixed(ch.max, 3),
                format!("{:.1}%", 100.0 * ch.outside_real_range),
                match (c, s.outside) {
                    (0, Some(ci)) => ci.display(4),
                    _ => String::new(),
                },
            ]);
        }
    }
    Summary {
        title: "Pixel statistics".into(),
        question: "Can distilled data replace real data? Distilled pixels are free parameters: \
                   how far do they leave the distribution of real pixels? (Values in the \
                   normalised space the model sees; the real range is that of the real sample.)"
            .into(),
        finding: None,
        tables: vec![t],
        ..Summary::default()
    }
}
