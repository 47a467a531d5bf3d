//! ddlens's kernels for the fused ops (src/runtime/kernels) against the ops' own ONNX bodies:
//! the same `grad` and `grad_vjp` graphs run with the kernels (what ddlens does on the CPU)
//! and without them (ONNX Runtime inlines the bodies, as for any other user) give the same
//! outputs.

use ort::session::{Session, SessionInputValue};
use ort::value::{Tensor, TensorElementType, ValueType};

use crate::common::open;

/// Deterministic inputs for every input of `session` at batch `batch`: labels below
/// `classes`, weights near 1, everything else of order 1.
fn inputs(
    session: &Session,
    batch: i64,
    classes: i64,
) -> Vec<(String, SessionInputValue<'static>)> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    session
        .inputs()
        .iter()
        .map(|input| {
            let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
                panic!("{}: not a tensor", input.name())
            };
            let dims: Vec<i64> = shape
                .iter()
                .map(|&d| if d < 0 { batch } else { d })
                .collect();
            let n = dims.iter().product::<i64>() as usize;
            let value: SessionInputValue<'static> = match ty {
                TensorElementType::Int64 => {
                    let v: Vec<i64> = (0..n).map(|_| (next() * classes as f64) as i64).collect();
                    Tensor::from_array((dims, v)).unwrap().into()
                }
                _ => {
                    let weights = input.name() == "w";
                    let v: Vec<f32> = (0..n)
                        .map(|_| if weights { 1.0 } else { (next() - 0.5) as f32 })
                        .collect();
                    Tensor::from_array((dims, v)).unwrap().into()
                }
            };
            (input.name().to_string(), value)
        })
        .collect()
}

fn outputs(
    session: &mut Session,
    inputs: Vec<(String, SessionInputValue<'static>)>,
) -> Vec<Vec<f32>> {
    let out = session.run(inputs).unwrap();
    out.iter()
        .map(|(_, v)| v.try_extract_tensor::<f32>().unwrap().1.to_vec())
        .collect()
}

/// Asserts that the `role` graph of bundle `name` calls each of the fused ops `ops`.
fn calls(name: &str, role: &str, ops: &[&str]) -> std::path::PathBuf {
    let path = open(name).dir().join(format!("{role}.onnx"));
    let bytes = std::fs::read(&path).unwrap();
    for op in ops {
        assert!(
            bytes.windows(op.len()).any(|w| w == op.as_bytes()),
            "{}: no {op} in the graph (re-export the bundle)",
            path.display()
        );
    }
    path
}

fn check(name: &str) {
    // These models put a ReLU after every norm: the ReLU-folded form; every convolution's
    // weight gradient starts from an Im2Col; in grad_vjp each norm's backward and its
    // derivative are fused ops.
    check_role(name, "grad", &["ReluInstanceNormBackward", "Im2Col"]);
    let second_order = [
        "InstanceNormBackward",
        "InstanceNormDoubleBackward",
        "Im2Col",
    ];
    check_role(name, "grad_vjp", &second_order);
}

fn check_role(name: &str, role: &str, ops: &[&str]) {
    let bundle = open(name);
    let path = calls(name, role, ops);
    let rt = ddlens::runtime::get().unwrap();
    let mut fused = rt.load_graph(&path, 1).unwrap();
    let mut plain = rt.load_graph_without_kernels(&path, 1).unwrap();
    let classes = bundle.manifest().num_classes as i64;
    let feeds = inputs(&fused, 5, classes);
    let a = outputs(&mut fused, feeds);
    let feeds = inputs(&plain, 5, classes);
    let b = outputs(&mut plain, feeds);
    assert_eq!(a.len(), b.len());
    let largest = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let overall = b.iter().map(|v| largest(v)).fold(0f32, f32::max);
    for (k, (a, b)) in a.iter().zip(&b).enumerate() {
        // Relative to the output's largest value, with a floor relative to the largest value
        // of all outputs for outputs that are zero up to round-off (the gradient of a
        // convolution bias in front of an instance norm).
        let scale = largest(b);
        let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            worst <= 1e-4 * scale + 1e-5 * overall,
            "{name} {role}: output {k} differs by {worst} (largest value {scale}, of all \
             outputs {overall})"
        );
    }
}

#[test]
fn tiny() {
    check("tiny-1x8x8");
}

#[test]
fn convnettiny() {
    check("convnettiny-1x28x28");
}

#[test]
fn convnet3() {
    check("convnet3-1x28x28");
}
