//! The public graph calls: a batch larger than the bundle's chunk is evaluated a chunk of
//! images at a time, and the chunks' results are joined (per-image outputs) or summed with
//! weights `b_c / B` (the mean loss, its gradient and `H·a`).
//!
//! Why: on the CPU, a graph's activations grow with the batch, and one call at batch 256
//! needs gigabytes, while per-image speed does not improve past a few dozen images. Measured
//! with `cargo bench --bench roles` (ConvNet-3 on 1×28×28, 2-core AMD EPYC, `keep_freed_memory`,
//! time per 256 images, median of 5, peak RSS of the whole bench):
//!
//! | images per call | grad | grad_vjp | features_vjp | forward | peak RSS |
//! |---|---|---|---|---|---|
//! | 256, 2 threads | 1.40 s | 3.97 s | 1.13 s | 0.42 s | 3.36 GB |
//! | 64, 2 threads | 1.37 s | 4.22 s | 1.18 s | 0.32 s | 0.84 GB |
//! | 32, 2 threads | 1.52 s | 3.63 s | 0.92 s | 0.43 s | 0.49 GB |
//! | 256, 1 thread | 2.15 s | 6.45 s | 1.44 s | 0.80 s | 3.47 GB |
//! | 32, 1 thread | 1.88 s | 5.86 s | 1.28 s | 0.64 s | 0.48 GB |
//!
//! (The other core ran a one-thread distillation during the 1-thread rows, so they carry a
//! few percent of noise.) Since then the chunks of one call run side by side, one per worker
//! thread with one ONNX Runtime thread each (`runtime/threads.rs`), and smaller chunks did
//! best there (ConvNet-3 `grad_vjp`, 2 workers, per 100 images: 806 ms in chunks of 5, 826 ms
//! of 10, 890 ms of 25, 943 ms of 50; `grad`: 236, 246, 273, 293 ms). So the CPU provider
//! calls graphs on [`CPU_CHUNK`] = 8 images at most, in an even number of chunks so that two
//! workers finish together. On CUDA a batch is one call: the GPU wants large batches and has
//! the memory for them.
//!
//! Splitting is exact in arithmetic (the loss is a mean of per-image terms) but changes the
//! order of float sums, so results match an unsplit call to rounding. The chunks depend on
//! the batch size alone and their results are summed in chunk order, so the same call gives
//! the same bits on any number of threads. A bundle whose graphs use batch statistics (BatchNorm in
//! training mode, `batch_statistics` in the manifest) is never split: its chunks would see
//! other statistics.

use std::ops::Range;

use ndarray::{s, Array1, Array2, Array4, ArrayView1, ArrayView2, ArrayView4, Axis};

use super::{Bundle, ForwardOutput, GradOutput, GradVjpOutput, Params};
use crate::error::Result;
use crate::runtime::Provider;

/// Images per graph call on the CPU provider (see the module documentation).
pub const CPU_CHUNK: usize = 8;

/// The fewest images a chunk is cut down to so that the chunks pair up across workers.
const MIN_CHUNK: usize = 4;

/// The chunk a bundle gets when it is opened: `None` (whole batches) on CUDA or when the
/// graphs use batch statistics.
pub(super) fn default_chunk(provider: Provider, batch_statistics: bool) -> Option<usize> {
    match provider {
        _ if batch_statistics => None,
        Provider::Cpu => Some(CPU_CHUNK),
        Provider::Cuda => None,
    }
}

impl Bundle {
    /// Images per graph call (`None`: each batch in one call).
    pub fn chunk(&self) -> Option<usize> {
        self.chunk
    }

    /// Sets the images per graph call (`None`: each batch in one call). Ignored, and left at
    /// `None`, for graphs that use batch statistics.
    pub fn set_chunk(&mut self, chunk: Option<usize>) {
        self.chunk = chunk.filter(|&c| c > 0 && !self.manifest.batch_statistics);
    }

    /// Logits and features of a batch. A bundle with state (BatchNorm running statistics)
    /// refuses this call, naming itself: its `forward` reads the statistics, so use
    /// [`Bundle::forward_with_state`].
    pub fn forward(&self, params: &Params, x: ArrayView4<f32>) -> Result<ForwardOutput> {
        self.refuse_state("evaluates the model with `forward`")?;
        self.forward_chunked(params, &Params::empty(), x)
    }

    /// [`Bundle::forward`] with `state` (empty for a bundle without state).
    pub(super) fn forward_chunked(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
    ) -> Result<ForwardOutput> {
        let ranges = self.ranges(&x)?;
        if ranges.len() == 1 {
            return self.forward_once(params, state, x);
        }
        let m = &self.manifest;
        let mut logits = Array2::zeros((x.len_of(Axis(0)), m.num_classes));
        let mut features = Array2::zeros((x.len_of(Axis(0)), m.feature_dim));
        let parts = self.each_chunk(&ranges, |r| {
            self.forward_once(params, state, x.slice(s![r, .., .., ..]))
        })?;
        for (r, out) in ranges.into_iter().zip(parts) {
            logits.slice_mut(s![r.clone(), ..]).assign(&out.logits);
            features.slice_mut(s![r, ..]).assign(&out.features);
        }
        Ok(ForwardOutput { logits, features })
    }

    /// Weighted mean loss `(1/B) Σ w_i ce_i` and its parameter gradient. `w = None` means
    /// all-ones weights. For a bundle with state (BatchNorm running statistics) the loss and
    /// gradient use the batch's statistics and do not depend on the state: this call feeds
    /// the initial state and `state` of the result is the update of that, which only
    /// [`Bundle::grad_with_state`] makes meaningful.
    pub fn grad(
        &self,
        params: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
    ) -> Result<GradOutput> {
        self.grad_chunked(params, &self.init_state(), x, y, w)
    }

    /// [`Bundle::grad`] with `state` (empty for a bundle without state; a bundle with state
    /// never has its batches split).
    pub(super) fn grad_chunked(
        &self,
        params: &Params,
        state: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
    ) -> Result<GradOutput> {
        let ranges = self.labelled_ranges(&x, &y, w.as_ref())?;
        let b = x.len_of(Axis(0)) as f32;
        let parts = self.each_chunk(&ranges, |r| {
            let (xc, yc, wc) = split(&x, &y, w.as_ref(), r);
            self.grad_once(params, state, xc, yc, wc)
        })?;
        let mut total: Option<GradOutput> = None;
        for (r, part) in ranges.into_iter().zip(parts) {
            let share = r.len() as f32 / b;
            match &mut total {
                None if share == 1.0 => total = Some(part),
                None => {
                    let mut first = part;
                    first.loss *= share;
                    first.grad.scale(share);
                    total = Some(first);
                }
                Some(t) => {
                    t.loss += share * part.loss;
                    t.grad.axpy(share, &part.grad);
                }
            }
        }
        Ok(total.expect("at least one chunk"))
    }

    /// `H·a` and `J_xᵀa` of `<∇θ L, a>` for the weighted mean loss `L` (second order).
    pub fn grad_vjp(
        &self,
        params: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
        w: Option<ArrayView1<f32>>,
        a: &Params,
    ) -> Result<GradVjpOutput> {
        let ranges = self.labelled_ranges(&x, &y, w.as_ref())?;
        if ranges.len() == 1 {
            return self.grad_vjp_once(params, x, y, w, a);
        }
        let b = x.len_of(Axis(0)) as f32;
        let mut x_grad = Array4::zeros(x.raw_dim());
        let parts = self.each_chunk(&ranges, |r| {
            let (xc, yc, wc) = split(&x, &y, w.as_ref(), r);
            self.grad_vjp_once(params, xc, yc, wc, a)
        })?;
        let mut hv: Option<Params> = None;
        for (r, part) in ranges.into_iter().zip(parts) {
            let share = r.len() as f32 / b;
            x_grad
                .slice_mut(s![r, .., .., ..])
                .assign(&(part.x_grad * share));
            match &mut hv {
                None => {
                    let mut first = part.hv;
                    first.scale(share);
                    hv = Some(first);
                }
                Some(t) => t.axpy(share, &part.hv),
            }
        }
        Ok(GradVjpOutput {
            hv: hv.expect("at least one chunk"),
            x_grad,
        })
    }

    /// `d<features(x), c>/dx` for a batch; `c` is `[B, F]`.
    pub fn features_vjp(
        &self,
        params: &Params,
        x: ArrayView4<f32>,
        c: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let ranges = self.ranges(&x)?;
        if ranges.len() == 1 || c.len_of(Axis(0)) != x.len_of(Axis(0)) {
            // A mismatched `c` gets its error from the single call.
            return self.features_vjp_once(params, x, c);
        }
        let parts = self.each_chunk(&ranges, |r| {
            self.features_vjp_once(
                params,
                x.slice(s![r.clone(), .., .., ..]),
                c.slice(s![r, ..]),
            )
        })?;
        let mut out = Array4::zeros(x.raw_dim());
        for (r, part) in ranges.into_iter().zip(parts) {
            out.slice_mut(s![r, .., .., ..]).assign(&part);
        }
        Ok(out)
    }

    /// Per-sample directional derivative of the cross-entropy along `v`: `[B]`.
    pub fn loss_jvp(
        &self,
        params: &Params,
        v: &Params,
        x: ArrayView4<f32>,
        y: ArrayView1<i64>,
    ) -> Result<Array1<f32>> {
        let ranges = self.labelled_ranges(&x, &y, None)?;
        if ranges.len() == 1 {
            return self.loss_jvp_once(params, v, x, y);
        }
        let parts = self.each_chunk(&ranges, |r| {
            let (xc, yc, _) = split(&x, &y, None, r);
            self.loss_jvp_once(params, v, xc, yc)
        })?;
        let mut out = Array1::zeros(x.len_of(Axis(0)));
        for (r, part) in ranges.into_iter().zip(parts) {
            out.slice_mut(s![r]).assign(&part);
        }
        Ok(out)
    }

    /// The chunks of a batch `x` (see [`chunk_ranges`]); one range when not chunking.
    fn ranges(&self, x: &ArrayView4<f32>) -> Result<Vec<Range<usize>>> {
        let b = self.check_x(x, "x")?;
        Ok(match self.chunk {
            Some(most) => chunk_ranges(b, most),
            None => std::iter::once(0..b).collect(),
        })
    }

    /// `call` on every chunk, side by side on the runtime's workers; the results in chunk
    /// order, or the first chunk's error.
    fn each_chunk<T: Send>(
        &self,
        ranges: &[Range<usize>],
        call: impl Fn(Range<usize>) -> Result<T> + Sync + Send,
    ) -> Result<Vec<T>> {
        self.runtime
            .map_parallel(ranges.len(), |i| call(ranges[i].clone()))
            .into_iter()
            .collect()
    }

    /// [`Bundle::ranges`] after checking the labels and weights against the batch, so a bad
    /// argument is named before any chunk runs.
    fn labelled_ranges(
        &self,
        x: &ArrayView4<f32>,
        y: &ArrayView1<i64>,
        w: Option<&ArrayView1<f32>>,
    ) -> Result<Vec<Range<usize>>> {
        let b = self.check_x(x, "x")?;
        self.check_y(y, b)?;
        if let Some(w) = w.filter(|w| w.len() != b) {
            return Err(crate::error::Error::invalid(
                "w",
                format!("has {} weights for a batch of {b}", w.len()),
            ));
        }
        self.ranges(x)
    }
}

/// The chunks of a batch of `b` images with at most `most` per call: `ceil(b / most)`
/// consecutive ranges, one more when that count is odd and every chunk keeps at least
/// [`MIN_CHUNK`] images (two workers then get the same share: 100 images in chunks of 8 are
/// 14 calls of 7, not 13 of 7 or 8 with one worker idle at the end), of sizes that differ by
/// at most one. The plan depends on `b` and `most` alone, never on the thread count, so
/// results are the same bits on any number of threads.
fn chunk_ranges(b: usize, most: usize) -> Vec<Range<usize>> {
    let n = b.div_ceil(most.max(1)).max(1);
    let n = if n % 2 == 1 && b >= (n + 1) * MIN_CHUNK {
        n + 1
    } else {
        n
    };
    ranges_of(b, n)
}

/// `b` items in `ceil(b / most)` consecutive ranges whose sizes differ by at most one.
#[cfg(test)]
fn even_ranges(b: usize, most: usize) -> Vec<Range<usize>> {
    ranges_of(b, b.div_ceil(most.max(1)).max(1))
}

/// `b` items in `n` consecutive ranges whose sizes differ by at most one.
fn ranges_of(b: usize, n: usize) -> Vec<Range<usize>> {
    let (base, extra) = (b / n, b % n);
    let mut start = 0;
    (0..n)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

type Chunk<'a> = (
    ArrayView4<'a, f32>,
    ArrayView1<'a, i64>,
    Option<ArrayView1<'a, f32>>,
);

fn split<'a>(
    x: &ArrayView4<'a, f32>,
    y: &ArrayView1<'a, i64>,
    w: Option<&ArrayView1<'a, f32>>,
    r: Range<usize>,
) -> Chunk<'a> {
    (
        x.slice_move(s![r.clone(), .., .., ..]),
        y.slice_move(s![r.clone()]),
        w.map(|w| w.slice_move(s![r])),
    )
}

#[cfg(test)]
mod tests {
    use super::{chunk_ranges, even_ranges};

    #[test]
    fn batches_split_into_an_even_number_of_near_equal_chunks() {
        assert_eq!(chunk_ranges(100, 8).len(), 14);
        assert!(chunk_ranges(100, 8)
            .iter()
            .all(|r| (7..=8).contains(&r.len())));
        assert_eq!(chunk_ranges(256, 8).len(), 32);
        assert_eq!(chunk_ranges(10, 8), vec![0..5, 5..10]);
        assert_eq!(chunk_ranges(8, 8), vec![0..4, 4..8]);
        assert_eq!(chunk_ranges(7, 8), vec![0..7]);
        assert_eq!(chunk_ranges(1, 8), vec![0..1]);
        // Three chunks of 3 cannot become four of at least 4.
        assert_eq!(chunk_ranges(9, 3).len(), 3);
        for b in 1..300 {
            let r = chunk_ranges(b, 8);
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, b);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert!(
                r.iter().all(|c| !c.is_empty() && c.len() <= 8),
                "{b}: {r:?}"
            );
        }
    }

    #[test]
    fn batches_split_into_near_equal_chunks() {
        assert_eq!(even_ranges(100, 32), vec![0..25, 25..50, 50..75, 75..100]);
        assert_eq!(even_ranges(256, 32).len(), 8);
        assert_eq!(even_ranges(33, 32), vec![0..17, 17..33]);
        assert_eq!(even_ranges(10, 32), vec![0..10]);
        assert_eq!(even_ranges(10, 3), vec![0..3, 3..6, 6..8, 8..10]);
    }
}
