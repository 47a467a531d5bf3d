//! The `herding` baseline (Welling, 2009, in the greedy form of the DC benchmark): per class,
//! pick real images one at a time so that the running mean of the picked images' features
//! stays as close as possible to the class's mean feature.
//!
//! Features are the penultimate layer of a model trained on real data (the caller supplies
//! its parameters). At step `t` (1-based), with `S` the sum of the `t − 1` features picked so
//! far, the pick is the unpicked image `i` minimising `‖t·μ − S − f_i‖`, i.e. the one whose
//! addition brings the mean of the picks closest to `μ`. Ties go to the lower index, so the
//! result is deterministic.

use ndarray::{s, Array2, Axis};

use super::synthetic::Synthetic;
use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::train::EVAL_BATCH;

/// `ipc` images per class chosen by herding in the feature space of `params`. `progress`
/// hears (`herding`, classes done, number of classes) after each class; an error it returns
/// stops the herding.
pub fn herding_set(
    bundle: &Bundle,
    params: &Params,
    real: &Dataset,
    ipc: usize,
    progress: &mut dyn Progress,
) -> Result<Synthetic> {
    real.check_against(bundle.manifest())?;
    let classes = real.class_indices();
    // No reservation: `ipc` comes from the caller and is checked against each class below.
    let mut picked = Vec::new();
    for (c, members) in classes.iter().enumerate() {
        if members.len() < ipc {
            return Err(Error::invalid(
                "ipc",
                format!(
                    "{ipc} images per class asked, but class {c} of `{}` has {}",
                    real.name(),
                    members.len()
                ),
            ));
        }
        let features = class_features(bundle, params, real, members)?;
        picked.extend(herd(&features, ipc).into_iter().map(|k| members[k]));
        progress.report("herding", c + 1, classes.len())?;
    }
    let (images, labels) = real.select(&picked)?.into_parts();
    Ok(Synthetic {
        images,
        labels,
        num_classes: real.num_classes(),
        lr: None,
    })
}

/// Penultimate features of the images `members` of `real`, in batches.
fn class_features(
    bundle: &Bundle,
    params: &Params,
    real: &Dataset,
    members: &[usize],
) -> Result<Array2<f32>> {
    let mut out = Array2::zeros((members.len(), bundle.manifest().feature_dim));
    for (k, chunk) in members.chunks(EVAL_BATCH).enumerate() {
        let x = real.images().select(Axis(0), chunk);
        let f = bundle.forward(params, x.view())?.features;
        let start = k * EVAL_BATCH;
        out.slice_mut(s![start..start + chunk.len(), ..]).assign(&f);
    }
    Ok(out)
}

/// Greedy herding: the rows of `features` (in pick order) whose running mean tracks the mean
/// of all rows. Public for tests and for callers with their own features.
pub fn herd(features: &Array2<f32>, k: usize) -> Vec<usize> {
    let (n, d) = features.dim();
    let k = k.min(n);
    let mu: Vec<f64> = (0..d)
        .map(|j| {
            features
                .column(j)
                .iter()
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / n as f64
        })
        .collect();
    let mut sum = vec![0.0f64; d];
    let mut taken = vec![false; n];
    let mut picks = Vec::new();
    for t in 1..=k {
        // target = t·μ − S; the best pick is the row nearest to it.
        let target: Vec<f64> = mu.iter().zip(&sum).map(|(m, s)| t as f64 * m - s).collect();
        let best = (0..n)
            .filter(|&i| !taken[i])
            .map(|i| {
                let row = features.row(i);
                let dist: f64 = row
                    .iter()
                    .zip(&target)
                    .map(|(&f, &g)| (f64::from(f) - g).powi(2))
                    .sum();
                (i, dist)
            })
            .fold(None, |best: Option<(usize, f64)>, (i, dist)| match best {
                Some((_, b)) if b <= dist => best,
                _ => Some((i, dist)),
            })
            .map(|(i, _)| i)
            .expect("k ≤ n leaves a candidate");
        taken[best] = true;
        for (s, &f) in sum.iter_mut().zip(features.row(best)) {
            *s += f64::from(f);
        }
        picks.push(best);
    }
    picks
}
