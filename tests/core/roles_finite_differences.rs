//! Every graph role of every bundled model, checked against central finite differences and
//! against the other roles (the checks live in common/role_checks.rs).

macro_rules! bundle_tests {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use crate::common::{open, role_checks::*};
            fn case() -> (ddlens::Bundle, Kind) { (open($name), Kind::of($name)) }
            #[test] fn forward() { let (b, k) = case(); check_forward(&b, k) }
            #[test] fn grad() { let (b, k) = case(); check_grad(&b, k) }
            #[test] fn grad_vjp() { let (b, k) = case(); check_grad_vjp(&b, k) }
            #[test] fn features_vjp() { let (b, k) = case(); check_features_vjp(&b, k) }
            #[test] fn loss_jvp() { let (b, k) = case(); check_loss_jvp(&b, k) }
        }
    )*};
}

bundle_tests! {
    tiny => "tiny-1x8x8",
    tiny_maxpool => "tiny-maxpool-1x8x8",
    mlp => "mlp-1x28x28",
    convnettiny_28 => "convnettiny-1x28x28",
    convnettiny_32 => "convnettiny-3x32x32",
    convnet3_28 => "convnet3-1x28x28",
    convnet3_32 => "convnet3-3x32x32",
}
