//! What the benches share to run their PyTorch side: the interpreter and the device.

use ddlens::runtime::ProviderChoice;

/// The project's `.venv/bin/python` (`scripts/setup --dev`), else `python3` from the path.
pub fn python() -> String {
    let venv = format!("{}/.venv/bin/python", env!("CARGO_MANIFEST_DIR"));
    if std::path::Path::new(&venv).exists() {
        venv
    } else {
        "python3".into()
    }
}

/// The PyTorch device that matches the provider.
pub fn device(p: ProviderChoice) -> &'static str {
    match p {
        ProviderChoice::Cuda => "cuda",
        _ => "cpu",
    }
}
