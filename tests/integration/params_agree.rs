//! The parameter table drives both front ends: `wildcards-gen dataset` flags and manifest
//! params reject the same values with the same problem and fix, and a closed stdout ends a
//! command quietly with exit 0.

use std::process::{Command, Stdio};

use test_support::{binary, test_data_dir};

/// (flags, the same setting as manifest params, problem and fix both must say).
const CASES: &[(&[&str], &str, &str)] = &[
    (&["--depth", "0"], "{depth: 0}", "must be at least 1; use 1 or more"),
    (
        &["--smart", "--min-leaf", "0"],
        "{smart: true, min_leaf_size: 0}",
        "must be at least 1; use 1 or more",
    ),
    (
        &["--smart", "--orphans-label-template", "misc"],
        "{smart: true, orphans_label_template: misc}",
        "\"misc\" has no `{}`",
    ),
];

#[test]
fn cli_and_manifest_reject_the_same_values_with_the_same_message() {
    for (flags, params, message) in CASES {
        let out = Command::new(binary("wildcards-gen"))
            .args(["dataset", "tencent", "-q", "-o", "/dev/null"])
            .args(*flags)
            .env("WILDCARDS_DATA_DIR", test_data_dir())
            .output()
            .expect("run wildcards-gen");
        let cli = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {cli}");
        assert!(cli.contains(message), "{flags:?}: {cli}");

        let dir = tempfile::tempdir().expect("temp");
        let manifest = dir.path().join("m.yaml");
        let text = format!("jobs:\n  - name: a\n    params: {params}\n");
        std::fs::write(&manifest, text).expect("write manifest");
        let out = Command::new(binary("batch-client"))
            .arg(&manifest)
            .arg("--dry-run")
            .output()
            .expect("run batch-client");
        let batch = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{params}: {batch}");
        let message = message.replace("; ", "");
        let (problem, fix) = message.split_once("use").map_or((&message[..], ""), |(p, f)| (p, f));
        assert!(batch.contains(problem.trim()), "{params}: {batch}");
        assert!(batch.contains(fix.trim()), "{params}: {batch}");
    }
}

/// Closes the command's stdout before it prints (as `| head -0` would) and returns the exit
/// code and stderr.
fn close_stdout_early(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    let mut analyze = Command::new(binary("wildcards-gen"));
    analyze.args(["dataset", "tencent", "--analyze"]).env("WILDCARDS_DATA_DIR", test_data_dir());
    let (code, err) = close_stdout_early(&mut analyze);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = tempfile::tempdir().expect("temp");
    let manifest = dir.path().join("m.yaml");
    let grid = "matrix:\n  base_params: {smart: true}\n  axes: {min_leaf_size: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}\n";
    std::fs::write(&manifest, grid).expect("write");
    let mut dry = Command::new(binary("batch-client"));
    dry.arg(&manifest).arg("--dry-run");
    let (code, err) = close_stdout_early(&mut dry);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Settings that would do nothing: a zero preview limit is refused; a skip node or a
/// smart-config key that names no category is said (a note), not silently ignored.
#[test]
fn settings_that_do_nothing_are_refused_or_noted() {
    let dir = tempfile::tempdir().expect("temp");
    let out = dir.path().join("coco.yaml");
    let run = |extra: &[&str]| {
        Command::new(binary("wildcards-gen"))
            .args(["dataset", "coco", "-o", out.to_str().unwrap()])
            .args(extra)
            .env("WILDCARDS_DATA_DIR", test_data_dir())
            .output()
            .expect("run wildcards-gen")
    };
    let zero = run(&["--preview-limit", "0"]);
    assert_eq!(zero.status.code(), Some(2), "{}", String::from_utf8_lossy(&zero.stderr));
    let config = dir.path().join("smart.yaml");
    std::fs::write(&config, "no such category: {min_hyponyms: 5}\n").expect("write");
    let noted = run(&[
        "--smart",
        "--skip-nodes",
        "nosuchthing",
        "--smart-config",
        config.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&noted.stderr);
    assert!(noted.status.success(), "{err}");
    assert!(err.contains("skip node \"nosuchthing\" matches no category of coco"), "{err}");
    assert!(err.contains("smart-config key \"no such category\" matches no category"), "{err}");

    // An empty orphan label would name every bin "": refused before any work.
    std::fs::remove_file(&out).expect("the noted run wrote its output");
    let empty = run(&["--smart", "--orphans-label-template", ""]);
    let err = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(empty.status.code(), Some(2), "{err}");
    assert!(err.contains("orphans-label-template") && err.contains("{}"), "{err}");
    assert!(!out.exists(), "nothing written");

    // Tencent's own skip list is replaced by --skip-nodes: the dropped defaults are named.
    let tencent = dir.path().join("tencent.yaml");
    let replaced = Command::new(binary("wildcards-gen"))
        .args(["dataset", "tencent", "--smart", "--skip-nodes", "organism", "-o"])
        .arg(&tencent)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .output()
        .expect("run wildcards-gen");
    let err = String::from_utf8_lossy(&replaced.stderr);
    assert!(replaced.status.success(), "{err}");
    assert!(err.contains("skip_nodes replaces tencent's default list, so placental"), "{err}");
    assert!(!err.contains("so organism") && !err.contains(", organism,"), "{err}");

    // embed-server: zero texts per request would refuse every request.
    let zero = Command::new(binary("embed-server"))
        .args(["--max-texts", "0"])
        .output()
        .expect("run embed-server");
    let err = String::from_utf8_lossy(&zero.stderr);
    assert_eq!(zero.status.code(), Some(2), "{err}");
    assert!(err.contains("--max-texts"), "{err}");
}
