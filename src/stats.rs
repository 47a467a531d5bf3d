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

/// An estimate with its 95% confidence interval and the number of values behind it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// The estimate (a mean, a rate, a correlation).
    pub estimate: f64,
    /// Lower end of the 95% interval.
    pub lo: f64,
    /// Upper end of the 95% interval.
    pub hi: f64,
    /// Independent values (runs, test images) behind it.
    pub n: usize,
}

impl Interval {
    /// Whether the interval excludes `value` (e.g. 0: "an effect").
    pub fn excludes(&self, value: f64) -> bool {
        value < self.lo || value > self.hi
    }

    /// Half the interval's width.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
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

/// A percentile bootstrap 95% interval of `statistic` over `n` items (test images), with
/// `resamples` resamples drawn from `seed`: `statistic` receives the indices of one
/// resample (with repetition) and returns the value for it.
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
    let mut values: Vec<f64> = (0..resamples)
        .map(|_| {
            for i in idx.iter_mut() {
                *i = rng.random_range(0..n);
            }
            statistic(&idx)
        })
        .filter(|v| v.is_finite())
        .collect();
    values.sort_by(f64::total_cmp);
    Interval {
        estimate,
        lo: quantile(&values, 0.025),
        hi: quantile(&values, 0.975),
        n,
    }
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
}
