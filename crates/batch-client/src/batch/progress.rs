//! What a running batch shows: on a terminal an indicatif `MultiProgress` with one line per
//! running job (its stage and time) and an overall bar (done, failed, elapsed, ETA); plain log
//! lines when stdout is not a terminal (CI, files); nothing with `--quiet`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::job::{JobOutcome, JobSpec, JobStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Plain,
    Quiet,
}

pub struct Progress {
    mode: Mode,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    start: Instant,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// The line of each worker slot while it runs a job.
    slots: Mutex<Vec<Option<ProgressBar>>>,
}

impl Progress {
    /// `total` jobs will run on `slots` workers; `already` were done before (resumed).
    pub fn new(mode: Mode, total: usize, slots: usize) -> Self {
        Self::drawing_to(mode, total, slots, ProgressDrawTarget::stdout())
    }

    /// [`Progress::new`] drawing its bars to `target` (tests draw to an in-memory terminal).
    fn drawing_to(mode: Mode, total: usize, slots: usize, target: ProgressDrawTarget) -> Self {
        let bars = (mode == Mode::Bars).then(|| {
            let multi = MultiProgress::with_draw_target(target);
            let overall = multi.add(ProgressBar::new(total as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} jobs {msg} · {elapsed} elapsed · ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            overall.set_prefix("batch");
            overall.enable_steady_tick(Duration::from_millis(250));
            Bars { multi, overall, slots: Mutex::new(vec![None; slots]) }
        });
        Self {
            mode,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            start: Instant::now(),
            bars,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A line of information (server started, resumed jobs, ...).
    pub fn note(&self, msg: &str) {
        match (&self.bars, self.mode) {
            (Some(b), _) => {
                let _ = b.multi.println(msg);
            }
            (None, Mode::Plain) => say(msg.to_string()),
            _ => {}
        }
    }

    /// The state of the executor (a Slurm array's per-state task counts): on a terminal the
    /// overall bar's message, else a log line (the caller says it only when it changes).
    pub fn status(&self, msg: &str) {
        match (&self.bars, self.mode) {
            (Some(b), _) => b.overall.set_message(msg.to_string()),
            (None, Mode::Plain) => say(msg.to_string()),
            _ => {}
        }
    }

    /// A log line from a worker: shown except with --quiet.
    pub fn log(&self, msg: &str) {
        self.note(msg);
    }

    /// A job was handed to worker `slot` (process `pid`, when it could be started).
    pub fn job_started(&self, slot: usize, job: &JobSpec, pid: Option<u32>) {
        let pid = pid.map(|p| format!(", pid {p}")).unwrap_or_default();
        match &self.bars {
            Some(b) => {
                let bar = b.multi.insert_before(&b.overall, ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} worker {prefix}: {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix((slot + 1).to_string());
                bar.set_message(format!("{} — starting", job.name));
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Some(s) = lock(&b.slots).get_mut(slot) {
                    *s = Some(bar);
                }
            }
            None if self.mode == Mode::Plain => {
                say(format!("{} start  {} (worker {}{pid})", self.counter(), job.name, slot + 1));
            }
            None => {}
        }
    }

    pub fn job_stage(&self, slot: usize, job: &JobSpec, stage: &str) {
        if let Some(b) = &self.bars {
            if let Some(Some(bar)) = lock(&b.slots).get(slot) {
                bar.set_message(format!("{} — {stage}", job.name));
            }
        }
    }

    pub fn job_finished(&self, slot: usize, job: &JobSpec, outcome: &JobOutcome) {
        self.done.fetch_add(1, Ordering::SeqCst);
        if outcome.status == JobStatus::Failed {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        let line = finished_line(job, outcome);
        match &self.bars {
            Some(b) => {
                if let Some(Some(bar)) = lock(&b.slots).get_mut(slot).map(Option::take) {
                    bar.finish_and_clear();
                    b.multi.remove(&bar);
                }
                b.overall.inc(1);
                let failed = self.failed.load(Ordering::SeqCst);
                if failed > 0 {
                    b.overall.set_message(format!("({failed} failed)"));
                }
                // `inc` only redraws when its rate limit allows (and never while a steady tick
                // is installed), and `println` redraws the bars' last drawn lines: without a
                // forced draw the bar showed 128/200 while the log said 154/200.
                b.overall.force_draw();
                let _ = b.multi.println(format!("{} {line}", self.counter()));
            }
            None if self.mode == Mode::Plain => say(format!("{} {line}", self.counter())),
            None => {}
        }
    }

    /// Clears the bars (before the closing summary is printed).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
            let _ = b.multi.clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn counter(&self) -> String {
        let width = self.total.to_string().len();
        format!("[{:>width$}/{}]", self.done.load(Ordering::SeqCst), self.total)
    }
}

/// Prints a line on stdout; a closed stdout (`| head`) is not an error worth dying for.
pub fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `ok baseline 1.2 s: 412 categories, 10,872 items` or `FAILED name 0.3 s: reason`.
fn finished_line(job: &JobSpec, o: &JobOutcome) -> String {
    match (o.status, &o.metrics) {
        (JobStatus::Succeeded, Some(m)) => format!(
            "ok     {} {:.1} s: {} categories, {} lists, {} items{}",
            job.name,
            o.duration_s,
            m.structure.categories,
            m.structure.leaf_lists,
            m.structure.items,
            m.outliers.map(|n| format!(", {n} outliers")).unwrap_or_default()
        ),
        (JobStatus::Failed, _) => format!(
            "FAILED {} {:.1} s: {}",
            job.name,
            o.duration_s,
            o.error.as_deref().unwrap_or("(no message)")
        ),
        (status, _) => format!("{:<6} {}", status.as_str(), job.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobStatus;
    use indicatif::InMemoryTerm;

    fn jobs(n: usize) -> Vec<JobSpec> {
        let list: String = (0..n).map(|i| format!("  - {{name: j{i}, params: {{}}}}\n")).collect();
        let text = format!("config:\n  output_dir: out\n  dataset: coco\njobs:\n{list}");
        crate::manifest::parse(&text, std::path::Path::new("m.yaml")).unwrap().jobs
    }

    /// Issue 12 item 20: after each finished job the overall bar shows the same count as the
    /// log line just printed above it (it lagged by up to 26 of 200 jobs).
    #[test]
    fn the_overall_bar_keeps_up_with_the_log() {
        let term = InMemoryTerm::new(60, 160);
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        let jobs = jobs(40);
        let progress = Progress::drawing_to(Mode::Bars, jobs.len(), 2, target);
        let ok = JobOutcome {
            status: JobStatus::Succeeded,
            error: None,
            duration_s: 0.0,
            metrics: None,
        };
        for (i, job) in jobs.iter().enumerate() {
            progress.job_started(i % 2, job, None);
            progress.job_finished(i % 2, job, &ok);
            let screen = term.contents();
            let want = format!("{}/40 jobs", i + 1);
            let bar = screen.lines().rfind(|l| l.contains(" jobs")).unwrap_or_default();
            assert!(bar.contains(&want), "after job {}: {bar:?}\n{screen}", i + 1);
        }
    }
}
