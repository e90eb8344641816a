//! report.html: the batch's results drawn, beside report.md and summary.csv. One
//! self-contained file (inline SVG and CSS, a few lines of script for sorting the table; no
//! request leaves the page) that opens from disk in any browser:
//!
//! - the run facts;
//! - per varied parameter, small multiples: every measure against that parameter, one line
//!   per combination of the other varied parameters ([`charts::line_chart`]);
//! - per matrix with exactly two varied axes, a heatmap per measure ([`charts::heatmap`]);
//! - identical outputs and failed jobs (hollow points and red crosses in the charts, with the
//!   error in the hover title), and the results table, each job linked to its viewer.
//!
//! The page is an askama template (`templates/report.html`); this module turns the records
//! into what it shows.

pub mod charts;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use askama::Template;
use wildcards_core::output::write_atomic;

use crate::job::{JobSpec, JobStatus, Origin};
use crate::manifest::varying_params;
use crate::report::{same_output_groups, JobRecord, RunInfo};
use charts::{Cell, Drawn, LinePoint, MarkKind};

/// A number the report draws, per job.
pub struct Measure {
    /// Its column name in summary.csv.
    pub key: &'static str,
    pub label: &'static str,
    /// Decimals shown in the table and hover titles.
    pub decimals: usize,
    get: fn(&JobRecord) -> Option<f64>,
}

impl Measure {
    /// The job's value; `None` for a job without results (failed, not run) or without this
    /// measure (no lint, no baseline).
    pub fn value(&self, r: &JobRecord) -> Option<f64> {
        if !r.outcome.status.is_success() {
            return None;
        }
        (self.get)(r)
    }

    fn text(&self, v: f64) -> String {
        format!("{v:.*}", self.decimals)
    }
}

fn structure(r: &JobRecord) -> Option<&wildcards_core::stats::StructureStats> {
    r.outcome.metrics.as_ref().map(|m| &m.structure)
}

/// Every measure the report can draw, in display order (DESIGN.md "Report").
pub const MEASURES: &[Measure] = &[
    Measure {
        key: "categories",
        label: "categories",
        decimals: 0,
        get: |r| Some(structure(r)?.categories as f64),
    },
    Measure {
        key: "leaf_lists",
        label: "leaf lists",
        decimals: 0,
        get: |r| Some(structure(r)?.leaf_lists as f64),
    },
    Measure {
        key: "items",
        label: "items",
        decimals: 0,
        get: |r| Some(structure(r)?.items as f64),
    },
    Measure {
        key: "max_depth",
        label: "max depth",
        decimals: 0,
        get: |r| Some(structure(r)?.max_depth as f64),
    },
    Measure {
        key: "avg_leaf_size",
        label: "avg leaf size",
        decimals: 2,
        get: |r| Some(structure(r)?.avg_leaf_size),
    },
    Measure {
        key: "outliers",
        label: "outliers",
        decimals: 0,
        get: |r| Some(r.outcome.metrics.as_ref()?.outliers? as f64),
    },
    Measure {
        key: "outlier_rate",
        label: "outlier rate (flagged / items checked)",
        decimals: 4,
        get: outlier_rate,
    },
    Measure {
        key: "duration_s",
        label: "duration (s)",
        decimals: 2,
        get: |r| Some(r.outcome.duration_s),
    },
    Measure {
        key: "jaccard_vs_baseline",
        label: "Jaccard vs baseline",
        decimals: 4,
        get: |r| Some(r.vs_baseline.as_ref()?.jaccard),
    },
    Measure {
        key: "ari_vs_baseline",
        label: "ARI vs baseline",
        decimals: 4,
        get: |r| r.vs_baseline.as_ref()?.ari,
    },
];

/// Share of the checked items the lint flagged (as summary.csv's `outlier_rate`; for stats
/// written before it was recorded, flagged / all items).
fn outlier_rate(r: &JobRecord) -> Option<f64> {
    let m = r.outcome.metrics.as_ref()?;
    if let Some(rate) = m.outlier_rate {
        return Some(rate);
    }
    let items = m.structure.items;
    (items > 0).then(|| m.outliers.map(|o| o as f64 / items as f64)).flatten()
}

/// The measures some job of the batch has (no outlier charts without a lint, no baseline
/// charts without a baseline).
pub fn measures_present(records: &[JobRecord]) -> Vec<&'static Measure> {
    MEASURES.iter().filter(|m| records.iter().any(|r| m.value(r).is_some())).collect()
}

/// Writes `report.html` into the output folder (atomically) and returns its path.
pub fn write_report_html(info: &RunInfo, records: &[JobRecord]) -> Result<PathBuf> {
    let path = info.output_dir.join("report.html");
    write_atomic(&path, report_html(info, records)?.as_bytes())?;
    Ok(path)
}

/// The page.
pub fn report_html(info: &RunInfo, records: &[JobRecord]) -> Result<String> {
    let specs: Vec<JobSpec> = records.iter().map(|r| r.spec.clone()).collect();
    let varying = varying_params(&specs);
    let measures = measures_present(records);
    let sections = chart_order(records, &varying)
        .iter()
        .map(|p| param_section(records, &varying, p, &measures))
        .collect::<Result<Vec<_>>>()?;
    let page = ReportPage {
        title: info.manifest.display().to_string(),
        interrupted: info.interrupted,
        facts: run_facts(info, records),
        baseline_notes: &info.baseline_notes,
        sections,
        heatmaps: heatmap_sections(records, &measures)?,
        table: results_table(info, records, &varying, &measures),
        same: same_output_groups(records),
        failed: records
            .iter()
            .filter(|r| r.outcome.status == JobStatus::Failed)
            .map(|r| (r.spec.name.clone(), r.spec.origin.clone(), error_of(r)))
            .collect(),
    };
    page.render().context("rendering report.html")
}

/// The varied parameters in the order their charts come: the matrices' axes first (the
/// sweep the researcher designed), then the parameters that vary between explicit jobs.
fn chart_order(records: &[JobRecord], varying: &[String]) -> Vec<String> {
    let is_axis = |p: &String| records.iter().any(|r| r.spec.axes.contains_key(p));
    let mut ordered: Vec<String> = varying.iter().filter(|p| is_axis(p)).cloned().collect();
    ordered.extend(varying.iter().filter(|p| !is_axis(p)).cloned());
    ordered
}

fn error_of(r: &JobRecord) -> String {
    r.outcome.error.clone().unwrap_or_else(|| "(no message)".into()).trim_end().to_string()
}

/// The facts of the run, as (label, value) lines.
fn run_facts(info: &RunInfo, records: &[JobRecord]) -> Vec<(String, String)> {
    let count = |s: JobStatus| records.iter().filter(|r| r.outcome.status == s).count();
    let mut facts = vec![
        ("Manifest".to_string(), info.manifest.display().to_string()),
        ("Output folder".into(), info.output_dir.display().to_string()),
        (
            "Jobs".into(),
            format!(
                "{} — {} succeeded, {} resumed, {} failed, {} interrupted, {} not run",
                records.len(),
                count(JobStatus::Succeeded),
                count(JobStatus::Resumed),
                count(JobStatus::Failed),
                count(JobStatus::Interrupted),
                count(JobStatus::NotRun)
            ),
        ),
        ("Workers".into(), info.workers.to_string()),
        ("Wall time".into(), format!("{:.1} s", info.wall_s)),
    ];
    if let Some(server) = &info.server {
        facts.push(("Embedding server".into(), server.clone()));
    }
    let mb = |kb: u64| format!("{:.1}", kb as f64 / 1024.0);
    if !info.worker_peak_rss_kb.is_empty() {
        let each: Vec<String> = info.worker_peak_rss_kb.iter().map(|kb| mb(*kb)).collect();
        facts.push(("Peak memory, workers".into(), format!("{} MB", each.join(", "))));
    }
    if let Some(kb) = info.server_peak_rss_kb {
        facts.push(("Peak memory, embed-server".into(), format!("{} MB", mb(kb))));
    }
    if let Some(lint) = crate::report::outlier_analysis(records) {
        facts.push(("Outlier analysis".into(), lint));
    }
    if let Some(b) = &info.baseline {
        facts.push(("Baseline".into(), format!("{b} (Jaccard of items, ARI of groupings)")));
    }
    facts
}

/// The jobs a chart shows: finished ones, and failed ones (drawn as crosses).
fn charted(r: &JobRecord) -> bool {
    r.outcome.status.is_success() || r.outcome.status == JobStatus::Failed
}

/// The distinct values of `param` over `records`, in order: numerically when they all are
/// numbers, else as text.
pub fn axis_values<'a>(records: impl Iterator<Item = &'a JobRecord>, param: &str) -> Vec<String> {
    let mut values: Vec<String> = Vec::new();
    for r in records {
        let v = shown_value(r, param);
        if !values.contains(&v) {
            values.push(v);
        }
    }
    sort_values(&mut values);
    values
}

fn sort_values(values: &mut [String]) {
    match values.iter().map(|v| v.parse::<f64>()).collect::<Result<Vec<f64>, _>>() {
        Ok(_) => values.sort_by(|a, b| {
            let (a, b) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            a.total_cmp(&b)
        }),
        Err(_) => values.sort(),
    }
}

/// A parameter value as the charts label it (`-` when the job does not set it).
fn shown_value(record: &JobRecord, param: &str) -> String {
    let v = record.param(param);
    if v.is_empty() {
        "-".into()
    } else {
        v
    }
}

/// One chart of the page (a line chart or a heatmap).
pub struct ChartView {
    pub measure: &'static str,
    pub label: &'static str,
    /// The parameter on the x axis (line charts), or the matrix (heatmaps).
    pub param: String,
    pub drawn: Drawn,
}

/// The small multiples of one varied parameter, with the legend of its lines.
pub struct ParamSection {
    pub param: String,
    /// The other varied parameters (the legend's columns).
    pub others: Vec<String>,
    /// Per line: its colour and the other parameters' values.
    pub legend: Vec<(String, Vec<String>)>,
    pub charts: Vec<ChartView>,
}

fn param_section(
    records: &[JobRecord],
    varying: &[String],
    param: &str,
    measures: &[&'static Measure],
) -> Result<ParamSection> {
    let others: Vec<String> = varying.iter().filter(|p| *p != param).cloned().collect();
    let shown: Vec<&JobRecord> = records.iter().filter(|r| charted(r)).collect();
    let xs = axis_values(shown.iter().copied(), param);
    let key = |r: &JobRecord| -> Vec<String> { others.iter().map(|o| shown_value(r, o)).collect() };
    let mut series: Vec<Vec<String>> = Vec::new();
    for r in &shown {
        if !series.contains(&key(r)) {
            series.push(key(r));
        }
    }
    series.sort_by(|a, b| compare_keys(a, b));
    let mut charts = Vec::new();
    for m in measures {
        let points: Vec<LinePoint> = shown
            .iter()
            .filter_map(|r| {
                let x = xs.iter().position(|v| *v == shown_value(r, param))?;
                let s = series.iter().position(|k| *k == key(r))?;
                line_point(r, m, x, s)
            })
            .collect();
        let drawn = charts::line_chart(&xs, &points, series.len())?;
        charts.push(ChartView { measure: m.key, label: m.label, param: param.to_string(), drawn });
    }
    let legend =
        series.into_iter().enumerate().map(|(i, k)| (charts::series_color(i), k)).collect();
    Ok(ParamSection { param: param.to_string(), others, legend, charts })
}

/// Orders legend entries value by value (numbers as numbers).
fn compare_keys(a: &[String], b: &[String]) -> std::cmp::Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            _ => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    std::cmp::Ordering::Equal
}

/// A job's point in a chart of `m` (`None` when it has no value and did not fail).
fn line_point(r: &JobRecord, m: &Measure, x: usize, series: usize) -> Option<LinePoint> {
    let name = &r.spec.name;
    if r.outcome.status == JobStatus::Failed {
        let title = format!("{name} failed: {}", error_of(r));
        return Some(LinePoint { x, series, y: None, kind: MarkKind::Failed, title });
    }
    let v = m.value(r)?;
    // Short: the chart's caption names the measure, and a page has hundreds of these.
    let mut title = format!("{name}: {}", m.text(v));
    let kind = match &r.same_as {
        Some(first) => {
            title.push_str(&format!(" (same output as {first})"));
            MarkKind::Same
        }
        None => MarkKind::Point,
    };
    Some(LinePoint { x, series, y: Some(v), kind, title })
}

/// The heatmaps of one two-axis matrix.
pub struct HeatSection {
    pub matrix: String,
    /// Column axis and row axis.
    pub axes: (String, String),
    pub charts: Vec<ChartView>,
}

/// A heatmap section for every matrix whose jobs vary along exactly two axes.
fn heatmap_sections(
    records: &[JobRecord],
    measures: &[&'static Measure],
) -> Result<Vec<HeatSection>> {
    let mut by_matrix: BTreeMap<usize, Vec<&JobRecord>> = BTreeMap::new();
    for r in records.iter().filter(|r| charted(r)) {
        if let Origin::Matrix(i) = r.spec.origin_index {
            by_matrix.entry(i).or_default().push(r);
        }
    }
    let mut sections = Vec::new();
    for jobs in by_matrix.values() {
        let axes: Vec<&String> = jobs[0]
            .spec
            .axes
            .keys()
            .filter(|a| axis_values(jobs.iter().copied(), a).len() > 1)
            .collect();
        let [col_axis, row_axis] = axes[..] else { continue };
        let cols = axis_values(jobs.iter().copied(), col_axis);
        let rows = axis_values(jobs.iter().copied(), row_axis);
        let mut charts = Vec::new();
        for m in measures {
            let cells: Vec<Cell> = jobs
                .iter()
                .filter_map(|r| {
                    let col = cols.iter().position(|v| *v == shown_value(r, col_axis))?;
                    let row = rows.iter().position(|v| *v == shown_value(r, row_axis))?;
                    Some(heat_cell(r, m, col, row))
                })
                .collect();
            let drawn = charts::heatmap(&cols, &rows, &cells)?;
            let matrix = jobs[0].spec.origin.clone();
            charts.push(ChartView { measure: m.key, label: m.label, param: matrix, drawn });
        }
        sections.push(HeatSection {
            matrix: jobs[0].spec.origin.clone(),
            axes: (col_axis.clone(), row_axis.clone()),
            charts,
        });
    }
    Ok(sections)
}

fn heat_cell(r: &JobRecord, m: &Measure, col: usize, row: usize) -> Cell {
    let name = &r.spec.name;
    if r.outcome.status == JobStatus::Failed {
        let title = format!("{name} failed: {}", error_of(r));
        return Cell { col, row, value: None, text: "failed".into(), title };
    }
    let value = m.value(r);
    let shown = value.map(|v| m.text(v)).unwrap_or_else(|| "-".into());
    let mut title = format!("{name}: {} = {shown}", m.label);
    let mut text = shown;
    if let Some(first) = &r.same_as {
        title.push_str(&format!(" (same output as {first})"));
        text.push_str(" =");
    }
    Cell { col, row, value, text, title }
}

/// The results table: headers, then one row of cells per job.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<TableRow>,
}

pub struct TableRow {
    pub job: String,
    /// The job's viewer, relative to the report, when it exists.
    pub link: Option<String>,
    pub failed: bool,
    pub error: Option<String>,
    /// (text, numeric sort key) per column after the job name.
    pub cells: Vec<(String, Option<f64>)>,
}

fn results_table(
    info: &RunInfo,
    records: &[JobRecord],
    varying: &[String],
    measures: &[&'static Measure],
) -> Table {
    let mut headers = vec!["job".to_string()];
    headers.extend(varying.iter().cloned());
    headers.extend(["status".to_string(), "same as".to_string()]);
    headers.extend(measures.iter().map(|m| m.label.to_string()));
    let rows = records
        .iter()
        .map(|r| {
            let mut cells: Vec<(String, Option<f64>)> = varying
                .iter()
                .map(|p| {
                    let v = r.param(p);
                    let n = v.parse::<f64>().ok();
                    (v, n)
                })
                .collect();
            cells.push((r.outcome.status.as_str().to_string(), None));
            cells.push((r.same_as.clone().unwrap_or_default(), None));
            cells.extend(measures.iter().map(|m| match m.value(r) {
                Some(v) => (m.text(v), Some(v)),
                None => (String::new(), None),
            }));
            let viewer = r.spec.viewer_path();
            let link = (r.outcome.status.is_success() && viewer.is_file()).then(|| {
                viewer.strip_prefix(&info.output_dir).unwrap_or(&viewer).display().to_string()
            });
            TableRow {
                job: r.spec.name.clone(),
                link,
                failed: r.outcome.status == JobStatus::Failed,
                error: r.outcome.error.clone(),
                cells,
            }
        })
        .collect();
    Table { headers, rows }
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    title: String,
    interrupted: bool,
    facts: Vec<(String, String)>,
    baseline_notes: &'a [String],
    sections: Vec<ParamSection>,
    heatmaps: Vec<HeatSection>,
    table: Table,
    same: Vec<(String, Vec<String>)>,
    /// (job, where it was defined, error)
    failed: Vec<(String, String, String)>,
}
