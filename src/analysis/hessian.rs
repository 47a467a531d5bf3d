//! The Hessian of the mean cross-entropy loss as a matrix-free operator, and what is built on
//! its products: Hutchinson's trace estimator, Lanczos (top eigenvalues), stochastic Lanczos
//! quadrature (eigenvalue density) and conjugate gradient (damped solves for influence
//! functions). Every product is one `grad_vjp` evaluation per batch (the `H·a` output).

use nalgebra::DMatrix;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};

/// `v ↦ H v` for the Hessian of the mean loss of `data` at `params`, evaluated in batches of
/// `batch` examples (each batch's Hessian weighted by its share of the examples).
pub struct HessianOperator<'a> {
    bundle: &'a Bundle,
    params: &'a Params,
    data: &'a Dataset,
    batch: usize,
    order: Vec<usize>,
}

impl<'a> HessianOperator<'a> {
    /// The operator for `data` at `params`; `batch` bounds the examples per graph call.
    pub fn new(
        bundle: &'a Bundle,
        params: &'a Params,
        data: &'a Dataset,
        batch: usize,
    ) -> Result<HessianOperator<'a>> {
        if data.is_empty() {
            return Err(Error::invalid(
                "data",
                "the Hessian of an empty set is undefined",
            ));
        }
        if batch == 0 {
            return Err(Error::invalid("batch", "must be at least 1"));
        }
        data.check_against(bundle.manifest())?;
        Ok(HessianOperator {
            bundle,
            params,
            data,
            batch,
            order: (0..data.len()).collect(),
        })
    }

    /// The number of parameters (the Hessian is `dim × dim`).
    pub fn dim(&self) -> usize {
        self.params.numel()
    }

    /// `H v`.
    pub fn apply(&self, v: &Params) -> Result<Params> {
        let n = self.data.len() as f32;
        let mut out = v.zeros_like();
        for b in self.data.batches(&self.order, self.batch)? {
            let share = b.labels.len() as f32 / n;
            let hv =
                self.bundle
                    .grad_vjp(self.params, b.images.view(), b.labels.view(), None, v)?;
            out.axpy(share, &hv.hv);
        }
        Ok(out)
    }
}

/// A vector of independent ±1 entries shaped like `like`.
pub fn rademacher(like: &Params, rng: &mut ChaCha8Rng) -> Params {
    let mut v = like.zeros_like();
    for t in v.tensors_mut() {
        t.mapv_inplace(|_| if rng.random::<bool>() { 1.0 } else { -1.0 });
    }
    v
}

/// A Hutchinson estimate of `tr H`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceEstimate {
    /// The mean of `vᵀ H v` over the probes.
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub trace: f64,
    /// Probes used.
    pub probes: usize,
    /// Standard error of the mean (NaN with one probe).
    #[serde(deserialize_with = "crate::stats::nan::f64")]
    pub std_error: f64,
}

/// Hutchinson's estimator with Rademacher probes and PyHessian's stopping rule (the paper's):
/// stop once the running mean changes by less than `tol` relatively
/// (`|mean − previous| / (|previous| + 1e-6) < tol`), or after `max_probes`.
pub fn hutchinson_trace(
    op: &HessianOperator<'_>,
    max_probes: usize,
    tol: f64,
    rng: &mut ChaCha8Rng,
) -> Result<TraceEstimate> {
    if max_probes == 0 {
        return Err(Error::invalid("max_probes", "must be at least 1"));
    }
    let mut samples = Vec::new(); // `max_probes` is the caller's: no reservation
    let mut previous = 0.0f64;
    for _ in 0..max_probes {
        let v = rademacher(op.params, rng);
        let hv = op.apply(&v)?;
        samples.push(v.dot(&hv));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let converged = (mean - previous).abs() / (previous.abs() + 1e-6) < tol;
        previous = mean;
        if converged {
            break;
        }
    }
    let (trace, std_error) = mean_and_se(&samples);
    Ok(TraceEstimate {
        trace,
        probes: samples.len(),
        std_error,
    })
}

/// Probes [`hutchinson_trace_to`] always takes before its standard error is trusted.
pub const MIN_PROBES: usize = 4;

/// Hutchinson's estimator with Rademacher probes, run until the standard error of the mean is
/// at most `rel_se` of its magnitude (after at least [`MIN_PROBES`] probes) or `max_probes`
/// were used. The estimate says how far it got: compare `std_error` with `rel_se · |trace|`.
pub fn hutchinson_trace_to(
    op: &HessianOperator<'_>,
    max_probes: usize,
    rel_se: f64,
    rng: &mut ChaCha8Rng,
) -> Result<TraceEstimate> {
    if max_probes == 0 {
        return Err(Error::invalid("max_probes", "must be at least 1"));
    }
    let mut samples = Vec::new(); // `max_probes` is the caller's: no reservation
    for _ in 0..max_probes {
        let v = rademacher(op.params, rng);
        samples.push(v.dot(&op.apply(&v)?));
        let (mean, se) = mean_and_se(&samples);
        if samples.len() >= MIN_PROBES && se <= rel_se * mean.abs() {
            break;
        }
    }
    let (trace, std_error) = mean_and_se(&samples);
    Ok(TraceEstimate {
        trace,
        probes: samples.len(),
        std_error,
    })
}

/// Mean and standard error of the mean (NaN for one sample).
fn mean_and_se(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let se = if samples.len() > 1 {
        (samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    } else {
        f64::NAN
    };
    (mean, se)
}

/// The tridiagonal matrix of a Lanczos run: diagonal `alpha` (length m) and off-diagonal
/// `beta` (length m − 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tridiagonal {
    /// Diagonal.
    pub alpha: Vec<f64>,
    /// Sub/super-diagonal.
    pub beta: Vec<f64>,
}

/// `iters` steps of Lanczos from `start` (normalised here), with full reorthogonalisation
/// (the Krylov basis is kept: `iters` parameter-sized vectors), so the Ritz values are
/// reliable without spurious copies. Stops early if the Krylov space is exhausted.
pub fn lanczos(op: &HessianOperator<'_>, start: &Params, iters: usize) -> Result<Tridiagonal> {
    if iters == 0 {
        return Err(Error::invalid("lanczos_iters", "must be at least 1"));
    }
    let norm = start.norm();
    if norm == 0.0 || !norm.is_finite() {
        return Err(Error::invalid(
            "start",
            "the Lanczos start vector must be nonzero",
        ));
    }
    let mut q = start.clone();
    q.scale((1.0 / norm) as f32);
    // `iters` is the caller's (possibly absurd): the vectors grow as the iterations run.
    let mut basis: Vec<Params> = Vec::new();
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    for k in 0..iters {
        let mut w = op.apply(&q)?;
        let a = w.dot(&q);
        w.axpy(-a as f32, &q);
        if let (Some(prev), Some(&b)) = (basis.last(), beta.last()) {
            w.axpy(-(b as f32), prev);
        }
        basis.push(q);
        // Full reorthogonalisation, twice ("twice is enough"), against every basis vector.
        for _ in 0..2 {
            for u in &basis {
                let c = w.dot(u);
                w.axpy(-c as f32, u);
            }
        }
        alpha.push(a);
        let b = w.norm();
        if k + 1 == iters || b < 1e-10 * (1.0 + a.abs()) {
            break;
        }
        beta.push(b);
        w.scale((1.0 / b) as f32);
        q = w;
    }
    beta.truncate(alpha.len().saturating_sub(1));
    Ok(Tridiagonal { alpha, beta })
}

impl Tridiagonal {
    /// Eigenvalues (ascending) and the squared first components of the eigenvectors (the
    /// Gauss quadrature weights of stochastic Lanczos quadrature).
    pub fn eigen(&self) -> (Vec<f64>, Vec<f64>) {
        let m = self.alpha.len();
        let t = DMatrix::from_fn(m, m, |i, j| {
            if i == j {
                self.alpha[i]
            } else if i + 1 == j {
                self.beta[i]
            } else if j + 1 == i {
                self.beta[j]
            } else {
                0.0
            }
        });
        let eig = t.symmetric_eigen();
        let mut pairs: Vec<(f64, f64)> = (0..m)
            .map(|k| (eig.eigenvalues[k], eig.eigenvectors[(0, k)].powi(2)))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        pairs.into_iter().unzip()
    }
}

/// The `k` largest eigenvalues (descending) of `H`, as Ritz values of `iters` Lanczos steps
/// from a Rademacher start (`iters` ≥ 2k recommended; extreme eigenvalues converge first).
pub fn top_eigenvalues(
    op: &HessianOperator<'_>,
    k: usize,
    iters: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<f64>> {
    let start = rademacher(op.params, rng);
    let (mut values, _) = lanczos(op, &start, iters.max(k))?.eigen();
    values.reverse();
    values.truncate(k);
    Ok(values)
}

/// An eigenvalue density from stochastic Lanczos quadrature: Ritz values and weights pooled
/// over probes (weights sum to 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpectralDensity {
    /// Ritz values of every probe.
    pub nodes: Vec<f64>,
    /// Their quadrature weights divided by the number of probes.
    pub weights: Vec<f64>,
}

/// Stochastic Lanczos quadrature (Ghorbani et al., 2019; PyHessian's density): `probes`
/// Lanczos runs of `iters` steps from Rademacher starts.
pub fn spectral_density(
    op: &HessianOperator<'_>,
    probes: usize,
    iters: usize,
    rng: &mut ChaCha8Rng,
) -> Result<SpectralDensity> {
    if probes == 0 {
        return Err(Error::invalid("slq_probes", "must be at least 1"));
    }
    let (mut nodes, mut weights) = (Vec::new(), Vec::new());
    for _ in 0..probes {
        let start = rademacher(op.params, rng);
        let (v, w) = lanczos(op, &start, iters)?.eigen();
        nodes.extend(v);
        weights.extend(w.into_iter().map(|w| w / probes as f64));
    }
    Ok(SpectralDensity { nodes, weights })
}

impl SpectralDensity {
    /// The density on `grid`, each node broadened by a Gaussian of standard deviation `sigma`.
    pub fn smoothed(&self, grid: &[f64], sigma: f64) -> Vec<f64> {
        let norm = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        grid.iter()
            .map(|&x| {
                self.nodes
                    .iter()
                    .zip(&self.weights)
                    .map(|(&n, &w)| w * norm * (-0.5 * ((x - n) / sigma).powi(2)).exp())
                    .sum()
            })
            .collect()
    }
}

/// Result of [`conjugate_gradient`].
#[derive(Debug, Clone)]
pub struct CgSolution {
    /// The approximate solution of `(H + λI) s = b`.
    pub x: Params,
    /// Iterations run.
    pub iterations: usize,
    /// Final relative residual `|b − (H + λI) x| / |b|`.
    pub relative_residual: f64,
}

/// Solves `(H + damping·I) x = b` by conjugate gradient from `x = 0`, stopping when the
/// relative residual drops below `tol` or after `max_iters`. `H + λI` must be positive
/// definite (choose `damping` above the most negative eigenvalue); a non-positive curvature
/// direction is an error that says so.
pub fn conjugate_gradient(
    op: &HessianOperator<'_>,
    b: &Params,
    damping: f64,
    max_iters: usize,
    tol: f64,
) -> Result<CgSolution> {
    let b_norm = b.norm();
    let mut x = b.zeros_like();
    if b_norm == 0.0 {
        return Ok(CgSolution {
            x,
            iterations: 0,
            relative_residual: 0.0,
        });
    }
    let mut r = b.clone();
    let mut p = r.clone();
    let mut rr = r.dot(&r);
    let mut iterations = 0;
    while iterations < max_iters && rr.sqrt() / b_norm > tol {
        let mut ap = op.apply(&p)?;
        ap.axpy(damping as f32, &p);
        let pap = p.dot(&ap);
        if pap <= 0.0 || !pap.is_finite() {
            return Err(Error::invalid(
                "damping",
                format!(
                    "H + {damping}·I is not positive definite (pᵀ(H+λI)p = {pap:.3e}); \
                     increase the damping"
                ),
            ));
        }
        let step = rr / pap;
        x.axpy(step as f32, &p);
        r.axpy(-step as f32, &ap);
        let rr_new = r.dot(&r);
        p.scale((rr_new / rr) as f32);
        p.axpy(1.0, &r);
        rr = rr_new;
        iterations += 1;
    }
    Ok(CgSolution {
        x,
        iterations,
        relative_residual: rr.sqrt() / b_norm,
    })
}
