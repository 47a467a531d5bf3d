//! Figures: every chart kind renders a PNG of the documented size with ink on it (axes, curves,
//! text from the bundled font), and bad shapes are clear errors.

use ddlens::report::plot::{
    effect_chart_png, write_bar_chart, write_heatmap, write_line_chart, BarChart, EffectChart,
    EffectRow, Heatmap, LineChart, Series, FIGURE_SIZE,
};

/// Decodes a PNG and returns (width, height, fraction of non-white pixels, distinct colours).
fn inspect(path: &std::path::Path) -> (u32, u32, f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / px.len() as f64;
    let mut colours: Vec<[u8; 3]> = px.clone();
    colours.sort();
    colours.dedup();
    (info.width, info.height, ink, colours.len())
}

#[test]
fn line_chart_draws_curves_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lines.png");
    let chart = LineChart {
        title: "Accuracy vs real images per class".into(),
        x_label: "k".into(),
        y_label: "accuracy".into(),
        series: vec![
            Series::new(
                "dm",
                vec![(1.0, 0.8), (2.0, 0.78), (10.0, 0.75), (250.0, 0.86)],
            ),
            Series::new(
                "random",
                vec![(1.0, 0.7), (2.0, 0.72), (10.0, 0.77), (250.0, 0.86)],
            ),
        ],
        log_x: true,
        markers: true,
        log_y: false,
        integer_x: false,
    };
    write_line_chart(&path, &chart).unwrap();
    let (w, h, ink, colours) = inspect(&path);
    assert_eq!((w, h), FIGURE_SIZE);
    assert!(ink > 0.01 && ink < 0.5, "ink fraction {ink}");
    // Anti-aliased text and two series colours give many distinct colours.
    assert!(
        colours > 20,
        "only {colours} colours: text or curves missing"
    );
}

#[test]
fn heatmap_and_bars_render_and_check_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let map = Heatmap {
        title: "Accuracy drop".into(),
        rows: vec!["dm".into(), "random".into()],
        cols: vec!["lr 0.1".into(), "adam".into(), "mlp".into()],
        values: vec![vec![-0.1, 0.02, f64::NAN], vec![0.0, -0.3, 0.05]],
        value_label: "points".into(),
    };
    let p = dir.path().join("heat.png");
    write_heatmap(&p, &map).unwrap();
    assert!(inspect(&p).2 > 0.05);
    let bad = Heatmap {
        values: vec![vec![0.0]],
        ..map
    };
    let err = write_heatmap(&dir.path().join("bad.png"), &bad).unwrap_err();
    assert!(err.to_string().contains("heatmap"), "{err}");

    let bars = BarChart {
        title: "Recognition".into(),
        y_label: "fraction".into(),
        categories: vec!["convnet3".into(), "mlp".into()],
        groups: vec![
            ("dm".into(), vec![0.5, 0.4]),
            ("mtt".into(), vec![0.9, 0.95]),
        ],
    };
    let p = dir.path().join("bars.png");
    write_bar_chart(&p, &bars).unwrap();
    assert!(inspect(&p).2 > 0.02);
}

#[test]
fn effect_chart_grows_a_row_per_set_and_draws_what_was_measured() {
    let row = |name: &str, estimate: f64, lo: f64, hi: f64, reference: bool| EffectRow {
        name: name.into(),
        estimate,
        lo,
        hi,
        reference,
    };
    let chart = EffectChart {
        title: "Agreement".into(),
        x_label: "effect (95% interval)".into(),
        null: Some(0.0),
        rows: vec![
            row("dm-ipc10", 0.06, 0.048, 0.075, false),
            row("mtt-ipc10", 0.038, f64::NAN, f64::NAN, false),
            row("never measured", f64::NAN, f64::NAN, f64::NAN, false),
            row("random-ipc10", 0.035, 0.021, 0.049, true),
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("effects.png");
    std::fs::write(&p, effect_chart_png(&chart).unwrap()).unwrap();
    let (w, h, ink, colours) = inspect(&p);
    assert_eq!((w, h), (FIGURE_SIZE.0, 150 + 70 * 4));
    assert!(ink > 0.01 && colours > 10, "{ink} {colours}");
    // With no rows the chart still renders (an empty frame).
    let one = EffectChart {
        rows: vec![],
        null: None,
        ..chart
    };
    assert!(effect_chart_png(&one).unwrap().starts_with(b"\x89PNG"));
}
