//! What the benches share to run their PyTorch side: the interpreter, the device and the
//! default thread count of both sides.

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

/// The cores available: each side's default thread count.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
