//! Asking for CUDA on a build of ONNX Runtime without it is an error, never a silent CPU run.
//! (Own test binary: the runtime is process-wide.)

use ddlens::runtime::{self, Provider, ProviderChoice, RuntimeConfig};

#[test]
fn cuda_request_is_honest() {
    let cfg = RuntimeConfig {
        provider: ProviderChoice::Cuda,
        ..Default::default()
    };
    match runtime::init(cfg) {
        Ok(rt) => assert_eq!(rt.provider(), Provider::Cuda, "cuda asked, cuda reported"),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("cuda"), "{msg}");
            assert!(
                !runtime::is_initialized(),
                "a failed init must not leave a runtime behind"
            );
        }
    }
}
