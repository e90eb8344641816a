//! Reuse across jobs (the output folder's `.reuse` store): a semantic grid writes the same
//! skeletons and lint results with the store as without it (`--no-reuse`), its jobs reuse
//! each other's per-list results, and a second run over a full store computes nothing.

use std::collections::HashMap;
use std::path::Path;

use crate::batch_support::Batch;
use test_support::{EmbedServer, EmbedServerOptions};

/// Both outlier methods, two thresholds (the scores are shared across them) and two leaf
/// sizes, with cleaning, arrangement and the lint, on Open Images (small: quick in a debug
/// build, yet lists long enough to arrange).
const GRID: &str = "config: {output_dir: out, dataset: openimages, analyze: true, html: false}
matrix:
  base_params: {smart: true, bbox_only: true, preset: detailed, semantic_clean: true, semantic_arrange: true}
  axes:
    outlier_method: [typicality, glosh]
    semantic_threshold: [0.05, 0.3]
    min_leaf_size: [3, 8]
";

fn int(row: &HashMap<String, String>, col: &str) -> u64 {
    row[col].parse().unwrap_or_else(|_| panic!("{col} = {:?} in {row:?}", row[col]))
}

/// Every skeleton of `out`, by file name.
fn skeletons(out: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Section `section` of every stats file of `out`, by file name.
fn stats_sections(out: &Path, section: &str) -> HashMap<String, serde_json::Value> {
    std::fs::read_dir(out)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".stats.json"))
        .map(|p| {
            let stats: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), stats[section].clone())
        })
        .collect()
}

/// The `lint` section of every stats file of `out` (the flagged items with their scores).
fn lints(out: &Path) -> HashMap<String, serde_json::Value> {
    stats_sections(out, "lint")
}

#[test]
fn reused_results_give_byte_identical_outputs_and_a_full_store_computes_nothing() {
    let cache = tempfile::tempdir().expect("temp");
    let options =
        EmbedServerOptions { cache: Some(cache.path().join("cache.sqlite")), ..Default::default() };
    let server = EmbedServer::start(options).expect("embed-server");
    let addr = server.address();
    let run = |b: &Batch, extra: &[&str]| {
        let mut args = vec!["--workers", "2", "--server", &addr, "--quiet"];
        args.extend(extra);
        let out = b.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        b.summary()
    };

    let plain = Batch::new(GRID);
    let plain_rows = run(&plain, &["--no-reuse"]);
    assert!(!plain.out().join(".reuse").exists(), "--no-reuse writes no store");
    assert!(plain_rows.iter().all(|r| int(r, "reuse_hits") + int(r, "reuse_misses") == 0));

    let reusing = Batch::new(GRID);
    let rows = run(&reusing, &[]);
    assert_eq!(rows.len(), 8);
    let (hits, misses) = rows
        .iter()
        .fold((0, 0), |(h, m), r| (h + int(r, "reuse_hits"), m + int(r, "reuse_misses")));
    println!("first run with the store: {hits} results reused, {misses} computed");
    assert!(hits > 0 && misses > 0, "jobs share lists: {hits} hits, {misses} misses");
    assert!(reusing.report().contains("- Reuse across jobs: "), "{}", reusing.report());
    // Jobs running at once claim the lists they share: each arrangement was computed by one
    // job only (its count of computed arrangements over all jobs equals the store's entries),
    // and no claim is left behind.
    let store = reusing.out().join(".reuse");
    let files = every_file(&store);
    let entries = walk(&store.join("arrangement")).len();
    let computed: u64 = stats_sections(&reusing.out(), "reuse")
        .values()
        .map(|reuse| reuse["arrangements"]["misses"].as_u64().expect("arrangement misses"))
        .sum();
    assert!(entries > 0);
    assert_eq!(computed, entries as u64, "arrangements computed by more than one job");
    let claims: Vec<_> = files.iter().filter(|p| !p.to_string_lossy().ends_with(".json")).collect();
    assert!(claims.is_empty(), "claims or temporary files left: {claims:?}");

    let (want, got) = (skeletons(&plain.out()), skeletons(&reusing.out()));
    assert_eq!(want.len(), 8);
    for (name, bytes) in &want {
        assert!(got.get(name) == Some(bytes), "{name} differs with reuse");
    }
    assert_eq!(lints(&plain.out()), lints(&reusing.out()), "lint results differ with reuse");
    let outliers = |rows: &[HashMap<String, String>]| -> Vec<(String, String)> {
        let mut v: Vec<_> =
            rows.iter().map(|r| (r["job"].clone(), r["outliers"].clone())).collect();
        v.sort();
        v
    };
    assert_eq!(outliers(&plain_rows), outliers(&rows));

    // The same grid again in the same folder: every list's results are in the store.
    let again = run(&reusing, &[]);
    for r in &again {
        assert_eq!(int(r, "reuse_misses"), 0, "{r:?}");
        assert!(int(r, "reuse_hits") > 0, "{r:?}");
        let plain_texts =
            int(plain_rows.iter().find(|p| p["job"] == r["job"]).unwrap(), "embed_texts");
        assert!(int(r, "embed_texts") < plain_texts, "less left to embed: {r:?}");
    }
    for (name, bytes) in &want {
        assert!(skeletons(&reusing.out()).get(name) == Some(bytes), "{name} differs on reuse");
    }
    assert_eq!(lints(&plain.out()), lints(&reusing.out()));
}

/// A damaged store (a truncated entry, a stray temporary file) is read around, not trusted:
/// the run recomputes those results and still writes the same skeletons.
#[test]
fn a_damaged_store_entry_is_recomputed() {
    let server = EmbedServer::uncached().expect("embed-server");
    let addr = server.address();
    let grid = GRID.replace("outlier_method: [typicality, glosh]", "outlier_method: [typicality]");
    let b = Batch::new(&grid);
    let args = ["--workers", "1", "--server", &addr, "--quiet"];
    assert_eq!(b.run(&args).status.code(), Some(0));
    let before = skeletons(&b.out());
    let mut entries: Vec<std::path::PathBuf> = walk(&b.out().join(".reuse"));
    entries.sort();
    assert!(entries.len() > 4, "{entries:?}");
    let mut damaged = 0u64;
    for (i, entry) in entries.iter().enumerate().filter(|(i, _)| i % 3 == 0) {
        let bytes = std::fs::read(entry).unwrap();
        let cut = if i % 2 == 0 { bytes.len() / 2 } else { 0 };
        std::fs::write(entry, &bytes[..cut]).unwrap();
        damaged += 1;
    }
    std::fs::write(entries[0].with_file_name(".entry-x.tmp"), b"{\"half\": ").unwrap();
    assert_eq!(b.run(&args).status.code(), Some(0));
    let rows = b.summary();
    // The same jobs in the same order look up the same entries: only the damaged ones miss,
    // each until it is recomputed and stored again (once, or once more for a second list of
    // the same job with the same items, looked up before the first was stored).
    let misses: u64 = rows.iter().map(|r| int(r, "reuse_misses")).sum();
    assert!(misses >= damaged && misses <= damaged + damaged / 10 + 2, "{misses} misses: {rows:?}");
    assert_eq!(skeletons(&b.out()), before);
}

/// The entries (`.json` files) under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    every_file(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")).collect()
}

/// Every file under `dir`.
fn every_file(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        match path.is_dir() {
            true => out.extend(every_file(&path)),
            false => out.push(path),
        }
    }
    out
}
