//! The seed manifest of DESIGN.md (2 jobs + a 3x3 matrix = 11 Tencent jobs), run end to end
//! by the real batch-client with `--workers 2` and a private embed-server (nothing answers at
//! the `--server` address given, so batch-client starts one): once as written, once with
//! semantic cleaning and arrangement. report.md and summary.csv are checked row by row
//! against every job's `.stats.json`. The manifest names `baseline` as `config.baseline`, so
//! both files also carry the Jaccard and ARI of each job against it, checked against
//! `wildcards-gen compare`. Both report.html files are opened in headless Chromium
//! ([`check_report_in_chromium`]).

use std::collections::HashMap;

use crate::batch_support::{check_row_against_stats, row, unused_address, Batch};
use crate::report_html::check_report_in_chromium;
use test_support::workspace_root;

/// The seed manifest with its outputs in `out/`, the job `baseline` as `config.baseline`, and
/// `extra` added to `base_params`.
fn seed_manifest(extra: &str) -> String {
    let text = std::fs::read_to_string(workspace_root().join("tests/manifests/seed.yaml"))
        .expect("seed manifest");
    text.replace("output_dir: seed_results", "output_dir: out\n  baseline: baseline")
        .replace("base_params: {smart: true}", &format!("base_params: {{smart: true{extra}}}"))
}

/// Runs the seed manifest; `varying` is the expected list of parameter columns.
fn run_seed(extra: &str, varying: &str) -> (Batch, Vec<HashMap<String, String>>) {
    let b = Batch::new(&seed_manifest(extra));
    let out = b.run(&["--workers", "2", "--server", &unused_address()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("starting a private one"), "{stdout}");
    assert!(stdout.contains("stopped the private embed-server"), "{stdout}");
    let rows = b.summary();
    assert_eq!(rows.len(), 11, "{rows:?}");
    let report = b.report();
    assert!(report.contains("(private, started and stopped by this run)"), "{report}");
    for r in &rows {
        assert_eq!(r["status"], "succeeded", "{r:?}");
        let stats = b.out().join(format!("tencent_{}.stats.json", r["job"]));
        check_row_against_stats(r, &report, &stats);
    }
    // The columns: job, the parameters that vary, then the metrics.
    let header = std::fs::read_to_string(b.out().join("summary.csv")).expect("csv");
    let header = header.lines().next().unwrap_or_default().to_string();
    let expected = format!("job,{varying},status,error,duration_s,file_bytes,categories,");
    assert!(header.starts_with(&expected), "{header}");
    check_baseline_columns(&b, &rows, &report);
    // report.html in a real browser: a chart per measure x varied parameter, the 3x3 grid's
    // heatmaps (one per measure), a row and a viewer link per job.
    check_report_in_chromium(&b.out(), &rows, 10);
    (b, rows)
}

/// The `*_vs_baseline` columns: 1 and 1 for the baseline itself, and for every job the numbers
/// `wildcards-gen compare JOB.yaml BASELINE.yaml --format json` gives, in both files.
fn check_baseline_columns(b: &Batch, rows: &[HashMap<String, String>], report: &str) {
    assert!(report.contains("- Baseline: `baseline`"), "{report}");
    assert!(report.contains("| Jaccard vs baseline | ARI vs baseline |"), "{report}");
    let base = row(rows, "baseline");
    assert_eq!(
        (base["jaccard_vs_baseline"].as_str(), base["ari_vs_baseline"].as_str()),
        ("1.0000", "1.0000")
    );
    let mut ari_below_one = 0;
    for r in rows {
        let job = b.out().join(format!("tencent_{}.yaml", r["job"]));
        let out = std::process::Command::new(test_support::binary("wildcards-gen"))
            .arg("compare")
            .arg(&job)
            .arg(b.out().join("tencent_baseline.yaml"))
            .args(["--format", "json"])
            .output()
            .expect("run compare");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compare json");
        let cell = |key: &str| format!("{:.4}", c[key].as_f64().expect(key));
        assert_eq!(r["jaccard_vs_baseline"], cell("jaccard"), "{}", r["job"]);
        assert_eq!(r["ari_vs_baseline"], cell("ari"), "{}", r["job"]);
        let line =
            report.lines().find(|l| l.starts_with(&format!("| {} |", r["job"]))).expect("row");
        // The baseline columns, then `same as` (the last column).
        let tail = format!("| {} | {} | {} |", cell("jaccard"), cell("ari"), r["same_as"]);
        assert!(line.ends_with(&tail), "{line}");
        ari_below_one += usize::from(cell("ari") != "1.0000");
    }
    assert!(ari_below_one >= 2, "other leaf sizes group the items differently from the baseline");
}

fn file(b: &Batch, job: &str) -> Vec<u8> {
    std::fs::read(b.out().join(format!("tencent_{job}.yaml"))).expect("output")
}

fn num(r: &HashMap<String, String>, col: &str) -> u64 {
    r[col].parse().unwrap_or_else(|_| panic!("{col} = {:?}", r[col]))
}

#[test]
fn seed_manifest_as_written_and_with_semantic_clean_and_arrange() {
    // As written: smart pruning, lint at each job's threshold.
    let (plain, rows) =
        run_seed("", "preset,min_depth,min_hyponyms,min_leaf_size,semantic_threshold");
    for t in ["0.1", "0.2", "0.3"] {
        let [a, b, c] = [20, 50, 100].map(|l| file(&plain, &format!("matrix_leaf{l}_thresh{t}")));
        assert!(a != b && b != c && a != c, "different leaf sizes must give different files");
    }
    for l in [20, 50, 100] {
        let cats = |t: &str| num(row(&rows, &format!("matrix_leaf{l}_thresh{t}")), "categories");
        assert_eq!(cats("0.1"), cats("0.3"), "the threshold only changes the lint here");
        let outliers = |t: &str| num(row(&rows, &format!("matrix_leaf{l}_thresh{t}")), "outliers");
        assert!(outliers("0.1") >= outliers("0.2") && outliers("0.2") >= outliers("0.3"));
        assert!(outliers("0.1") > outliers("0.3"), "a higher threshold flags fewer outliers");
    }
    let cats = |l: u32| num(row(&rows, &format!("matrix_leaf{l}_thresh0.1")), "categories");
    assert!(cats(20) > cats(50) && cats(50) > cats(100), "larger leaves, fewer categories");
    assert_eq!(file(&plain, "baseline"), file(&plain, "matrix_leaf20_thresh0.1"));

    // With semantic cleaning and arrangement in base_params.
    let (sem, srows) = run_seed(
        ", semantic_clean: true, semantic_arrange: true",
        "preset,min_depth,min_hyponyms,min_leaf_size,semantic_clean,semantic_threshold,semantic_arrange",
    );
    assert!(srows
        .iter()
        .filter(|r| r["job"].starts_with("matrix"))
        .all(|r| num(r, "embed_texts") > 0));
    for l in [20, 50, 100] {
        let job = format!("matrix_leaf{l}_thresh0.1");
        assert_ne!(file(&sem, &job), file(&plain, &job), "semantic options change {job}");
        let items = |rows: &[HashMap<String, String>], t: &str| {
            num(row(rows, &format!("matrix_leaf{l}_thresh{t}")), "items")
        };
        // Cleaning at 0.1 removes more items than at 0.3.
        assert!(items(&srows, "0.1") < items(&srows, "0.3"), "leaf {l}");
    }
}
