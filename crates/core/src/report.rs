//! What a batch prints and writes about its jobs: the `--dry-run` job table, and (after a run)
//! `report.md` for people and `summary.csv` for spreadsheets and scripts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::job::{JobOutcome, JobSpec, JobStatus};
use crate::manifest::varying_params;

/// A parameter's effective value as table text (scalars plain, lists joined by `+`).
pub fn param_value(job: &JobSpec, name: &str) -> String {
    if name == "dataset" {
        return job.dataset.to_string();
    }
    let config = serde_json::to_value(job.config()).unwrap_or_default();
    json_text(config.get(name).unwrap_or(&serde_json::Value::Null))
}

fn json_text(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join("+"),
        other => other.to_string(),
    }
}

/// The expanded jobs as an aligned text table: number, name, dataset, the parameters that vary
/// between jobs, whether the job needs the embedding server, and its output file.
pub fn job_table(jobs: &[JobSpec], output_dir: &Path) -> String {
    let varying = varying_params(jobs);
    let mut header = vec!["#".to_string(), "name".into()];
    if !varying.iter().any(|v| v == "dataset") {
        header.push("dataset".into());
    }
    header.extend(varying.iter().cloned());
    header.extend(["embeddings".into(), "output".into()]);
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let mut row = vec![(j.index + 1).to_string(), j.name.clone()];
            if !varying.iter().any(|v| v == "dataset") {
                row.push(j.dataset.to_string());
            }
            row.extend(varying.iter().map(|p| param_value(j, p)));
            row.push(if j.needs_embeddings() { "yes" } else { "no" }.into());
            let out = j.output.strip_prefix(output_dir).unwrap_or(&j.output);
            row.push(out.display().to_string());
            row
        })
        .collect();
    aligned(&header, &rows)
}

/// Left-aligned columns separated by two spaces.
fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = line(header);
    out.push('\n');
    for row in rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out
}

/// A job and how it went: one row of the report.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub spec: JobSpec,
    pub outcome: JobOutcome,
}

/// Facts about the whole run for the report's header.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub manifest: PathBuf,
    pub output_dir: PathBuf,
    pub workers: usize,
    pub wall_s: f64,
    /// Which embedding server served the batch (and whether batch-client started it).
    pub server: Option<String>,
    /// Set when the run was stopped (Ctrl-C) before every job finished.
    pub interrupted: bool,
    /// Peak resident memory of each worker process, KiB.
    pub worker_peak_rss_kb: Vec<u64>,
    /// Peak resident memory of the private embed-server, KiB (unknown for a shared one).
    pub server_peak_rss_kb: Option<u64>,
}

/// The metric columns of summary.csv, after the varying parameters (DESIGN.md "Report").
pub const METRIC_COLUMNS: &[&str] = &[
    "status",
    "error",
    "duration_s",
    "file_bytes",
    "categories",
    "leaf_lists",
    "items",
    "max_depth",
    "avg_branching",
    "avg_leaf_size",
    "outliers",
    "embed_texts",
    "embed_cache_hits",
];

/// The metric cells of a record, in [`METRIC_COLUMNS`] order; numbers are empty for a job
/// without metrics (failed, not run).
fn metric_cells(r: &JobRecord) -> Vec<String> {
    let o = &r.outcome;
    let mut cells = vec![
        o.status.as_str().to_string(),
        o.error.clone().unwrap_or_default(),
        format!("{:.3}", o.duration_s),
    ];
    match &o.metrics {
        Some(m) => cells.extend([
            m.file_bytes.to_string(),
            m.categories.to_string(),
            m.leaf_lists.to_string(),
            m.items.to_string(),
            m.max_depth.to_string(),
            format!("{:.2}", m.avg_branching),
            format!("{:.2}", m.avg_leaf_size),
            m.outliers.map(|n| n.to_string()).unwrap_or_default(),
            m.embed_texts.to_string(),
            m.embed_cache_hits.to_string(),
        ]),
        None => cells.extend(std::iter::repeat_n(String::new(), METRIC_COLUMNS.len() - 3)),
    }
    cells
}

/// summary.csv: a header row, then one row a job: `job`, every parameter that varies across
/// the jobs, then [`METRIC_COLUMNS`].
pub fn summary_csv(records: &[JobRecord]) -> Result<String> {
    let specs: Vec<JobSpec> = records.iter().map(|r| r.spec.clone()).collect();
    let varying = varying_params(&specs);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["job".to_string()];
    header.extend(varying.iter().cloned());
    header.extend(METRIC_COLUMNS.iter().map(|c| c.to_string()));
    w.write_record(&header)?;
    for r in records {
        let mut row = vec![r.spec.name.clone()];
        row.extend(varying.iter().map(|p| param_value(&r.spec, p)));
        row.extend(metric_cells(r));
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing summary.csv: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// report.md: what ran, a results table, and every failed job with its error.
pub fn report_md(info: &RunInfo, records: &[JobRecord]) -> String {
    let specs: Vec<JobSpec> = records.iter().map(|r| r.spec.clone()).collect();
    let varying = varying_params(&specs);
    let count = |s: JobStatus| records.iter().filter(|r| r.outcome.status == s).count();
    let mut md = String::new();
    md.push_str(&format!("# Batch report: {}\n\n", info.manifest.display()));
    if info.interrupted {
        md.push_str("**Interrupted (Ctrl-C):** only the finished jobs have results; ");
        md.push_str("run again with `--resume` to run the rest.\n\n");
    }
    md.push_str(&format!("- Output folder: `{}`\n", info.output_dir.display()));
    md.push_str(&format!(
        "- Jobs: {} — {} succeeded, {} resumed, {} failed, {} interrupted, {} not run\n",
        records.len(),
        count(JobStatus::Succeeded),
        count(JobStatus::Resumed),
        count(JobStatus::Failed),
        count(JobStatus::Interrupted),
        count(JobStatus::NotRun),
    ));
    md.push_str(&format!("- Workers: {}; wall time {:.1} s\n", info.workers, info.wall_s));
    if let Some(server) = &info.server {
        md.push_str(&format!("- Embedding server: {server}\n"));
    }
    if !info.worker_peak_rss_kb.is_empty() {
        let mb: Vec<String> = info
            .worker_peak_rss_kb
            .iter()
            .map(|kb| format!("{:.1}", *kb as f64 / 1024.0))
            .collect();
        md.push_str(&format!("- Peak memory (RSS) of the workers: {} MB\n", mb.join(", ")));
    }
    if let Some(kb) = info.server_peak_rss_kb {
        md.push_str(&format!(
            "- Peak memory (RSS) of the embed-server: {:.1} MB\n",
            kb as f64 / 1024.0
        ));
    }
    md.push_str("\n## Results\n\n");
    let mut header = vec!["job".to_string()];
    header.extend(varying.iter().cloned());
    header.extend(
        [
            "status",
            "time (s)",
            "categories",
            "leaf lists",
            "items",
            "max depth",
            "avg branching",
            "avg leaf size",
            "outliers",
            "embedded (cache hits)",
            "file bytes",
        ]
        .map(String::from),
    );
    md.push_str(&md_row(&header));
    md.push_str(&md_row(&header.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
    for r in records {
        let mut row = vec![r.spec.name.clone()];
        row.extend(varying.iter().map(|p| param_value(&r.spec, p)));
        let c = metric_cells(r);
        // c: status, error, duration, bytes, categories, leaf_lists, items, depth, branching,
        // leaf size, outliers, embed_texts, cache hits
        let embedded = match &r.outcome.metrics {
            Some(m) => format!("{} ({})", m.embed_texts, m.embed_cache_hits),
            None => String::new(),
        };
        row.extend([
            c[0].clone(),
            c[2].clone(),
            c[4].clone(),
            c[5].clone(),
            c[6].clone(),
            c[7].clone(),
            c[8].clone(),
            c[9].clone(),
            c[10].clone(),
            embedded,
            c[3].clone(),
        ]);
        md.push_str(&md_row(&row));
    }
    let failed: Vec<&JobRecord> =
        records.iter().filter(|r| r.outcome.status == JobStatus::Failed).collect();
    if !failed.is_empty() {
        md.push_str("\n## Failed jobs\n");
        for r in failed {
            md.push_str(&format!(
                "\n### {}\n\n- defined at `{}`\n- output `{}`\n\n```text\n{}\n```\n",
                r.spec.name,
                r.spec.origin,
                r.spec.output.display(),
                r.outcome.error.as_deref().unwrap_or("(no message)").trim_end()
            ));
        }
    }
    md
}

/// One markdown table row; `|` inside cells is escaped.
fn md_row(cells: &[String]) -> String {
    let cells: Vec<String> =
        cells.iter().map(|c| c.replace('|', "\\|").replace('\n', " ")).collect();
    format!("| {} |\n", cells.join(" | "))
}

/// Writes `report.md` and `summary.csv` into the output folder (atomically) and returns
/// their paths.
pub fn write_reports(info: &RunInfo, records: &[JobRecord]) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(&info.output_dir)
        .with_context(|| format!("creating {}", info.output_dir.display()))?;
    let md = info.output_dir.join("report.md");
    let csv = info.output_dir.join("summary.csv");
    write_atomic(&md, report_md(info, records).as_bytes())?;
    write_atomic(&csv, summary_csv(records)?.as_bytes())?;
    Ok((md, csv))
}

/// Writes through a temporary file in the same folder and renames it into place, so that a
/// reader never sees half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobMetrics;
    use crate::manifest;

    fn records() -> Vec<JobRecord> {
        let m = manifest::parse(
            "jobs:\n  - {name: a, params: {min_leaf_size: 5}}\n  - {name: b, params: {min_leaf_size: 9}}\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        let metrics = JobMetrics {
            file_bytes: 120,
            categories: 7,
            leaf_lists: 4,
            items: 30,
            max_depth: 3,
            avg_branching: 2.5,
            avg_leaf_size: 7.5,
            outliers: Some(2),
            embed_texts: 30,
            embed_cache_hits: 12,
        };
        vec![
            JobRecord {
                spec: m.jobs[0].clone(),
                outcome: JobOutcome {
                    status: JobStatus::Succeeded,
                    error: None,
                    duration_s: 1.25,
                    metrics: Some(metrics),
                },
            },
            JobRecord { spec: m.jobs[1].clone(), outcome: JobOutcome::failed("boom | bad", 0.5) },
        ]
    }

    #[test]
    fn summary_has_varying_params_then_metrics() {
        let csv = summary_csv(&records()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "job,min_leaf_size,status,error,duration_s,file_bytes,categories,leaf_lists,items,\
             max_depth,avg_branching,avg_leaf_size,outliers,embed_texts,embed_cache_hits"
        );
        assert_eq!(lines[1], "a,5,succeeded,,1.250,120,7,4,30,3,2.50,7.50,2,30,12");
        assert_eq!(lines[2], "b,9,failed,boom | bad,0.500,,,,,,,,,,");
    }

    #[test]
    fn report_lists_failed_jobs_with_their_error() {
        let info = RunInfo { manifest: "m.yaml".into(), workers: 2, ..Default::default() };
        let md = report_md(&info, &records());
        assert!(
            md.contains(
                "| a | 5 | succeeded | 1.250 | 7 | 4 | 30 | 3 | 2.50 | 7.50 | 2 | 30 (12) | 120 |"
            ),
            "{md}"
        );
        assert!(md.contains("| b | 9 | failed |"), "{md}");
        assert!(md.contains("### b") && md.contains("boom | bad"), "{md}");
        assert!(md.contains("1 succeeded, 0 resumed, 1 failed"), "{md}");
    }
}
