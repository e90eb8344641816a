//! batch-client against a shared embed-server started by the test: the server killed with
//! SIGKILL mid-batch and started again (the jobs retry and complete), and two batch-clients
//! sharing one server at the same time (the second is served from what the first cached).
//! And batch-client's own private server killed mid-batch: batch-client starts it again.

use std::path::Path;
use std::time::Duration;

use crate::batch_support::{
    row, signal, wait_for_line, wait_until_embedding, wait_with_limit, Batch,
};
use test_support::{model_dir, EmbedServer, EmbedServerOptions};

const MINUTE: Duration = Duration::from_secs(60);

/// A real embed-server on a free loopback port with a cache file.
fn start_server(cache: &Path, port: Option<u16>) -> EmbedServer {
    let options =
        EmbedServerOptions { cache: Some(cache.to_path_buf()), port, ..Default::default() };
    EmbedServer::start(options).expect("start embed-server")
}

/// (cache hits, cache misses) from the server's Info.
fn cache_counters(server: &EmbedServer) -> (u64, u64) {
    let info = server.client().expect("client").info().expect("info");
    (info.cache_hits, info.cache_misses)
}

/// Four semantic jobs on Tencent (cleaning and arrangement need embeddings).
const SEMANTIC: &str = "config: {output_dir: out, analyze: true}
matrix:
  base_params: {smart: true, semantic_clean: true, semantic_arrange: true}
  axes: {min_leaf_size: [20, 50], semantic_threshold: [0.1, 0.3]}
";

#[test]
fn the_server_killed_mid_batch_and_restarted_the_jobs_retry_and_complete() {
    let cache_dir = tempfile::tempdir().expect("temp");
    let cache = cache_dir.path().join("cache.sqlite");
    let mut server = start_server(&cache, None);
    let addr = server.address();
    let b = Batch::new(SEMANTIC);
    let (mut batch, lines) = b.spawn(&["--workers", "2", "--server", &addr]);
    wait_for_line(&lines, " start ", MINUTE);
    wait_until_embedding(&addr, MINUTE);
    // Mid-batch: no job has finished yet.
    assert!(batch.try_wait().expect("try_wait").is_none());
    server.kill(); // SIGKILL, waited for: the port is closed now
    let _server = start_server(&cache, Some(server.port()));
    let status = wait_with_limit(&mut batch, 15 * MINUTE);
    assert_eq!(status.code(), Some(0));
    let rows = b.summary();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
}

#[test]
fn two_batch_clients_share_one_server_and_the_second_hits_the_cache() {
    let cache_dir = tempfile::tempdir().expect("temp");
    let server = start_server(&cache_dir.path().join("cache.sqlite"), None);
    let addr = server.address();
    let first = Batch::new(SEMANTIC);
    let second = Batch::new(SEMANTIC);
    let (mut a, a_lines) = first.spawn(&["--workers", "2", "--server", &addr]);
    // The second starts while the first is still running.
    wait_for_line(&a_lines, " ok ", 10 * MINUTE);
    let (hits_before, _) = cache_counters(&server);
    let (mut b, _b_lines) = second.spawn(&["--workers", "2", "--server", &addr]);
    assert!(a.try_wait().expect("try_wait").is_none(), "the batches overlap");
    assert_eq!(wait_with_limit(&mut a, 15 * MINUTE).code(), Some(0));
    assert_eq!(wait_with_limit(&mut b, 15 * MINUTE).code(), Some(0));
    let (hits_after, misses) = cache_counters(&server);
    let sum = |rows: &[std::collections::HashMap<String, String>], col: &str| -> u64 {
        rows.iter().map(|r| r[col].parse::<u64>().unwrap_or(0)).sum()
    };
    let (ra, rb) = (first.summary(), second.summary());
    let (texts_b, hits_b) = (sum(&rb, "embed_texts"), sum(&rb, "embed_cache_hits"));
    println!(
        "server: {hits_before} hits before the second batch, {hits_after} after, {misses} misses; \
         first batch {} texts / {} hits, second {texts_b} texts / {hits_b} hits",
        sum(&ra, "embed_texts"),
        sum(&ra, "embed_cache_hits")
    );
    // The second batch embeds the texts the first one did: most come from the cache, and
    // the server's own counters grew by at least what the second batch was served.
    assert!(texts_b > 0 && hits_b * 2 >= texts_b, "second batch: {hits_b} of {texts_b} from cache");
    assert!(hits_after - hits_before >= hits_b, "{hits_before} -> {hits_after} vs {hits_b}");
}

#[test]
fn a_private_server_killed_mid_batch_is_restarted_and_the_jobs_complete() {
    // A fresh per-user cache folder: the private server starts with an empty embedding cache,
    // so the jobs are still embedding when it is killed.
    let cache_home = tempfile::tempdir().expect("temp");
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let unused = format!("127.0.0.1:{}", unused.local_addr().expect("addr").port());
    let b = Batch::new(&SEMANTIC.replace("min_leaf_size: [20, 50]", "min_leaf_size: [20]"));
    let mut command = b.command(&["--workers", "2", "--server", &unused]);
    command.env("XDG_CACHE_HOME", cache_home.path()).env("WILDCARDS_MODEL_DIR", model_dir());
    let (mut batch, lines) = b.spawn_command(command);
    let ready = wait_for_line(&lines, "private embed-server ready at", 3 * MINUTE);
    let pid = ready.rsplit("(pid ").next().and_then(|p| p.trim_end_matches(')').parse().ok());
    let pid: u32 = pid.unwrap_or_else(|| panic!("no pid in {ready:?}"));
    wait_for_line(&lines, " start ", MINUTE);
    let private_addr = ready.split("ready at ").nth(1).and_then(|r| r.split_whitespace().next());
    wait_until_embedding(private_addr.expect("address in the ready line"), MINUTE);
    assert!(batch.try_wait().expect("try_wait").is_none(), "mid-batch");
    signal(pid, "-9");
    let restarted = wait_for_line(&lines, "restarted it at", MINUTE);
    assert!(restarted.contains("signal: 9"), "{restarted}");
    let status = wait_with_limit(&mut batch, 15 * MINUTE);
    assert_eq!(status.code(), Some(0));
    let rows = b.summary();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");
    let log = std::fs::read_to_string(b.out().join("embed-server.log")).expect("server log");
    assert_eq!(log.matches("embed-server ready").count(), 2, "{log}");
}

/// A grid over `outlier_method`: both methods run, each job's lint uses its own method, and
/// summary.csv carries the method column (it varies) and the outlier rate (GLOSH flags far more
/// of the same skeleton).
#[test]
fn a_manifest_sweeps_the_outlier_method() {
    let cache_dir = tempfile::tempdir().expect("temp");
    let server = start_server(&cache_dir.path().join("cache.sqlite"), None);
    let b = Batch::new(
        "config:\n  output_dir: out\n  dataset: openimages\n  analyze: true\n  save_stats: true\n\
         matrix:\n  base_params: {smart: true, bbox_only: true}\n  \
         axes: {outlier_method: [typicality, glosh]}\n",
    );
    let out = b.run(&["--workers", "2", "--server", &server.address()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = b.summary();
    let typical = row(&rows, "matrix_methodtypicality");
    let glosh = row(&rows, "matrix_methodglosh");
    assert_eq!(typical["outlier_method"], "typicality");
    assert_eq!(glosh["outlier_method"], "glosh");
    // The method each job's lint actually used, a column of its own.
    assert_eq!(
        (typical["lint_method"].as_str(), glosh["lint_method"].as_str()),
        ("typicality", "glosh")
    );
    let md = std::fs::read_to_string(b.out().join("report.md")).expect("report.md");
    assert!(md.contains("- Outlier analysis: typicality at 0.1; glosh at 0.1"), "{md}");
    let rate = |r: &std::collections::HashMap<String, String>| -> f64 {
        r["outlier_rate"].parse().expect("outlier_rate")
    };
    assert!(rate(typical) <= 0.05, "{typical:?}");
    assert!(rate(glosh) > 3.0 * rate(typical), "{glosh:?} vs {typical:?}");
    let stats = b.out().join("openimages_matrix_methodglosh.stats.json");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).expect("stats")).expect("json");
    assert_eq!(stats["lint"]["method"], "glosh");
}
