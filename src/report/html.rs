//! `ddlens report`: one self-contained HTML file from a folder of analysis results. Figures are
//! embedded as base64 PNGs, styles are inline and nothing is fetched, so the file can be
//! mailed or archived. A few lines of script count the figures that decoded and record it on
//! `<body data-figures-ok>`, which the headless-browser test reads.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::plot::{effect_chart_png, EffectChart, EffectRow};
use super::summary::{Summary, Table};
use crate::error::{Error, Result};
use crate::io::write_atomic;

/// Turns an analysis's saved result into the report's text (given by the analysis layer,
/// which knows every analysis; the report knows none).
pub type Summarize<'a> = &'a dyn Fn(&str, &Value) -> Summary;

/// One analysis result file, read back.
#[derive(Debug, Clone)]
pub struct ResultFile {
    /// The analysis name.
    pub analysis: String,
    /// The JSON file.
    pub path: PathBuf,
    /// The whole envelope.
    pub envelope: Value,
}

/// Reads every `*.json` in `dir` that is a ddlens analysis result (others are ignored), in
/// `order` (unknown analyses follow, by name).
pub fn read_results(dir: &Path, order: &[&str]) -> Result<Vec<ResultFile>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let Ok(envelope) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if envelope.get("format").and_then(Value::as_str) != Some("ddlens-analysis") {
            continue;
        }
        let analysis = envelope
            .get("analysis")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Data {
                origin: path.display().to_string(),
                message: "a ddlens-analysis file without an `analysis` name".into(),
            })?
            .to_string();
        out.push(ResultFile {
            analysis,
            path,
            envelope,
        });
    }
    let rank = |name: &str| order.iter().position(|a| *a == name).unwrap_or(usize::MAX);
    out.sort_by(|a, b| {
        rank(&a.analysis)
            .cmp(&rank(&b.analysis))
            .then(a.analysis.cmp(&b.analysis))
    });
    Ok(out)
}

/// Builds the HTML of the report for the results in `dir`. Extra PNGs in `dir` that no result
/// names (e.g. the grid of a distilled set) are shown at the end. Analyses appear in `order`;
/// `summarize` gives each one's text.
pub fn render(dir: &Path, title: &str, order: &[&str], summarize: Summarize<'_>) -> Result<String> {
    let results = read_results(dir, order)?;
    if results.is_empty() {
        return Err(Error::invalid(
            "dir",
            format!(
                "{} has no analysis results (*.json written by `ddlens analyze`)",
                dir.display()
            ),
        ));
    }
    let mut html = String::new();
    head(&mut html, title);
    let _ = writeln!(html, "<h1>{}</h1>", esc(title));
    info_line(&mut html, &results[0].envelope);
    budget_banner(&mut html, &results[0].envelope);
    let summaries: Vec<Summary> = results
        .iter()
        .map(|r| summarize(&r.analysis, &r.envelope["result"]))
        .collect();
    overview(&mut html, &results, &summaries);
    let mut used: BTreeSet<PathBuf> = BTreeSet::new();
    let mut figures = 0usize;
    nav(&mut html, &results);
    for (r, summary) in results.iter().zip(&summaries) {
        figures += section(&mut html, dir, r, summary, &mut used)?;
    }
    figures += extra_figures(&mut html, dir, &used)?;
    let _ = writeln!(
        html,
        "<footer>Written by ddlens {} from {} result file(s); {figures} figure(s).</footer>",
        crate::VERSION,
        results.len()
    );
    let _ = writeln!(html, "<script>{SCRIPT}</script></body></html>");
    Ok(html)
}

/// Writes the report for `dir` to `out` (atomically) and returns the number of bytes
/// (`crate::analysis::write_report` gives it the analyses' order and text).
pub fn write_report(
    dir: &Path,
    out: &Path,
    title: &str,
    order: &[&str],
    summarize: Summarize<'_>,
) -> Result<usize> {
    let html = render(dir, title, order, summarize)?;
    write_atomic(out, html.as_bytes())?;
    Ok(html.len())
}

const STYLE: &str = "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;\
max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}\
.info{color:#666}nav a{margin-right:1em}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f5f5f5}\
td:first-child,th:first-child{text-align:left}figure{margin:1em 0}\
figure img{max-width:100%;border:1px solid #eee}figcaption{color:#666;font-size:.9em}\
.finding{background:#f7f9fc;border-left:4px solid #4a78c2;padding:.5em 1em}\
.banner{background:#fff8e5;border-left:4px solid #d9a400;padding:.5em 1em}\
.note{color:#555}.supports{color:#17803d}.contradicts{color:#b42318}\
.inconclusive{color:#777}\
details pre{max-height:30em;overflow:auto;background:#f8f8f8;padding:1em;font-size:.8em}\
footer{margin-top:3em;color:#888;font-size:.85em}";

/// Counts figures that decoded (`naturalWidth > 0`) once everything has loaded.
const SCRIPT: &str = "window.addEventListener('load',function(){var ims=document.querySelectorAll\
('img.figure');var ok=0;ims.forEach(function(i){if(i.complete&&i.naturalWidth>0)ok++;});\
document.body.setAttribute('data-figures-ok',String(ok));\
document.body.setAttribute('data-figures',String(ims.length));});";

fn head(html: &mut String, title: &str) {
    let _ = writeln!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    );
}

fn info_line(html: &mut String, envelope: &Value) {
    let info = &envelope["info"];
    let get = |k: &str| info.get(k).map(value_text).unwrap_or_default();
    let _ = writeln!(
        html,
        "<p class=\"info\">model <b>{}</b> · dataset <b>{}</b> · budget <b>{}</b> · seed {}</p>",
        esc(&get("model")),
        esc(&get("dataset")),
        esc(&get("budget")),
        esc(&get("seed"))
    );
}

fn nav(html: &mut String, results: &[ResultFile]) {
    html.push_str("<nav>");
    for r in results {
        let _ = write!(html, "<a href=\"#{0}\">{0}</a>", esc(&r.analysis));
    }
    html.push_str("</nav>\n");
}

/// What the run's budget can and cannot conclude, above everything else.
fn budget_banner(html: &mut String, envelope: &Value) {
    let budget = envelope["info"]["budget"].as_str().unwrap_or("");
    let text = match budget {
        "smoke" => {
            "Smoke budget: a preview of every analysis in minutes. Its runs are too \
                    few and too short to carry conclusions: every verdict below is a preview, \
                    whatever it says."
        }
        "cpu" => {
            "CPU budget: fewer runs, smaller samples and shorter training than the \
                  paper (docs/analyses.md lists each cut). A verdict is conclusive only where \
                  its 95% interval excludes no effect; claims about steps or ranges the budget \
                  does not reach stay inconclusive."
        }
        "paper" => {
            "Paper budget: the paper's protocol. A verdict is conclusive only where its \
                    95% interval excludes no effect."
        }
        _ => "Unknown budget: read each verdict's interval and n.",
    };
    let _ = writeln!(html, "<p class=\"banner\">{}</p>", esc(text));
}

/// The verdict table: one row per analysis.
fn overview(html: &mut String, results: &[ResultFile], summaries: &[Summary]) {
    html.push_str(
        "<h2>Verdicts</h2><table><tr><th>analysis</th><th>finding</th><th>verdict</th>\
         <th>why</th></tr>",
    );
    for (r, s) in results.iter().zip(summaries) {
        let Some(v) = &s.verdict else { continue };
        let _ = write!(
            html,
            "<tr><td><a href=\"#{0}\">{0}</a></td><td>{1}</td><td class=\"{2}\">{2}</td>\
             <td>{3}</td></tr>",
            esc(&r.analysis),
            esc(&v.finding),
            v.state,
            esc(&v.reason)
        );
    }
    html.push_str("</table>\n");
}

/// One analysis's verdict: the claim, the effect and each set's interval.
fn verdict_box(html: &mut String, v: &crate::verdict::Verdict) -> Result<()> {
    let _ = writeln!(
        html,
        "<div class=\"finding\"><p><b class=\"{0}\">{0}</b>: {1} ({2})</p>\
         <p><b>Claim.</b> {3}</p><p><b>Effect.</b> {4}</p>",
        v.state,
        esc(&v.finding),
        esc(&v.reason),
        esc(&v.claim),
        esc(&v.effect)
    );
    let mut t = Table {
        header: [
            "set",
            "verdict",
            "effect [95% interval] (n)",
            "reason",
            "against the random reference",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for s in &v.sets {
        t.rows.push(vec![
            if s.reference {
                format!("{} (reference, not judged)", s.set)
            } else {
                s.set.clone()
            },
            s.state.to_string(),
            s.effect
                .map_or_else(|| "not measured".into(), |e| e.display(3)),
            s.reason.clone(),
            s.against_text().unwrap_or_else(|| "–".into()),
        ]);
    }
    table(html, &t);
    if v.sets.iter().any(|s| s.effect.is_some()) {
        let png = effect_chart_png(&effect_chart(v))?;
        embed_png(
            html,
            &png,
            "each set's effect with its 95% interval; the line: no effect",
        );
    }
    html.push_str("</div>\n");
    Ok(())
}

/// The verdict's effects as a forest plot (references grey).
fn effect_chart(v: &crate::verdict::Verdict) -> EffectChart {
    let rows = v
        .sets
        .iter()
        .map(|s| {
            let e = s.effect.unwrap_or_else(crate::stats::Interval::unknown);
            EffectRow {
                name: s.label(),
                estimate: e.estimate,
                lo: e.lo,
                hi: e.hi,
                reference: s.reference,
            }
        })
        .collect();
    EffectChart {
        title: v.finding.clone(),
        x_label: "effect (95% interval)".into(),
        null: v.null,
        rows,
    }
}

fn section(
    html: &mut String,
    dir: &Path,
    r: &ResultFile,
    summary: &Summary,
    used: &mut BTreeSet<PathBuf>,
) -> Result<usize> {
    let _ = writeln!(
        html,
        "<section id=\"{0}\"><h2>{1}</h2><p>{2}</p>",
        esc(&r.analysis),
        esc(&summary.title),
        esc(&summary.question)
    );
    if let Some(v) = &summary.verdict {
        verdict_box(html, v)?;
    }
    if let Some(f) = &summary.finding {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", esc(f));
    }
    for t in &summary.tables {
        table(html, t);
    }
    let mut count = 0;
    let names = r.envelope["figures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for name in names.iter().filter_map(Value::as_str) {
        let path = dir.join(figure_name(r, name)?);
        figure(html, &path, name)?;
        used.insert(path);
        count += 1;
    }
    let pretty = serde_json::to_string_pretty(&r.envelope["result"]).unwrap_or_default();
    const LIMIT: usize = 40_000;
    let shown = if pretty.len() > LIMIT {
        let cut = (0..=LIMIT)
            .rev()
            .find(|&i| pretty.is_char_boundary(i))
            .unwrap_or(0);
        format!(
            "{}\n… ({} bytes in {})",
            &pretty[..cut],
            pretty.len(),
            r.path.display()
        )
    } else {
        pretty
    };
    let _ = writeln!(
        html,
        "<details><summary>Raw result ({})</summary><pre>{}</pre></details></section>",
        esc(&r.path.file_name().unwrap_or_default().to_string_lossy()),
        esc(&shown)
    );
    Ok(count)
}

fn table(html: &mut String, t: &Table) {
    html.push_str("<table><tr>");
    for h in &t.header {
        let _ = write!(html, "<th>{}</th>", esc(h));
    }
    html.push_str("</tr>");
    for row in &t.rows {
        html.push_str("<tr>");
        for cell in row {
            let _ = write!(html, "<td>{}</td>", esc(cell));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table>\n");
}

/// The largest figure the report embeds. ddlens's own figures are 50-300 kB.
const MAX_FIGURE_BYTES: u64 = 32 << 20;

/// A result's figure entry as a file of the results folder. ddlens writes plain file names
/// (`mixing.png`); a path (`../x.png`, `/etc/...`, `sub/x.png`) would embed a file from
/// elsewhere on disk, or read a device, so it is refused, naming the result file.
fn figure_name<'a>(r: &ResultFile, name: &'a str) -> Result<&'a str> {
    let plain = Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name)
        && !name.contains(['/', '\\'])
        && name != "..";
    if plain {
        Ok(name)
    } else {
        Err(Error::Data {
            origin: r.path.display().to_string(),
            message: format!(
                "field `figures`: `{name}` is not a file name; figures are files of the \
                 results folder, named without a path"
            ),
        })
    }
}

/// Reads a figure file: a regular file of at most [`MAX_FIGURE_BYTES`], never a device or
/// a pipe (which could block or never end).
fn read_figure(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() > MAX_FIGURE_BYTES {
        return Err(Error::Data {
            origin: path.display().to_string(),
            message: format!(
                "not a figure: {}",
                if meta.is_file() {
                    format!("{} bytes, more than {MAX_FIGURE_BYTES}", meta.len())
                } else {
                    "not a regular file".to_string()
                }
            ),
        });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read as _;
            f.take(MAX_FIGURE_BYTES + 1).read_to_end(&mut bytes)
        })
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

fn figure(html: &mut String, path: &Path, caption: &str) -> Result<()> {
    let bytes = read_figure(path)?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(Error::Data {
            origin: path.display().to_string(),
            message: "not a PNG file".into(),
        });
    }
    embed_png(html, &bytes, caption);
    Ok(())
}

/// A PNG as an inline figure with `caption`.
fn embed_png(html: &mut String, png: &[u8], caption: &str) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(png);
    let _ = writeln!(
        html,
        "<figure><img class=\"figure\" alt=\"{0}\" src=\"data:image/png;base64,{b64}\">\
         <figcaption>{0}</figcaption></figure>",
        esc(caption)
    );
}

fn extra_figures(html: &mut String, dir: &Path, used: &BTreeSet<PathBuf>) -> Result<usize> {
    let mut extra: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("png") && !used.contains(p))
        .collect();
    extra.sort();
    if extra.is_empty() {
        return Ok(0);
    }
    html.push_str("<section id=\"other\"><h2>Other figures</h2>");
    for p in &extra {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        figure(html, p, &name)?;
    }
    html.push_str("</section>\n");
    Ok(extra.len())
}

/// A JSON scalar as plain text (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// HTML-escapes text.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
