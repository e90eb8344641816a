//! Fault tests of batch-client on the real Tencent data (no embeddings needed): a job with a
//! missing dataset file, a worker killed with SIGKILL mid-job, a job timeout, Ctrl-C followed
//! by `--resume`.

use std::time::Duration;

use crate::batch_support::{row, signal, wait_for_line, wait_with_limit, Batch};

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn a_job_with_a_missing_dataset_file_fails_alone() {
    let b = Batch::new(
        "config: {output_dir: out}
jobs:
  - {name: first, params: {smart: true, min_leaf_size: 20}}
  - {name: broken, params: {smart: true}, data_dir: no_such_folder}
  - {name: last, params: {smart: true, preset: compact}}
",
    );
    let out = b.run(&["--workers", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let rows = b.summary();
    assert_eq!(rows.len(), 3);
    let broken = row(&rows, "broken");
    assert_eq!(broken["status"], "failed");
    assert!(
        broken["error"]
            .contains("no_such_folder/tencent/dictionary_and_semantic_hierarchy.txt is missing"),
        "{broken:?}"
    );
    for job in ["first", "last"] {
        assert_eq!(row(&rows, job)["status"], "succeeded", "{rows:?}");
        assert!(b.out().join(format!("tencent_{job}.yaml")).is_file());
    }
    assert!(!b.out().join("tencent_broken.yaml").exists());
    let report = b.report();
    assert!(report.contains("## Failed jobs") && report.contains("### broken"), "{report}");
    assert!(stderr.contains("job broken failed"), "{stderr}");
}

#[test]
fn a_worker_killed_mid_job_fails_that_job_only() {
    let b = Batch::new(
        "config: {output_dir: out}
matrix:
  base_params: {smart: true}
  axes: {min_leaf_size: [10, 20, 50, 100]}
",
    );
    let (mut child, lines) = b.spawn(&["--workers", "2"]);
    // The first job handed out: its worker is loading WordNet and the dataset right now.
    let line = wait_for_line(&lines, " start ", MINUTE);
    let victim_job = line.split_whitespace().nth(2).expect("job name").to_string();
    let pid: u32 = line
        .rsplit("pid ")
        .next()
        .and_then(|p| p.trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    signal(pid, "-9");
    let status = wait_with_limit(&mut child, 3 * MINUTE);
    assert_eq!(status.code(), Some(1));
    let rows = b.summary();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        if r["job"] == victim_job {
            assert_eq!(r["status"], "failed");
            assert!(r["error"].contains("killed by signal 9"), "{r:?}");
        } else {
            assert_eq!(r["status"], "succeeded", "{r:?}");
        }
    }
}

#[test]
fn a_job_over_the_timeout_fails_with_the_reason() {
    let b = Batch::new("config: {output_dir: out}\njobs:\n  - {name: slow, params: {smart: true}}\n  - {name: slower}\n");
    let out = b.run(&["--job-timeout", "0.05", "--workers", "1"]);
    assert_eq!(out.status.code(), Some(1));
    for r in b.summary() {
        assert_eq!(r["status"], "failed");
        assert!(r["error"].contains("timed out after 0.05 s"), "{r:?}");
    }
}

#[test]
fn ctrl_c_writes_a_partial_report_and_resume_runs_only_the_rest() {
    let b = Batch::new(
        "config: {output_dir: out}
matrix:
  base_params: {smart: true}
  axes: {min_leaf_size: [5, 10, 20, 50, 100, 200, 400]}
",
    );
    let (mut child, lines) = b.spawn(&["--workers", "1"]);
    wait_for_line(&lines, " ok ", 2 * MINUTE);
    signal(child.id(), "-INT");
    let status = wait_with_limit(&mut child, MINUTE);
    assert_eq!(status.code(), Some(130), "Ctrl-C exits 130");
    let report = b.report();
    assert!(report.contains("Interrupted (Ctrl-C)"), "{report}");
    let rows = b.summary();
    assert_eq!(rows.len(), 7);
    let done = rows.iter().filter(|r| r["status"] == "succeeded").count();
    let rest =
        rows.iter().filter(|r| r["status"] == "not run" || r["status"] == "interrupted").count();
    assert!(done >= 1 && rest >= 1 && done + rest == 7, "{rows:?}");

    let out = b.run(&["--workers", "1", "--resume"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(&format!("--resume: {done} of 7 jobs already done")), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.contains(" start ")).count(), 7 - done, "{stdout}");
    let rows = b.summary();
    assert_eq!(rows.iter().filter(|r| r["status"] == "resumed").count(), done);
    assert_eq!(rows.iter().filter(|r| r["status"] == "succeeded").count(), 7 - done);
    // Resumed rows keep the numbers of the run that made them.
    assert!(rows.iter().all(|r| !r["categories"].is_empty()), "{rows:?}");
}

#[test]
fn sigterm_writes_the_report_and_exits_143() {
    let b = Batch::new(
        "config: {output_dir: out}
matrix:
  base_params: {smart: true}
  axes: {min_leaf_size: [5, 10, 20, 50, 100, 200, 400]}
",
    );
    let (mut child, lines) = b.spawn(&["--workers", "1"]);
    wait_for_line(&lines, " start ", 2 * MINUTE);
    signal(child.id(), "-TERM");
    let status = wait_with_limit(&mut child, MINUTE);
    assert_eq!(status.code(), Some(143), "SIGTERM exits 143 (Ctrl-C: 130)");
    assert_eq!(b.summary().len(), 7, "the report of what finished is written");
}
