//! `--executor slurm` against a real Slurm cluster: each test brings up its own throw-away
//! single-node cluster with `scripts/slurm-local.sh up` (munged, slurmctld, slurmd in a temp
//! folder, found through `SLURM_CONF`) and tears it down (by pid files) when it ends, also
//! when it fails. The batches are the real batch-client on the real Tencent data; the seed
//! grid's semantic jobs use a real embed-server.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::batch_support::{
    read_csv, row, signal, unused_address, wait_for_line, wait_with_limit, Batch,
};
use test_support::{workspace_root, EmbedServer};

const MINUTE: Duration = Duration::from_secs(60);

/// A running throw-away cluster; stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn up() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Self::script("up", dir.path());
        assert!(
            out.status.success(),
            "scripts/slurm-local.sh up failed (is Slurm installed? run scripts/setup.sh):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster { dir }
    }

    fn script(action: &str, dir: &Path) -> Output {
        Command::new("bash")
            .arg(workspace_root().join("scripts/slurm-local.sh"))
            .arg(action)
            .arg(dir)
            .output()
            .expect("run scripts/slurm-local.sh")
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }

    /// `batch-client MANIFEST ARGS` on this cluster.
    fn batch(&self, b: &Batch, args: &[&str]) -> Command {
        let mut cmd = b.command(args);
        cmd.env("SLURM_CONF", self.conf());
        cmd
    }

    /// `batch-client SUBCOMMAND DIR` on this cluster.
    fn subcommand(&self, sub: &str, dir: &Path) -> Output {
        Command::new(test_support::binary("batch-client"))
            .arg(sub)
            .arg(dir)
            .env("SLURM_CONF", self.conf())
            .output()
            .expect("run batch-client")
    }

    /// Slurm's record of every task of `array` (`scontrol show job -o`).
    fn tasks(&self, array: &str) -> String {
        let out = Command::new("scontrol")
            .args(["show", "job", "-o", array])
            .env("SLURM_CONF", self.conf())
            .output()
            .expect("scontrol");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The state of task `task` of `array` (empty while Slurm shows it in a range record).
    fn task_state(&self, array: &str, task: usize) -> String {
        let tasks = self.tasks(array);
        let line = tasks.lines().find(|l| l.contains(&format!(" ArrayTaskId={task} ")));
        line.and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("JobState=")))
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Self::script("down", self.dir.path());
        if !out.status.success() {
            eprintln!("slurm-local.sh down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// The array id from the client's "submitted Slurm array N: ..." line.
fn array_id(line: &str) -> String {
    let after = line.split("Slurm array ").nth(1).unwrap_or_else(|| panic!("{line}"));
    after.chars().take_while(char::is_ascii_digit).collect()
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// summary.csv of `dir` by job, without the columns that differ between runs: the time, and
/// the cache hits (the first run fills the server's cache).
fn summary_without_times(dir: &Path) -> Vec<HashMap<String, String>> {
    let mut rows = read_csv(&dir.join("summary.csv"));
    // Times, and what each job embedded or took from the reuse store: those depend on which
    // job of the grid met a list first, which differs between a local pool and Slurm tasks.
    for r in &mut rows {
        for column in
            ["duration_s", "embed_cache_hits", "embed_texts", "reuse_hits", "reuse_misses"]
        {
            r.remove(column);
        }
    }
    rows
}

/// The embed-server's default cache file (`dirs::cache_dir()` on Linux), which the other
/// semantic batch tests' private servers warm up too.
fn default_cache() -> PathBuf {
    let home = || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache");
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(home);
    base.join("wildcards-gen/embeddings.sqlite")
}

/// report.md's results table and what follows, without the time and cache-hit columns.
fn results_without_times(dir: &Path) -> String {
    let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
    let results = md.split("## Results").nth(1).expect("results section").to_string();
    let header = results.lines().find(|l| l.starts_with("| job |")).expect("table header");
    let cells: Vec<&str> = header.split(" | ").collect();
    let time = cells.iter().position(|c| *c == "time (s)").expect("time column");
    let embedded = cells.iter().position(|c| *c == "embedded (cache hits)").expect("column");
    let reused = cells.iter().position(|c| *c == "reused (computed)").expect("reuse column");
    let dropped = [time, embedded, reused];
    results
        .lines()
        .map(|l| match l.starts_with("| ") {
            true => {
                let c: Vec<&str> = l.split(" | ").collect();
                let kept = c.iter().enumerate().filter(|(i, _)| !dropped.contains(i));
                kept.map(|(_, c)| *c).collect::<Vec<_>>().join(" | ")
            }
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The seed grid (2 jobs + 3x3 matrix on Tencent) with semantic cleaning and arrangement, once
/// on local workers and once as a Slurm array of 4 tasks (3 jobs each, 2 at once), both on the
/// same shared embed-server: every skeleton byte-identical, every stats file's numbers,
/// summary.csv and report.md's results the same (times and cache hits aside).
#[test]
fn the_seed_grid_through_slurm_equals_the_local_run() {
    let cluster = Cluster::up();
    let server = EmbedServer::with_cache(&default_cache()).expect("embed-server");
    let seed = std::fs::read_to_string(workspace_root().join("tests/manifests/seed.yaml"))
        .expect("seed manifest")
        .replace("output_dir: seed_results", "output_dir: out")
        .replace(
            "base_params: {smart: true}",
            "base_params: {smart: true, semantic_clean: true, semantic_arrange: true}",
        );
    let b = Batch::new(&seed);
    let addr = server.address();
    let local = b.run(&["--workers", "2", "--server", &addr]);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    let started = Instant::now();
    let out = cluster
        .batch(&b, &["--executor", "slurm", "--jobs-per-task", "3", "--server", &addr])
        .args(["-o", "out-slurm"])
        .output()
        .expect("batch-client");
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    println!("seed grid through Slurm: {:.1} s\n{stdout}", started.elapsed().as_secs_f64());
    assert!(stdout.contains("submitted Slurm array") && stdout.contains("4 tasks"), "{stdout}");
    assert!(stdout.contains("slurm array "), "per-state task counts: {stdout}");
    let (l, s) = (b.out(), b.dir.path().join("out-slurm"));
    let logs = std::fs::read_dir(s.join("slurm")).expect("slurm folder");
    let outs = logs.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".out"));
    assert_eq!(outs.count(), 4, "one stdout log per task");

    let rows = summary_without_times(&l);
    assert_eq!(rows.len(), 11);
    assert_eq!(rows, summary_without_times(&s), "summary.csv differs");
    assert_eq!(results_without_times(&l), results_without_times(&s), "report.md differs");
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r:?}");
        let name = format!("tencent_{}", r["job"]);
        let yaml = |d: &Path| std::fs::read(d.join(format!("{name}.yaml"))).expect("skeleton");
        assert!(yaml(&l) == yaml(&s), "{name}.yaml differs");
        let stats = |d: &Path| -> serde_json::Value {
            let t = std::fs::read_to_string(d.join(format!("{name}.stats.json"))).expect("stats");
            serde_json::from_str(&t).expect("stats json")
        };
        let (mut a, mut z) = (stats(&l), stats(&s));
        for key in ["embed_cache_hits", "embed_texts"] {
            a["batch"][key] = 0.into();
            z["batch"][key] = 0.into();
        }
        for section in ["structure", "lint", "batch"] {
            assert_eq!(a[section], z[section], "{name}: stats section {section}");
        }
    }
    let local_rows = read_csv(&l.join("summary.csv"));
    assert!(local_rows.iter().all(|r| r["embed_texts"] != "0"), "semantic jobs embed");
}

/// A job array of 3 tasks (2 jobs each, all at once); task 1 is cancelled while it runs: its
/// unfinished jobs fail with Slurm's state and exit code, the other tasks' jobs succeed, the
/// batch exits 1.
#[test]
fn a_cancelled_task_fails_its_jobs_and_the_others_complete() {
    let cluster = Cluster::up();
    let b = Batch::new(
        "config: {output_dir: out}
matrix:
  base_params: {smart: true}
  axes: {min_leaf_size: [5, 10, 20, 50, 100, 200]}
",
    );
    let args = ["--executor", "slurm", "--jobs-per-task", "2", "--workers", "3"];
    let (mut child, lines) = b.spawn_command(cluster.batch(&b, &args));
    let array = array_id(&wait_for_line(&lines, "submitted Slurm array", MINUTE));
    let deadline = Instant::now() + MINUTE;
    while cluster.task_state(&array, 1) != "RUNNING" {
        assert!(Instant::now() < deadline, "task 1 never ran:\n{}", cluster.tasks(&array));
        std::thread::sleep(Duration::from_millis(50));
    }
    let victim = format!("{array}_1");
    let cancelled = Command::new("scancel")
        .arg(&victim)
        .env("SLURM_CONF", cluster.conf())
        .status()
        .expect("scancel");
    assert!(cancelled.success());
    let status = wait_with_limit(&mut child, 3 * MINUTE);
    assert_eq!(status.code(), Some(1), "a failed job makes exit status 1");
    let rows = b.summary();
    assert_eq!(rows.len(), 6);
    let of_task_1 = ["matrix_leaf20", "matrix_leaf50"];
    let mut failed = 0;
    for r in &rows {
        if r["status"] == "failed" {
            failed += 1;
            assert!(of_task_1.contains(&r["job"].as_str()), "only task 1's jobs fail: {r:?}");
            // The exit code depends on when the signal lands (0:15 while Slurm's step runs,
            // 1:0 once the task's own handler ran): the state and the code are both named.
            let reason = format!("Slurm task {victim} ended CANCELLED (exit code ");
            assert!(r["error"].contains(&reason), "{r:?}");
        } else {
            assert_eq!(r["status"], "succeeded", "{r:?}");
        }
    }
    assert!(failed >= 1, "the cancelled task had a job left: {rows:?}");
    assert!(cluster.task_state(&array, 1).starts_with("CANCELLED"));
    assert!(b.report().contains("## Failed jobs"));
}

/// Ctrl-C on the attached client cancels the array (scancel): no task is left running, the
/// report of what finished says interrupted, exit 130; `--resume` then submits only the
/// missing jobs, and the batch completes.
#[test]
fn ctrl_c_cancels_the_array_and_resume_submits_only_the_rest() {
    let cluster = Cluster::up();
    let b = Batch::new(
        "config: {output_dir: out}
matrix:
  base_params: {smart: true}
  axes: {min_leaf_size: [5, 10, 20, 50, 100, 200, 400]}
",
    );
    let args = ["--executor", "slurm", "--jobs-per-task", "1", "--workers", "1"];
    let (mut child, lines) = b.spawn_command(cluster.batch(&b, &args));
    let array = array_id(&wait_for_line(&lines, "submitted Slurm array", MINUTE));
    wait_for_line(&lines, " ok ", 2 * MINUTE);
    signal(child.id(), "-INT");
    let status = wait_with_limit(&mut child, 2 * MINUTE);
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
    let tasks = cluster.tasks(&array);
    assert!(!tasks.contains("JobState=RUNNING") && !tasks.contains("JobState=PENDING"), "{tasks}");
    assert!(tasks.contains("JobState=CANCELLED"), "{tasks}");
    assert!(b.report().contains("Interrupted (Ctrl-C)"), "{}", b.report());
    let rows = b.summary();
    let done = rows.iter().filter(|r| r["status"] == "succeeded").count();
    assert!((1..7).contains(&done), "{rows:?}");

    let out = cluster.batch(&b, &["--executor", "slurm", "--resume", "--jobs-per-task", "1"]);
    let out = { out }.output().expect("batch-client");
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!("--resume: {done} of 7 jobs already done")), "{stdout}");
    let rest = 7 - done;
    assert!(stdout.contains(&format!("{rest} task{}", if rest == 1 { "" } else { "s" })));
    let rows = b.summary();
    assert_eq!(rows.iter().filter(|r| r["status"] == "resumed").count(), done);
    assert_eq!(rows.iter().filter(|r| r["status"] == "succeeded").count(), rest);
}

/// A local run, one job's outputs removed, then `--executor slurm --detach --resume`: the
/// client submits only that job and exits at once with the array id; `status DIR` follows the
/// array, `report DIR` writes the final report. No embed-server answers anywhere, so the task
/// starts its own private one on its node (its lint needs embeddings); the skeleton it writes
/// equals the local run's.
#[test]
fn detach_then_status_and_report_after_a_local_run() {
    let cluster = Cluster::up();
    let b = Batch::new(
        "config: {output_dir: out, analyze: true, html: false}
jobs:
  - {name: first, params: {smart: true, min_leaf_size: 20}}
  - {name: second, params: {smart: true, preset: compact}}
  - {name: third, params: {smart: true, min_leaf_size: 50}}
",
    );
    let nothing = unused_address();
    let local = b.run(&["--workers", "2", "--server", &nothing]);
    assert_eq!(local.status.code(), Some(0), "{}", text(&local));
    let second = b.out().join("tencent_second.yaml");
    let made_locally = std::fs::read(&second).expect("second");
    std::fs::remove_file(&second).expect("remove");

    let args = ["--executor", "slurm", "--detach", "--resume", "--server", &nothing];
    let started = Instant::now();
    let out = cluster.batch(&b, &args).output().expect("batch-client");
    let stdout = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(20), "--detach returns at once");
    assert!(stdout.contains("--resume: 2 of 3 jobs already done"), "{stdout}");
    let array = array_id(stdout.lines().find(|l| l.starts_with("detached:")).expect("detached"));
    assert!(stdout.contains("1 task of up to"), "{stdout}");

    let deadline = Instant::now() + 4 * MINUTE;
    let said = loop {
        let status = cluster.subcommand("status", &b.out());
        let said = text(&status);
        assert_eq!(status.status.code(), Some(0), "{said}");
        assert!(said.contains(&format!("slurm array {array}: ")), "{said}");
        if said.contains(": finished") && said.contains("1 completed") {
            break said;
        }
        assert!(Instant::now() < deadline, "the array did not finish: {said}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(said.contains("1 succeeded, 2 resumed, 0 failed"), "{said}");

    let report = cluster.subcommand("report", &b.out());
    assert_eq!(report.status.code(), Some(0), "{}", text(&report));
    let rows = b.summary();
    assert_eq!(row(&rows, "second")["status"], "succeeded", "{rows:?}");
    assert_eq!(row(&rows, "first")["status"], "resumed");
    assert_eq!(row(&rows, "third")["status"], "resumed");
    assert!(!b.report().contains("Interrupted"), "{}", b.report());
    assert_eq!(std::fs::read(&second).expect("second again"), made_locally);
    let task_log = std::fs::read_to_string(b.out().join(format!("slurm/task-{array}_0.out")))
        .expect("task log");
    assert!(task_log.contains("starting a private one"), "{task_log}");
    assert!(b.out().join(format!("slurm/embed-server-{array}_0.log")).is_file());
}

/// Slurm flags without `--executor slurm`, a bad time limit, and a manifest's bad
/// `config.slurm` are usage errors (exit 2, nothing submitted) naming the flag or field; without
/// the Slurm commands on PATH the batch says what is missing.
#[test]
fn slurm_options_are_checked_before_anything_is_submitted() {
    let b = Batch::new("config: {output_dir: out}\njobs:\n  - {name: a, params: {smart: true}}\n");
    let out = b.run(&["--partition", "short"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--partition is an option of --executor slurm"), "{}", text(&out));
    let out = b.run(&["--executor", "slurm", "--time", "1h"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("\"1h\" is not a Slurm time limit"), "{}", text(&out));

    let bad = Batch::new(
        "config:\n  output_dir: out\n  slurm: {mem: lots}\njobs:\n  - {name: a, params: {smart: true}}\n",
    );
    let out = bad.run(&["--executor", "slurm"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("manifest.yaml:3:"), "{}", text(&out));
    assert!(
        text(&out).contains("config.slurm.mem: \"lots\" is not a memory size"),
        "{}",
        text(&out)
    );

    let out = b.command(&["--executor", "slurm"]).env("PATH", "/nonexistent").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Slurm client commands (sbatch"), "{}", text(&out));
    assert!(!b.out().join("slurm/array.json").exists());
}
