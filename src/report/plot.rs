//! PNG figures of the analyses: line charts (curves, densities), annotated heat maps and
//! grouped bar charts. Drawing is plotters into an RGB buffer; encoding is the `png` crate and
//! the write is atomic. Text uses the bundled DejaVu Sans (assets/fonts), so figures look the
//! same on every machine and need no system fonts.

use std::path::Path;

use ndarray::Array3;
use once_cell::sync::Lazy;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use serde::Serialize;

use super::grid::encode_png;
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Figure size in pixels (width, height) of every chart unless the chart says otherwise.
pub const FIGURE_SIZE: (u32, u32) = (960, 600);

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

static FONT_REGISTERED: Lazy<bool> = Lazy::new(|| {
    register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
        && register_font("sans-serif", FontStyle::Bold, FONT).is_ok()
});

/// One named curve: `(x, y)` points in drawing order.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points, drawn joined in this order.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// Curves on shared axes (accuracy curves, densities, EMA-smoothed traces...).
#[derive(Debug, Clone, Serialize)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Logarithmic x axis (x values must be positive; non-positive points are dropped).
    pub log_x: bool,
    /// Draw a marker at every point (for short curves such as k = 0, 2, 10, 50, 250).
    pub markers: bool,
    /// Logarithmic y axis (densities whose tails matter; non-positive points are dropped).
    pub log_y: bool,
    /// The x values are integers (training steps): tick labels only at whole numbers.
    pub integer_x: bool,
}

/// A matrix of values with row and column labels, each cell annotated with its value.
#[derive(Debug, Clone, Serialize)]
pub struct Heatmap {
    /// Title above the plot.
    pub title: String,
    /// One label per row (drawn top to bottom).
    pub rows: Vec<String>,
    /// One label per column.
    pub cols: Vec<String>,
    /// `values[row][col]`; NaN cells are drawn grey.
    pub values: Vec<Vec<f64>>,
    /// What the colour encodes (shown under the title).
    pub value_label: String,
}

/// Bars grouped by category, one colour per group (e.g. categories = architectures, groups =
/// distilled sets).
#[derive(Debug, Clone, Serialize)]
pub struct BarChart {
    /// Title above the plot.
    pub title: String,
    /// Y-axis label.
    pub y_label: String,
    /// Category labels along the x axis.
    pub categories: Vec<String>,
    /// `(group name, one value per category)`.
    pub groups: Vec<(String, Vec<f64>)>,
}

/// Effects with their 95% intervals, one row per set (a forest plot), beside a line at "no
/// effect": what a verdict rests on, at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct EffectChart {
    /// Title above the plot.
    pub title: String,
    /// X-axis label (the effect and its unit).
    pub x_label: String,
    /// The value of "no effect", drawn as a vertical line (`None`: no line).
    pub null: Option<f64>,
    /// One row per set, drawn top to bottom.
    pub rows: Vec<EffectRow>,
}

/// One set's effect in an [`EffectChart`].
#[derive(Debug, Clone, Serialize)]
pub struct EffectRow {
    /// Row label.
    pub name: String,
    /// The estimate (NaN: nothing drawn).
    pub estimate: f64,
    /// Lower end of the 95% interval (NaN: the point alone).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// A random real reference: drawn grey.
    pub reference: bool,
}

/// The PNG bytes of an [`EffectChart`] (960 pixels wide, 70 per row plus the axes).
pub fn effect_chart_png(chart: &EffectChart) -> Result<Vec<u8>> {
    let height = 150 + 70 * chart.rows.len().max(1) as u32;
    render_png((FIGURE_SIZE.0, height), |root| draw_effects(root, chart))
}

/// The colour of the `i`-th series, shared by every chart so a set keeps its colour.
pub fn series_color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Draws `chart` to a PNG file at `path`.
pub fn write_line_chart(path: &Path, chart: &LineChart) -> Result<()> {
    render(path, FIGURE_SIZE, |root| draw_lines(root, chart))
}

/// Draws `map` to a PNG file at `path`.
pub fn write_heatmap(path: &Path, map: &Heatmap) -> Result<()> {
    if map.values.len() != map.rows.len() || map.values.iter().any(|r| r.len() != map.cols.len()) {
        return Err(Error::invalid(
            "heatmap",
            format!(
                "{} row labels and {} column labels do not match the {}-row value matrix",
                map.rows.len(),
                map.cols.len(),
                map.values.len()
            ),
        ));
    }
    let w = (200 + 110 * map.cols.len() as u32).max(600);
    let h = (140 + 44 * map.rows.len() as u32).max(300);
    render(path, (w, h), |root| draw_heatmap(root, map))
}

/// Draws `chart` to a PNG file at `path`.
pub fn write_bar_chart(path: &Path, chart: &BarChart) -> Result<()> {
    if chart
        .groups
        .iter()
        .any(|(_, v)| v.len() != chart.categories.len())
    {
        return Err(Error::invalid(
            "bar chart",
            "every group needs one value per category",
        ));
    }
    render(path, FIGURE_SIZE, |root| draw_bars(root, chart))
}

type Root<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error + 'static>>;

fn render(path: &Path, size: (u32, u32), draw: impl FnOnce(&Root<'_>) -> DrawResult) -> Result<()> {
    let bytes = render_png(size, draw)
        .map_err(|e| Error::invalid("figure", format!("{}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Draws onto a white `w × h` canvas and encodes it as PNG.
fn render_png((w, h): (u32, u32), draw: impl FnOnce(&Root<'_>) -> DrawResult) -> Result<Vec<u8>> {
    if !*FONT_REGISTERED {
        return Err(Error::invalid(
            "font",
            "the bundled DejaVu Sans could not be loaded",
        ));
    }
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root).map_err(|e| Error::invalid("figure", e.to_string()))?;
        root.present()
            .map_err(|e| Error::invalid("figure", e.to_string()))?;
    }
    let pic = Array3::from_shape_vec((h as usize, w as usize, 3), buf)
        .map_err(|e| Error::invalid("figure", e.to_string()))?;
    encode_png(&pic)
}

/// Axis range covering `values` with a 5% margin (a unit range around a single value).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Width of the legend panel to the right of a line chart: the legend never covers data.
const LEGEND_WIDTH: u32 = 250;

fn draw_lines(root: &Root<'_>, chart: &LineChart) -> DrawResult {
    root.fill(&WHITE)?;
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w.saturating_sub(LEGEND_WIDTH));
    let keep = |&(x, y): &(f64, f64)| {
        x.is_finite() && y.is_finite() && (!chart.log_x || x > 0.0) && (!chart.log_y || y > 0.0)
    };
    let points: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| s.points.iter().copied().filter(|p| keep(p)).collect())
        .collect();
    let all = || points.iter().flatten();
    let log_range = |values: Vec<f64>, default: (f64, f64)| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() {
            (lo / 1.3, hi * 1.3)
        } else {
            default
        }
    };
    let (x0, x1) = if chart.log_x {
        log_range(all().map(|p| p.0).collect(), (1.0, 10.0))
    } else {
        padded_range(all().map(|p| p.0))
    };
    let (y0, y1) = if chart.log_y {
        log_range(all().map(|p| p.1).collect(), (1e-3, 1.0))
    } else {
        padded_range(all().map(|p| p.1))
    };
    let mut builder = ChartBuilder::on(&plot);
    builder
        .caption(&chart.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72);
    let integer = chart.integer_x;
    let x_fmt = move |v: &f64| {
        if integer {
            if (v - v.round()).abs() < 1e-6 {
                format!("{}", v.round() as i64)
            } else {
                String::new()
            }
        } else {
            short_number(*v)
        }
    };
    macro_rules! draw_on {
        ($ctx:expr) => {{
            let mut ctx = $ctx;
            ctx.configure_mesh()
                .x_label_formatter(&x_fmt)
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .label_style(("sans-serif", 16))
                .draw()?;
            for (i, pts) in points.iter().enumerate() {
                draw_series_on(&mut ctx, i, pts.clone(), chart.markers)?;
            }
        }};
    }
    match (chart.log_x, chart.log_y) {
        (false, false) => draw_on!(builder.build_cartesian_2d(x0..x1, y0..y1)?),
        (true, false) => draw_on!(builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?),
        (false, true) => draw_on!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?),
        (true, true) => {
            draw_on!(builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?)
        }
    }
    draw_legend(&legend, chart)
}

/// The legend in its own panel: one coloured line and name per series, long names cut.
fn draw_legend(area: &Root<'_>, chart: &LineChart) -> DrawResult {
    let top = 70;
    for (i, s) in chart.series.iter().enumerate() {
        let y = top + 26 * i as i32;
        let color = series_color(i);
        area.draw(&PathElement::new(
            vec![(8, y), (34, y)],
            color.stroke_width(3),
        ))?;
        if chart.markers {
            area.draw(&Circle::new((21, y), 4, color.filled()))?;
        }
        let name: String = if s.name.chars().count() > 28 {
            s.name
                .chars()
                .take(27)
                .chain(std::iter::once('…'))
                .collect()
        } else {
            s.name.clone()
        };
        area.draw(&Text::new(name, (42, y - 9), ("sans-serif", 16)))?;
    }
    Ok(())
}

fn draw_series_on<'a, X, Y>(
    ctx: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    i: usize,
    pts: Vec<(f64, f64)>,
    markers: bool,
) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let color = series_color(i);
    ctx.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
    if markers {
        ctx.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    Ok(())
}

/// A tick label without trailing zeros: `10`, `2.5`, `0.05`.
fn short_number(v: f64) -> String {
    let text = if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Blue (low) to white to red (high) diverging colour for `t` in [0, 1].
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f64, b: f64, u: f64| (a + (b - a) * u).round() as u8;
    if t < 0.5 {
        let u = t / 0.5;
        RGBColor(
            lerp(59.0, 247.0, u),
            lerp(76.0, 247.0, u),
            lerp(192.0, 247.0, u),
        )
    } else {
        let u = (t - 0.5) / 0.5;
        RGBColor(
            lerp(247.0, 180.0, u),
            lerp(247.0, 4.0, u),
            lerp(247.0, 38.0, u),
        )
    }
}

fn draw_heatmap(root: &Root<'_>, map: &Heatmap) -> DrawResult {
    root.fill(&WHITE)?;
    let (rows, cols) = (map.rows.len(), map.cols.len());
    let finite = map
        .values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite());
    let max_abs = finite.fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let caption = format!("{} ({})", map.title, map.value_label);
    let mut ctx = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(180)
        .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)?;
    let row_labels = map.rows.clone();
    let col_labels = map.cols.clone();
    ctx.configure_mesh()
        .disable_mesh()
        .x_labels(cols * 2 + 1)
        .y_labels(rows * 2 + 1)
        .x_label_formatter(&|x| label_at(&col_labels, *x))
        .y_label_formatter(&|y| label_at_rev(&row_labels, *y))
        .label_style(("sans-serif", 15))
        .draw()?;
    for (r, row) in map.values.iter().enumerate() {
        let y = (rows - 1 - r) as f64;
        for (c, &v) in row.iter().enumerate() {
            let x = c as f64;
            let fill = if v.is_finite() {
                diverging(0.5 + 0.5 * v / max_abs)
            } else {
                RGBColor(200, 200, 200)
            };
            ctx.draw_series(std::iter::once(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                fill.filled(),
            )))?;
            let text = if v.is_finite() {
                format_cell(v)
            } else {
                "n/a".into()
            };
            ctx.draw_series(std::iter::once(Text::new(
                text,
                (x + 0.5, y + 0.5),
                ("sans-serif", 16).into_font().color(&BLACK).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            )))?;
        }
    }
    Ok(())
}

fn format_cell(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The label of the cell whose centre is at `x` (labels sit at half-integers).
fn label_at(labels: &[String], x: f64) -> String {
    let k = x - 0.5;
    if (k - k.round()).abs() < 1e-6 && k >= -1e-6 {
        labels.get(k.round() as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

fn label_at_rev(labels: &[String], y: f64) -> String {
    let k = y - 0.5;
    if (k - k.round()).abs() < 1e-6 && k >= -1e-6 {
        let r = k.round() as usize;
        labels
            .len()
            .checked_sub(1 + r)
            .and_then(|i| labels.get(i))
            .cloned()
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn draw_bars(root: &Root<'_>, chart: &BarChart) -> DrawResult {
    root.fill(&WHITE)?;
    let n_cat = chart.categories.len().max(1);
    let n_grp = chart.groups.len().max(1);
    let values = chart.groups.iter().flat_map(|(_, v)| v.iter().copied());
    let (lo, hi) = padded_range(values.chain(std::iter::once(0.0)));
    // Headroom for the legend (upper right), so that it never covers the last bars.
    let hi = if hi > 0.0 {
        hi + (hi - lo.min(0.0)) * 0.1 * n_grp as f64
    } else {
        hi
    };
    let cats = chart.categories.clone();
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..n_cat as f64, lo.min(0.0)..hi)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(n_cat * 2 + 1)
        .x_label_formatter(&|x| label_at(&cats, *x))
        .y_desc(&chart.y_label)
        .label_style(("sans-serif", 16))
        .draw()?;
    let width = 0.8 / n_grp as f64;
    for (g, (name, vals)) in chart.groups.iter().enumerate() {
        let color = series_color(g);
        ctx.draw_series(
            vals.iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(c, &v)| {
                    let x0 = c as f64 + 0.1 + g as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled())
                }),
        )?
        .label(name.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

fn draw_effects(root: &Root<'_>, chart: &EffectChart) -> DrawResult {
    root.fill(&WHITE)?;
    let n = chart.rows.len().max(1);
    let ends = chart
        .rows
        .iter()
        .flat_map(|r| [r.estimate, r.lo, r.hi])
        .chain(chart.null);
    let (x0, x1) = padded_range(ends);
    let names: Vec<String> = chart.rows.iter().map(|r| r.name.clone()).collect();
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(230)
        .build_cartesian_2d(x0..x1, 0.0..n as f64)?;
    ctx.configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| label_at_rev(&names, *y))
        .x_label_formatter(&|x| short_number(*x))
        .x_desc(&chart.x_label)
        .label_style(("sans-serif", 16))
        .draw()?;
    if let Some(null) = chart.null {
        let grey = BLACK.mix(0.5).stroke_width(2);
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(null, 0.0), (null, n as f64)],
            grey,
        )))?;
    }
    for (i, r) in chart.rows.iter().enumerate() {
        if !r.estimate.is_finite() {
            continue;
        }
        let y = (n - 1 - i) as f64 + 0.5;
        let color = if r.reference {
            RGBColor(127, 127, 127)
        } else {
            series_color(i)
        };
        if r.lo.is_finite() && r.hi.is_finite() {
            let cap = 0.15;
            let style = color.stroke_width(3);
            ctx.draw_series([
                PathElement::new(vec![(r.lo, y), (r.hi, y)], style),
                PathElement::new(vec![(r.lo, y - cap), (r.lo, y + cap)], style),
                PathElement::new(vec![(r.hi, y - cap), (r.hi, y + cap)], style),
            ])?;
        }
        ctx.draw_series(std::iter::once(Circle::new(
            (r.estimate, y),
            7,
            color.filled(),
        )))?;
    }
    Ok(())
}

/// Text around a picture (an image grid): a title, labels left of given pixel rows and above
/// given pixel columns of the picture.
#[derive(Debug, Clone, Default)]
pub struct PictureLabels {
    /// Title above everything.
    pub title: String,
    /// `(y, text)`: text centred on picture row `y`, left of the picture.
    pub rows: Vec<(usize, String)>,
    /// `(x, text)`: text starting at picture column `x`, above the picture.
    pub cols: Vec<(usize, String)>,
}

/// Width of the row-label margin and height of the title and column-label band, in pixels.
const LABEL_MARGIN: (u32, u32) = (130, 56);

/// The PNG of `pic` (grey or RGB) on a white canvas with `labels` drawn around it.
pub fn labelled_png(pic: &super::grid::Picture, labels: &PictureLabels) -> Result<Vec<u8>> {
    if !*FONT_REGISTERED {
        return Err(Error::invalid(
            "font",
            "the bundled DejaVu Sans could not be loaded",
        ));
    }
    let (ph, pw, c) = pic.dim();
    let (left, top) = LABEL_MARGIN;
    let title_w = 9 * labels.title.chars().count() as u32 + 16;
    let (w, h) = ((pw as u32 + left + 8).max(title_w), ph as u32 + top + 8);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    for y in 0..ph {
        for x in 0..pw {
            let at = (((y as u32 + top) * w + x as u32 + left) * 3) as usize;
            for k in 0..3 {
                buf[at + k] = pic[[y, x, if c == 1 { 0 } else { k }]];
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let draw = || -> DrawResult {
            root.draw(&Text::new(
                labels.title.clone(),
                (8, 6),
                ("sans-serif", 18).into_font().style(FontStyle::Bold),
            ))?;
            for (y, text) in &labels.rows {
                root.draw(&Text::new(
                    text.clone(),
                    (6, (*y as u32 + top) as i32 - 8),
                    ("sans-serif", 14),
                ))?;
            }
            for (x, text) in &labels.cols {
                root.draw(&Text::new(
                    text.clone(),
                    ((*x as u32 + left) as i32, top as i32 - 20),
                    ("sans-serif", 14),
                ))?;
            }
            Ok(())
        };
        draw().map_err(|e| Error::invalid("figure", format!("labels: {e}")))?;
        root.present()
            .map_err(|e| Error::invalid("figure", format!("labels: {e}")))?;
    }
    let out = Array3::from_shape_vec((h as usize, w as usize, 3), buf)
        .map_err(|e| Error::invalid("figure", e.to_string()))?;
    encode_png(&out)
}
