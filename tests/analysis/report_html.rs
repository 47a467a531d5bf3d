//! `ddlens report`: the HTML is self-contained (figures embedded, nothing fetched), names every
//! analysis with its key numbers, and renders in headless Chromium with every figure decoded.
//! Chromium comes from `scripts/setup --dev` (Debian's chromium-headless-shell); without it the
//! browser half is skipped locally and fails under CI.

use crate::common;

use std::path::Path;
use std::process::Command;

use ddlens::analysis::{self, no_progress, Budget, NamedSet, RealData, RunInfo};

fn results(dir: &Path) -> usize {
    common::runtime();
    let b = common::open("tiny-1x8x8");
    let train = common::banded_dataset(90, 1);
    let test = common::banded_dataset(30, 2);
    let sets = vec![NamedSet {
        name: "toy <set>".into(),
        data: common::banded_dataset(9, 3),
        lr: None,
    }];
    let real = RealData {
        train: &train,
        test: &test,
    };
    let info = RunInfo {
        model: b.name().into(),
        dataset: "synthetic".into(),
        budget: Budget::Smoke,
        seed: 0,
    };
    let mut figures = 0;
    let c = analysis::config_with::<analysis::pixels::Pixels>(Budget::Smoke, 0, None).unwrap();
    let (_, saved) = analysis::run_and_save::<analysis::pixels::Pixels>(
        &b,
        real,
        &sets,
        &c,
        &info,
        Some(dir),
        &mut no_progress,
    )
    .unwrap();
    figures += saved.unwrap().figures.len();
    let c =
        analysis::config_with::<analysis::curvature::Curvature>(Budget::Smoke, 0, None).unwrap();
    let (_, saved) = analysis::run_and_save::<analysis::curvature::Curvature>(
        &b,
        real,
        &sets,
        &c,
        &info,
        Some(dir),
        &mut no_progress,
    )
    .unwrap();
    figures += saved.unwrap().figures.len();
    // A stray non-result JSON and an extra picture: ignored and shown under "Other figures".
    std::fs::write(dir.join("notes.json"), "{\"hello\": 1}").unwrap();
    std::fs::copy(dir.join("pixels.png"), dir.join("set-extra.png")).unwrap();
    figures + 1
}

fn chromium() -> Option<String> {
    [
        "chromium-headless-shell",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ]
    .into_iter()
    .find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
    .map(String::from)
}

#[test]
fn report_is_self_contained_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let saved = results(dir.path());
    let out = dir.path().join("report.html");
    ddlens::analysis::write_report(dir.path(), &out, "Test <report>").unwrap();
    let html = std::fs::read_to_string(&out).unwrap();
    // Each verdict with a measured effect gets its forest plot: pixels measures the toy set;
    // curvature at the smoke budget stops short of the paper's window (nothing measured).
    let charts = html
        .matches("<figcaption>each set&#39;s effect with its 95% interval")
        .count();
    assert_eq!(charts, 1);
    let figures = saved + charts;
    // Self-contained: no external fetches; titles and tables present, text escaped.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert_eq!(html.matches("data:image/png;base64,").count(), figures);
    assert!(html.contains("<title>Test &lt;report&gt;</title>"));
    assert!(html.contains("toy &lt;set&gt;") && !html.contains("toy <set>"));
    assert!(html.contains("id=\"pixels\"") && html.contains("id=\"curvature\""));
    assert!(html.contains("Pixel statistics") && html.contains("Curvature along training"));
    assert!(html.find("id=\"pixels\"").unwrap() < html.find("id=\"curvature\"").unwrap());
    assert!(html.contains("set-extra.png"));

    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs Chromium for this test: run scripts/setup --dev"
        );
        eprintln!("skipping the browser check: no Chromium (scripts/setup --dev installs it)");
        return;
    };
    let url = format!("file://{}", out.display());
    let dom = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{browser} failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let want = format!("data-figures-ok=\"{figures}\"");
    assert!(
        dom.contains(&want),
        "not every figure decoded in {browser}: want {want}"
    );
    assert!(dom.contains(&format!("data-figures=\"{figures}\"")));

    // A screenshot is not blank: the page really painted.
    let shot = dir.path().join("shot.png");
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,900",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(status.status.success());
    let bytes = std::fs::read(&shot).unwrap();
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = &buf[..info.buffer_size()];
    let distinct: std::collections::BTreeSet<&[u8]> = px.chunks(4).take(2_000_000).collect();
    assert!(
        distinct.len() > 50,
        "screenshot looks blank ({} colours)",
        distinct.len()
    );
}

#[test]
fn empty_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let e = ddlens::analysis::write_report(dir.path(), &out, "x").unwrap_err();
    assert!(e.to_string().contains("no analysis results"), "{e}");
}

/// A result's `figures` are file names of the results folder: a path (which would embed a
/// file from elsewhere on disk) is refused naming the result file and the field, and a
/// figure that is not a regular file (a device, which could be endless) is refused naming it.
#[test]
fn figure_names_that_are_paths_or_devices_are_refused() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/report_results/seed-curvature");
    let mut result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(seed).unwrap()).unwrap();
    for bad in ["../outside.png", "/etc/passwd", "sub/x.png", ".."] {
        let dir = tempfile::tempdir().unwrap();
        result["figures"] = serde_json::json!([bad]);
        let file = dir.path().join("curvature.json");
        std::fs::write(&file, result.to_string()).unwrap();
        let e = ddlens::analysis::write_report(dir.path(), &dir.path().join("r.html"), "x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("curvature.json") && e.contains("`figures`") && e.contains(bad),
            "{bad}: {e}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    result["figures"] = serde_json::json!(["curvature.png"]);
    std::fs::write(dir.path().join("curvature.json"), result.to_string()).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("curvature.png")).unwrap();
    let e = ddlens::analysis::write_report(dir.path(), &dir.path().join("r.html"), "x")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("curvature.png") && e.contains("not a regular file"),
        "{e}"
    );
}
