//! `batch-client MANIFEST` (also `wildcards-gen batch MANIFEST`): run a manifest of
//! experiments in worker processes and write one consolidated report.
//!
//! 1. The manifest is parsed and validated completely first: any problem exits 2 and nothing
//!    is written. `--dry-run` prints the expanded job table.
//! 2. With `--resume`, jobs whose output and stats file exist for the same effective
//!    parameters are not run again.
//! 3. If a job needs embeddings, the embed-server is found (or a private one started).
//! 4. The jobs run on an [`Executor`]: `--workers` local worker processes ([`pool`],
//!    [`worker`]; the default), or one Slurm job array ([`slurm`], `--executor slurm`).
//! 5. `report.md` and `summary.csv` are written, also after Ctrl-C (with what finished).
//!
//! Exit status: 0 all jobs succeeded, 1 some failed, 2 manifest or usage error (nothing ran),
//! 130 interrupted by Ctrl-C (SIGINT), 143 stopped by SIGTERM.

pub mod folder;
pub mod pool;
pub mod progress;
pub mod protocol;
pub mod record;
pub mod slurm;
pub mod worker;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::job::{BatchStats, JobMetrics, JobOutcome, JobSpec, JobStatus};
use crate::manifest::{self, Manifest};
use crate::report::{self, JobRecord, RunInfo};
use anyhow::Context;
use clap::Args;
use serde::{Deserialize, Serialize};
use wildcards_core::stats::StatsFile;

use crate::slurm_options::{check_extra_arg, check_mem, check_time, SlurmOptions};

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
    # slurm: {partition: short, time: 30, cpus_per_task: 4}   # for --executor slurm
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

    /// Worker processes running jobs in parallel (capped at the number of jobs). With
    /// `--executor slurm`: array tasks running at once (the `%` of `sbatch --array`).
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

    /// PEM CA certificate to trust for an `https://` embed-server whose certificate a
    /// private CA signed (default: env WILDCARDS_EMBED_CA; the public web roots are always
    /// trusted). The workers get it too.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

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

    /// Where the jobs run: `local` worker processes, or `slurm`: one Slurm job array whose
    /// tasks each run a slice of the jobs (the output folder must be on a filesystem the
    /// compute nodes share; see "Running on a cluster" in the README).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    pub executor: ExecutorKind,

    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Where a batch's jobs run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecutorKind {
    /// Worker processes on this machine.
    #[default]
    Local,
    /// One Slurm job array (sbatch); the client follows it, or exits with --detach.
    Slurm,
}

/// The options of `--executor slurm`; a flag wins over the manifest's `config.slurm`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Slurm (with --executor slurm)")]
pub struct SlurmArgs {
    /// Jobs per array task (default: about a minute of work per task, judged from the jobs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs_per_task: Option<u32>,
    /// CPUs of each array task, which runs that many worker processes (default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub cpus_per_task: Option<u16>,
    /// Partition to submit to (`sbatch --partition`).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Time limit of each array task: minutes, MM:SS, HH:MM:SS or D-HH:MM:SS.
    #[arg(long, value_name = "LIMIT", value_parser = check_time)]
    pub time: Option<String>,
    /// Account to charge (`sbatch --account`).
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// Quality of service (`sbatch --qos`).
    #[arg(long, value_name = "NAME")]
    pub qos: Option<String>,
    /// Memory of each array task (`sbatch --mem`), e.g. 4G.
    #[arg(long, value_name = "SIZE", value_parser = check_mem)]
    pub mem: Option<String>,
    /// One more sbatch option, repeatable: `--sbatch-arg=--constraint=avx2`.
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true,
          value_parser = check_extra_arg)]
    pub sbatch_args: Vec<String>,
    /// Submit the array, print its id and exit; `batch-client status DIR` follows it and
    /// `batch-client report DIR` writes the report when it has finished.
    #[arg(long)]
    pub detach: bool,
}

impl SlurmArgs {
    /// The flags as Slurm options (to put over the manifest's).
    pub fn options(&self) -> SlurmOptions {
        SlurmOptions {
            partition: self.partition.clone(),
            time: self.time.clone(),
            account: self.account.clone(),
            qos: self.qos.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            extra_args: self.sbatch_args.clone(),
        }
    }

    /// The first Slurm flag given, if any (they mean nothing to the local executor).
    fn first_given(&self) -> Option<&'static str> {
        let o = self.options();
        [
            (self.jobs_per_task.is_some(), "--jobs-per-task"),
            (o.cpus_per_task.is_some(), "--cpus-per-task"),
            (o.partition.is_some(), "--partition"),
            (o.time.is_some(), "--time"),
            (o.account.is_some(), "--account"),
            (o.qos.is_some(), "--qos"),
            (o.mem.is_some(), "--mem"),
            (!o.extra_args.is_empty(), "--sbatch-arg"),
            (self.detach, "--detach"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }
}

/// The folders and files every worker is told about (from the batch's flags).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkerPaths {
    pub data_dir: Option<PathBuf>,
    pub wordnet_dir: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

impl WorkerPaths {
    fn of(args: &BatchArgs) -> Self {
        Self {
            data_dir: args.data_dir.clone(),
            wordnet_dir: args.wordnet_dir.clone(),
            token_file: args.token_file.clone(),
        }
    }
}

/// What runs a batch's jobs: the local worker pool or a Slurm job array. The rest of a batch
/// (manifest, `--resume`, server, run record, report) is the same for both.
pub trait Executor {
    /// Runs `jobs`, telling `progress` about each, until all have ended or `stop` is set (then
    /// what did not finish is left out, or marked interrupted).
    fn execute(
        &self,
        jobs: Vec<JobSpec>,
        progress: &Progress,
        stop: &AtomicBool,
    ) -> anyhow::Result<Executed>;
}

/// What an executor did with its jobs.
#[derive(Debug, Default)]
pub struct Executed {
    /// Each job's outcome by job index.
    pub outcomes: HashMap<usize, JobOutcome>,
    /// Peak resident memory (KiB) of each worker process, when known.
    pub worker_peak_rss_kb: Vec<u64>,
    /// `--detach`: the submitted Slurm array's id; nothing has run yet.
    pub detached: Option<String>,
}

/// The default executor: `--workers` worker processes here; a private embed-server is
/// started again if it dies while they run.
struct LocalExecutor<'a> {
    cfg: pool::PoolConfig,
    private: Option<&'a crate::server::PrivateServer>,
}

impl Executor for LocalExecutor<'_> {
    fn execute(
        &self,
        jobs: Vec<JobSpec>,
        progress: &Progress,
        stop: &AtomicBool,
    ) -> anyhow::Result<Executed> {
        let jobs_done = AtomicBool::new(false);
        let pooled = std::thread::scope(|scope| {
            if let Some(p) = self.private {
                let jobs_done = &jobs_done;
                scope.spawn(move || p.supervise(jobs_done, &|msg: &str| progress.note(msg)));
            }
            let pooled = pool::run(&self.cfg, jobs, progress, stop);
            jobs_done.store(true, Ordering::SeqCst);
            pooled
        });
        Ok(Executed {
            outcomes: pooled.outcomes,
            worker_peak_rss_kb: pooled.worker_peak_rss_kb.values().copied().collect(),
            detached: None,
        })
    }
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
    if args.iter().any(|a| a == "--slurm-task") {
        return slurm::task_main(&args);
    }
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
    /// Say how a batch in its output folder stands, without running anything: its jobs by
    /// state, and for a Slurm run (also one submitted with --detach) the array's tasks by
    /// state.
    Status {
        /// The batch's output folder (holds batch-run.json).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

impl BatchCommand {
    /// Runs it; `invocation` as for [`main`].
    pub fn run(self, invocation: &[&str]) -> ExitCode {
        match self.command {
            Some(BatchSubcommand::Report { dir, quiet }) => report_dir(&dir, quiet),
            Some(BatchSubcommand::Status { dir }) => status_dir(&dir),
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
    if let Err(e) = crate::embedder::export_ca_cert(args.ca_cert.as_deref()) {
        eprintln!("error: {e:#}");
        return ExitCode::from(EXIT_USAGE);
    }
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
    if args.executor == ExecutorKind::Local {
        if let Some(flag) = args.slurm.first_given() {
            eprintln!("error: {flag} is an option of --executor slurm; add `--executor slurm`");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Some((field, problem, fix)) = args.slurm.options().problem() {
        eprintln!("error: the Slurm option {field}: {problem}\n  fix: {fix}");
        return ExitCode::from(EXIT_USAGE);
    }
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
    let slurm = args.executor == ExecutorKind::Slurm;
    let claimed = folder::claim(m, args.force, args.resume)
        .map_err(|folder::Refused(why)| why)
        .and_then(|claim| slurm::check_folder(out_dir, slurm).map(|()| claim));
    let _claim = match claimed {
        Ok(claim) => claim,
        Err(why) => {
            eprintln!("error: {why}");
            return Ok(EXIT_USAGE);
        }
    };
    let (stop, signal) = install_ctrl_c();

    let (resumed, to_run) = split_resumable(args.resume, &m.jobs);
    let workers = match slurm {
        true => usize::from(args.workers),
        false => usize::from(args.workers).min(to_run.len()).max(1),
    };
    let mode = output_mode(args);
    let progress = Progress::new(mode, to_run.len(), if slurm { 1 } else { workers });
    announce(&progress, m, workers, slurm, resumed.len());

    let mut outcomes: HashMap<usize, JobOutcome> = resumed;
    let servers = Servers::choose(args, m, &to_run, &progress, &mut outcomes);
    if let Err(why) = check_job_models(args, servers.addr.as_deref(), &to_run) {
        progress.finish();
        eprintln!("error: {why}");
        if let Some(p) = servers.private {
            p.stop();
        }
        return Ok(EXIT_USAGE);
    }
    let runnable: Vec<JobSpec> =
        to_run.into_iter().filter(|j| !outcomes.contains_key(&j.index)).collect();
    let mut info = RunInfo {
        manifest: m.path.clone(),
        output_dir: out_dir.clone(),
        workers,
        server: servers.note.clone(),
        baseline: m.config.baseline.clone(),
        ..Default::default()
    };
    // Written now so that `batch-client report DIR` works even if this run is killed.
    record::RunRecord::new(&info, &records_in_order(m, outcomes.clone()), false).save(out_dir)?;

    let executed = execute(args, m, invocation, &servers, runnable, &progress, &stop)?;
    if let Some(id) = &executed.detached {
        progress.finish();
        say_detached(mode, id, out_dir);
        return Ok(EXIT_OK);
    }
    outcomes.extend(executed.outcomes);
    let interrupted = stop.load(Ordering::SeqCst);
    progress.finish();

    let mut records = records_in_order(m, outcomes);
    info.wall_s = progress.elapsed().as_secs_f64();
    info.interrupted = interrupted;
    info.worker_peak_rss_kb = executed.worker_peak_rss_kb;
    info.server_peak_rss_kb =
        servers.private.as_ref().and_then(|p| embed_api::process::peak_rss_kib(p.pid()));
    let written = record::RunRecord::new(&info, &records, true)
        .save(out_dir)
        .and_then(|()| write_all_reports(&mut info, &mut records));
    if let Some(p) = servers.private {
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

/// Every job's `semantic_model` is a model of the server (one it serves, by name or alias):
/// checked once before any job runs, since an unknown name would fail every such job. A
/// server that does not answer here (a Slurm run's, on other nodes) is not checked; the
/// jobs then say it.
fn check_job_models(args: &BatchArgs, addr: Option<&str>, jobs: &[JobSpec]) -> Result<(), String> {
    let mut wanted: Vec<(String, &JobSpec)> = jobs
        .iter()
        .filter(|j| j.needs_embeddings())
        .map(|j| (j.config().semantic_model, j))
        .collect();
    let Some(addr) =
        addr.filter(|a| !wanted.is_empty() && crate::server::is_healthy(a, Duration::from_secs(2)))
    else {
        return Ok(());
    };
    let access =
        crate::embedder::Access { token_file: args.token_file.clone(), ..Default::default() };
    let token = access.token().map_err(|e| format!("{e:#}"))?;
    let options = embed_api::ClientOptions::from_env(Some(addr), token.as_deref());
    // Not reachable after all: the jobs say why.
    let Ok(info) = embed_api::EmbedPool::connect(options, None).and_then(|p| p.info()) else {
        return Ok(());
    };
    wanted.retain(|(model, _)| embed_api::models::find(&info, model).is_none());
    let Some((model, first)) = wanted.first() else { return Ok(()) };
    Err(format!(
        "job {:?} (and {} more): semantic_model {model:?} is not a model of the embed-server at \
         {addr}, which serves {}; set semantic_model in the manifest to one of these names",
        first.name,
        wanted.len() - 1,
        embed_api::models::describe(&info.models)
    ))
}

/// The embed-server of a run: the address the workers (or Slurm tasks) are given, the private
/// server this run started, and the report's line about it.
struct Servers {
    addr: Option<String>,
    private: Option<crate::server::PrivateServer>,
    note: Option<String>,
}

impl Servers {
    /// Local: [`server_or_fail_jobs`]. Slurm: never a private server of the client's (the
    /// tasks outlive it with --detach, and run on other nodes); see [`slurm`].
    fn choose(
        args: &BatchArgs,
        m: &Manifest,
        to_run: &[JobSpec],
        progress: &Progress,
        outcomes: &mut HashMap<usize, JobOutcome>,
    ) -> Self {
        if args.executor == ExecutorKind::Slurm {
            if !to_run.iter().any(JobSpec::needs_embeddings) {
                return Servers { addr: None, private: None, note: None };
            }
            let addr = embed_api::client::resolve_server(args.server.as_deref());
            if crate::server::is_healthy(&addr, Duration::from_secs(2)) {
                progress.note(&format!(
                    "using the embed-server at {addr} for the Slurm tasks (the compute nodes \
                     must reach it)"
                ));
                let note = Some(format!("{addr} (shared)"));
                return Servers { addr: Some(addr), private: None, note };
            }
            progress.note(&format!(
                "no embed-server answers at {addr} here: each Slurm task uses it if it answers \
                 on the task's node, else starts a private one there for its jobs"
            ));
            let note = format!("{addr} if it answered on a task's node, else a private one per Slurm task (started and stopped by the task)");
            return Servers { addr: Some(addr), private: None, note: Some(note) };
        }
        let (addr, private) = server_or_fail_jobs(args, m, to_run, progress, outcomes);
        let note = match (&addr, &private) {
            (Some(a), Some(_)) => Some(format!("{a} (private, started and stopped by this run)")),
            (Some(a), None) => Some(format!("{a} (shared)")),
            _ => None,
        };
        Servers { addr, private, note }
    }
}

/// Runs `jobs` on the executor `--executor` chose.
fn execute(
    args: &BatchArgs,
    m: &Manifest,
    invocation: &[&str],
    servers: &Servers,
    jobs: Vec<JobSpec>,
    progress: &Progress,
    stop: &AtomicBool,
) -> anyhow::Result<Executed> {
    let paths = WorkerPaths::of(args);
    let executor: Box<dyn Executor + '_> = match args.executor {
        ExecutorKind::Local => Box::new(LocalExecutor {
            cfg: pool::PoolConfig {
                command: worker_command(invocation, servers.addr.as_deref(), &paths)?,
                workers: usize::from(args.workers).min(jobs.len()).max(1),
                job_timeout: args.job_timeout.map(Duration::from_secs_f64),
                own_process_groups: true,
            },
            private: servers.private.as_ref(),
        }),
        ExecutorKind::Slurm => {
            if let Some(f) = &paths.token_file {
                // Checked here, once, rather than failing every job in its task.
                crate::embedder::Access { token_file: Some(f.clone()), ..Default::default() }
                    .token()?;
            }
            let spec = slurm::TaskSpec {
                manifest: m.path.clone(),
                slices: Vec::new(),
                workers: usize::from(
                    args.slurm.cpus_per_task.or(m.config.slurm.cpus_per_task).unwrap_or(1),
                ),
                job_timeout_s: args.job_timeout,
                server: servers.addr.clone(),
                paths,
                invocation: invocation.iter().map(|s| s.to_string()).collect(),
            };
            Box::new(slurm::SlurmExecutor::new(
                &m.config.output_dir,
                &m.path,
                m.config.slurm.overlaid(&args.slurm.options()),
                args.slurm.jobs_per_task.map(|n| n as usize),
                usize::from(args.workers),
                args.slurm.detach,
                spec,
            )?)
        }
    };
    executor.execute(jobs, progress, stop)
}

/// `--detach`: the array's id (alone with --quiet, for scripts) and what to run next.
fn say_detached(mode: Mode, id: &str, out_dir: &Path) {
    if mode == Mode::Quiet {
        progress::say(id.to_string());
        return;
    }
    let dir = out_dir.display();
    progress::say(format!(
        "detached: Slurm array {id} runs the jobs; follow it with `batch-client status {dir}`, \
         and write the report with `batch-client report {dir}` when it has finished"
    ));
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
/// `dir` from its run record and stats files, without running anything. For a Slurm run
/// (also a detached one) the tasks' results come first, and jobs of tasks Slurm ended early
/// are failed with its reason; a finished array's run is recorded as finished.
pub fn report_dir(dir: &std::path::Path, quiet: bool) -> ExitCode {
    let result = slurm::settle(dir).and_then(|survey| {
        if let Some(s) = survey.filter(|s| !s.settled) {
            eprintln!(
                "note: the Slurm array is still running; this report is partial\n{}",
                slurm::describe(dir, &s)
            );
        }
        record::rebuild(dir)
    });
    let result = result.and_then(|(mut info, mut records)| {
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

/// `batch-client status DIR`: how the batch in `dir` stands (see [`BatchSubcommand::Status`]).
pub fn status_dir(dir: &Path) -> ExitCode {
    let said = slurm::survey(dir).and_then(|survey| match survey {
        Some(s) => Ok(slurm::describe(dir, &s)),
        None => {
            let record = record::RunRecord::load(dir)?;
            let (_, records) = record::rebuild(dir)?;
            let count = |s: JobStatus| records.iter().filter(|r| r.outcome.status == s).count();
            let state = match (record.finished, record.interrupted) {
                (true, false) => "finished",
                (true, true) => "interrupted (Ctrl-C)",
                (false, _) => "running, or stopped before it finished",
            };
            Ok(format!(
                "{}: local run, {state}\njobs: {} — {} succeeded, {} resumed, {} failed, {} not \
                 finished",
                dir.display(),
                records.len(),
                count(JobStatus::Succeeded),
                count(JobStatus::Resumed),
                count(JobStatus::Failed),
                count(JobStatus::NotRun) + count(JobStatus::Interrupted)
            ))
        }
    });
    match said {
        Ok(text) => {
            progress::say(text);
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
fn announce(progress: &Progress, m: &Manifest, workers: usize, slurm: bool, resumed: usize) {
    let plural = if workers == 1 { "" } else { "s" };
    let on = match slurm {
        true => format!("as a Slurm array (at most {workers} task{plural} at once)"),
        false => format!("on {workers} worker{plural}"),
    };
    progress.note(&format!(
        "batch {}: {} jobs {on} -> {}",
        m.path.display(),
        m.jobs.len(),
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
        lint_method: stats.lint.as_ref().map(|l| l.method_used()),
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
    invocation: &[&str],
    server: Option<&str>,
    args: &WorkerPaths,
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
        crate::embedder::Access { token_file: Some(f.clone()), ..Default::default() }.token()?;
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
