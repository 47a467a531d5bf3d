//! Fresh initialisations follow the manifest's distributions and are reproducible.

use crate::common;

use ddlens::bundle::Init;

#[test]
fn init_matches_manifest_distributions() {
    let b = common::open("convnet3-1x28x28");
    let p = b.init_params(42);
    for (spec, t) in b.manifest().params.iter().zip(p.tensors()) {
        assert_eq!(t.shape(), spec.shape.as_slice());
        match spec.init {
            Init::Constant { value } => assert!(t.iter().all(|v| *v == value), "{}", spec.name),
            Init::Uniform { low, high } => {
                assert!(
                    t.iter().all(|v| *v >= low && *v < high),
                    "{} outside [{low}, {high})",
                    spec.name
                );
                if t.len() >= 1000 {
                    let n = t.len() as f64;
                    let mean = t.iter().map(|v| *v as f64).sum::<f64>() / n;
                    let var = t.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n;
                    let want = ((high - low) as f64).powi(2) / 12.0;
                    assert!(
                        (var / want - 1.0).abs() < 0.1,
                        "{}: variance {var} vs {want}",
                        spec.name
                    );
                    assert!(mean.abs() < 0.1 * want.sqrt(), "{}: mean {mean}", spec.name);
                }
            }
            Init::Normal { .. } => {}
        }
    }
}

#[test]
fn same_seed_same_params_other_seed_differs() {
    let b = common::open("tiny-1x8x8");
    assert_eq!(b.init_params(7), b.init_params(7));
    assert_ne!(b.init_params(7), b.init_params(8));
}

#[test]
fn flat_round_trip() {
    let b = common::open("tiny-1x8x8");
    let p = b.init_params(3);
    let flat = p.to_flat();
    assert_eq!(flat.len(), b.manifest().num_parameters());
    let q = ddlens::Params::from_flat(&b.manifest().params, &flat).unwrap();
    assert_eq!(p, q);
    assert!(ddlens::Params::from_flat(&b.manifest().params, &flat[1..]).is_err());
}
