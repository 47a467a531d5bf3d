//! One-dimensional Gaussian kernel density estimates with Silverman's rule-of-thumb bandwidth,
//! for the distribution plots of the analyses (agreement scores).

/// Silverman's rule of thumb, `0.9 · min(σ, IQR / 1.34) · n^(-1/5)` (σ the sample standard
/// deviation). When the spread measure is 0 (a single value, or a majority of equal values)
/// the other one is used, and when both are 0 the bandwidth is `floor`, so that the estimate
/// is always a proper density.
pub fn silverman_bandwidth(values: &[f64], floor: f64) -> f64 {
    let n = values.len();
    if n < 2 {
        return floor;
    }
    let sd = crate::stats::sample_std(values);
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let iqr = crate::stats::quantile(&sorted, 0.75) - crate::stats::quantile(&sorted, 0.25);
    let spread = match (sd > 0.0, iqr > 0.0) {
        (true, true) => sd.min(iqr / 1.34),
        (true, false) => sd,
        (false, true) => iqr / 1.34,
        (false, false) => 0.0,
    };
    (0.9 * spread * (n as f64).powf(-0.2)).max(floor)
}

/// The Gaussian KDE of `values` with bandwidth `h`, evaluated at each point of `grid`
/// (integrates to 1 over the real line; empty `values` give zeros).
pub fn gaussian_kde(values: &[f64], h: f64, grid: &[f64]) -> Vec<f64> {
    if values.is_empty() || h <= 0.0 {
        return vec![0.0; grid.len()];
    }
    let norm = 1.0 / (values.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt());
    grid.iter()
        .map(|&x| {
            norm * values
                .iter()
                .map(|&v| (-0.5 * ((x - v) / h).powi(2)).exp())
                .sum::<f64>()
        })
        .collect()
}

/// `points` evenly spaced values from `lo` to `hi` inclusive.
pub fn linspace(lo: f64, hi: f64, points: usize) -> Vec<f64> {
    match points {
        0 => Vec::new(),
        1 => vec![lo],
        _ => (0..points)
            .map(|i| lo + (hi - lo) * i as f64 / (points - 1) as f64)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_one() {
        let v = [0.2, 0.25, 0.3, 0.5, 0.55];
        let h = silverman_bandwidth(&v, 1e-3);
        let grid = linspace(-1.0, 2.0, 3001);
        let d = gaussian_kde(&v, h, &grid);
        let integral: f64 = d.iter().sum::<f64>() * 3.0 / 3000.0;
        assert!((integral - 1.0).abs() < 1e-6, "{integral}");
    }

    #[test]
    fn bandwidth_follows_silverman_and_falls_back() {
        // Five values: sd = 0.158..., IQR = 0.2 → min(sd, 0.149) = 0.149.
        let v = [0.1, 0.2, 0.3, 0.4, 0.5];
        let sd = (0.025f64).sqrt();
        let want = 0.9 * sd.min(0.2 / 1.34) * 5f64.powf(-0.2);
        assert!((silverman_bandwidth(&v, 0.0) - want).abs() < 1e-12);
        assert_eq!(silverman_bandwidth(&[0.4], 0.01), 0.01);
        assert_eq!(silverman_bandwidth(&[0.4, 0.4, 0.4], 0.01), 0.01);
    }
}
