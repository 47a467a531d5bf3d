//! A module file written outside the repository (not a bundled model) is exported by the
//! Python exporter, loads in Rust, and passes the same role checks as the bundled models.
//! Needs the exporter's Python environment (`scripts/setup --dev`, which the test script runs).

use std::path::PathBuf;
use std::process::Command;

use crate::common::role_checks::{check_all, Kind};

const MODULE: &str = r#"
import torch.nn as nn

class MyNet(nn.Module):
    """Strided conv, group norm, tanh, average pooling, ELU: no ReLU, so no kinks."""

    def __init__(self, classes=5, width=6):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(2, width, 3, stride=2, padding=1),
            nn.GroupNorm(3, width),
            nn.Tanh(),
            nn.AvgPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(width * 3 * 3, 16)
        self.act = nn.ELU()
        self.classifier = nn.Linear(16, classes)

    def forward(self, x):
        return self.classifier(self.act(self.fc(self.body(x))))
"#;

fn exporter_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import ddlens_exporter"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    ok.then_some(python)
}

#[test]
fn user_module_exports_loads_and_passes_the_role_checks() {
    let Some(python) = exporter_python() else {
        // CI always has it (scripts/test runs `scripts/setup --dev` first); say so loudly when not.
        eprintln!("SKIPPED: .venv with ddlens_exporter missing; run scripts/setup --dev");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the exporter environment"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let module = tmp.path().join("my_net.py");
    std::fs::write(&module, MODULE).unwrap();
    let out = tmp.path().join("mynet");
    let status = Command::new(&python)
        .args(["-m", "ddlens_exporter", "export", "--module"])
        .arg(&module)
        .args(["--class", "MyNet", "--kwargs", r#"{"classes": 5}"#])
        .args([
            "--input-shape",
            "2,12,12",
            "--num-classes",
            "5",
            "--normalization",
            "none",
        ])
        .args(["--name", "user-mynet", "--out"])
        .arg(&out)
        .status()
        .expect("runs the exporter");
    assert!(
        status.success(),
        "the exporter failed on {}",
        module.display()
    );
    let b = ddlens::Bundle::open(&out).expect("the exported bundle loads");
    assert_eq!(b.name(), "user-mynet");
    assert_eq!(b.manifest().input_shape, [2, 12, 12]);
    assert_eq!(b.manifest().feature_dim, 16);
    assert_eq!(b.roles(), ddlens::Role::ALL.to_vec());
    check_all(&b, Kind::Smooth);
}
