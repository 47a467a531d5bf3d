//! `ai.ddlens::Im2Col`: the im2col matrix of a 2-D convolution's input, the operand of the
//! weight gradient's GEMM (`gw = g · colsᵀ`, exporter/ddlens_exporter/decompositions.py).
//!
//! Input `x` [N, C, H, W]; attributes `kernel_shape` [kh, kw], `strides`, `dilations` (2
//! each) and `pads` [top, left, bottom, right], as ONNX's Conv. Output [C·K, N·Ho·Wo] with
//! `K = kh·kw`: row `c·K + (a·kw + b)`, column `n·Ho·Wo + i·Wo + j` holds
//! `x[n, c, i·sh + a·dh − top, j·sw + b·dw − left]`, zero outside the input. In standard ONNX
//! this was a Pad, K Slices and a Concat (K + 2 passes over memory); here it is one pass that
//! copies row segments. (The ONNX function's body in fused.py computes the same with a Conv of
//! one-hot kernels.)

use ort::operator::{
    BoxedKernel, ComputeContext, KernelContext, Operator, OperatorInput, OperatorOutput,
};
use ort::value::TensorElementType;

use super::{guarded, input, output};

/// The operator for ONNX Runtime.
pub(super) struct Im2Col;

const NAME: &str = "Im2Col";

impl Operator for Im2Col {
    type Kernel<'attr> = BoxedKernel<'attr>;

    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        [OperatorInput::required(TensorElementType::Float32)]
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    fn create_kernel<'attr>(&self, ctx: &KernelContext<'attr>) -> ort::Result<Self::Kernel<'attr>> {
        let geometry = Geometry::from_attributes(ctx)?;
        Ok(Box::new(move |ctx: &ComputeContext| {
            guarded(NAME, || compute(ctx, &geometry))
        }))
    }
}

/// The convolution's geometry, from the node's attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Geometry {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before each spatial axis (top, left) and after it (bottom, right).
    pub pad_before: [usize; 2],
    pub pad_after: [usize; 2],
}

impl Geometry {
    fn from_attributes(ctx: &KernelContext) -> ort::Result<Self> {
        let ints = |name: &str, len: usize, positive: bool| -> ort::Result<Vec<usize>> {
            let v: Vec<i64> = ctx
                .get(name)
                .ok_or_else(|| ort::Error::new(format!("{NAME}: attribute {name} is missing")))?;
            let ok = v.len() == len && v.iter().all(|&x| if positive { x > 0 } else { x >= 0 });
            if !ok {
                return Err(ort::Error::new(format!(
                    "{NAME}: attribute {name} is {v:?}, expected {len} {} integers",
                    if positive { "positive" } else { "non-negative" }
                )));
            }
            Ok(v.into_iter().map(|x| x as usize).collect())
        };
        let (k, s, d, p) = (
            ints("kernel_shape", 2, true)?,
            ints("strides", 2, true)?,
            ints("dilations", 2, true)?,
            ints("pads", 4, false)?,
        );
        Ok(Geometry {
            kernel: [k[0], k[1]],
            stride: [s[0], s[1]],
            dilation: [d[0], d[1]],
            pad_before: [p[0], p[1]],
            pad_after: [p[2], p[3]],
        })
    }

    /// The output size along spatial axis `axis` for an input of size `size` (0 when the
    /// kernel does not fit).
    pub fn out_size(&self, axis: usize, size: usize) -> usize {
        let padded = size + self.pad_before[axis] + self.pad_after[axis];
        let span = self.dilation[axis] * (self.kernel[axis] - 1) + 1;
        if padded < span {
            0
        } else {
            (padded - span) / self.stride[axis] + 1
        }
    }
}

fn compute(ctx: &ComputeContext, g: &Geometry) -> ort::Result<()> {
    let x_v = input(ctx, NAME, 0)?;
    let (shape, x) = x_v.try_extract_tensor::<f32>()?;
    let dims: Vec<usize> = match shape[..] {
        [n, c, h, w] if n >= 0 && c >= 0 && h >= 0 && w >= 0 => {
            vec![n as usize, c as usize, h as usize, w as usize]
        }
        _ => {
            return Err(ort::Error::new(format!(
                "{NAME}: x has shape {:?}, expected [N, C, H, W]",
                shape.to_vec()
            )))
        }
    };
    let (n, c) = (dims[0], dims[1]);
    let positions = g.out_size(0, dims[2]) * g.out_size(1, dims[3]);
    let rows = c * g.kernel[0] * g.kernel[1];
    let mut out_v = output(ctx, NAME, 0, vec![rows as i64, (n * positions) as i64])?;
    let (_, out) = out_v.try_extract_tensor_mut::<f32>()?;
    im2col(x, [n, c, dims[2], dims[3]], g, out);
    Ok(())
}

/// Writes the im2col matrix of `x` (shape `dims` = [N, C, H, W]) into `out` (module docs).
pub(super) fn im2col(x: &[f32], dims: [usize; 4], g: &Geometry, out: &mut [f32]) {
    let [n, c, h, w] = dims;
    let (ho, wo) = (g.out_size(0, h), g.out_size(1, w));
    let [kh, kw] = g.kernel;
    if n * ho * wo == 0 {
        return;
    }
    let mut rows = out.chunks_exact_mut(n * ho * wo);
    for ch in 0..c {
        for a in 0..kh {
            for b in 0..kw {
                let Some(row) = rows.next() else { return };
                // Input column of output column j: j·sw + b·dw − left; the j that land inside.
                let shift = (b * g.dilation[1]) as isize - g.pad_before[1] as isize;
                let (j0, j1) = inside(shift, g.stride[1], w, wo);
                for item in 0..n {
                    let plane = &x[(item * c + ch) * h * w..][..h * w];
                    for i in 0..ho {
                        let dst = &mut row[(item * ho + i) * wo..][..wo];
                        let y = (i * g.stride[0] + a * g.dilation[0]) as isize
                            - g.pad_before[0] as isize;
                        if y < 0 || y >= h as isize || j0 >= j1 {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &plane[y as usize * w..][..w];
                        dst[..j0].fill(0.0);
                        dst[j1..].fill(0.0);
                        let start = (j0 as isize * g.stride[1] as isize + shift) as usize;
                        if g.stride[1] == 1 {
                            dst[j0..j1].copy_from_slice(&src[start..start + (j1 - j0)]);
                        } else {
                            for (d, s) in dst[j0..j1]
                                .iter_mut()
                                .zip(src[start..].iter().step_by(g.stride[1]))
                            {
                                *d = *s;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The output columns `j` in `0..wo` whose input column `j·stride + shift` lies in `0..w`, as
/// a range `[j0, j1)` (empty when none does).
fn inside(shift: isize, stride: usize, w: usize, wo: usize) -> (usize, usize) {
    let s = stride as isize;
    // Smallest j with j·s + shift >= 0.
    let j0 = if shift >= 0 { 0 } else { (-shift + s - 1) / s };
    // Smallest j with j·s + shift >= w.
    let j1 = if (w as isize) <= shift {
        0
    } else {
        (w as isize - shift + s - 1) / s
    };
    let (j0, j1) = (j0.min(wo as isize) as usize, j1.min(wo as isize) as usize);
    (j0, j1.max(j0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, element by element.
    fn reference(x: &[f32], dims: [usize; 4], g: &Geometry) -> Vec<f32> {
        let [n, c, h, w] = dims;
        let (ho, wo) = (g.out_size(0, h), g.out_size(1, w));
        let mut out = Vec::new();
        for ch in 0..c {
            for a in 0..g.kernel[0] {
                for b in 0..g.kernel[1] {
                    for item in 0..n {
                        for i in 0..ho {
                            for j in 0..wo {
                                let y = (i * g.stride[0] + a * g.dilation[0]) as isize
                                    - g.pad_before[0] as isize;
                                let z = (j * g.stride[1] + b * g.dilation[1]) as isize
                                    - g.pad_before[1] as isize;
                                let v = if y >= 0 && z >= 0 && y < h as isize && z < w as isize {
                                    x[((item * c + ch) * h + y as usize) * w + z as usize]
                                } else {
                                    0.0
                                };
                                out.push(v);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_for_strides_dilations_and_uneven_padding() {
        let dims = [2, 3, 7, 6];
        let x: Vec<f32> = (0..2 * 3 * 7 * 6).map(|i| i as f32 + 1.0).collect();
        let cases = [
            ([3, 3], [1, 1], [1, 1], [1, 1], [1, 1]),
            ([2, 3], [2, 1], [1, 2], [0, 1], [0, 1]),
            ([3, 2], [1, 3], [2, 1], [2, 0], [1, 3]),
            ([1, 1], [2, 2], [1, 1], [0, 0], [0, 0]),
            ([3, 3], [3, 3], [1, 1], [4, 4], [4, 4]),
        ];
        for (kernel, stride, dilation, pad_before, pad_after) in cases {
            let g = Geometry {
                kernel,
                stride,
                dilation,
                pad_before,
                pad_after,
            };
            let want = reference(&x, dims, &g);
            let mut got = vec![f32::NAN; want.len()];
            im2col(&x, dims, &g, &mut got);
            assert_eq!(got, want, "{g:?}");
        }
    }
}
