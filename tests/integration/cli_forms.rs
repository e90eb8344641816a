//! Input and output forms of `wildcards-gen`: the tool's JSONL read back by `compare`, the
//! output format following the `-o` name, `-o -` for stdout, an `-o` into a missing folder or
//! onto a folder refused before any work, binary and folder inputs named as such.

use std::path::Path;
use std::process::{Command, Output};

use test_support::{binary, test_data_dir};

fn wildcards_gen(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("wildcards-gen"))
        .args(args)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .current_dir(dir)
        .output()
        .expect("wildcards-gen runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), stderr(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dataset_output_follows_the_name_and_dash_is_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&wildcards_gen(d, &["dataset", "coco", "-q", "-o", "coco.jsonl"]));
    let jsonl = std::fs::read_to_string(d.join("coco.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 80, "{jsonl}");
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(first["text"].is_string() && first["hierarchy"].is_array(), "{first}");

    let printed = ok(&wildcards_gen(d, &["dataset", "coco", "-q", "-o", "-"]));
    assert!(printed.starts_with("COCO: # instruction: "), "{printed}");
    assert!(!d.join("-").exists(), "no file named -");
    let out = wildcards_gen(d, &["dataset", "coco", "--analyze", "-o", "-"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // compare reads the JSONL beside the YAML of the same skeleton.
    ok(&wildcards_gen(d, &["dataset", "coco", "-q", "-o", "coco.yaml"]));
    let json = ok(&wildcards_gen(d, &["compare", "coco.jsonl", "coco.yaml", "--format", "json"]));
    let c: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!((c["common_items"].as_u64(), c["jaccard"].as_f64()), (Some(80), Some(1.0)));
    assert_eq!(c["ari"].as_f64(), Some(1.0), "same grouping");
}

#[test]
fn an_output_into_a_missing_folder_or_onto_a_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("no/such/dir/x.yaml");
    let out = wildcards_gen(d, &["dataset", "coco", "-o", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!d.join("no").exists(), "no folder made");

    std::fs::create_dir(d.join("folder")).unwrap();
    let out = wildcards_gen(d, &["dataset", "coco", "-o", "folder"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("that is a folder"), "{err}");
    assert!(err.matches("Is a directory").count() <= 1, "said once: {err}");
    let out = wildcards_gen(d, &["arrange", "terms.txt", "-o", missing.to_str().unwrap()]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn binary_and_folder_inputs_are_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("blob.yaml"), [0u8, 159, 146, 150, 0, 1, 2]).unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    for args in [
        &["lint", "blob.yaml"][..],
        &["compare", "blob.yaml", "blob.yaml"],
        &["arrange", "blob.yaml"],
    ] {
        let out = wildcards_gen(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains("blob.yaml is not a text file"), "{}", stderr(&out));
    }
    for args in [&["lint", "folder"][..], &["compare", "folder", "folder"], &["arrange", "folder"]]
    {
        let out = wildcards_gen(d, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("folder is a folder; give a file"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
