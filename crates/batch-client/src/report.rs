//! What a batch prints and writes about its jobs: the `--dry-run` job table, and (after a run)
//! `report.md` for people and `summary.csv` for spreadsheets and scripts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::Digest;
use wildcards_core::output::write_atomic;

use crate::job::{JobOutcome, JobSpec, JobStatus};
use crate::manifest::varying_params;
use wildcards_core::compare::{self, Comparison};

/// A parameter's effective value as table text (scalars plain, lists joined by `+`).
pub fn param_value(job: &JobSpec, name: &str) -> String {
    value_in(job, &config_json(job), name)
}

/// A job's resolved configuration as JSON, to look its parameters up by name.
fn config_json(job: &JobSpec) -> serde_json::Value {
    serde_json::to_value(job.config()).unwrap_or_default()
}

fn value_in(job: &JobSpec, config: &serde_json::Value, name: &str) -> String {
    if name == "dataset" {
        return job.dataset.to_string();
    }
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
    /// This job's output compared with the baseline job's (`config.baseline`), when both
    /// outputs exist and could be read; see [`compare_with_baseline`].
    pub vs_baseline: Option<Comparison>,
    /// The first job (in batch order) whose output is byte-identical to this one's, when
    /// there is one; see [`mark_same_outputs`].
    pub same_as: Option<String>,
    /// The job's resolved configuration as JSON, made once: the report looks parameters up
    /// for every chart point, and resolving a job's configuration each time made the report
    /// of a 100-job grid take seconds.
    config: serde_json::Value,
}

impl JobRecord {
    pub fn new(spec: JobSpec, outcome: JobOutcome) -> Self {
        let config = config_json(&spec);
        Self { spec, outcome, vs_baseline: None, same_as: None, config }
    }

    /// A parameter's effective value as table text (see [`param_value`]).
    pub fn param(&self, name: &str) -> String {
        value_in(&self.spec, &self.config, name)
    }
}

/// Sets every successful job's `same_as` to the first job with the same output content
/// (SHA-256 of the file): grid points often give byte-identical skeletons, and that is a
/// finding (the parameter made no difference there). Outputs that cannot be read are skipped.
pub fn mark_same_outputs(records: &mut [JobRecord]) {
    let mut first_with: std::collections::HashMap<[u8; 32], String> = Default::default();
    for r in records.iter_mut() {
        r.same_as = None;
        if !r.outcome.status.is_success() {
            continue;
        }
        let Ok(bytes) = std::fs::read(&r.spec.output) else { continue };
        let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
        match first_with.get(&digest) {
            Some(first) => r.same_as = Some(first.clone()),
            None => {
                first_with.insert(digest, r.spec.name.clone());
            }
        }
    }
}

/// The column of summary.csv (the last one) naming the first job with the same output.
pub const SAME_AS_COLUMN: &str = "same_as";

/// Compares every successful job's skeleton with the baseline job's (`config.baseline`):
/// Jaccard of the item sets and ARI of the groupings, for the `*_vs_baseline` columns.
/// Returns a note for each comparison that could not be made (baseline failed, an output
/// that is not a skeleton YAML, ...) so that the report can say why a cell is empty.
pub fn compare_with_baseline(records: &mut [JobRecord], baseline: &str) -> Vec<String> {
    records.iter_mut().for_each(|r| r.vs_baseline = None);
    let mut notes = Vec::new();
    let Some(base) = records.iter().find(|r| r.spec.name == baseline) else {
        return vec![format!("baseline job `{baseline}` is not in this batch")];
    };
    if !base.outcome.status.is_success() {
        return vec![format!(
            "baseline job `{baseline}` has no output ({}), so no job is compared with it",
            base.outcome.status.as_str()
        )];
    }
    let base_tree = match wildcards_core::output::read_yaml(&base.spec.output) {
        Ok(t) => t,
        Err(e) => return vec![format!("baseline job `{baseline}`: {e:#}")],
    };
    for r in records.iter_mut().filter(|r| r.outcome.status.is_success()) {
        if r.spec.name == baseline {
            // Already read: no second parse of the same file.
            r.vs_baseline = Some(compare::compare_trees(&base_tree, &base_tree));
            continue;
        }
        match wildcards_core::output::read_yaml(&r.spec.output) {
            Ok(tree) => r.vs_baseline = Some(compare::compare_trees(&tree, &base_tree)),
            Err(e) => notes.push(format!("job `{}`: {e:#}", r.spec.name)),
        }
    }
    notes
}

/// The comparison columns of summary.csv, present when the manifest names a baseline.
pub const BASELINE_COLUMNS: &[&str] = &["jaccard_vs_baseline", "ari_vs_baseline"];

/// The baseline cells of a record (empty when it was not compared).
fn baseline_cells(r: &JobRecord) -> [String; 2] {
    match &r.vs_baseline {
        Some(c) => [
            format!("{:.4}", c.jaccard),
            c.ari.map_or_else(|| "n/a".to_string(), |a| format!("{a:.4}")),
        ],
        None => [String::new(), String::new()],
    }
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
    /// The manifest's `config.baseline` job, when set: adds the `*_vs_baseline` columns.
    pub baseline: Option<String>,
    /// Why some baseline comparisons are missing (see [`compare_with_baseline`]).
    pub baseline_notes: Vec<String>,
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
    "outlier_rate",
    "lint_method",
    "embed_texts",
    "embed_cache_hits",
    "reuse_hits",
    "reuse_misses",
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
            m.structure.file_bytes.to_string(),
            m.structure.categories.to_string(),
            m.structure.leaf_lists.to_string(),
            m.structure.items.to_string(),
            m.structure.max_depth.to_string(),
            format!("{:.2}", m.structure.avg_branching),
            format!("{:.2}", m.structure.avg_leaf_size),
            m.outliers.map(|n| n.to_string()).unwrap_or_default(),
            m.outlier_rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
            m.lint_method.map(|x| x.as_str().to_string()).unwrap_or_default(),
            m.embed_texts.to_string(),
            m.embed_cache_hits.to_string(),
            m.reuse_hits.to_string(),
            m.reuse_misses.to_string(),
        ]),
        None => cells.extend(std::iter::repeat_n(String::new(), METRIC_COLUMNS.len() - 3)),
    }
    cells
}

/// summary.csv: a header row, then one row a job: `job`, every parameter that varies across
/// the jobs, then [`METRIC_COLUMNS`], then [`BASELINE_COLUMNS`] when a baseline is named.
pub fn summary_csv(records: &[JobRecord], baseline: Option<&str>) -> Result<String> {
    let specs: Vec<JobSpec> = records.iter().map(|r| r.spec.clone()).collect();
    let varying = varying_params(&specs);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["job".to_string()];
    header.extend(varying.iter().cloned());
    header.extend(METRIC_COLUMNS.iter().map(|c| c.to_string()));
    if baseline.is_some() {
        header.extend(BASELINE_COLUMNS.iter().map(|c| c.to_string()));
    }
    header.push(SAME_AS_COLUMN.to_string());
    w.write_record(&header)?;
    for r in records {
        let mut row = vec![r.spec.name.clone()];
        row.extend(varying.iter().map(|p| r.param(p)));
        row.extend(metric_cells(r));
        if baseline.is_some() {
            row.extend(baseline_cells(r));
        }
        row.push(r.same_as.clone().unwrap_or_default());
        w.write_record(&row)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing summary.csv: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// report.md: what ran, a results table, and every failed job with its error.
pub fn report_md(info: &RunInfo, records: &[JobRecord]) -> String {
    let mut md = String::new();
    md.push_str(&format!("# Batch report: {}\n\n", info.manifest.display()));
    if info.interrupted {
        md.push_str("**Interrupted (Ctrl-C):** only the finished jobs have results; ");
        md.push_str("run again with `--resume` to run the rest.\n\n");
    }
    md.push_str(&run_facts_md(info, records));
    md.push_str("\n## Results\n\n");
    md.push_str(&results_table_md(info, records));
    md.push_str(&same_outputs_md(records));
    md.push_str(&failed_jobs_md(records));
    md
}

/// The bullet list of run facts: folder, job counts, workers, server, memory, baseline.
fn run_facts_md(info: &RunInfo, records: &[JobRecord]) -> String {
    let count = |s: JobStatus| records.iter().filter(|r| r.outcome.status == s).count();
    let mut md = format!("- Output folder: `{}`\n", info.output_dir.display());
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
    md.push_str(&reuse_md(records));
    if let Some(lint) = outlier_analysis(records) {
        md.push_str(&format!("- Outlier analysis: {lint}\n"));
    }
    if let Some(kb) = info.server_peak_rss_kb {
        md.push_str(&format!(
            "- Peak memory (RSS) of the embed-server: {:.1} MB\n",
            kb as f64 / 1024.0
        ));
    }
    if let Some(b) = &info.baseline {
        md.push_str(&format!(
            "- Baseline: `{b}` (Jaccard of the item sets and adjusted Rand index of the \
             groupings against its output)\n"
        ));
        for note in &info.baseline_notes {
            md.push_str(&format!("  - not compared: {note}\n"));
        }
    }
    md
}

/// How the jobs' lints scored outliers, for the run facts: each method used with the
/// thresholds it ran at (`typicality at 0.1, 0.2, 0.3`), so the outlier columns can be read
/// even when the method is the same for every job; `None` when no job linted.
pub fn outlier_analysis(records: &[JobRecord]) -> Option<String> {
    let mut methods: Vec<(String, Vec<String>)> = Vec::new();
    for r in records {
        let Some(method) = r.outcome.metrics.as_ref().and_then(|m| m.lint_method) else {
            continue;
        };
        let threshold = r.param("semantic_threshold");
        let i = methods.iter().position(|(m, _)| m == method.as_str()).unwrap_or_else(|| {
            methods.push((method.as_str().to_string(), Vec::new()));
            methods.len() - 1
        });
        let at = &mut methods[i].1;
        if !at.contains(&threshold) {
            at.push(threshold);
        }
    }
    let parts: Vec<String> =
        methods.into_iter().map(|(m, at)| format!("{m} at {}", at.join(", "))).collect();
    (!parts.is_empty()).then(|| format!("{} (flags score > threshold)", parts.join("; ")))
}

/// The reuse store's line of the run facts: how many per-list results (outlier scores,
/// arrangements, list sums) the jobs read instead of computing; empty without a store.
fn reuse_md(records: &[JobRecord]) -> String {
    let metrics = records.iter().filter_map(|r| r.outcome.metrics.as_ref());
    let (hits, misses) = metrics.fold((0, 0), |(h, m), x| (h + x.reuse_hits, m + x.reuse_misses));
    if hits + misses == 0 {
        return String::new();
    }
    format!(
        "- Reuse across jobs: {hits} per-list results reused, {misses} computed ({:.0} % \
         reused; store `.reuse/` in the output folder)\n",
        100.0 * hits as f64 / (hits + misses) as f64
    )
}

/// The results table: one row a job, the varying parameters, then the measures.
fn results_table_md(info: &RunInfo, records: &[JobRecord]) -> String {
    let specs: Vec<JobSpec> = records.iter().map(|r| r.spec.clone()).collect();
    let varying = varying_params(&specs);
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
            "outlier rate",
            "lint method",
            "embedded (cache hits)",
            "reused (computed)",
            "file bytes",
        ]
        .map(String::from),
    );
    if info.baseline.is_some() {
        header.extend(["Jaccard vs baseline", "ARI vs baseline"].map(String::from));
    }
    header.push("same as".into());
    let mut md = md_row(&header);
    md.push_str(&md_row(&header.iter().map(|_| "---".to_string()).collect::<Vec<_>>()));
    for r in records {
        let mut row = vec![r.spec.name.clone()];
        row.extend(varying.iter().map(|p| r.param(p)));
        let c = metric_cells(r);
        // c: status, error, duration, bytes, categories, leaf_lists, items, depth, branching,
        // leaf size, outliers, outlier rate, lint method, embed_texts, cache hits, reuse
        // hits, misses
        let (embedded, reused) = match &r.outcome.metrics {
            Some(m) => (
                format!("{} ({})", m.embed_texts, m.embed_cache_hits),
                format!("{} ({})", m.reuse_hits, m.reuse_misses),
            ),
            None => (String::new(), String::new()),
        };
        row.extend([0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12].map(|i| c[i].clone()));
        row.extend([embedded, reused, c[3].clone()]);
        if info.baseline.is_some() {
            row.extend(baseline_cells(r));
        }
        row.push(r.same_as.clone().unwrap_or_default());
        md.push_str(&md_row(&row));
    }
    md
}

/// The groups of jobs with byte-identical outputs (a finding: their differences in
/// parameters made no difference), when there are any.
fn same_outputs_md(records: &[JobRecord]) -> String {
    let groups = same_output_groups(records);
    if groups.is_empty() {
        return String::new();
    }
    let mut md = "\n## Identical outputs\n\n".to_string();
    for (first, same) in groups {
        let others: Vec<String> = same.iter().map(|n| format!("`{n}`")).collect();
        md.push_str(&format!("- `{first}` = {}\n", others.join(", ")));
    }
    md
}

/// Each job that others are the same as, with those others, in batch order.
pub fn same_output_groups(records: &[JobRecord]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in records {
        let Some(first) = &r.same_as else { continue };
        match groups.iter_mut().find(|(f, _)| f == first) {
            Some((_, same)) => same.push(r.spec.name.clone()),
            None => groups.push((first.clone(), vec![r.spec.name.clone()])),
        }
    }
    groups
}

/// A section per failed job with where it was defined and its error.
fn failed_jobs_md(records: &[JobRecord]) -> String {
    let failed: Vec<&JobRecord> =
        records.iter().filter(|r| r.outcome.status == JobStatus::Failed).collect();
    if failed.is_empty() {
        return String::new();
    }
    let mut md = "\n## Failed jobs\n".to_string();
    for r in failed {
        md.push_str(&format!(
            "\n### {}\n\n- defined at `{}`\n- output `{}`\n\n```text\n{}\n```\n",
            r.spec.name,
            r.spec.origin,
            r.spec.output.display(),
            r.outcome.error.as_deref().unwrap_or("(no message)").trim_end()
        ));
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
    write_atomic(&csv, summary_csv(records, info.baseline.as_deref())?.as_bytes())?;
    Ok((md, csv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobMetrics;
    use crate::manifest;
    use wildcards_core::stats::StructureStats;

    fn records() -> Vec<JobRecord> {
        let m = manifest::parse(
            "jobs:\n  - {name: a, params: {min_leaf_size: 5}}\n  - {name: b, params: {min_leaf_size: 9}}\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        let metrics = JobMetrics {
            structure: StructureStats {
                file_bytes: 120,
                categories: 7,
                leaf_lists: 4,
                items: 30,
                max_depth: 3,
                avg_branching: 2.5,
                avg_leaf_size: 7.5,
            },
            outliers: Some(2),
            outlier_rate: Some(0.0667),
            lint_method: Some(wildcards_core::params::OutlierMethod::Typicality),
            embed_texts: 30,
            embed_cache_hits: 12,
            reuse_hits: 6,
            reuse_misses: 2,
        };
        vec![
            JobRecord::new(
                m.jobs[0].clone(),
                JobOutcome {
                    status: JobStatus::Succeeded,
                    error: None,
                    duration_s: 1.25,
                    metrics: Some(metrics),
                },
            ),
            JobRecord::new(m.jobs[1].clone(), JobOutcome::failed("boom | bad", 0.5)),
        ]
    }

    #[test]
    fn summary_has_varying_params_then_metrics() {
        let csv = summary_csv(&records(), None).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "job,min_leaf_size,status,error,duration_s,file_bytes,categories,leaf_lists,items,\
             max_depth,avg_branching,avg_leaf_size,outliers,outlier_rate,lint_method,embed_texts,\
             embed_cache_hits,reuse_hits,reuse_misses,same_as"
        );
        assert_eq!(
            lines[1],
            "a,5,succeeded,,1.250,120,7,4,30,3,2.50,7.50,2,0.0667,typicality,30,12,6,2,"
        );
        assert_eq!(lines[2], "b,9,failed,boom | bad,0.500,,,,,,,,,,,,,,,");
    }

    #[test]
    fn report_lists_failed_jobs_with_their_error() {
        let info = RunInfo { manifest: "m.yaml".into(), workers: 2, ..Default::default() };
        let md = report_md(&info, &records());
        assert!(
            md.contains(
                "| a | 5 | succeeded | 1.250 | 7 | 4 | 30 | 3 | 2.50 | 7.50 | 2 | 0.0667 | typicality | 30 (12) | 6 (2) | 120 |  |"
            ),
            "{md}"
        );
        assert!(md.contains("| b | 9 | failed |"), "{md}");
        assert!(md.contains("### b") && md.contains("boom | bad"), "{md}");
        assert!(md.contains("1 succeeded, 0 resumed, 1 failed"), "{md}");
        assert!(md.contains("- Reuse across jobs: 6 per-list results reused, 2 computed (75 %"));
        // a's threshold is the default; b failed and has no lint.
        assert!(
            md.contains("- Outlier analysis: typicality at 0.1 (flags score > threshold)"),
            "{md}"
        );
    }

    #[test]
    fn baseline_columns_compare_each_output_with_the_baseline_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut recs = records();
        recs[0].spec.output = dir.path().join("a.yaml");
        recs[1].spec.output = dir.path().join("b.yaml");
        std::fs::write(&recs[0].spec.output, "root:\n  x: [a, b]\n  y: [c, d]\n").unwrap();
        std::fs::write(&recs[1].spec.output, "root:\n  x: [a, b, c]\n  y: [d, e]\n").unwrap();
        // b failed: only a is compared (with itself).
        assert!(compare_with_baseline(&mut recs, "a").is_empty());
        assert_eq!(
            recs[0].vs_baseline.as_ref().map(|c| (c.jaccard, c.ari)),
            Some((1.0, Some(1.0)))
        );
        assert!(recs[1].vs_baseline.is_none());
        let csv = summary_csv(&recs, Some("a")).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].ends_with(",reuse_misses,jaccard_vs_baseline,ari_vs_baseline,same_as"));
        assert!(lines[1].ends_with(",12,6,2,1.0000,1.0000,"), "{csv}");
        assert!(lines[2].ends_with(",,,,"), "{csv}");

        // b succeeded: 4 common items of 5, grouped {a,b},{c,d} vs {a,b,c},{d}.
        recs[1].outcome.status = JobStatus::Succeeded;
        assert!(compare_with_baseline(&mut recs, "a").is_empty());
        let c = recs[1].vs_baseline.clone().unwrap();
        assert_eq!((c.common_items, c.union_items), (4, 5));
        assert!((c.jaccard - 0.8).abs() < 1e-12);
        let info = RunInfo { baseline: Some("a".into()), ..Default::default() };
        let md = report_md(&info, &recs);
        assert!(md.contains(&format!("| 0.8000 | {:.4} |  |", c.ari.unwrap())), "{md}");

        // A failed baseline: no job is compared, and the report says why.
        recs[0].outcome = JobOutcome::failed("boom", 0.1);
        let notes = compare_with_baseline(&mut recs, "a");
        assert_eq!(
            notes,
            ["baseline job `a` has no output (failed), so no job is compared with it"]
        );
        let info =
            RunInfo { baseline: Some("a".into()), baseline_notes: notes, ..Default::default() };
        assert!(
            report_md(&info, &recs).contains("  - not compared: baseline job `a` has no output")
        );
    }
}

#[cfg(test)]
mod same_as_tests {
    use super::*;
    use crate::manifest;

    #[test]
    fn same_as_names_the_first_job_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest::parse(
            "jobs:\n  - {name: a}\n  - {name: b}\n  - {name: c}\n  - {name: d}\n",
            &dir.path().join("m.yaml"),
        )
        .unwrap();
        let ok = || JobOutcome {
            status: JobStatus::Succeeded,
            error: None,
            duration_s: 0.1,
            metrics: None,
        };
        let mut recs: Vec<JobRecord> =
            m.jobs.iter().map(|j| JobRecord::new(j.clone(), ok())).collect();
        std::fs::create_dir_all(&m.config.output_dir).unwrap();
        for (r, text) in recs.iter().zip(["x: [a]\n", "x: [b]\n", "x: [a]\n", "x: [a]\n"]) {
            std::fs::write(&r.spec.output, text).unwrap();
        }
        recs[3].outcome = JobOutcome::failed("boom", 0.1);
        mark_same_outputs(&mut recs);
        let same: Vec<Option<&str>> = recs.iter().map(|r| r.same_as.as_deref()).collect();
        assert_eq!(same, [None, None, Some("a"), None], "a failed job is never the same");
        let csv = summary_csv(&recs, None).unwrap();
        assert!(csv.lines().nth(3).unwrap().ends_with(",a"), "{csv}");
        let md = report_md(&RunInfo::default(), &recs);
        assert!(md.contains("## Identical outputs\n\n- `a` = `c`\n"), "{md}");
    }
}
