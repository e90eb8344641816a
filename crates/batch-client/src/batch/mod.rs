//! `batch-client MANIFEST` (also `wildcards-gen batch MANIFEST`): run a manifest of
//! experiments in worker processes and write one consolidated report.
//!
//! 1. The manifest is parsed and validated completely first: any problem exits 2 and nothing
//!    is written. `--dry-run` prints the expanded job table.
//! 2. With `--resume`, jobs whose output and stats file exist for the same effective
//!    parameters are not run again.
//! 3. If a job needs embeddings, the embed-server is found (or a private one started).
//! 4. The jobs run on `--workers` worker processes ([`pool`], [`worker`]).
//! 5. `report.md` and `summary.csv` are written, also after Ctrl-C (with what finished).
//!
//! Exit status: 0 all jobs succeeded, 1 some failed, 2 manifest or usage error (nothing ran),
//! 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM.

pub mod folder;
pub mod pool;
pub mod progress;
pub mod protocol;
pub mod record;
pub mod worker;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::job::{BatchStats, JobMetrics, JobOutcome, JobSpec, JobStatus};
use crate::manifest::{self, Manifest};
use crate::report::{self, JobRecord, RunInfo};
use anyhow::Context;
use clap::Args;
use wildcards_core::stats::StatsFile;

use progress::{Mode, Progress};

/// Exit status: every job succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one job failed (the others ran; see report.md).
pub const EXIT_JOBS_FAILED: u8 = 1;
/// Exit status: the manifest or the command line is wrong; nothing ran.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: stopped by Ctrl-C (the report of what finished was written).
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit status: stopped by SIGTERM (the report of what finished was written).
pub const EXIT_TERMINATED: u8 = 143;

/// The end of `--help` for a batch: a manifest to start from, and the exit statuses.
pub const MANIFEST_HELP: &str = "\
A manifest (YAML; paths relative to it):

  config:
    output_dir: results          # skeletons, .stats.json, report.md, summary.csv
    dataset: tencent             # tencent | imagenet | coco | openimages
    analyze: true                # structure stats + lint outlier count per job
    html: true                   # a skeleton viewer <output stem>.html per job
    default_params: {preset: balanced}
    baseline: baseline           # optional: Jaccard / ARI of every job against this one
  jobs:
    - name: baseline
      params: {smart: true}
  matrix:                        # every combination of the axes, named matrix_leaf20_thresh0.1
    base_params: {smart: true, semantic_clean: true}
    axes:
      min_leaf_size: [20, 50]
      semantic_threshold: [0.1, 0.2]

Check it first with --dry-run. Exit status: 0 every job succeeded, 1 some job failed (the \
others still ran; see report.md), 2 manifest or usage error (nothing was run), 130 stopped by \
Ctrl-C (SIGINT), 143 stopped by SIGTERM (after either, run again with --resume to finish).";

/// Options of a batch run.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// The manifest (YAML: config, jobs, matrix) to run. (Optional to clap only so that
    /// `report DIR` parses; a run without one is a usage error.)
    pub manifest: Option<PathBuf>,

    /// Worker processes running jobs in parallel (capped at the number of jobs).
    #[arg(short, long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Fail a job that runs longer than this many seconds (its worker is stopped and a fresh
    /// one takes the next job).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub job_timeout: Option<f64>,

    /// The embed-server (`host:port` or `http://host:port`), or several separated by commas
    /// (`gpu1:50051,gpu2:50051`: requests are spread over those that answer, and a server
    /// that dies mid-batch is failed over). When none answers and a job needs embeddings, a
    /// private embed-server is started for the run.
    #[arg(long, value_name = "ADDR", env = "WILDCARDS_EMBED_SERVER")]
    pub server: Option<String>,

    /// Skip jobs whose output and stats file exist for the same effective parameters.
    #[arg(long)]
    pub resume: bool,

    /// Run even though the output folder holds another manifest's results (they are
    /// removed first).
    #[arg(long)]
    pub force: bool,

    /// Print the expanded job table and exit without running anything.
    #[arg(long)]
    pub dry_run: bool,

    /// Compute every list's outlier scores and arrangement in every job, instead of reusing
    /// what another job of the folder already computed for the same list (the reuse store
    /// `OUTPUT_DIR/.reuse`; the outputs are the same either way).
    #[arg(long)]
    pub no_reuse: bool,

    /// Run a manifest of more than 1,000 jobs (without it such a batch stops and says how big
    /// it is, so a mistyped axis does not start hours of work).
    #[arg(long)]
    pub yes: bool,

    /// Write outputs and the report here instead of the manifest's `config.output_dir`.
    #[arg(short, long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// No progress display or log lines; errors and the exit status only.
    #[arg(short, long)]
    pub quiet: bool,

    /// Folder with the dataset files (default: env WILDCARDS_DATA_DIR, else the per-user
    /// cache dir). A job's or the manifest's `data_dir` wins.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// WordNet 3.0 database folder (default: WNHOME, WORDNET_DIR, /usr/share/wordnet, NLTK
    /// data dirs).
    #[arg(long, value_name = "DIR")]
    pub wordnet_dir: Option<PathBuf>,

    /// File holding the token of an embed-server started with --api-key-file (default: env
    /// WILDCARDS_EMBED_TOKEN); the workers read it too.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// Set to `1` by the pool for the worker processes it starts. Worker mode needs it and the
/// hidden `--worker` flag both, so no typo or prefix of a public flag (`--worker 3` for
/// `--workers 3`) can reach it: without the variable `--worker` is an unknown argument.
pub const WORKER_ENV: &str = "WILDCARDS_BATCH_WORKER";

/// The command line of a worker process (see [`WORKER_ENV`]).
#[derive(clap::Parser, Debug)]
#[command(name = "batch-client worker", hide = true)]
struct WorkerCli {
    /// Run as a worker of another batch-client (jobs on stdin, events on stdout).
    #[arg(long, required = true)]
    worker: bool,
    #[arg(long)]
    server: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    wordnet_dir: Option<PathBuf>,
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// Whether this process was started by a batch as a worker ([`WORKER_ENV`] is `1`).
pub fn is_worker_process() -> bool {
    std::env::var_os(WORKER_ENV).is_some_and(|v| v == "1")
}

/// Runs a worker from its command line (`args`: the program name first, then what follows
/// `batch-client` or `wildcards-gen batch`); call it when [`is_worker_process`].
pub fn worker_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    if !args.iter().any(|a| a == "--worker") {
        eprintln!(
            "error: {WORKER_ENV}=1 is set, which only a batch's own worker processes use; unset \
             it to run a batch"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let cli = match <WorkerCli as clap::Parser>::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    debug_assert!(cli.worker);
    worker::run(worker::WorkerOptions {
        server: cli.server,
        data_dir: cli.data_dir,
        wordnet_dir: cli.wordnet_dir,
        token_file: cli.token_file,
    })
}

/// A batch command line: run a manifest (the [`BatchArgs`]), or `report DIR`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BatchCommand {
    #[command(subcommand)]
    pub command: Option<BatchSubcommand>,
    #[command(flatten)]
    pub run: BatchArgs,
}

/// What a batch command does besides running a manifest.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BatchSubcommand {
    /// Rebuild report.md, summary.csv and report.html (and missing job viewers) of a batch's
    /// output folder from its run record and stats files, without running anything; also for
    /// an interrupted or partial run.
    Report {
        /// The batch's output folder (holds batch-run.json).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print errors only.
        #[arg(short, long)]
        quiet: bool,
    },
}

impl BatchCommand {
    /// Runs it; `invocation` as for [`main`].
    pub fn run(self, invocation: &[&str]) -> ExitCode {
        match self.command {
            Some(BatchSubcommand::Report { dir, quiet }) => report_dir(&dir, quiet),
            None => main(self.run, invocation),
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// Runs a batch and returns the process exit status. `invocation` is what
/// follows the executable to reach these arguments (`["batch"]` for `wildcards-gen batch`),
/// so that workers can be started as the same program.
pub fn main(args: BatchArgs, invocation: &[&str]) -> ExitCode {
    let Some(path) = args.manifest.clone() else {
        eprintln!("error: give the manifest to run, or `report DIR` (see --help)");
        return ExitCode::from(EXIT_USAGE);
    };
    let manifest = match manifest::load(&path) {
        Ok(m) => without_reuse(
            match &args.output_dir {
                Some(dir) => relocate(m, dir),
                None => m,
            },
            args.no_reuse,
        ),
        Err(e) => {
            eprintln!("error: invalid manifest {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.dry_run {
        print_dry_run(&manifest);
        return ExitCode::from(EXIT_OK);
    }
    if manifest.jobs.len() > CONFIRM_ABOVE_JOBS && !args.yes {
        eprintln!("error: {}", too_many_jobs(&manifest, args.workers));
        return ExitCode::from(EXIT_USAGE);
    }
    match run(&args, &manifest, invocation) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_JOBS_FAILED)
        }
    }
}

/// A batch of more jobs than this runs only with `--yes`.
pub const CONFIRM_ABOVE_JOBS: usize = 1000;

/// Rough cost of one job for the `--yes` question: a smart Tencent job takes 0.3-3 s and
/// writes 0.2-0.35 MB (skeleton and stats; see the README's figures); semantic jobs take longer.
const SECONDS_PER_JOB: f64 = 2.0;
const MB_PER_JOB: f64 = 0.3;

/// The refusal of a batch above [`CONFIRM_ABOVE_JOBS`]: how many jobs, a rough time and size.
fn too_many_jobs(m: &Manifest, workers: u16) -> String {
    let jobs = m.jobs.len();
    let minutes = jobs as f64 * SECONDS_PER_JOB / f64::from(workers.max(1)) / 60.0;
    format!(
        "{} expands to {jobs} jobs (more than {CONFIRM_ABOVE_JOBS}): roughly {minutes:.0} min on \
         {workers} worker{} at ~{SECONDS_PER_JOB:.0} s a job (semantic jobs take longer) and \
         ~{:.0} MB of outputs in {}; run again with --yes to run them all, or check the grid \
         with --dry-run",
        m.path.display(),
        if workers == 1 { "" } else { "s" },
        jobs as f64 * MB_PER_JOB,
        m.config.output_dir.display()
    )
}

/// The manifest with no reuse store when `no_reuse` (`--no-reuse`).
fn without_reuse(mut m: Manifest, no_reuse: bool) -> Manifest {
    if no_reuse {
        m.jobs.iter_mut().for_each(|job| job.reuse_dir = None);
    }
    m
}

/// The manifest with its outputs moved from `config.output_dir` to `dir` (`--output-dir`).
fn relocate(mut m: Manifest, dir: &std::path::Path) -> Manifest {
    for job in &mut m.jobs {
        if let Ok(rel) = job.output.strip_prefix(&m.config.output_dir) {
            job.output = dir.join(rel);
        }
        if job.reuse_dir.is_some() {
            job.reuse_dir = Some(dir.join(crate::job::REUSE_DIR));
        }
    }
    m.config.output_dir = dir.to_path_buf();
    m
}

fn print_dry_run(m: &Manifest) {
    let needs = m.jobs.iter().filter(|j| j.needs_embeddings()).count();
    crate::outln!(
        "{}: {} jobs -> {} ({} need the embedding server)\n",
        m.path.display(),
        m.jobs.len(),
        m.config.output_dir.display(),
        needs
    );
    crate::out!("{}", report::job_table(&m.jobs, &m.config.output_dir));
}

/// Runs the validated manifest; returns the exit status.
fn run(args: &BatchArgs, m: &Manifest, invocation: &[&str]) -> anyhow::Result<u8> {
    let out_dir = &m.config.output_dir;
    let _claim = match folder::claim(m, args.force, args.resume) {
        Ok(claim) => claim,
        Err(folder::Refused(why)) => {
            eprintln!("error: {why}");
            return Ok(EXIT_USAGE);
        }
    };
    let (stop, signal) = install_ctrl_c();

    let (resumed, to_run) = split_resumable(args.resume, &m.jobs);
    let workers = usize::from(args.workers).min(to_run.len()).max(1);
    let mode = output_mode(args);
    let progress = Progress::new(mode, to_run.len(), workers);
    announce(&progress, m, workers, resumed.len());

    let mut outcomes: HashMap<usize, JobOutcome> = resumed;
    let (server, private) = server_or_fail_jobs(args, m, &to_run, &progress, &mut outcomes);
    let runnable: Vec<JobSpec> =
        to_run.into_iter().filter(|j| !outcomes.contains_key(&j.index)).collect();
    let server_note = match (&server, &private) {
        (Some(addr), Some(_)) => Some(format!("{addr} (private, started and stopped by this run)")),
        (Some(addr), None) => Some(format!("{addr} (shared)")),
        _ => None,
    };
    let mut info = RunInfo {
        manifest: m.path.clone(),
        output_dir: out_dir.clone(),
        workers,
        server: server_note,
        baseline: m.config.baseline.clone(),
        ..Default::default()
    };
    // Written now so that `batch-client report DIR` works even if this run is killed.
    record::RunRecord::new(&info, &records_in_order(m, outcomes.clone()), false).save(out_dir)?;

    let cfg = pool::PoolConfig {
        command: worker_command(args, invocation, server.as_deref())?,
        workers,
        job_timeout: args.job_timeout.map(Duration::from_secs_f64),
    };
    // While the jobs run, a private server that dies is started again (see server.rs).
    let jobs_done = AtomicBool::new(false);
    let pooled = std::thread::scope(|scope| {
        if let Some(p) = &private {
            let (jobs_done, progress) = (&jobs_done, &progress);
            scope.spawn(move || p.supervise(jobs_done, &|msg: &str| progress.note(msg)));
        }
        let pooled = pool::run(&cfg, runnable, &progress, &stop);
        jobs_done.store(true, Ordering::SeqCst);
        pooled
    });
    outcomes.extend(pooled.outcomes);
    let interrupted = stop.load(Ordering::SeqCst);
    progress.finish();

    let mut records = records_in_order(m, outcomes);
    info.wall_s = progress.elapsed().as_secs_f64();
    info.interrupted = interrupted;
    info.worker_peak_rss_kb = pooled.worker_peak_rss_kb.values().copied().collect();
    info.server_peak_rss_kb =
        private.as_ref().and_then(|p| embed_api::process::peak_rss_kib(p.pid()));
    let written = record::RunRecord::new(&info, &records, true)
        .save(out_dir)
        .and_then(|()| write_all_reports(&mut info, &mut records));
    if let Some(p) = private {
        p.stop();
        if mode != Mode::Quiet {
            progress::say("stopped the private embed-server".into());
        }
    }
    let written = written?;
    let code = finish(mode, &info, &records, &written);
    let terminated = signal.load(Ordering::SeqCst) == signal_hook::consts::SIGTERM;
    Ok(if code == EXIT_INTERRUPTED && terminated { EXIT_TERMINATED } else { code })
}

/// The report files of a batch, where they were written.
#[derive(Debug, Clone)]
pub struct Written {
    pub md: PathBuf,
    pub csv: PathBuf,
    pub html: PathBuf,
}

/// Compares the outputs (identical ones, the baseline), writes report.md, summary.csv and
/// report.html, and the viewer of every finished job that wants one and lacks it (a job
/// resumed from a run without viewers). The run and `batch-client report DIR` both end here,
/// so both give the same files.
pub fn write_all_reports(info: &mut RunInfo, records: &mut [JobRecord]) -> anyhow::Result<Written> {
    report::mark_same_outputs(records);
    info.baseline_notes = match &info.baseline {
        Some(b) => report::compare_with_baseline(records, b),
        None => Vec::new(),
    };
    for r in records.iter().filter(|r| r.outcome.status.is_success() && r.spec.wants_viewer()) {
        if !r.spec.viewer_path().exists() {
            let lint = crate::viewer::read_lint(&r.spec.stats_path()).ok().flatten();
            crate::viewer::write_viewer(&r.spec.output, lint.as_ref(), &r.spec.viewer_path())
                .with_context(|| format!("the viewer of job {}", r.spec.name))?;
        }
    }
    let (md, csv) = report::write_reports(info, records)?;
    let html = crate::report_html::write_report_html(info, records)?;
    Ok(Written { md, csv, html })
}

/// `batch-client report DIR`: rebuilds the report files of the batch whose output folder is
/// `dir` from its run record and stats files, without running anything.
pub fn report_dir(dir: &std::path::Path, quiet: bool) -> ExitCode {
    let result = record::rebuild(dir).and_then(|(mut info, mut records)| {
        let written = write_all_reports(&mut info, &mut records)?;
        Ok((info, records, written))
    });
    match result {
        Ok((info, records, w)) => {
            let mode = if quiet { Mode::Quiet } else { Mode::Plain };
            let _ = finish(mode, &info, &records, &w);
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_JOBS_FAILED)
        }
    }
}

/// [`choose_server`]; when no server can be had, the jobs that need embeddings fail with
/// the reason (the others still run).
fn server_or_fail_jobs(
    args: &BatchArgs,
    m: &Manifest,
    to_run: &[JobSpec],
    progress: &Progress,
    outcomes: &mut HashMap<usize, JobOutcome>,
) -> (Option<String>, Option<crate::server::PrivateServer>) {
    match choose_server(args, m, to_run, progress) {
        Ok(s) => s,
        Err(e) => {
            let reason = format!("{e:#}");
            progress.note(&format!("error: {reason}"));
            for j in to_run.iter().filter(|j| j.needs_embeddings()) {
                outcomes.insert(j.index, JobOutcome::failed(reason.clone(), 0.0));
            }
            (None, None)
        }
    }
}

fn output_mode(args: &BatchArgs) -> Mode {
    if args.quiet {
        Mode::Quiet
    } else if std::io::stdout().is_terminal() {
        Mode::Bars
    } else {
        Mode::Plain
    }
}

/// The first lines of a run: what runs where, and what `--resume` skips.
fn announce(progress: &Progress, m: &Manifest, workers: usize, resumed: usize) {
    progress.note(&format!(
        "batch {}: {} jobs on {} worker{} -> {}",
        m.path.display(),
        m.jobs.len(),
        workers,
        if workers == 1 { "" } else { "s" },
        m.config.output_dir.display()
    ));
    if resumed > 0 {
        progress.note(&format!(
            "--resume: {resumed} of {} jobs already done with the same parameters, not run again",
            m.jobs.len()
        ));
    }
}

/// One record per manifest job, in manifest order; a job without an outcome never ran.
fn records_in_order(m: &Manifest, mut outcomes: HashMap<usize, JobOutcome>) -> Vec<JobRecord> {
    m.jobs
        .iter()
        .map(|spec| {
            let outcome = outcomes.remove(&spec.index).unwrap_or(JobOutcome {
                status: JobStatus::NotRun,
                error: None,
                duration_s: 0.0,
                metrics: None,
            });
            JobRecord::new(spec.clone(), outcome)
        })
        .collect()
}

/// Says how the run went (and each failure) and returns the exit status.
fn finish(mode: Mode, info: &RunInfo, records: &[JobRecord], written: &Written) -> u8 {
    let count = |s: JobStatus| records.iter().filter(|r| r.outcome.status == s).count();
    let failed = count(JobStatus::Failed);
    if mode != Mode::Quiet {
        let unfinished = count(JobStatus::Interrupted) + count(JobStatus::NotRun);
        progress::say(format!(
            "{}{} jobs: {} succeeded, {} resumed, {} failed{} in {:.1} s\nreport: {}\nsummary: {}\n\
             charts: {}",
            if info.interrupted { "interrupted; " } else { "" },
            records.len(),
            count(JobStatus::Succeeded),
            count(JobStatus::Resumed),
            failed,
            if info.interrupted { format!(", {unfinished} not finished") } else { String::new() },
            info.wall_s,
            written.md.display(),
            written.csv.display(),
            written.html.display()
        ));
    }
    for r in records.iter().filter(|r| r.outcome.status == JobStatus::Failed) {
        eprintln!("job {} failed: {}", r.spec.name, r.outcome.error.as_deref().unwrap_or("?"));
    }
    if info.interrupted {
        EXIT_INTERRUPTED
    } else if failed > 0 {
        EXIT_JOBS_FAILED
    } else {
        EXIT_OK
    }
}

/// Ctrl-C (SIGINT) and SIGTERM set the returned flag: the pool stops its workers and the report
/// of what finished is written. The other value is the signal, for the exit status (128 + the
/// signal: 130 or 143, as a shell reports it). A second signal exits at once.
fn install_ctrl_c() -> (Arc<AtomicBool>, Arc<AtomicI32>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicI32::new(0));
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("warning: Ctrl-C will not stop the batch cleanly: {e}");
            return (stop, received);
        }
    };
    let (flag, first) = (Arc::clone(&stop), Arc::clone(&received));
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if first.swap(signal, Ordering::SeqCst) != 0 {
                std::process::exit(128 + signal);
            }
            eprintln!(
                "\ninterrupted: stopping the workers and writing the report (Ctrl-C again to quit now)"
            );
            flag.store(true, Ordering::SeqCst);
        }
    });
    (stop, received)
}

/// With `--resume`: the jobs whose outputs are there for the same parameters (with their
/// recorded numbers), and the rest to run.
fn split_resumable(resume: bool, jobs: &[JobSpec]) -> (HashMap<usize, JobOutcome>, Vec<JobSpec>) {
    let mut done = HashMap::new();
    let mut to_run = Vec::new();
    for job in jobs {
        match resume.then(|| previous_outcome(job)).flatten() {
            Some(outcome) => {
                done.insert(job.index, outcome);
            }
            None => to_run.push(job.clone()),
        }
    }
    (done, to_run)
}

/// The outcome recorded by an earlier run of `job`, when its output exists and its stats file
/// carries the same parameter hash.
fn previous_outcome(job: &JobSpec) -> Option<JobOutcome> {
    if !job.output.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(job.stats_path()).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let batch: BatchStats = serde_json::from_value(value.get("batch")?.clone()).ok()?;
    if batch.param_hash != job.param_hash() || !output_matches(job, &batch) {
        return None;
    }
    let stats: StatsFile = serde_json::from_value(value).ok()?;
    Some(JobOutcome {
        status: JobStatus::Resumed,
        error: None,
        duration_s: stats.execution.duration_s,
        metrics: Some(metrics_from_stats(&stats, &batch)),
    })
}

/// Whether the job's output is the file its stats recorded (size, then SHA-256); stats
/// written before outputs were recorded cannot tell, and count as not matching.
fn output_matches(job: &JobSpec, batch: &BatchStats) -> bool {
    let (Some(bytes), Some(sha)) = (batch.output_bytes, &batch.output_sha256) else {
        return false;
    };
    let same_size = std::fs::metadata(&job.output).is_ok_and(|m| m.len() == bytes);
    same_size
        && std::fs::read(&job.output).is_ok_and(|content| &crate::job::sha256_hex(&content) == sha)
}

/// The report numbers of a job as its stats file records them.
pub fn metrics_from_stats(stats: &StatsFile, batch: &BatchStats) -> JobMetrics {
    JobMetrics {
        structure: stats.structure.clone(),
        outliers: stats.lint.as_ref().map(|l| l.outliers),
        outlier_rate: stats.lint.as_ref().map(|l| l.outlier_rate),
        embed_texts: batch.embed_texts,
        embed_cache_hits: batch.embed_cache_hits,
        reuse_hits: stats.reuse.map_or(0, |r| r.hits),
        reuse_misses: stats.reuse.map_or(0, |r| r.misses),
    }
}

/// The server address for the workers (`None` when no job needs one), and the private server
/// when this run had to start one.
fn choose_server(
    args: &BatchArgs,
    m: &Manifest,
    to_run: &[JobSpec],
    progress: &Progress,
) -> anyhow::Result<(Option<String>, Option<crate::server::PrivateServer>)> {
    if !to_run.iter().any(JobSpec::needs_embeddings) {
        return Ok((None, None));
    }
    let log = m.config.output_dir.join("embed-server.log");
    let choice = crate::server::find_or_start(args.server.as_deref(), &log, &|s| progress.note(s))?;
    Ok((Some(choice.addr), choice.private))
}

/// The command line that starts one worker: this executable in worker mode (the pool adds
/// [`WORKER_ENV`]).
fn worker_command(
    args: &BatchArgs,
    invocation: &[&str],
    server: Option<&str>,
) -> anyhow::Result<Vec<OsString>> {
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot locate the running executable: {e}"))?;
    let mut cmd: Vec<OsString> = vec![exe.into()];
    cmd.extend(invocation.iter().map(OsString::from));
    cmd.push("--worker".into());
    if let Some(s) = server {
        cmd.extend(["--server".into(), s.into()]);
    }
    if let Some(d) = &args.data_dir {
        cmd.extend(["--data-dir".into(), d.clone().into_os_string()]);
    }
    if let Some(d) = &args.wordnet_dir {
        cmd.extend(["--wordnet-dir".into(), d.clone().into_os_string()]);
    }
    if let Some(f) = &args.token_file {
        // Checked here, once, rather than failing every job in its worker.
        crate::embedder::Access { timeout: None, token_file: Some(f.clone()) }.token()?;
        cmd.extend(["--token-file".into(), f.clone().into_os_string()]);
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The manifest shown by `--help` is valid and expands to the 1 + 2x2 jobs it promises.
    #[test]
    fn the_help_manifest_is_valid() {
        let yaml: String = MANIFEST_HELP
            .lines()
            .skip_while(|l| !l.starts_with("  config:"))
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
            .collect();
        let m = crate::manifest::parse(&yaml, std::path::Path::new("help.yaml"))
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let names: Vec<&str> = m.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "baseline",
                "matrix_leaf20_thresh0.1",
                "matrix_leaf20_thresh0.2",
                "matrix_leaf50_thresh0.1",
                "matrix_leaf50_thresh0.2"
            ]
        );
        assert_eq!(m.config.baseline.as_deref(), Some("baseline"));
    }
}
