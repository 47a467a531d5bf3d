//! State carried beside the parameters: BatchNorm running statistics of a bundle exported
//! with `norm_state: "running-stats"` (the manifest's `state`, docs/bundle-format.md).
//!
//! Only two roles see the state: `forward` normalises with it (evaluation mode) and `grad`
//! outputs its update after a training step (PyTorch's momentum rule, baked into the graph).
//! The other roles normalise with the batch's statistics and take no state, so everything
//! built on gradients works unchanged; what calls `forward` without the statistics of a
//! trained model is refused by [`Bundle::forward`], naming the bundle, instead of computing
//! with the initial statistics.

use ndarray::{ArrayView1, ArrayView4};

use super::{Bundle, ForwardOutput, GradOutput, Params};
use crate::error::{Error, Result};

impl Bundle {
    /// Whether this bundle's graphs take state (BatchNorm running statistics).
    pub fn has_state(&self) -> bool {
        self.manifest.has_state()
    }

    /// The initial state from the manifest (running means 0, variances 1); empty for a
    /// bundle without state.
    pub fn init_state(&self) -> Params {
        use rand::SeedableRng;
        // Every state init is a constant (checked on open): the generator is never drawn.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        Params::init(&self.manifest.state, &mut rng)
    }

    /// Checks externally supplied state tensors against the manifest's `state`.
    pub fn state_from_tensors(&self, tensors: Vec<ndarray::ArrayD<f32>>) -> Result<Params> {
        Params::from_tensors(&self.manifest.state, tensors)
            .map_err(|e| Error::invalid("state", e.to_string()))
    }

    /// Logits and features of a batch, normalised with `state` (evaluation mode); `state` is
    /// empty for a bundle without state, where this is [`Bundle::forward`].
    pub fn forward_with_state(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
    ) -> Result<ForwardOutput> {
        self.forward_chunked(params, state, x)
    }

    /// One training step's loss and gradient (batch statistics) and, in
    /// [`GradOutput::state`], `state` updated with this batch's statistics the way PyTorch's
    /// BatchNorm does in training mode.
    pub fn grad_with_state(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
    ) -> Result<GradOutput> {
        self.grad_chunked(params, state, x, y, w)
    }

    /// An error naming this bundle when it has state and a caller that carries none is about
    /// to use `forward` (`what`: what the caller does, for the message).
    pub fn refuse_state(&self, what: &str) -> Result<()> {
        if !self.has_state() {
            return Ok(());
        }
        Err(Error::invalid(
            "model",
            format!(
                "model `{}` ({}) carries BatchNorm running statistics (norm_state \
                 `running-stats`), which its `forward` graph reads, and this computation {what} \
                 without them, which would use untrained statistics. So far the trainer and its \
                 evaluation (`ddlens train`, `ddlens eval`, parameter files with the state) carry \
                 them; for other computations export the model with `--batchnorm batch-stats`",
                self.manifest.name,
                self.dir.display()
            ),
        ))
    }
}
