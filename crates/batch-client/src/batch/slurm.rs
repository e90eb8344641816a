//! `--executor slurm`: the jobs of a batch run as ONE Slurm job array instead of local worker
//! processes; everything else (manifest, `--resume`, outputs, stats, report) is the batch's one
//! path.
//!
//! - The client writes the job specs into `output_dir/slurm/tasks.json` (the output folder must
//!   be on a filesystem the compute nodes share) and submits `slurm/batch.sh` with one
//!   `sbatch --array=0-(T-1)%W`: task `i` runs slice `i` of the jobs (`--jobs-per-task`,
//!   default about a minute of work) on a local worker pool of `cpus_per_task` workers; `%W`
//!   is `--workers`. Each task's stdout/stderr go to `slurm/task-<array>_<task>.out|.err`.
//! - A task writes each job's outcome to `slurm/results/<job index>.json` as soon as the job
//!   ends (its skeleton and stats file are written by then). The attached client follows
//!   those files (per-job lines) and `scontrol show job` (per-state task counts).
//! - A task that Slurm fails, cancels, times out or kills leaves jobs without a result: the
//!   client (or `report DIR` / `status DIR` for a detached run) marks them failed with the
//!   task's Slurm state and exit code. Ctrl-C cancels the array (`scancel`).
//! - Embeddings: the client looks for an embed-server (`--server`, env, default address); one
//!   that answers is handed to the tasks (it must be reachable from the compute nodes). When
//!   none answers, each task looks there itself and otherwise starts a private embed-server on
//!   its node for its own jobs: a server the client started would die with the client (and
//!   listen on its loopback only), which a `--detach`ed array outlives.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use wildcards_core::output::write_atomic;

use crate::job::{JobOutcome, JobSpec, JobStatus};
use crate::slurm_options::SlurmOptions;

use super::progress::{Mode, Progress};
use super::record::RunRecord;
use super::{pool, Executed, Executor, WorkerPaths};

/// The folder of the Slurm files inside the output folder.
pub const SLURM_DIR: &str = "slurm";
const TASKS_FILE: &str = "tasks.json";
const ARRAY_FILE: &str = "array.json";
const SCRIPT_FILE: &str = "batch.sh";
const RESULTS_DIR: &str = "results";

/// Wall time one array task aims at: clusters limit how many array tasks start per minute,
/// so tiny jobs are packed (see `--jobs-per-task`).
const TASK_SECONDS: f64 = 60.0;
/// Rough cost of a job for that packing: [`super::SECONDS_PER_JOB`] for a plain one; semantic
/// cleaning or arrangement (embeddings, clustering) about twice that.
const SEMANTIC_SECONDS_PER_JOB: f64 = 4.0;
/// How often the attached client reads the result files, and asks Slurm for the tasks' states.
const POLL: Duration = Duration::from_millis(250);
const QUERY_EVERY: Duration = Duration::from_millis(1000);
/// How long Ctrl-C waits for the cancelled tasks to end before writing the report anyway.
const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// What every array task reads from `slurm/tasks.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The manifest (for messages).
    pub manifest: PathBuf,
    /// Task `i` runs `slices[i]`.
    pub slices: Vec<Vec<JobSpec>>,
    /// Worker processes of each task (its `cpus_per_task`).
    pub workers: usize,
    pub job_timeout_s: Option<f64>,
    /// The embed-server address to try first (see the module comment).
    pub server: Option<String>,
    pub paths: WorkerPaths,
    /// What follows the executable to reach the batch (`["batch"]` for `wildcards-gen`).
    pub invocation: Vec<String>,
}

/// What `slurm/array.json` records about the submitted array.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayRecord {
    pub array_id: String,
    /// The job indexes of each task, by task id.
    pub tasks: Vec<Vec<usize>>,
    /// When it was submitted, seconds since the Unix epoch.
    pub submitted_unix_s: f64,
}

impl ArrayRecord {
    /// The record of the folder's last Slurm submission, if it has one.
    pub fn load(out_dir: &Path) -> Result<Option<Self>> {
        let path = out_dir.join(SLURM_DIR).join(ARRAY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is unreadable", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// The `--executor slurm` settings of a run.
pub struct SlurmExecutor {
    /// The output folder, absolute (tasks may start in another folder).
    out_dir: PathBuf,
    options: SlurmOptions,
    jobs_per_task: Option<usize>,
    /// `%` of `--array`: tasks running at once (`--workers`).
    max_running: usize,
    detach: bool,
    job_name: String,
    /// The task spec without its slices.
    spec: TaskSpec,
}

impl SlurmExecutor {
    /// `options`: the manifest's `config.slurm` with the flags over it.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        out_dir: &Path,
        manifest: &Path,
        options: SlurmOptions,
        jobs_per_task: Option<usize>,
        max_running: usize,
        detach: bool,
        spec: TaskSpec,
    ) -> Result<Self> {
        let out_dir = std::path::absolute(out_dir)
            .with_context(|| format!("resolving {}", out_dir.display()))?;
        let stem = manifest.file_stem().map(|s| s.to_string_lossy().into_owned());
        let job_name = format!("wildcards-{}", stem.unwrap_or_else(|| "batch".into()));
        Ok(Self { out_dir, options, jobs_per_task, max_running, detach, job_name, spec })
    }

    fn slurm_dir(&self) -> PathBuf {
        self.out_dir.join(SLURM_DIR)
    }

    /// Writes tasks.json and batch.sh, empties the results, submits; returns the record.
    fn submit(&self, slices: Vec<Vec<JobSpec>>) -> Result<ArrayRecord> {
        let dir = self.slurm_dir();
        let results = dir.join(RESULTS_DIR);
        if results.exists() {
            std::fs::remove_dir_all(&results)
                .with_context(|| format!("clearing {}", results.display()))?;
        }
        std::fs::create_dir_all(&results)
            .with_context(|| format!("creating {}", results.display()))?;
        let tasks: Vec<Vec<usize>> =
            slices.iter().map(|s| s.iter().map(|j| j.index).collect()).collect();
        let spec = TaskSpec { slices, ..self.spec.clone() };
        write_atomic(&dir.join(TASKS_FILE), serde_json::to_string(&spec)?.as_bytes())?;
        let args = self.sbatch_args(tasks.len())?;
        let script = dir.join(SCRIPT_FILE);
        std::fs::write(&script, task_script(&args, &self.spec.invocation, &self.out_dir)?)
            .with_context(|| format!("writing {}", script.display()))?;
        let array_id = sbatch(&args, &script)?;
        let record = ArrayRecord { array_id, tasks, submitted_unix_s: unix_now() };
        write_atomic(&dir.join(ARRAY_FILE), serde_json::to_string_pretty(&record)?.as_bytes())?;
        Ok(record)
    }

    /// The `sbatch` arguments: the array, the logs, the folder, the options.
    fn sbatch_args(&self, tasks: usize) -> Result<Vec<String>> {
        let logs = self.slurm_dir();
        let cwd = std::env::current_dir().context("the current folder")?;
        let o = &self.options;
        let mut args = vec![
            format!("--job-name={}", self.job_name),
            format!("--array=0-{}%{}", tasks - 1, self.max_running.max(1)),
            format!("--output={}", logs.join("task-%A_%a.out").display()),
            format!("--error={}", logs.join("task-%A_%a.err").display()),
            format!("--chdir={}", cwd.display()),
            "--ntasks=1".into(),
            format!("--cpus-per-task={}", o.cpus_per_task.unwrap_or(1)),
        ];
        let named = [
            ("partition", &o.partition),
            ("time", &o.time),
            ("account", &o.account),
            ("qos", &o.qos),
            ("mem", &o.mem),
        ];
        args.extend(named.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("--{k}={v}"))));
        args.extend(o.extra_args.iter().cloned());
        Ok(args)
    }
}

impl Executor for SlurmExecutor {
    fn execute(
        &self,
        jobs: Vec<JobSpec>,
        progress: &Progress,
        stop: &AtomicBool,
    ) -> Result<Executed> {
        if jobs.is_empty() {
            return Ok(Executed::default());
        }
        let cpus = self.options.cpus_per_task.unwrap_or(1);
        let per_task = self.jobs_per_task.unwrap_or_else(|| default_jobs_per_task(&jobs, cpus));
        let slices: Vec<Vec<JobSpec>> = jobs.chunks(per_task.max(1)).map(<[_]>::to_vec).collect();
        let record = self.submit(slices)?;
        progress.note(&format!(
            "submitted Slurm array {}: {} task{} of up to {per_task} jobs, {cpus} worker{} each, \
             at most {} at once; task logs in {}",
            record.array_id,
            record.tasks.len(),
            plural(record.tasks.len()),
            plural(usize::from(cpus)),
            self.max_running,
            self.slurm_dir().display()
        ));
        if self.detach {
            return Ok(Executed { detached: Some(record.array_id), ..Default::default() });
        }
        let mut watch = Watch::new(&self.slurm_dir(), &record, jobs, progress);
        watch.follow(stop)?;
        Ok(Executed { outcomes: watch.outcomes, ..Default::default() })
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Jobs per array task so that a task runs about [`TASK_SECONDS`] on `cpus` workers.
pub fn default_jobs_per_task(jobs: &[JobSpec], cpus: u16) -> usize {
    if jobs.is_empty() {
        return 1;
    }
    let seconds: f64 = jobs
        .iter()
        .map(|j| match j.params.needs_embeddings() {
            true => SEMANTIC_SECONDS_PER_JOB,
            false => super::SECONDS_PER_JOB,
        })
        .sum();
    let per_job = seconds / jobs.len() as f64;
    ((TASK_SECONDS * f64::from(cpus.max(1)) / per_job).round() as usize).max(1)
}

/// The script each array task runs: this program in Slurm-task mode on the output folder.
/// The `sbatch` options are given on its command line (recorded here in a comment).
fn task_script(sbatch_args: &[String], invocation: &[String], out_dir: &Path) -> Result<String> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut words = vec![exe.display().to_string()];
    words.extend(invocation.iter().cloned());
    words.extend(["--slurm-task".to_string(), out_dir.display().to_string()]);
    let command: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
    let submitted: Vec<String> = sbatch_args.iter().map(|w| shell_quote(w)).collect();
    Ok(format!(
        "#!/bin/sh\n# Written by batch-client: Slurm array task N runs slice N of the jobs in \
         tasks.json\n# (beside this file) and records each job's outcome in results/.\n# \
         Submitted with: sbatch --parsable {} {SCRIPT_FILE}\n{}=1 exec {}\n",
        submitted.join(" "),
        super::WORKER_ENV,
        command.join(" ")
    ))
}

/// `word` quoted for a POSIX shell.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-=%:,+@".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `sbatch --parsable ARGS SCRIPT`; returns the array's job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run sbatch ({e}): {MISSING_SLURM}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("sbatch refused the array: {} (arguments: {})", stderr.trim(), args.join(" "));
    }
    // `id` or `id;cluster` on multi-cluster setups.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("sbatch printed no job id: {:?} {}", stdout.trim(), stderr.trim());
    }
    Ok(id)
}

const MISSING_SLURM: &str = "--executor slurm needs the Slurm client commands (sbatch, scontrol, \
                             scancel; Debian package slurm-client) on PATH, on a machine that \
                             can submit to the cluster";

// ---------------------------------------------------------------------------------------------
// The tasks' states, from `scontrol show job -o ARRAY`.

/// One array task as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// `JobState`: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
    pub state: String,
    /// `ExitCode` as `code:signal`.
    pub exit_code: String,
}

impl TaskState {
    /// Whether the task has ended (it will write nothing more).
    pub fn ended(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED"
                | "FAILED"
                | "CANCELLED"
                | "TIMEOUT"
                | "NODE_FAIL"
                | "OUT_OF_MEMORY"
                | "PREEMPTED"
                | "BOOT_FAIL"
                | "DEADLINE"
        )
    }
}

/// What Slurm says about an array.
#[derive(Debug, Clone)]
pub enum ArrayState {
    /// Its tasks by task id (a task missing here has left the queue).
    Known(HashMap<usize, TaskState>),
    /// Slurm no longer knows the array (it ended more than `MinJobAge` ago, or never existed).
    Gone,
}

/// Asks `scontrol show job -o ARRAY` for the array's tasks.
pub fn query(array_id: &str) -> Result<ArrayState> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", array_id])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run scontrol ({e}): {MISSING_SLURM}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("Invalid job id") {
            return Ok(ArrayState::Gone);
        }
        bail!("scontrol show job {array_id} failed: {}", stderr.trim());
    }
    Ok(ArrayState::Known(parse_scontrol(&String::from_utf8_lossy(&out.stdout))))
}

/// The tasks of `scontrol show job -o` output: one line per task, or one line for a range of
/// pending (or cancelled-while-pending) tasks (`ArrayTaskId=2-5%2`).
fn parse_scontrol(text: &str) -> HashMap<usize, TaskState> {
    let mut tasks = HashMap::new();
    for line in text.lines() {
        let field = |name: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        };
        let (Some(ids), Some(state)) = (field("ArrayTaskId"), field("JobState")) else {
            continue;
        };
        let exit_code = field("ExitCode").unwrap_or("0:0").to_string();
        for id in expand_task_ids(ids) {
            tasks.insert(id, TaskState { state: state.to_string(), exit_code: exit_code.clone() });
        }
    }
    tasks
}

/// `0`, `2-5`, `1,3,5-7%2` -> the task ids.
fn expand_task_ids(ids: &str) -> Vec<usize> {
    let ids = ids.split('%').next().unwrap_or_default();
    let mut out = Vec::new();
    for part in ids.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) {
            out.extend(a..=b.min(a + 1_000_000));
        }
    }
    out
}

/// When task `task` has ended, why its jobs without a result failed; `None` while it runs.
fn ended_reason(array: &ArrayRecord, task: usize, state: &ArrayState) -> Option<String> {
    let id = format!("{}_{task}", array.array_id);
    let log = format!("{SLURM_DIR}/task-{id}.err");
    match state {
        ArrayState::Known(tasks) => match tasks.get(&task) {
            Some(s) if !s.ended() => None,
            Some(s) if s.state == "COMPLETED" => Some(format!(
                "Slurm task {id} ended COMPLETED (exit code {}) without a result for this job; \
                 is the output folder on a filesystem the compute nodes share? See {log}",
                s.exit_code
            )),
            Some(s) => Some(format!(
                "Slurm task {id} ended {} (exit code {}) before this job finished; see {log}",
                s.state, s.exit_code
            )),
            None => Some(format!(
                "Slurm task {id} left the queue without running this job (cancelled while \
                 pending)"
            )),
        },
        ArrayState::Gone => Some(format!(
            "Slurm no longer knows task {id}, which left no result for this job; see {log}"
        )),
    }
}

/// The per-state task counts: `slurm array 12: 1 pending, 2 running, 1 completed`.
fn counts_line(array: &ArrayRecord, state: &ArrayState) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for task in 0..array.tasks.len() {
        let name = match state {
            ArrayState::Known(tasks) => {
                tasks.get(&task).map(|s| s.state.to_lowercase()).unwrap_or("gone".into())
            }
            ArrayState::Gone => "gone".into(),
        };
        *counts.entry(name).or_default() += 1;
    }
    let order = ["pending", "running", "completing", "completed"];
    let mut names: Vec<&String> = counts.keys().collect();
    names.sort_by_key(|n| (order.iter().position(|o| o == n).unwrap_or(order.len()), *n));
    let parts: Vec<String> = names.iter().map(|n| format!("{} {n}", counts[*n])).collect();
    format!("slurm array {}: {}", array.array_id, parts.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The result files.

fn results_dir(out_dir: &Path) -> PathBuf {
    out_dir.join(SLURM_DIR).join(RESULTS_DIR)
}

/// Records a job's outcome for the client (atomically: a reader never sees half a file).
fn write_result(results: &Path, job: &JobSpec, outcome: &JobOutcome) -> Result<()> {
    let path = results.join(format!("{}.json", job.index));
    write_atomic(&path, serde_json::to_string(outcome)?.as_bytes())
}

/// The outcomes recorded in `results`, by job index.
fn read_results(results: &Path) -> HashMap<usize, JobOutcome> {
    let Ok(entries) = std::fs::read_dir(results) else { return HashMap::new() };
    entries
        .filter_map(|e| {
            let path = e.ok()?.path();
            let index: usize = path.file_name()?.to_str()?.strip_suffix(".json")?.parse().ok()?;
            let outcome = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
            Some((index, outcome))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The attached client.

/// Follows a submitted array until every job has an outcome.
struct Watch<'a> {
    results: PathBuf,
    array: &'a ArrayRecord,
    jobs: HashMap<usize, JobSpec>,
    outcomes: HashMap<usize, JobOutcome>,
    /// Tasks whose jobs all have an outcome.
    settled: Vec<bool>,
    /// Tasks seen running (their unfinished jobs count as interrupted after Ctrl-C).
    started: Vec<bool>,
    progress: &'a Progress,
}

impl<'a> Watch<'a> {
    fn new(dir: &Path, array: &'a ArrayRecord, jobs: Vec<JobSpec>, progress: &'a Progress) -> Self {
        Self {
            results: dir.join(RESULTS_DIR),
            array,
            jobs: jobs.into_iter().map(|j| (j.index, j)).collect(),
            outcomes: HashMap::new(),
            settled: vec![false; array.tasks.len()],
            started: vec![false; array.tasks.len()],
            progress,
        }
    }

    fn follow(&mut self, stop: &AtomicBool) -> Result<()> {
        let (mut last_line, mut last_query) = (String::new(), None::<Instant>);
        let mut warned = false;
        loop {
            self.collect();
            if self.settled.iter().all(|s| *s) {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return self.cancel();
            }
            if last_query.is_none_or(|t| t.elapsed() >= QUERY_EVERY) {
                last_query = Some(Instant::now());
                match query(&self.array.array_id) {
                    Ok(state) => {
                        let line = counts_line(self.array, &state);
                        if line != last_line {
                            self.progress.status(&line);
                            last_line = line;
                        }
                        self.settle_ended(&state);
                    }
                    Err(e) if !warned => {
                        warned = true;
                        self.progress.note(&format!("warning: {e:#} (retrying)"));
                    }
                    Err(_) => {}
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Takes the new result files; marks tasks whose jobs all have one.
    fn collect(&mut self) {
        let array = self.array;
        for (index, outcome) in read_results(&self.results) {
            if self.outcomes.contains_key(&index) {
                continue;
            }
            if let Some(job) = self.jobs.get(&index) {
                self.progress.job_finished(0, job, &outcome);
                self.outcomes.insert(index, outcome);
            }
        }
        for (task, jobs) in array.tasks.iter().enumerate() {
            self.settled[task] |= jobs.iter().all(|j| self.outcomes.contains_key(j));
        }
    }

    /// Fails the unfinished jobs of every task that has ended, with Slurm's reason.
    fn settle_ended(&mut self, state: &ArrayState) {
        let array = self.array;
        for task in 0..array.tasks.len() {
            if let ArrayState::Known(t) = state {
                self.started[task] |= t.get(&task).is_some_and(|s| s.state != "PENDING");
            }
            if self.settled[task] {
                continue;
            }
            let Some(reason) = ended_reason(array, task, state) else { continue };
            // Results written just before the task ended count.
            self.collect();
            for index in &array.tasks[task] {
                if !self.outcomes.contains_key(index) {
                    let outcome = JobOutcome::failed(reason.clone(), 0.0);
                    if let Some(job) = self.jobs.get(index) {
                        self.progress.job_finished(0, job, &outcome);
                    }
                    self.outcomes.insert(*index, outcome);
                }
            }
            self.settled[task] = true;
        }
    }

    /// Ctrl-C: `scancel` the array, wait for its tasks to end, and mark what did not finish:
    /// interrupted in tasks that had started, not run in the others.
    fn cancel(&mut self) -> Result<()> {
        let array = self.array;
        let id = &array.array_id;
        self.progress.note(&format!("cancelling Slurm array {id} (scancel {id})"));
        let out = Command::new("scancel").arg(id).output();
        if let Ok(out) = &out {
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                self.progress.note(&format!("warning: scancel {id}: {}", err.trim()));
            }
        }
        out.map_err(|e| anyhow::anyhow!("cannot run scancel ({e}): {MISSING_SLURM}"))?;
        let deadline = Instant::now() + CANCEL_WAIT;
        while Instant::now() < deadline {
            let all_ended = match query(id) {
                Ok(ArrayState::Known(tasks)) => tasks.values().all(TaskState::ended),
                Ok(ArrayState::Gone) => true,
                Err(_) => false,
            };
            if all_ended {
                break;
            }
            std::thread::sleep(POLL);
        }
        self.collect();
        for (task, jobs) in array.tasks.iter().enumerate() {
            let unfinished: Vec<usize> =
                jobs.iter().filter(|i| !self.outcomes.contains_key(i)).copied().collect();
            for index in unfinished {
                if self.started[task] {
                    let outcome = JobOutcome {
                        status: JobStatus::Interrupted,
                        error: Some(format!("interrupted (Ctrl-C): Slurm array {id} cancelled")),
                        duration_s: 0.0,
                        metrics: None,
                    };
                    self.outcomes.insert(index, outcome);
                }
            }
        }
        Ok(())
    }
}

/// Refuses to start a batch in a folder whose detached Slurm array still runs (its tasks would
/// write into the same files); a local run also forgets an old array's record, so that
/// `report DIR` and `status DIR` describe the run that wrote the folder last.
pub fn check_folder(out_dir: &Path, slurm: bool) -> std::result::Result<(), String> {
    let Ok(Some(array)) = ArrayRecord::load(out_dir) else { return Ok(()) };
    let running = match query(&array.array_id) {
        Ok(ArrayState::Known(tasks)) => tasks.values().any(|s| !s.ended()),
        _ => false,
    };
    if running {
        return Err(format!(
            "the output folder {} is in use by Slurm array {} (submitted with --detach), which \
             is still running; wait for it (`batch-client status {}`) or cancel it (`scancel \
             {}`)",
            out_dir.display(),
            array.array_id,
            out_dir.display(),
            array.array_id
        ));
    }
    if !slurm {
        let _ = std::fs::remove_file(out_dir.join(SLURM_DIR).join(ARRAY_FILE));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A detached (or killed) run, seen later: `status DIR` and `report DIR`.

/// What the folder of a Slurm run holds now.
pub struct Survey {
    pub array: ArrayRecord,
    /// The run record with every recorded result and every failure Slurm explains filled in.
    pub record: RunRecord,
    /// Slurm's answer, or why there is none.
    pub state: std::result::Result<ArrayState, String>,
    /// Every job of the array has an outcome.
    pub settled: bool,
}

/// The folder's Slurm run as it stands (`None`: the folder's last run was local).
pub fn survey(out_dir: &Path) -> Result<Option<Survey>> {
    let Some(array) = ArrayRecord::load(out_dir)? else { return Ok(None) };
    let mut record = RunRecord::load(out_dir)?;
    let state = query(&array.array_id).map_err(|e| format!("{e:#}"));
    if record.finished {
        return Ok(Some(Survey { array, record, state, settled: true }));
    }
    let mut outcomes = read_results(&results_dir(out_dir));
    if let Ok(state) = &state {
        for (task, jobs) in array.tasks.iter().enumerate() {
            if let Some(reason) = ended_reason(&array, task, state) {
                for index in jobs {
                    outcomes.entry(*index).or_insert_with(|| JobOutcome::failed(&reason, 0.0));
                }
            }
        }
    }
    let mut settled = true;
    let in_array: Vec<usize> = array.tasks.iter().flatten().copied().collect();
    for job in record.jobs.iter_mut().filter(|j| in_array.contains(&j.spec.index)) {
        match outcomes.remove(&job.spec.index) {
            Some(outcome) => job.outcome = outcome,
            None => settled = false,
        }
    }
    Ok(Some(Survey { array, record, state, settled }))
}

/// For `report DIR`: records the outcomes the survey found in the run record and, when the
/// folder's Slurm array has settled, records the run as finished (with its wall time) so that
/// the report is the run's final one. Returns the survey (`None` for a local run's folder).
pub fn settle(out_dir: &Path) -> Result<Option<Survey>> {
    let Some(mut s) = survey(out_dir)? else { return Ok(None) };
    if s.record.finished {
        return Ok(Some(s));
    }
    if s.settled {
        let last = std::fs::read_dir(results_dir(out_dir))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.metadata().ok()?.modified().ok())
            .filter_map(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .fold(s.array.submitted_unix_s, f64::max);
        s.record.wall_s = last - s.array.submitted_unix_s;
        s.record.finished = true;
        s.record.interrupted = false;
    }
    s.record.save(out_dir)?;
    Ok(Some(s))
}

/// The lines `status DIR` prints for a Slurm run.
pub fn describe(out_dir: &Path, s: &Survey) -> String {
    let count = |st: JobStatus| s.record.jobs.iter().filter(|j| j.outcome.status == st).count();
    let tasks = match &s.state {
        Ok(state) => counts_line(&s.array, state),
        Err(e) => format!("slurm array {}: state unknown ({e})", s.array.array_id),
    };
    let unfinished = count(JobStatus::NotRun) + count(JobStatus::Interrupted);
    let what = match (s.settled, s.record.finished) {
        (false, _) => format!("running: {unfinished} to go"),
        (true, true) if s.record.interrupted => "interrupted (Ctrl-C)".to_string(),
        (true, _) => "finished".to_string(),
    };
    format!(
        "{}: {what}\n{tasks}\njobs: {} — {} succeeded, {} resumed, {} failed, {} not finished\n{}",
        out_dir.display(),
        s.record.jobs.len(),
        count(JobStatus::Succeeded),
        count(JobStatus::Resumed),
        count(JobStatus::Failed),
        unfinished,
        match (s.settled, s.record.finished) {
            (true, true) if out_dir.join("report.md").is_file() => format!(
                "report: {} (rebuild it with `batch-client report {}`)",
                out_dir.join("report.md").display(),
                out_dir.display()
            ),
            (true, _) => format!("write the report: `batch-client report {}`", out_dir.display()),
            (false, _) => format!("report when done: `batch-client report {}`", out_dir.display()),
        }
    )
}

// ---------------------------------------------------------------------------------------------
// Inside an array task.

/// The hidden Slurm-task mode (`--slurm-task DIR` with env `WILDCARDS_BATCH_WORKER=1`, as
/// `batch.sh` runs it): runs this task's slice of the jobs; exits 0 when every job of the
/// slice has its result recorded (failed jobs included).
pub fn task_main(args: &[OsString]) -> ExitCode {
    let dir = args.iter().position(|a| a == "--slurm-task").and_then(|i| args.get(i + 1));
    let Some(dir) = dir else {
        eprintln!("error: --slurm-task needs the batch's output folder");
        return ExitCode::from(super::EXIT_USAGE);
    };
    match run_task(Path::new(dir)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(super::EXIT_JOBS_FAILED),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(super::EXIT_JOBS_FAILED)
        }
    }
}

fn run_task(out_dir: &Path) -> Result<bool> {
    let dir = out_dir.join(SLURM_DIR);
    let path = dir.join(TASKS_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec: TaskSpec =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let task: usize = std::env::var("SLURM_ARRAY_TASK_ID")
        .ok()
        .and_then(|t| t.parse().ok())
        .context("SLURM_ARRAY_TASK_ID is not set: --slurm-task runs inside an array task")?;
    let array = std::env::var("SLURM_ARRAY_JOB_ID").unwrap_or_else(|_| "?".into());
    let jobs = spec.slices.get(task).cloned().with_context(|| format!("no slice {task}"))?;
    let progress = Progress::new(Mode::Plain, jobs.len(), spec.workers);
    let host = std::env::var("SLURMD_NODENAME").unwrap_or_default();
    progress.note(&format!(
        "Slurm task {array}_{task} on {host}: {} jobs of {} on {} workers",
        jobs.len(),
        spec.manifest.display(),
        spec.workers
    ));
    let results = dir.join(RESULTS_DIR);
    let record = |job: &JobSpec, outcome: &JobOutcome| {
        if let Err(e) = write_result(&results, job, outcome) {
            eprintln!("error: cannot record the result of job {}: {e:#}", job.name);
        }
    };
    let log = dir.join(format!("embed-server-{array}_{task}.log"));
    let (server, private) = task_server(&spec, &jobs, &log, &progress, &record);
    let runnable: Vec<JobSpec> =
        jobs.iter().filter(|j| server.is_some() || !j.needs_embeddings()).cloned().collect();
    let invocation: Vec<&str> = spec.invocation.iter().map(String::as_str).collect();
    let cfg = pool::PoolConfig {
        command: super::worker_command(&invocation, server.as_deref(), &spec.paths)?,
        workers: spec.workers.clamp(1, runnable.len().max(1)),
        job_timeout: spec.job_timeout_s.map(Duration::from_secs_f64),
        own_process_groups: false,
    };
    let (stop, jobs_done) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|scope| {
        if let Some(p) = &private {
            let (jobs_done, progress) = (&jobs_done, &progress);
            scope.spawn(move || p.supervise(jobs_done, &|msg: &str| progress.note(msg)));
        }
        pool::run_with(&cfg, runnable, &progress, &stop, &record);
        jobs_done.store(true, Ordering::SeqCst);
    });
    if let Some(p) = private {
        p.stop();
    }
    let recorded = read_results(&results);
    Ok(jobs.iter().all(|j| recorded.contains_key(&j.index)))
}

/// The embed-server of a task's jobs (see the module comment); when none can be had, the jobs
/// that need one are recorded as failed with the reason.
fn task_server(
    spec: &TaskSpec,
    jobs: &[JobSpec],
    log: &Path,
    progress: &Progress,
    record: &dyn Fn(&JobSpec, &JobOutcome),
) -> (Option<String>, Option<crate::server::PrivateServer>) {
    if !jobs.iter().any(JobSpec::needs_embeddings) {
        return (None, None);
    }
    match crate::server::find_or_start(spec.server.as_deref(), log, &|s| progress.note(s)) {
        Ok(choice) => (Some(choice.addr), choice.private),
        Err(e) => {
            let reason = format!("{e:#}");
            progress.note(&format!("error: {reason}"));
            for job in jobs.iter().filter(|j| j.needs_embeddings()) {
                record(job, &JobOutcome::failed(reason.clone(), 0.0));
            }
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scontrol_lines_give_each_task_its_state_and_ranges_expand() {
        let text = "JobId=13 ArrayJobId=12 ArrayTaskId=1 JobName=w JobState=CANCELLED \
                    Reason=None ExitCode=0:15 RunTime=00:00:02\n\
                    JobId=12 ArrayJobId=12 ArrayTaskId=2-3%2 JobState=PENDING Reason=JobArrayTaskLimit \
                    ExitCode=0:0\n\
                    JobId=14 ArrayJobId=12 ArrayTaskId=0 JobState=COMPLETED ExitCode=0:0\n";
        let tasks = parse_scontrol(text);
        assert_eq!(tasks.len(), 4);
        assert_eq!(tasks[&1], TaskState { state: "CANCELLED".into(), exit_code: "0:15".into() });
        assert!(tasks[&1].ended() && tasks[&0].ended() && !tasks[&3].ended());
        assert_eq!(expand_task_ids("1,3,5-7%2"), [1, 3, 5, 6, 7]);
        let array = ArrayRecord {
            array_id: "12".into(),
            tasks: vec![vec![0], vec![1, 2], vec![3], vec![4], vec![5]],
            submitted_unix_s: 0.0,
        };
        let state = ArrayState::Known(tasks);
        let reason = ended_reason(&array, 1, &state).unwrap();
        assert_eq!(
            reason,
            "Slurm task 12_1 ended CANCELLED (exit code 0:15) before this job finished; see \
             slurm/task-12_1.err"
        );
        assert!(ended_reason(&array, 2, &state).is_none(), "pending");
        assert!(ended_reason(&array, 4, &state).unwrap().contains("left the queue"));
        assert_eq!(
            counts_line(&array, &state),
            "slurm array 12: 2 pending, 1 completed, 1 cancelled, 1 gone"
        );
    }

    #[test]
    fn a_task_gets_about_a_minute_of_work() {
        let m = crate::manifest::parse(
            "jobs:\n  - {name: a, params: {smart: true}}\n  - {name: b, params: {semantic_clean: true}}\n",
            Path::new("m.yaml"),
        )
        .unwrap();
        assert_eq!(default_jobs_per_task(&m.jobs[..1], 1), 30);
        assert_eq!(default_jobs_per_task(&m.jobs[1..], 1), 15);
        assert_eq!(default_jobs_per_task(&m.jobs, 2), 40);
    }

    #[test]
    fn script_words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b-c.d"), "/a/b-c.d");
        assert_eq!(shell_quote("my dir/it's"), r"'my dir/it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
