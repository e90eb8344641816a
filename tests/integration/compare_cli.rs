//! `wildcards-gen compare` and the ImageNet / COCO / Open Images subcommands, run as the real
//! binary on the real dataset files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    std::env::var_os("WILDCARDS_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
    })
}

fn wildcards_gen(args: &[&str]) -> Output {
    Command::new(test_support::binary("wildcards-gen"))
        .args(args)
        .env("WILDCARDS_DATA_DIR", data_dir())
        .output()
        .expect("wildcards-gen runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn generate(dir: &Path, name: &str, args: &[&str]) -> String {
    let path = dir.join(name).display().to_string();
    let mut all = vec!["dataset"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--quiet", "-o", &path]);
    ok(&wildcards_gen(&all));
    path
}

#[test]
fn compare_a_file_with_itself_and_with_another_preset() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), "a.yaml", &["openimages", "--bbox-only", "--smart"]);
    let b = generate(
        dir.path(),
        "b.yaml",
        &["openimages", "--bbox-only", "--smart", "--preset", "ultra-flat"],
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(&wildcards_gen(&["compare", &a, &a, "--format", "json"])))
            .unwrap();
    assert_eq!(json["jaccard"], 1.0);
    assert_eq!(json["ari"], 1.0);
    assert_eq!(json["common_items"], 601);

    let md = ok(&wildcards_gen(&["compare", &a, &b]));
    assert!(md.contains("| Jaccard (item sets) | 1.0000 |"), "{md}");
    assert!(md.contains("adjusted Rand index"), "{md}");
    assert!(
        !md.contains("| adjusted Rand index (category paths of common items) | 1.0000 |"),
        "{md}"
    );
}

#[test]
fn compare_without_common_items_has_no_ari() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
    std::fs::write(&a, "Pets:\n  Dogs: [beagle, pug]\n  Cats: [tabby]\n").unwrap();
    std::fs::write(&b, "Birds:\n  - robin\n  - owl\n").unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let md = ok(&wildcards_gen(&["compare", a, b]));
    assert!(md.contains("| adjusted Rand index (category paths of common items) | n/a |"), "{md}");
    assert!(!md.contains("1.0000"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&wildcards_gen(&["compare", a, b, "--format", "json"]))).unwrap();
    assert!(json["ari"].is_null(), "{json}");
    assert_eq!(json["common_items"], 0);
}

#[test]
fn compare_errors_name_the_file() {
    let out = wildcards_gen(&["compare", "/nonexistent/a.yaml", "/nonexistent/b.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/a.yaml") && err.lines().count() == 1, "{err}");
    let out = wildcards_gen(&["compare", "a.yaml", "b.yaml", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dataset_subcommands_for_imagenet_coco_openimages() {
    let dir = tempfile::tempdir().unwrap();
    let coco = generate(dir.path(), "coco.yaml", &["coco"]);
    let text = std::fs::read_to_string(&coco).unwrap();
    assert!(text.starts_with("COCO: # instruction: "), "{text}");
    assert_eq!(text.matches("\n    - ").count(), 80, "80 items:\n{text}");

    let imagenet = generate(
        dir.path(),
        "imagenet.yaml",
        &["imagenet", "--filter", "1k", "--no-strict", "--smart", "--preset", "compact"],
    );
    assert!(std::fs::read_to_string(&imagenet).unwrap().contains("- golden retriever"));

    // Full-label Open Images without the V7 list says it fell back.
    let path = dir.path().join("oi.yaml").display().to_string();
    let out = wildcards_gen(&["dataset", "openimages", "-o", &path]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("note: full label mode") && err.contains("oidv7"), "{err}");

    let out = wildcards_gen(&["dataset", "imagenet", "--root", "nope.n.01", "-o", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.n.01"));
}

#[test]
fn analyze_without_output_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(test_support::binary("wildcards-gen"))
        .args(["dataset", "openimages", "--bbox-only", "--analyze"])
        .env("WILDCARDS_DATA_DIR", data_dir())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("Raw hierarchy of openimages"), "{text}");
    assert!(text.contains("Suggested smart thresholds: --smart --min-depth"), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file written");
}

/// Distinct items of a written skeleton.
fn distinct_items(path: &str) -> std::collections::BTreeSet<String> {
    let tree = wildcards_core::output::read_yaml(Path::new(path)).unwrap();
    tree.all_items().into_iter().collect()
}

#[test]
fn imagenet_keeps_its_1000_classes_by_default_and_the_analysis_counts_the_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = generate(dir.path(), "1k.yaml", &["imagenet", "--filter", "1k"]);
    let items = distinct_items(&plain);
    assert_eq!(items.len(), 1000);
    assert!(items.contains("crane (wading bird)") && items.contains("crane (lifting device)"));
    let dropped = generate(
        dir.path(),
        "drop.yaml",
        &["imagenet", "--filter", "1k", "--drop-secondary-senses"],
    );
    assert_eq!(distinct_items(&dropped).len(), 10, "what strict did before: 10 classes");

    let path = dir.path().join("smart.yaml").display().to_string();
    let stdout = ok(&wildcards_gen(&[
        "dataset",
        "imagenet",
        "--filter",
        "1k",
        "--smart",
        "--analyze",
        "-o",
        &path,
    ]));
    let line = stdout.lines().find(|l| l.starts_with("Renamed for ambiguity: ")).expect(&stdout);
    assert!(line.contains(" (e.g. abacus -> abacus (calculator), "), "{line}");
    let stats = dir.path().join("smart.stats.json");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    let events = stats["events"].as_array().unwrap();
    let renaming = events.iter().find(|e| e["kind"] == "renaming").expect("a renaming event");
    let labels = renaming["data"]["labels"].as_u64().unwrap();
    assert!(line.contains(&format!(": {labels} labels, ")), "{line}");
    assert_eq!(stats["metadata"]["config"]["strict"], true);
    assert_eq!(stats["metadata"]["config"]["drop_secondary_senses"], false);
}
