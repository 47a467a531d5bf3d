//! The statistics every result uses, in one place and with one convention.
//!
//! * **std** is always the *sample* standard deviation, with `n − 1` in the denominator (0 for
//!   fewer than two values): accuracies over runs, agreements over matched pairs, pixel values
//!   over a set's pixels. A result file's `std` means the same thing everywhere.
//! * **Confidence intervals** of a mean over independent runs are Student-t intervals
//!   ([`t_interval`]); of a statistic over test images, percentile bootstrap intervals
//!   ([`bootstrap_interval`], seeded, so the same data give the same interval).
//! * Quantiles interpolate linearly between order statistics (NumPy's default); ranks are
//!   1-based with ties sharing their mean rank; Spearman's ρ is the Pearson correlation of
//!   those ranks.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The mean of `values`; NaN when there are none.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (`n − 1`); 0 for fewer than two values.
pub fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m).powi(2)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Mean and sample std of the finite values (NaN and 0 when there are none).
pub fn mean_std_finite(values: &[f64]) -> (f64, f64) {
    let ok: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if ok.is_empty() {
        return (f64::NAN, 0.0);
    }
    (mean(&ok), sample_std(&ok))
}

/// Linear-interpolation quantile `q` in `[0, 1]` of *sorted* values (NumPy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The median of *sorted* values.
pub fn median(sorted: &[f64]) -> f64 {
    quantile(sorted, 0.5)
}

/// Average ranks, 1-based; tied values share the mean of their positions.
pub fn ranks(values: &[f32]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut r = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation; NaN when either side is constant.
pub fn spearman(a: &[f32], b: &[f32]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let (ma, mb) = (mean(&ra), mean(&rb));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        f64::NAN
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// An estimate with its 95% confidence interval and the number of values behind it. An end
/// that is not finite (one run: no spread to estimate) is written `null` in JSON and reads
/// back as NaN; either way such an interval excludes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The estimate (a mean, a rate, a correlation).
    #[serde(deserialize_with = "nan::f64")]
    pub estimate: f64,
    /// Lower end of the 95% interval.
    #[serde(deserialize_with = "nan::f64")]
    pub lo: f64,
    /// Upper end of the 95% interval.
    #[serde(deserialize_with = "nan::f64")]
    pub hi: f64,
    /// Independent values (runs, test images, probes) behind it.
    pub n: usize,
}

impl Interval {
    /// Whether the interval excludes `value` (e.g. 0: "an effect"). An interval with an end
    /// that is not finite excludes nothing.
    pub fn excludes(&self, value: f64) -> bool {
        self.lo.is_finite() && self.hi.is_finite() && (value < self.lo || value > self.hi)
    }

    /// No estimate and no interval (NaN everywhere, n = 0): what a result file written before
    /// intervals existed reads back as.
    pub fn unknown() -> Interval {
        Interval {
            estimate: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
            n: 0,
        }
    }

    /// A normal-approximation interval: `estimate ± 1.96 · std_error`.
    pub fn normal(estimate: f64, std_error: f64, n: usize) -> Interval {
        let half = 1.959964 * std_error;
        Interval {
            estimate,
            lo: estimate - half,
            hi: estimate + half,
            n,
        }
    }

    /// The estimate and its interval as text with `digits` decimals and n:
    /// `0.712 [0.699, 0.725] (n = 5)`, or `0.712 (n = 1, no interval)`.
    pub fn display(&self, digits: usize) -> String {
        if self.lo.is_finite() && self.hi.is_finite() {
            format!(
                "{:.digits$} [{:.digits$}, {:.digits$}] (n = {})",
                self.estimate, self.lo, self.hi, self.n
            )
        } else {
            format!("{:.digits$} (n = {}, no interval)", self.estimate, self.n)
        }
    }

    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// `self - other` for two independent estimates, with the 95% interval of the difference
    /// recovered from the two intervals (MOVER, Zou & Donner 2008: each side of the difference
    /// combines the matching sides of the two intervals in quadrature, so asymmetric bootstrap
    /// intervals stay asymmetric; for two normal intervals it is the usual
    /// `d ± 1.96 sqrt(se1² + se2²)`). Estimates measured on shared data are positively
    /// correlated, which makes this interval wider than the exact one, not narrower. NaN ends
    /// when either interval has none; n is the smaller n.
    pub fn minus(&self, other: &Interval) -> Interval {
        let d = self.estimate - other.estimate;
        let lo = ((self.estimate - self.lo).powi(2) + (other.hi - other.estimate).powi(2)).sqrt();
        let hi = ((self.hi - self.estimate).powi(2) + (other.estimate - other.lo).powi(2)).sqrt();
        Interval {
            estimate: d,
            lo: d - lo,
            hi: d + hi,
            n: self.n.min(other.n),
        }
    }
}

/// The two-sided 97.5% quantile of Student's t with `df` degrees of freedom (exact table to
/// 30, then the normal approximation with a first-order correction).
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        _ => 1.959964 + 2.4 / df as f64,
    }
}

/// The mean of independent values (one per run or seed) with its 95% Student-t interval
/// (infinitely wide for a single value).
pub fn t_interval(values: &[f64]) -> Interval {
    let n = values.len();
    let m = mean(values);
    let half = if n < 2 {
        f64::INFINITY
    } else {
        t_975(n - 1) * sample_std(values) / (n as f64).sqrt()
    };
    Interval {
        estimate: m,
        lo: m - half,
        hi: m + half,
        n,
    }
}

/// The difference of the means of two independent groups, `mean(a) − mean(b)`, with its 95%
/// Welch interval (Student-t with the Welch–Satterthwaite degrees of freedom). `n` counts the
/// values of both groups; fewer than two values in either group gives no interval.
pub fn welch_interval(a: &[f64], b: &[f64]) -> Interval {
    let (na, nb) = (a.len(), b.len());
    let estimate = mean(a) - mean(b);
    let n = na + nb;
    if na < 2 || nb < 2 {
        return Interval {
            estimate,
            lo: f64::NAN,
            hi: f64::NAN,
            n,
        };
    }
    let (va, vb) = (
        sample_std(a).powi(2) / na as f64,
        sample_std(b).powi(2) / nb as f64,
    );
    let se = (va + vb).sqrt();
    let df = if se == 0.0 {
        (n - 2) as f64
    } else {
        (va + vb).powi(2) / (va.powi(2) / (na - 1) as f64 + vb.powi(2) / (nb - 1) as f64)
    };
    let half = t_975(df.floor().max(1.0) as usize) * se;
    Interval {
        estimate,
        lo: estimate - half,
        hi: estimate + half,
        n,
    }
}

/// A percentile bootstrap 95% interval of `mean(a) − mean(b)` for two independent samples
/// (the images of a set and the test images), each resampled on its own from `seed`.
pub fn bootstrap_difference(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Interval {
    let estimate = mean(a) - mean(b);
    let n = a.len() + b.len();
    if a.is_empty() || b.is_empty() || resamples == 0 {
        return Interval {
            estimate,
            lo: f64::NAN,
            hi: f64::NAN,
            n,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let resample_mean = |x: &[f64], rng: &mut ChaCha8Rng| {
        (0..x.len())
            .map(|_| x[rng.random_range(0..x.len())])
            .sum::<f64>()
            / x.len() as f64
    };
    let values: Vec<f64> = (0..resamples)
        .map(|_| resample_mean(a, &mut rng) - resample_mean(b, &mut rng))
        .collect();
    percentile_interval(estimate, values, n)
}

/// The 2.5% and 97.5% percentiles of bootstrap `values` around `estimate`.
fn percentile_interval(estimate: f64, mut values: Vec<f64>, n: usize) -> Interval {
    values.sort_by(f64::total_cmp);
    Interval {
        estimate,
        lo: quantile(&values, 0.025),
        hi: quantile(&values, 0.975),
        n,
    }
}

/// The bootstrap interval of the mean of `values` (per-image rates, per-image differences).
pub fn bootstrap_mean(values: &[f64], resamples: usize, seed: u64) -> Interval {
    bootstrap_interval(values.len(), resamples, seed, &mut |idx| {
        idx.iter().map(|&i| values[i]).sum::<f64>() / idx.len().max(1) as f64
    })
}

/// The Wilson score 95% interval of a rate `p` observed over `n` independent items. Unlike a
/// bootstrap it does not collapse at 0 or 1: 10 of 10 images recognised gives [0.72, 1].
pub fn wilson_interval(p: f64, n: usize) -> Interval {
    if n == 0 {
        return Interval {
            estimate: p,
            lo: f64::NAN,
            hi: f64::NAN,
            n,
        };
    }
    let z = 1.959964f64;
    let nf = n as f64;
    let denom = 1.0 + z * z / nf;
    let centre = (p + z * z / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / denom;
    Interval {
        estimate: p,
        lo: (centre - half).max(0.0),
        hi: (centre + half).min(1.0),
        n,
    }
}

/// The 95% interval of a difference of two independent rates `p1 − p2` (over `n1` and `n2`
/// items) by Newcombe's hybrid score method, from the two Wilson intervals: like them it
/// stays honest at 0 and 1, where a bootstrap collapses.
pub fn newcombe_difference(p1: f64, n1: usize, p2: f64, n2: usize) -> Interval {
    let (a, b) = (wilson_interval(p1, n1), wilson_interval(p2, n2));
    let d = p1 - p2;
    Interval {
        estimate: d,
        lo: d - ((p1 - a.lo).powi(2) + (b.hi - p2).powi(2)).sqrt(),
        hi: d + ((a.hi - p1).powi(2) + (p2 - b.lo).powi(2)).sqrt(),
        n: n1 + n2,
    }
}

/// The wider of two intervals around the same estimate (each end the more cautious one).
pub fn wider(a: Interval, b: Interval) -> Interval {
    Interval {
        lo: a.lo.min(b.lo),
        hi: a.hi.max(b.hi),
        ..a
    }
}

/// Bootstrap resamples behind every interval over images (enough for stable 2.5% and 97.5%
/// percentiles; each costs one pass over the values).
pub const BOOTSTRAP_RESAMPLES: usize = 2_000;

/// A percentile bootstrap 95% interval of `statistic` over `n` items (test images), with
/// `resamples` resamples drawn from `seed`: `statistic` receives the indices of one
/// resample (with repetition) and returns the value for it. When the statistic is not finite
/// for some resample (a correlation of tied values, say), the interval is NaN to NaN, which
/// verdicts read as `inconclusive`: dropping those resamples would narrow it without cause.
pub fn bootstrap_interval(
    n: usize,
    resamples: usize,
    seed: u64,
    statistic: &mut dyn FnMut(&[usize]) -> f64,
) -> Interval {
    let all: Vec<usize> = (0..n).collect();
    let estimate = statistic(&all);
    if n == 0 || resamples == 0 {
        return Interval {
            estimate,
            lo: f64::NAN,
            hi: f64::NAN,
            n,
        };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = vec![0usize; n];
    let values: Vec<f64> = (0..resamples)
        .map(|_| {
            for i in idx.iter_mut() {
                *i = rng.random_range(0..n);
            }
            statistic(&idx)
        })
        .collect();
    if values.iter().any(|v| !v.is_finite()) {
        return Interval {
            estimate,
            lo: f64::NAN,
            hi: f64::NAN,
            n,
        };
    }
    percentile_interval(estimate, values, n)
}

/// Reading back numbers that may be NaN. JSON has no NaN: serde_json writes it as `null`, so a
/// result field that may hold NaN (an estimate with one sample, a diverged run) reads `null`
/// back as NaN with `#[serde(deserialize_with = "crate::stats::nan::f64")]` (or `vec`, `vec2`).
pub mod nan {
    use serde::{Deserialize, Deserializer};

    /// `null` as NaN.
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// Each `null` of an array as NaN.
    pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let v = Vec::<Option<f64>>::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }

    /// Each `null` of an array of arrays as NaN.
    pub fn vec2<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f64>>, D::Error> {
        let v = Vec::<Vec<Option<f64>>>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|r| r.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_survives_a_json_round_trip() {
        #[derive(serde::Serialize, serde::Deserialize)]
        struct R {
            #[serde(deserialize_with = "nan::f64")]
            a: f64,
            #[serde(deserialize_with = "nan::vec")]
            b: Vec<f64>,
            #[serde(deserialize_with = "nan::vec2")]
            c: Vec<Vec<f64>>,
        }
        let text = serde_json::to_string(&R {
            a: f64::NAN,
            b: vec![1.0, f64::NAN],
            c: vec![vec![f64::NAN]],
        })
        .unwrap();
        assert_eq!(text, r#"{"a":null,"b":[1.0,null],"c":[[null]]}"#);
        let r: R = serde_json::from_str(&text).unwrap();
        assert!(r.a.is_nan() && r.b[0] == 1.0 && r.b[1].is_nan() && r.c[0][0].is_nan());
    }

    #[test]
    fn moments_use_n_minus_one() {
        assert!(mean(&[]).is_nan());
        assert_eq!(sample_std(&[3.0]), 0.0);
        // Values 1..=4: mean 2.5, sum of squares 5, sample variance 5/3.
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(mean(&v), 2.5);
        assert!((sample_std(&v) - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_std_finite(&[1.0, f64::NAN, 3.0]), (2.0, 2f64.sqrt()));
    }

    #[test]
    fn quantiles_ranks_and_spearman() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&s, 0.25), 1.75);
        assert_eq!(median(&s), 2.5);
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), vec![2.5, 1.0, 2.5]);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn t_interval_matches_the_table_and_covers() {
        // n = 5, std 1: half width t(4) / sqrt(5) = 2.776 / 2.236.
        let v = [-1.2649, -0.6325, 0.0, 0.6325, 1.2649];
        let ci = t_interval(&v);
        assert!((sample_std(&v) - 1.0).abs() < 1e-4);
        assert!((ci.half_width() - 2.776 / 5f64.sqrt()).abs() < 1e-3);
        assert!(!ci.excludes(0.0) && ci.excludes(2.0));
        assert!(t_interval(&[1.0]).half_width().is_infinite());
        assert!((t_975(1000) - 1.962).abs() < 1e-3);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_rate() {
        // 1,000 Bernoulli outcomes with rate 0.3: the interval is about ±0.028.
        let x: Vec<f64> = (0..1000).map(|i| f64::from(i % 10 < 3)).collect();
        let mut rate = |idx: &[usize]| idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
        let a = bootstrap_interval(x.len(), 500, 1, &mut rate);
        let b = bootstrap_interval(x.len(), 500, 1, &mut rate);
        assert_eq!(a, b, "same seed, same interval");
        assert!((a.estimate - 0.3).abs() < 1e-12);
        assert!(a.lo < 0.3 && a.hi > 0.3 && a.half_width() > 0.015 && a.half_width() < 0.045);
    }

    #[test]
    fn a_difference_combines_the_matching_sides() {
        let a = Interval::normal(0.5, 0.03, 10);
        let b = Interval::normal(0.2, 0.04, 8);
        let d = a.minus(&b);
        assert!((d.estimate - 0.3).abs() < 1e-12);
        // Two normal intervals: the usual standard error of a difference.
        assert!((d.half_width() - 1.959964 * 0.05).abs() < 1e-9, "{d:?}");
        assert_eq!(d.n, 8);
        // Asymmetric: the lower side takes a's lower and b's upper arm.
        let a = Interval {
            estimate: 1.0,
            lo: 0.7,
            hi: 1.1,
            n: 5,
        };
        let b = Interval {
            estimate: 0.0,
            lo: -0.4,
            hi: 0.3,
            n: 5,
        };
        let d = a.minus(&b);
        assert_eq!(d.estimate, 1.0);
        assert!(
            (d.lo - (1.0 - (0.09f64 + 0.09).sqrt())).abs() < 1e-12,
            "{d:?}"
        );
        assert!(
            (d.hi - (1.0 + (0.01f64 + 0.16).sqrt())).abs() < 1e-12,
            "{d:?}"
        );
        // No interval on either side: none for the difference.
        let none = Interval {
            estimate: 0.1,
            lo: f64::NAN,
            hi: f64::NAN,
            n: 1,
        };
        assert!(!a.minus(&none).excludes(0.0) && !none.minus(&a).lo.is_finite());
    }

    #[test]
    fn bootstrap_with_an_undefined_resample_has_no_interval() {
        // The ratio of the first item to the resample's sum is NaN for the resamples that
        // draw only zeros (0 / 0); with 3 items of which 2 are zero, about 8 in 27 do.
        let x = [1.0, 0.0, 0.0];
        let mut ratio = |idx: &[usize]| {
            let sum: f64 = idx.iter().map(|&i| x[i]).sum();
            idx.iter().filter(|&&i| i == 0).count() as f64 / sum
        };
        let ci = bootstrap_interval(x.len(), 200, 3, &mut ratio);
        assert_eq!(ci.estimate, 1.0);
        assert!(ci.lo.is_nan() && ci.hi.is_nan() && !ci.excludes(0.0));
        // The same statistic over items that are never all zero keeps its interval.
        let y = [1.0, 2.0, 3.0];
        let mut share = |idx: &[usize]| idx.iter().map(|&i| y[i]).sum::<f64>() / 6.0;
        let ci = bootstrap_interval(y.len(), 200, 3, &mut share);
        assert!(ci.lo.is_finite() && ci.lo <= ci.estimate && ci.estimate <= ci.hi);
    }

    #[test]
    fn welch_matches_a_hand_computation() {
        // a: mean 4, variance 1 (n 3); b: mean 0, variance 1 (n 3). se = sqrt(2/3), df = 4,
        // half width t(4) · se = 2.266.
        let ci = welch_interval(&[3.0, 4.0, 5.0], &[-1.0, 0.0, 1.0]);
        assert_eq!(ci.estimate, 4.0);
        assert!((ci.half_width() - 2.776 * (2.0f64 / 3.0).sqrt()).abs() < 1e-3);
        assert!(ci.excludes(0.0));
        let one = welch_interval(&[1.0], &[0.0, 1.0]);
        assert!(
            one.lo.is_nan() && !one.excludes(0.0),
            "one value: no interval"
        );
    }

    #[test]
    fn two_sample_bootstrap_is_seeded_and_brackets_the_difference() {
        let a: Vec<f64> = (0..200).map(|i| f64::from(i % 10 < 8)).collect();
        let b: Vec<f64> = (0..1000).map(|i| f64::from(i % 10 < 5)).collect();
        let ci = bootstrap_difference(&a, &b, 1000, 3);
        assert_eq!(ci, bootstrap_difference(&a, &b, 1000, 3));
        assert!((ci.estimate - 0.3).abs() < 1e-12 && ci.excludes(0.0));
        // se = sqrt(.16/200 + .25/1000) = 0.032: the half width is about 0.063.
        assert!(ci.half_width() > 0.045 && ci.half_width() < 0.08, "{ci:?}");
        let m = bootstrap_mean(&[0.0, 0.0, 0.0], 100, 0);
        assert_eq!((m.lo, m.hi), (0.0, 0.0));
    }

    #[test]
    fn unbounded_intervals_round_trip_and_exclude_nothing() {
        let ci = t_interval(&[0.5]);
        let text = serde_json::to_string(&ci).unwrap();
        let back: Interval = serde_json::from_str(&text).unwrap();
        assert!(back.lo.is_nan() && !back.excludes(100.0));
        assert!(
            back.display(3).contains("no interval"),
            "{}",
            back.display(3)
        );
    }

    #[test]
    fn wilson_does_not_collapse_at_the_boundary() {
        let all = wilson_interval(1.0, 10);
        assert!(
            (all.lo - 0.722).abs() < 1e-3 && (all.hi - 1.0).abs() < 1e-12,
            "{all:?}"
        );
        let half = wilson_interval(0.5, 100);
        assert!((half.half_width() - 0.096).abs() < 2e-3, "{half:?}");
        assert!(wilson_interval(0.3, 0).lo.is_nan());
    }

    #[test]
    fn newcombe_is_wide_when_a_small_sample_is_all_ones() {
        // 10 of 10 against 834 of 1000: the 10 images cannot show that they are recognised
        // more often than the test images.
        let d = newcombe_difference(1.0, 10, 0.834, 1000);
        assert!(
            (d.estimate - 0.166).abs() < 1e-12 && d.lo < 0.0 && d.hi > 0.16,
            "{d:?}"
        );
        // 100 of 100 can.
        assert!(newcombe_difference(1.0, 100, 0.834, 1000).lo > 0.1);
    }
}
