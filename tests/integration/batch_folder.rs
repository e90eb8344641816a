//! One batch per output folder: a second batch in a running batch's folder, or a different
//! manifest in a finished batch's folder, exits 2 and touches nothing; `--resume` reruns a job
//! whose output was damaged.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::batch_support::row;
use test_support::{binary, test_data_dir};

/// A grid of Tencent jobs without analysis (no embed-server needed).
fn grid(leaves: &[u32]) -> String {
    let values: Vec<String> = leaves.iter().map(u32::to_string).collect();
    format!(
        "config:\n  dataset: tencent\n  analyze: false\n  save_stats: true\n\
         matrix:\n  base_params: {{smart: true}}\n  axes: {{min_leaf_size: [{}]}}\n",
        values.join(", ")
    )
}

fn batch(manifest: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(binary("batch-client"));
    cmd.arg(manifest)
        .args(["--output-dir", out.to_str().unwrap(), "--workers", "1", "--quiet"])
        .args(extra)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env("WILDCARDS_OFFLINE", "1");
    cmd
}

fn run(manifest: &Path, out: &Path, extra: &[&str]) -> Output {
    batch(manifest, out, extra).output().expect("run batch-client")
}

/// Every file of the folder with its content.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_second_batch_in_a_running_batchs_folder_exits_2_and_mixes_nothing() {
    let dir = tempfile::tempdir().expect("temp");
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, grid(&[2, 3, 4, 5, 6, 7, 8, 9])).unwrap();
    std::fs::write(&b, grid(&[40, 50])).unwrap();
    let out = dir.path().join("out");
    let mut first = batch(&a, &out, &[]).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join(".batch.lock").exists() {
        assert!(Instant::now() < deadline, "the first batch never locked its folder");
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = run(&b, &out, &[]);
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains(&format!("pid {}", first.id())) && err.contains("a.yaml"), "{err}");
    assert!(first.wait().expect("wait").success());
    let files = snapshot(&out);
    assert!(files.keys().all(|f| !f.contains("leaf40") && !f.contains("leaf50")), "{files:?}");
    assert_eq!(crate::batch_support::read_csv(&out.join("summary.csv")).len(), 8);
    assert!(!out.join(".batch.lock").exists(), "the lock goes with the batch");
}

#[test]
fn a_different_manifest_is_refused_unless_forced_and_resume_reruns_damaged_outputs() {
    let dir = tempfile::tempdir().expect("temp");
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, grid(&[10, 20])).unwrap();
    std::fs::write(&b, grid(&[30])).unwrap();
    let out = dir.path().join("out");
    assert!(run(&a, &out, &[]).status.success());
    let before = snapshot(&out);

    let refused = run(&b, &out, &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    assert_eq!(snapshot(&out), before, "files untouched");

    // --resume of the same manifest: a damaged output is not trusted.
    let damaged = out.join("tencent_matrix_leaf10.yaml");
    let text = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &text[..100]).unwrap();
    let resumed = run(&a, &out, &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let rows = crate::batch_support::read_csv(&out.join("summary.csv"));
    assert_eq!(row(&rows, "matrix_leaf10")["status"], "succeeded");
    assert_eq!(row(&rows, "matrix_leaf20")["status"], "resumed");
    assert_eq!(std::fs::read(&damaged).unwrap(), text, "rewritten as it was");

    let forced = run(&b, &out, &["--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let files = snapshot(&out);
    assert!(files.contains_key("tencent_matrix_leaf30.yaml"));
    assert!(!files.contains_key("tencent_matrix_leaf10.yaml"), "the earlier run's outputs go");
}

/// Issue 12 item 19: an output folder that cannot be written is refused before any job runs
/// (exit 2, the folder named, what to do). `/proc/self` exists and refuses new files even to
/// root, which a permission bit would not do in CI.
#[test]
fn an_unwritable_output_folder_is_refused_before_any_job() {
    let dir = tempfile::tempdir().expect("temp");
    let manifest = dir.path().join("m.yaml");
    std::fs::write(&manifest, grid(&[2, 3])).unwrap();
    let out = run(&manifest, Path::new("/proc/self"), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("the output folder /proc/self is not writable"), "{err}");
    assert!(err.contains("--output-dir"), "{err}");
    assert!(!err.contains("ok ") && String::from_utf8_lossy(&out.stdout).is_empty(), "{err}");
}
