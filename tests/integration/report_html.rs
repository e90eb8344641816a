//! report.html and the skeleton viewer, opened in real headless Chromium (test_support's
//! DevTools driver): no console error and no request leaving the page, the charts, heatmaps,
//! table rows and viewer links a batch should show, and the viewer's tree and search. Also
//! the demo batch interrupted, rebuilt with `batch-client report DIR`, then resumed: the
//! rebuilt report files are the run's, and the finished demo marks its identical outputs.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use test_support::chromium::Browser;
use test_support::{binary, test_data_dir, workspace_root};

use crate::batch_support::{row, signal, unused_address, wait_for_line, wait_with_limit, Batch};

/// What a batch's report.html shows, read from the page after its script ran.
const REPORT_FACTS: &str = r##"(() => {
  const figs = s => [...document.querySelectorAll(s)];
  return {
    charts: figs("figure.chart").map(f => f.dataset.measure + "|" + f.dataset.param),
    heatmaps: figs("figure.heatmap").map(f => f.dataset.measure),
    drawn: figs("figure svg").filter(s => s.getBBox().width > 0 && s.querySelector("svg")).length,
    rows: document.querySelectorAll("#results tbody tr").length,
    links: figs("#results tbody a").map(a => decodeURIComponent(new URL(a.href).pathname)),
    same: document.querySelectorAll("circle.same").length,
  };
})()"##;

/// Opens `out/report.html` of a finished batch in Chromium and checks it against the batch:
/// one chart per measure x varied parameter, `heatmaps` heatmaps (one per measure), a table
/// row per job, every job link an existing viewer, identical outputs drawn hollow, sorting.
pub fn check_report_in_chromium(out: &Path, rows: &[HashMap<String, String>], heatmaps: usize) {
    let page = out.join("report.html");
    let bytes = std::fs::metadata(&page).expect("report.html").len();
    assert!(bytes <= 300 * 1024, "report.html is {bytes} bytes, over 300 KB");
    let header = std::fs::read_to_string(out.join("summary.csv")).expect("csv");
    let header: Vec<&str> = header.lines().next().unwrap_or_default().split(',').collect();
    let varying = &header[1..header.iter().position(|h| *h == "status").expect("status")];
    // Every measure of a linted batch with a baseline.
    let measures = [
        "categories",
        "leaf_lists",
        "items",
        "max_depth",
        "avg_leaf_size",
        "outliers",
        "outlier_rate",
        "duration_s",
        "jaccard_vs_baseline",
        "ari_vs_baseline",
    ];
    let mut browser = Browser::launch();
    browser.open(&page, "");
    let facts = browser.eval(REPORT_FACTS);
    assert_eq!(browser.problems(), Vec::<String>::new(), "{}", page.display());

    let charts: Vec<String> = strings(&facts["charts"]);
    let expected: BTreeSet<String> =
        measures.iter().flat_map(|m| varying.iter().map(move |p| format!("{m}|{p}"))).collect();
    assert_eq!(charts.len(), expected.len(), "one chart per measure x parameter: {charts:?}");
    assert_eq!(charts.iter().cloned().collect::<BTreeSet<_>>(), expected);
    let heat: BTreeSet<String> = strings(&facts["heatmaps"]).into_iter().collect();
    assert_eq!(heat.len(), heatmaps, "{heat:?}");
    assert_eq!(facts["drawn"], charts.len() + heatmaps, "every chart has its plotters SVG");
    assert_eq!(facts["rows"], rows.len());
    let links = strings(&facts["links"]);
    let finished =
        |r: &&HashMap<String, String>| r["status"] == "succeeded" || r["status"] == "resumed";
    assert_eq!(links.len(), rows.iter().filter(finished).count(), "a viewer per finished job");
    for link in &links {
        assert!(Path::new(link).is_file(), "the job link {link} is no file");
        assert!(link.ends_with(".html"), "{link}");
    }
    let same = rows.iter().filter(|r| !r["same_as"].is_empty()).count();
    assert_eq!(facts["same"].as_u64().unwrap_or(0) > 0, same > 0, "hollow points for same_as");
    check_sorting(&mut browser);
}

/// Clicking the `categories` header sorts the table by it, ascending then descending.
fn check_sorting(browser: &mut Browser) {
    let column = r##"(() => {
      const ths = [...document.querySelectorAll("#results th")];
      const i = ths.findIndex(th => th.textContent === "categories");
      ths[i].click();
      const up = [...document.querySelectorAll("#results tbody tr")].map(r => +r.cells[i].textContent);
      ths[i].click();
      const down = [...document.querySelectorAll("#results tbody tr")].map(r => +r.cells[i].textContent);
      return [up, down];
    })()"##;
    let v = browser.eval(column);
    let nums = |x: &serde_json::Value| -> Vec<f64> {
        x.as_array().expect("array").iter().map(|n| n.as_f64().expect("number")).collect()
    };
    let (up, down) = (nums(&v[0]), nums(&v[1]));
    assert!(up.windows(2).all(|w| w[0] <= w[1]), "{up:?}");
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn wildcards_gen(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(binary("wildcards-gen"))
        .args(args)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env("WILDCARDS_OFFLINE", "1")
        .current_dir(dir)
        .output()
        .expect("run wildcards-gen");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tencent_viewer_opens_fast_shows_every_item_and_search_finds_bullfrog() {
    let dir = tempfile::tempdir().expect("temp dir");
    let balanced = ["dataset", "tencent", "--smart", "--preset", "balanced", "-q"];
    wildcards_gen(dir.path(), &[&balanced[..], &["-o", "tencent.yaml"]].concat());
    let said = wildcards_gen(dir.path(), &["view", "tencent.yaml", "-o", "tencent.html"]);
    assert!(said.starts_with("wrote tencent.html ("), "{said}");
    let (yaml, html) = (dir.path().join("tencent.yaml"), dir.path().join("tencent.html"));
    let size = |p: &Path| std::fs::metadata(p).expect("file").len();
    assert!(size(&html) <= 2 * size(&yaml), "viewer {} > 2 x YAML {}", size(&html), size(&yaml));
    let tree = wildcards_core::output::read_yaml(&yaml).expect("skeleton");
    let shape = wildcards_core::stats::structure_stats(&tree, 0);

    let mut browser = Browser::launch();
    browser.open(&html, "");
    let loaded =
        browser.eval(r##"performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd"##);
    let counts = browser.eval(
        r##"[document.querySelectorAll("#tree li").length, document.querySelectorAll("#tree details").length]"##,
    );
    assert_eq!(counts[0], shape.items, "one list entry per item of the YAML");
    assert_eq!(counts[1], shape.categories, "one branch per category");
    let search = r##"(() => {
      const q = document.getElementById("q");
      q.value = "bullfrog";
      q.dispatchEvent(new Event("input"));
      return new Promise(done => setTimeout(() => done([...document.querySelectorAll("#tree .hit")]
        .filter(e => e.getClientRects().length > 0).map(e => e.firstChild.nodeValue)), 500));
    })()"##;
    let hits = strings(&browser.eval(search));
    assert!(hits.iter().any(|h| h == "bullfrog"), "visible hits: {hits:?}");
    let header = browser.eval(r##"document.querySelector("header").getBoundingClientRect().top"##);
    assert_eq!(header.as_f64(), Some(0.0), "the search bar stays on top while scrolled");
    // What scripts/screenshot.sh captures of the scrolled page is the page, not a blank
    // image (Chromium's --screenshot flag gives ~4 KB of background here).
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot of {} bytes", png.len());
    assert_eq!(browser.problems(), Vec::<String>::new());
    let ms = loaded.as_f64().expect("DOMContentLoaded time");
    println!(
        "viewer {} bytes, YAML {} bytes, DOMContentLoaded {ms:.0} ms",
        size(&html),
        size(&yaml)
    );
    assert!(ms < 1000.0, "DOMContentLoaded after {ms} ms");
}

/// The demo manifest without its semantic job (it needs no clustering and runs faster), its
/// outputs in `out/`.
fn demo_manifest() -> String {
    let text = std::fs::read_to_string(workspace_root().join("examples/demo.yaml")).expect("demo");
    let text = text.replace("output_dir: ../demo-out", "output_dir: out");
    let semantic = "  - name: semantic\n    params: {smart: true, semantic_clean: true, semantic_arrange: true}\n";
    assert!(text.contains(semantic), "the demo manifest changed: update this test");
    text.replace(semantic, "")
}

const REPORT_FILES: [&str; 3] = ["report.md", "summary.csv", "report.html"];

#[test]
fn demo_interrupted_rebuilt_by_report_dir_then_resumed_marks_identical_outputs() {
    let b = Batch::new(&demo_manifest());
    let (mut child, lines) = b.spawn(&["--workers", "1", "--server", &unused_address()]);
    wait_for_line(&lines, "] ok ", Duration::from_secs(240));
    wait_for_line(&lines, "] ok ", Duration::from_secs(120));
    signal(child.id(), "-INT");
    assert_eq!(wait_with_limit(&mut child, Duration::from_secs(60)).code(), Some(130));
    let rows = b.summary();
    let finished = rows.iter().filter(|r| r["status"] == "succeeded").count();
    assert!((2..5).contains(&finished), "{rows:?}");
    let written: Vec<Vec<u8>> =
        REPORT_FILES.iter().map(|f| std::fs::read(b.out().join(f)).expect(f)).collect();
    for f in REPORT_FILES {
        std::fs::remove_file(b.out().join(f)).expect("remove");
    }
    let rebuilt = Command::new(binary("batch-client"))
        .args(["report", "out", "--quiet"])
        .current_dir(b.dir.path())
        .output()
        .expect("batch-client report");
    assert!(rebuilt.status.success(), "{}", String::from_utf8_lossy(&rebuilt.stderr));
    for (f, before) in REPORT_FILES.iter().zip(&written) {
        let after = std::fs::read(b.out().join(f)).expect(f);
        assert!(after == *before, "{f} rebuilt by `batch-client report` differs from the run's");
    }

    let resumed = b.run(&["--workers", "2", "--resume", "--server", &unused_address()]);
    assert_eq!(resumed.status.code(), Some(0), "{}", String::from_utf8_lossy(&resumed.stderr));
    let rows = b.summary();
    assert_eq!(row(&rows, "matrix_hyp100_leaf50")["same_as"], "matrix_hyp30_leaf50");
    let same: Vec<&str> =
        rows.iter().filter(|r| !r["same_as"].is_empty()).map(|r| r["job"].as_str()).collect();
    assert_eq!(same, ["matrix_hyp100_leaf50"], "only that grid point repeats an output");
    let md = b.report();
    assert!(md.contains("- `matrix_hyp30_leaf50` = `matrix_hyp100_leaf50`"), "{md}");
    let html = std::fs::read_to_string(b.out().join("report.html")).expect("report.html");
    assert!(html.contains("matrix_hyp100_leaf50: "), "{html}");
    assert!(html.contains(" (same output as matrix_hyp30_leaf50)</title>"), "charts show it");
    check_report_in_chromium(&b.out(), &rows, 10);
}
