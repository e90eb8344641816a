//! The worker processes of a batch, seen from batch-client.
//!
//! `workers` slots each own at most one worker process (this program in worker mode) and run
//! one job at a time on it: the job goes down the worker's stdin as a JSON line, events come
//! back on its stdout. A job that fails inside the worker (an error, a caught panic) is
//! reported by the worker; a job whose worker dies (killed by a signal, crashed) or runs past
//! `--job-timeout` is failed here with the reason. In both of the latter cases the worker is
//! gone and the slot starts a fresh one for its next job.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::job::{JobOutcome, JobSpec, JobStatus};

use super::progress::Progress;
use super::protocol::{self, Event, Request};

/// How to start workers and how long a job may take.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Program and arguments that start one worker (this executable in worker mode).
    pub command: Vec<OsString>,
    pub workers: usize,
    pub job_timeout: Option<Duration>,
    /// Start each worker in its own process group, so that a Ctrl-C in the terminal reaches
    /// batch-client only (which stops the workers itself and still writes the report). Off in
    /// a Slurm array task: there Slurm's signals (scancel, time limit) must reach the workers
    /// with the task, which proctrack/pgid finds by the task's process group.
    pub own_process_groups: bool,
}

/// What a pool run produced.
#[derive(Debug, Default)]
pub struct PoolResult {
    /// Each job's outcome by job index; jobs not started because `stop` was set are absent.
    pub outcomes: HashMap<usize, JobOutcome>,
    /// Peak resident memory (KiB) of every worker process that ran jobs, by pid.
    pub worker_peak_rss_kb: BTreeMap<u32, u64>,
}

/// Runs `jobs` on the pool.
pub fn run(
    cfg: &PoolConfig,
    jobs: Vec<JobSpec>,
    progress: &Progress,
    stop: &AtomicBool,
) -> PoolResult {
    run_with(cfg, jobs, progress, stop, &|_, _| {})
}

/// [`run`], calling `on_done` with every job's outcome as soon as it is known (a Slurm array
/// task records it for the client there).
pub fn run_with(
    cfg: &PoolConfig,
    jobs: Vec<JobSpec>,
    progress: &Progress,
    stop: &AtomicBool,
    on_done: &(dyn Fn(&JobSpec, &JobOutcome) + Sync),
) -> PoolResult {
    let slots = cfg.workers.clamp(1, jobs.len().max(1));
    let queue = Mutex::new(VecDeque::from(jobs));
    let results = Mutex::new(PoolResult::default());
    std::thread::scope(|s| {
        for slot in 0..slots {
            let (queue, results) = (&queue, &results);
            s.spawn(move || {
                let mut runner = Slot { slot, cfg, worker: None, progress, stop };
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Some(job) = lock(queue).pop_front() else { break };
                    let (outcome, peak) = runner.run(&job);
                    on_done(&job, &outcome);
                    progress.job_finished(slot, &job, &outcome);
                    let mut r = lock(results);
                    r.outcomes.insert(job.index, outcome);
                    if let Some((pid, kb)) = peak {
                        let e = r.worker_peak_rss_kb.entry(pid).or_default();
                        *e = (*e).max(kb);
                    }
                }
                runner.shut_down();
            });
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a worker's reader threads pass to its slot.
enum Msg {
    Event(Event),
    /// A stdout line that is not a protocol message (shown as a log line).
    Noise(String),
    /// The worker closed its stdout: it exited or was killed.
    Closed,
}

/// A running worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    msgs: Receiver<Msg>,
    /// The last lines the worker wrote to stderr, for the failure reason when it dies.
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

const STDERR_TAIL: usize = 12;

/// One slot: runs jobs one after the other, (re)starting its worker as needed.
struct Slot<'a> {
    slot: usize,
    cfg: &'a PoolConfig,
    worker: Option<Worker>,
    progress: &'a Progress,
    stop: &'a AtomicBool,
}

impl Slot<'_> {
    /// Runs one job; also returns the worker's (pid, peak RSS in KiB) when it reported it.
    fn run(&mut self, job: &JobSpec) -> (JobOutcome, Option<(u32, u64)>) {
        let start = Instant::now();
        let pid = match self.send(job) {
            Ok(pid) => pid,
            Err(e) => {
                self.progress.job_started(self.slot, job, None);
                return (JobOutcome::failed(e, start.elapsed().as_secs_f64()), None);
            }
        };
        self.progress.job_started(self.slot, job, Some(pid));
        let (outcome, peak_kb) = self.wait_for(job, start);
        (outcome, peak_kb.map(|kb| (pid, kb)))
    }

    /// Follows the worker's events until the job ends one way or another.
    fn wait_for(&mut self, job: &JobSpec, start: Instant) -> (JobOutcome, Option<u64>) {
        let secs = || start.elapsed().as_secs_f64();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                self.kill();
                let outcome = JobOutcome {
                    status: JobStatus::Interrupted,
                    error: Some("interrupted (Ctrl-C)".into()),
                    duration_s: secs(),
                    metrics: None,
                };
                return (outcome, None);
            }
            let Some(worker) = self.worker.as_mut() else {
                return (JobOutcome::failed("worker lost", secs()), None);
            };
            match worker.msgs.recv_timeout(Duration::from_millis(100)) {
                Ok(Msg::Event(Event::Stage { job: j, stage })) if j == job.index => {
                    self.progress.job_stage(self.slot, job, &stage);
                }
                Ok(Msg::Event(Event::Finished { job: j, outcome, retire, peak_rss_kb }))
                    if j == job.index =>
                {
                    if retire {
                        // The worker exits after a panic; the next job gets a fresh one.
                        self.reap();
                    }
                    return (outcome, peak_rss_kb);
                }
                Ok(Msg::Event(Event::Note { message })) => {
                    self.progress.log(&format!("worker {}: {message}", self.slot + 1));
                }
                Ok(Msg::Event(_)) => {}
                Ok(Msg::Noise(line)) => {
                    self.progress.log(&format!("worker {}: {line}", self.slot + 1));
                }
                Ok(Msg::Closed) | Err(RecvTimeoutError::Disconnected) => {
                    let reason = self.reap();
                    return (JobOutcome::failed(reason, secs()), None);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(limit) = self.cfg.job_timeout {
                        if start.elapsed() >= limit {
                            self.kill();
                            let msg = format!(
                                "timed out after {} s (--job-timeout); its worker was stopped",
                                limit.as_secs_f64()
                            );
                            return (JobOutcome::failed(msg, secs()), None);
                        }
                    }
                }
            }
        }
    }

    /// Sends the job to the slot's worker, starting one first if there is none (or the old
    /// one has died since its last job).
    /// Returns the worker's pid.
    fn send(&mut self, job: &JobSpec) -> Result<u32, String> {
        if let Some(w) = self.worker.as_mut() {
            if matches!(w.child.try_wait(), Ok(Some(_)) | Err(_)) {
                self.reap();
            }
        }
        if self.worker.is_none() {
            self.worker = Some(self.spawn()?);
        }
        let w = self.worker.as_mut().ok_or("no worker")?;
        if let Err(e) = protocol::send(&mut w.stdin, &Request { job: job.clone() }) {
            let reason = self.reap();
            return Err(format!("could not hand the job to its worker ({e}): {reason}"));
        }
        Ok(w.child.id())
    }

    fn spawn(&self) -> Result<Worker, String> {
        let (program, args) = self.cfg.command.split_first().ok_or("no worker command")?;
        let mut command = Command::new(program);
        command
            .args(args)
            .env(super::WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.cfg.own_process_groups {
            command.process_group(0);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start a worker ({}): {e}", program.to_string_lossy()))?;
        let stdin = child.stdin.take().ok_or("worker stdin")?;
        let stdout = child.stdout.take().ok_or("worker stdout")?;
        let stderr = child.stderr.take().ok_or("worker stderr")?;
        let (tx, msgs) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let msg = match protocol::receive::<Event>(&mut reader) {
                    Ok(Some(ev)) => Msg::Event(ev),
                    Ok(None) => Msg::Closed,
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        Msg::Noise(e.to_string())
                    }
                    Err(_) => Msg::Closed,
                };
                let closed = matches!(msg, Msg::Closed);
                if tx.send(msg).is_err() || closed {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut t = lock(&tail);
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        Ok(Worker { child, stdin, msgs, stderr_tail })
    }

    /// Forgets the worker after it ended and says why it ended.
    fn reap(&mut self) -> String {
        let Some(mut w) = self.worker.take() else { return "no worker".into() };
        drop(w.stdin);
        let status = wait_briefly(&mut w.child);
        // Give the stderr reader a moment to take the last lines (a panic message).
        std::thread::sleep(Duration::from_millis(50));
        let tail: Vec<String> = lock(&w.stderr_tail).iter().cloned().collect();
        death_reason(status, &tail)
    }

    fn kill(&mut self) {
        if let Some(mut w) = self.worker.take() {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }

    /// Closes the worker's stdin (it exits when its input ends) and waits for it.
    fn shut_down(&mut self) {
        if let Some(mut w) = self.worker.take() {
            drop(w.stdin);
            if wait_briefly(&mut w.child).is_none() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
    }
}

/// Waits up to two seconds for a child that is ending anyway.
fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// "worker killed by signal 9", or the exit status with the worker's last stderr lines.
fn death_reason(status: Option<ExitStatus>, stderr_tail: &[String]) -> String {
    let mut reason = match status {
        Some(s) => match s.signal() {
            Some(sig) => format!("worker killed by signal {sig}{}", signal_hint(sig)),
            None => format!("worker exited unexpectedly with status {}", s.code().unwrap_or(-1)),
        },
        None => "worker stopped answering".to_string(),
    };
    let tail: Vec<&String> = stderr_tail.iter().filter(|l| !l.trim().is_empty()).collect();
    if !tail.is_empty() {
        let shown: Vec<&str> = tail.iter().rev().take(4).rev().map(|s| s.as_str()).collect();
        reason.push_str(&format!("; its last output: {}", shown.join(" / ")));
    }
    reason
}

fn signal_hint(sig: i32) -> &'static str {
    match sig {
        9 => " (SIGKILL: killed by hand or by the out-of-memory killer)",
        11 => " (SIGSEGV: crashed)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_reasons_name_the_signal_or_status_and_the_last_output() {
        let killed = ExitStatus::from_raw(9); // terminated by signal 9
        let reason = death_reason(Some(killed), &[]);
        assert!(reason.starts_with("worker killed by signal 9 (SIGKILL"), "{reason}");
        let exited = ExitStatus::from_raw(101 << 8); // exit code 101
        let tail = ["".to_string(), "thread 'main' panicked at x.rs:1:1:".into(), "boom".into()];
        let reason = death_reason(Some(exited), &tail);
        assert_eq!(
            reason,
            "worker exited unexpectedly with status 101; its last output: \
             thread 'main' panicked at x.rs:1:1: / boom"
        );
    }
}
