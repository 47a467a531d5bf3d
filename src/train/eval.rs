//! Evaluation of parameters on a dataset: accuracy, per-example loss, predictions and the
//! confusion matrix, computed from `forward` logits in batches.

use ndarray::{Array2, ArrayView2};
use serde::Serialize;

use crate::bundle::{Bundle, Params};
use crate::data::Dataset;
use crate::error::Result;

/// Batch size for evaluation: large enough to keep ONNX Runtime busy, small enough that the
/// activations of ConvNet-3 stay well under a gigabyte.
pub const EVAL_BATCH: usize = 500;

/// The result of evaluating a model on a dataset.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// Fraction of examples whose arg-max logit is the label.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Cross-entropy of each example.
    #[serde(skip)]
    pub per_example_loss: Vec<f32>,
    /// Arg-max class of each example.
    #[serde(skip)]
    pub predictions: Vec<u16>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u32>>,
}

/// Evaluates `params` on every example of `data`. A bundle with state (BatchNorm running
/// statistics) is refused, naming it: use [`evaluate_with_state`].
pub fn evaluate(bundle: &Bundle, params: &Params, data: &Dataset) -> Result<Evaluation> {
    bundle.refuse_state("evaluates parameters")?;
    evaluate_with_state(bundle, params, &Params::empty(), data)
}

/// Evaluates `params` with `state` (the running statistics training produced; empty for a
/// bundle without state) on every example of `data`.
pub fn evaluate_with_state(
    bundle: &Bundle,
    params: &Params,
    state: &Params,
    data: &Dataset,
) -> Result<Evaluation> {
    data.check_against(bundle.manifest())?;
    let k = data.num_classes();
    let mut per_example_loss = Vec::with_capacity(data.len());
    let mut predictions = Vec::with_capacity(data.len());
    let order: Vec<usize> = (0..data.len()).collect();
    for batch in data.batches(&order, EVAL_BATCH)? {
        let logits = bundle
            .forward_with_state(params, state, batch.images.view())?
            .logits;
        let (losses, preds) =
            loss_and_argmax(logits.view(), batch.labels.as_slice().expect("contiguous"));
        per_example_loss.extend(losses);
        predictions.extend(preds);
    }
    let mut confusion = vec![vec![0u32; k]; k];
    let mut correct = 0usize;
    for (&y, &p) in data.labels().iter().zip(&predictions) {
        confusion[y as usize][p as usize] += 1;
        correct += usize::from(y as u16 == p);
    }
    let n = data.len().max(1) as f64;
    Ok(Evaluation {
        accuracy: correct as f64 / n,
        loss: per_example_loss.iter().map(|&l| l as f64).sum::<f64>() / n,
        per_example_loss,
        predictions,
        confusion,
    })
}

/// Per-row cross-entropy (stable log-sum-exp, in f64) and arg-max.
pub fn loss_and_argmax(logits: ArrayView2<f32>, labels: &[i64]) -> (Vec<f32>, Vec<u16>) {
    logits
        .outer_iter()
        .zip(labels)
        .map(|(row, &y)| {
            let (arg, max) =
                row.iter()
                    .enumerate()
                    .fold((0usize, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                        if v > bv {
                            (i, v)
                        } else {
                            (bi, bv)
                        }
                    });
            let lse = max as f64
                + row
                    .iter()
                    .map(|&v| ((v - max) as f64).exp())
                    .sum::<f64>()
                    .ln();
            ((lse - row[y as usize] as f64) as f32, arg as u16)
        })
        .unzip()
}

/// Softmax probabilities of logits (rows).
pub fn softmax(logits: ArrayView2<f32>) -> Array2<f32> {
    let mut out = logits.to_owned();
    for mut row in out.outer_iter_mut() {
        let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f32 = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}
