//! The one job runner: generate -> write the skeleton atomically -> lint (when analysing) ->
//! write the stats file. `wildcards-gen dataset` and the batch workers both run a job through
//! [`run_job`], so a job means the same thing on the command line and in a manifest.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::export::{export_txt, job_export_dir, ExportReport};
use crate::generate::{generate, GenerateContext, Generated};
use crate::output::write_atomic;
use crate::params::{Config, ExportFormat};
use crate::semantic::lint::lint_tree_reusing;
use crate::semantic::outliers::Scoring;
use crate::stats::{
    stats_path, Execution, FlaggedItem, FlaggedList, LintStats, ReuseStats, StatsFile,
};

/// What to do with one generated skeleton.
pub struct JobRequest<'a> {
    /// The effective configuration.
    pub config: &'a Config,
    /// The skeleton file to write (its folder must exist or be creatable).
    pub output: &'a Path,
    /// Lint the skeleton's lists at the job's threshold (needs an embedder).
    pub lint: bool,
    /// Write `<output stem>.stats.json`.
    pub save_stats: bool,
    /// When the job started: its duration counts from here (a worker's setup, loading
    /// WordNet or connecting to the server, is part of the job).
    pub started: std::time::Instant,
    /// An extra top-level section of the stats file (batch-client's `batch`), as
    /// (key, value); built after the job ran, from its result.
    #[allow(clippy::type_complexity)]
    pub stats_extra: Option<&'a dyn Fn(&JobResult) -> Result<(String, serde_json::Value)>>,
}

/// How a job went.
pub struct JobResult {
    pub generated: Generated,
    /// The wildcard folder written (`export: txt`) and what went into it.
    pub export: Option<(PathBuf, ExportReport)>,
    /// The lint, when asked for.
    pub lint: Option<LintStats>,
    /// The stats file written, when asked for.
    pub stats_path: Option<PathBuf>,
    /// Wall time of the whole job (generation, writing, lint), seconds.
    pub duration_s: f64,
    /// What the job found in the reuse store and what it computed (when it had a store).
    pub reuse: Option<ReuseStats>,
}

/// Runs one job: see the module doc. `on_stage` hears `writing` and `analyzing` (the
/// generation stages come through `ctx.on_stage`).
pub fn run_job(
    req: &JobRequest,
    ctx: &GenerateContext,
    on_stage: &dyn Fn(&str),
) -> Result<JobResult> {
    let generated = generate(req.config, ctx)?;

    on_stage("writing");
    write_atomic(req.output, generated.text.as_bytes())?;
    let export = match req.config.export {
        Some(ExportFormat::Txt) => {
            on_stage("exporting");
            let dir = job_export_dir(req.output);
            // A re-run replaces its own earlier export (never a folder an export did not write).
            let report = export_txt(&generated.tree, &dir, true)
                .with_context(|| format!("export: txt to {}", dir.display()))?;
            Some((dir, report))
        }
        None => None,
    };

    let lint = match req.lint {
        true => {
            on_stage("analyzing");
            Some(lint(&generated, req.config, ctx)?)
        }
        false => None,
    };
    let mut result = JobResult {
        generated,
        export,
        lint,
        stats_path: None,
        duration_s: round_ms(req.started.elapsed().as_secs_f64()),
        reuse: ctx.reuse.map(|store| store.stats()),
    };
    if req.save_stats {
        let path = stats_path(req.output);
        write_stats(&path, req, &result)?;
        result.stats_path = Some(path);
    }
    Ok(result)
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The outliers of every list with the job's method and threshold.
fn lint(generated: &Generated, cfg: &Config, ctx: &GenerateContext) -> Result<LintStats> {
    let embedder = ctx.embedder.context(
        "the analysis lints the skeleton with sentence embeddings, but no embed-server is \
         connected",
    )?;
    let scoring = Scoring {
        method: cfg.outlier_method,
        threshold: cfg.semantic_threshold,
        wordnet: Some(&ctx.wordnet),
    };
    let report = lint_tree_reusing(&generated.tree, embedder, &scoring, ctx.reuse)?;
    let flagged = report
        .lists
        .iter()
        .map(|list| FlaggedList {
            path: list.path.clone(),
            outliers: list
                .outliers
                .iter()
                // Four decimals are all a reader compares; the file stays small.
                .map(|f| FlaggedItem { item: f.item.clone(), score: (f.score * 1e4).round() / 1e4 })
                .collect(),
        })
        .collect();
    Ok(LintStats {
        outliers: report.outliers_total,
        threshold: cfg.semantic_threshold,
        lists_checked: report.lists_checked,
        method: Some(cfg.outlier_method),
        items_checked: report.items_checked,
        outlier_rate: round_rate(report.outlier_rate()),
        flagged,
    })
}

/// A rate to 4 decimals (what the report shows; keeps stats files readable).
fn round_rate(r: f64) -> f64 {
    (r * 10_000.0).round() / 10_000.0
}

fn write_stats(path: &Path, req: &JobRequest, result: &JobResult) -> Result<()> {
    let stats = StatsFile {
        execution: Execution::now(result.duration_s),
        lint: result.lint.clone(),
        reuse: result.reuse,
        ..result.generated.stats_file(req.config, Some(req.output))
    };
    let mut value = serde_json::to_value(&stats)?;
    if let (Some(extra), Some(obj)) = (req.stats_extra, value.as_object_mut()) {
        let (key, section) = extra(result)?;
        obj.insert(key, section);
    }
    write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())
}
