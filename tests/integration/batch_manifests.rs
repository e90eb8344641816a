//! The malformed-manifest corpus (tests/manifests/bad): every file makes `batch-client` exit 2
//! with an error naming the field (the `# expect:` text on its first line) and a fix, and
//! nothing is written.

use std::path::Path;
use std::process::Command;

use test_support::{binary, workspace_root};

fn corpus() -> Vec<std::path::PathBuf> {
    let dir = workspace_root().join("tests/manifests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/manifests/bad")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every file in `dir`, recursively.
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_in(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_malformed_manifest_exits_2_naming_the_field_and_writes_nothing() {
    let files = corpus();
    assert!(files.len() >= 15, "the corpus has only {} manifests", files.len());
    let exe = binary("batch-client");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read manifest");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks a '# expect:' first line", file.display()));
        // Run on a copy in an empty folder so that anything written would show.
        let dir = tempfile::tempdir().expect("temp dir");
        let copy = dir.path().join("manifest.yaml");
        std::fs::write(&copy, &text).expect("copy manifest");
        let out = Command::new(&exe).arg(&copy).output().expect("run batch-client");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let written: Vec<_> = files_in(dir.path()).into_iter().filter(|p| p != &copy).collect();
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if out.status.code() != Some(2) {
            failures.push(format!("{name}: exit {:?}, stderr:\n{stderr}", out.status.code()));
        } else if !stderr.contains(expect) {
            failures.push(format!("{name}: stderr lacks {expect:?}:\n{stderr}"));
        } else if !stderr.contains("manifest.yaml:") || !stderr.contains("fix: ") {
            failures.push(format!("{name}: no file position or fix:\n{stderr}"));
        } else if !written.is_empty() {
            failures.push(format!("{name}: wrote {written:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn dry_run_prints_the_expanded_job_table() {
    let manifest = workspace_root().join("tests/manifests/seed.yaml");
    let out = Command::new(binary("batch-client"))
        .arg(&manifest)
        .arg("--dry-run")
        .output()
        .expect("run batch-client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("11 jobs"), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.contains("tencent_")).collect();
    assert_eq!(rows.len(), 11, "{stdout}");
    assert!(rows[2].starts_with("3 ") && rows[2].contains("matrix_leaf20_thresh0.1"), "{stdout}");
    assert!(
        rows[10].contains("matrix_leaf100_thresh0.3") && rows[10].contains(" 100 "),
        "{stdout}"
    );
    assert!(!workspace_root().join("tests/manifests/seed_results").exists());
}

#[test]
fn a_grid_above_1000_jobs_needs_yes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("grid.yaml");
    let axis = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let text = format!(
        "config: {{output_dir: out}}\nmatrix:\n  base_params: {{smart: true}}\n  axes:\n    min_leaf_size: [{}]\n    min_depth: [{}]\n",
        axis(101),
        axis(10)
    );
    std::fs::write(&manifest, text).expect("write manifest");
    let run = |args: &[&str]| {
        Command::new(binary("batch-client")).arg(&manifest).args(args).output().expect("run")
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("1010 jobs") && stderr.contains("--yes"), "{stderr}");
    assert!(stderr.contains(" min on 2 workers") && stderr.contains(" MB of outputs"), "{stderr}");
    assert!(!dir.path().join("out").exists(), "nothing written");
    // --dry-run needs no --yes; with --yes the batch goes on (here to a folder it cannot use).
    assert_eq!(run(&["--dry-run"]).status.code(), Some(0));
    let out = run(&["--yes", "-o", "/proc/no-such-folder"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("--yes"), "{stderr}");
}
