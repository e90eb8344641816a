//! The run record, `batch-run.json` in the output folder: the expanded jobs and how each one
//! ended, plus the facts of the run (workers, wall time, server, peak memory). A batch writes
//! it when it starts and again when it ends, so that `batch-client report DIR` can rebuild
//! report.md, summary.csv and report.html later without running anything, also for a run that
//! was interrupted or killed: the numbers of every job that finished come from its stats file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use wildcards_core::output::write_atomic;

use crate::job::{JobOutcome, JobSpec, JobStatus};
use crate::report::{JobRecord, RunInfo};

/// The record's file name in the output folder.
pub const RECORD_FILE: &str = "batch-run.json";

/// What `batch-run.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub manifest: PathBuf,
    /// The output folder as the run named it (the report shows this).
    pub output_dir: PathBuf,
    pub workers: usize,
    /// False while the run is going on (and forever, when it was killed).
    pub finished: bool,
    pub wall_s: f64,
    pub server: Option<String>,
    pub interrupted: bool,
    pub worker_peak_rss_kb: Vec<u64>,
    pub server_peak_rss_kb: Option<u64>,
    pub baseline: Option<String>,
    pub jobs: Vec<RecordedJob>,
}

/// One job and how it ended (`not_run` until it does).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedJob {
    pub spec: JobSpec,
    pub outcome: JobOutcome,
}

impl RunRecord {
    /// The record of a run as the report sees it.
    pub fn new(info: &RunInfo, records: &[JobRecord], finished: bool) -> Self {
        Self {
            manifest: info.manifest.clone(),
            output_dir: info.output_dir.clone(),
            workers: info.workers,
            finished,
            wall_s: info.wall_s,
            server: info.server.clone(),
            interrupted: info.interrupted,
            worker_peak_rss_kb: info.worker_peak_rss_kb.clone(),
            server_peak_rss_kb: info.server_peak_rss_kb,
            baseline: info.baseline.clone(),
            jobs: records
                .iter()
                .map(|r| RecordedJob { spec: r.spec.clone(), outcome: r.outcome.clone() })
                .collect(),
        }
    }

    /// Writes `batch-run.json` into `dir` (atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        write_atomic(&dir.join(RECORD_FILE), json.as_bytes())
    }

    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORD_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} has no {RECORD_FILE}, which a batch writes into its output folder: give the \
                 output folder of a batch (or run its manifest again with --resume)",
                dir.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is unreadable", path.display()))
    }
}

/// The report's input rebuilt from the output folder `dir`: the run record, with each job's
/// paths moved under `dir` (so that the folder can be moved or copied) and, when the run never
/// finished, every job that did finish taken from its stats file.
pub fn rebuild(dir: &Path) -> Result<(RunInfo, Vec<JobRecord>)> {
    let record = RunRecord::load(dir)?;
    // The recorded folder name when it is this folder (the report then reads the same).
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let output_dir = match same(&record.output_dir, dir) {
        true => record.output_dir.clone(),
        false => dir.to_path_buf(),
    };
    let info = RunInfo {
        manifest: record.manifest.clone(),
        output_dir,
        workers: record.workers,
        wall_s: record.wall_s,
        server: record.server.clone(),
        interrupted: record.interrupted || !record.finished,
        worker_peak_rss_kb: record.worker_peak_rss_kb.clone(),
        server_peak_rss_kb: record.server_peak_rss_kb,
        baseline: record.baseline.clone(),
        baseline_notes: Vec::new(),
    };
    let records = record
        .jobs
        .into_iter()
        .map(|mut job| {
            let rel = job.spec.output.strip_prefix(&record.output_dir).map(Path::to_path_buf);
            let name = job.spec.output.file_name().map(PathBuf::from).unwrap_or_default();
            job.spec.output = info.output_dir.join(rel.unwrap_or(name));
            if !record.finished && job.outcome.status == JobStatus::NotRun {
                if let Some(mut done) = super::previous_outcome(&job.spec) {
                    done.status = JobStatus::Succeeded;
                    job.outcome = done;
                }
            }
            JobRecord::new(job.spec, job.outcome)
        })
        .collect();
    Ok((info, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{BatchStats, JobMetrics};
    use wildcards_core::stats::{Execution, Metadata, StatsFile, StructureStats};

    /// A run killed after its start: the record says nothing ran, but the first job's output
    /// and stats file are there, so the rebuilt report counts it as succeeded.
    #[test]
    fn a_killed_run_is_rebuilt_from_the_stats_files() {
        let dir = tempfile::tempdir().unwrap();
        let m = crate::manifest::parse(
            "config: {output_dir: out}\njobs:\n  - {name: a}\n  - {name: b}\n",
            &dir.path().join("m.yaml"),
        )
        .unwrap();
        let out = &m.config.output_dir;
        std::fs::create_dir_all(out).unwrap();
        let info = RunInfo {
            manifest: m.path.clone(),
            output_dir: out.clone(),
            workers: 2,
            ..Default::default()
        };
        let not_run = |spec: &JobSpec| {
            let outcome = JobOutcome {
                status: JobStatus::NotRun,
                error: None,
                duration_s: 0.0,
                metrics: None,
            };
            JobRecord::new(spec.clone(), outcome)
        };
        let records: Vec<JobRecord> = m.jobs.iter().map(not_run).collect();
        RunRecord::new(&info, &records, false).save(out).unwrap();

        let a = &m.jobs[0];
        std::fs::write(&a.output, "x: [a, b]\n").unwrap();
        let structure = StructureStats { categories: 1, items: 2, ..Default::default() };
        let stats = StatsFile {
            execution: Execution::now(1.5),
            metadata: Metadata { dataset: "tencent".into(), output: None, config: a.config() },
            structure: structure.clone(),
            lint: None,
            reuse: None,
            events: Vec::new(),
        };
        let mut value = serde_json::to_value(&stats).unwrap();
        let batch = BatchStats {
            job: "a".into(),
            param_hash: a.param_hash(),
            embed_texts: 0,
            embed_cache_hits: 0,
            output_bytes: Some(10),
            output_sha256: Some(crate::job::sha256_hex(b"x: [a, b]\n")),
        };
        value["batch"] = serde_json::to_value(&batch).unwrap();
        std::fs::write(a.stats_path(), value.to_string()).unwrap();

        let (info, records) = rebuild(out).unwrap();
        assert!(info.interrupted, "a run that never finished reads as interrupted");
        assert_eq!(info.workers, 2);
        assert_eq!(records[0].outcome.status, JobStatus::Succeeded);
        assert_eq!(records[0].outcome.duration_s, 1.5);
        let metrics = JobMetrics { structure, ..Default::default() };
        assert_eq!(records[0].outcome.metrics.as_ref(), Some(&metrics));
        assert_eq!(records[1].outcome.status, JobStatus::NotRun);
        assert!(RunRecord::load(dir.path()).is_err(), "no record: not a batch folder");
    }
}
