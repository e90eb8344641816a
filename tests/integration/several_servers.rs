//! Several embed-servers behind one `--server a,b`: requests are spread over both, and when one
//! is SIGKILLed mid-batch the client fails over to the other, says so, and every answer is
//! still exactly the single-server one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::batch_support::{wait_for_line, wait_until_embedding, wait_with_limit, Batch};
use crate::embed_server::tencent_names;
use embed_api::{ClientOptions, EmbedPool};
use test_support::EmbedServer;

const MINUTE: Duration = Duration::from_secs(60);

/// The number of Embed requests a server has answered (0 when it does not answer).
fn requests(server: &EmbedServer) -> u64 {
    server.client().ok().and_then(|c| c.info().ok()).map_or(0, |i| i.requests)
}

#[test]
fn a_pool_spreads_requests_fails_over_when_a_server_dies_and_returns_the_same_vectors() {
    let mut a = EmbedServer::uncached().expect("server a");
    let b = EmbedServer::uncached().expect("server b");
    let texts = tencent_names(6000);
    let notes = Arc::new(Mutex::new(Vec::<String>::new()));
    let heard = Arc::clone(&notes);
    let mut options = ClientOptions::new(format!("{},{}", a.address(), b.address()));
    options.retry_for = Duration::from_secs(30);
    let pool = EmbedPool::connect(
        options,
        Some(Arc::new(move |line: &str| heard.lock().unwrap().push(line.to_string()))),
    )
    .expect("connect the pool");
    assert_eq!(pool.servers(), [a.address(), b.address()]);

    let got = std::thread::scope(|s| {
        let call = s.spawn(|| pool.embed(&texts));
        // Mid-call: both servers are embedding (cold: ~1,000 texts/s each), then a dies.
        let deadline = std::time::Instant::now() + MINUTE;
        while requests(&a) == 0 || requests(&b) == 0 {
            assert!(std::time::Instant::now() < deadline, "both servers get requests");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!call.is_finished(), "the call is still running when a is killed");
        a.kill();
        call.join().expect("join")
    })
    .expect("the call survives losing a server");

    let notes = notes.lock().unwrap().clone();
    println!("notices: {notes:?}");
    let failed = format!("embed-server at {} failed", a.address());
    assert!(
        notes.iter().any(|n| n.contains(&failed) && n.contains(&format!("failing over to {}", b.address()))),
        "{notes:?}"
    );
    let single = b.client().expect("client of b").embed(&texts).expect("single server");
    assert_eq!(got.vectors.len(), texts.len());
    assert_eq!(got.dim, single.dim);
    for (k, (x, y)) in got.vectors.iter().zip(&single.vectors).enumerate() {
        assert!(
            x == y,
            "text {k} ({:?}): the pool's vector differs from the single server's",
            texts[k]
        );
    }
    assert_eq!(pool.stats().texts, texts.len() as u64);
}

/// Six semantic jobs on Open Images, the lint included; `--no-reuse`, so every job embeds.
const GRID: &str = "config: {output_dir: out, dataset: openimages, analyze: true, html: false}
matrix:
  base_params: {smart: true, bbox_only: true, preset: detailed, semantic_clean: true, semantic_arrange: true}
  axes:
    semantic_threshold: [0.05, 0.1, 0.3]
    min_leaf_size: [3, 8]
";

fn outputs(b: &Batch) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(b.out())
        .expect("out")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn a_batch_over_two_servers_survives_one_killed_mid_batch() {
    let mut a = EmbedServer::uncached().expect("server a");
    let b = EmbedServer::uncached().expect("server b");
    let both = format!("{},{}", a.address(), b.address());
    let grid = Batch::new(GRID);
    let (mut batch, lines) = grid.spawn(&["--workers", "2", "--no-reuse", "--server", &both]);
    let using = wait_for_line(&lines, "using the embed-servers at", MINUTE);
    assert!(using.contains(&a.address()) && using.contains(&b.address()), "{using}");
    wait_until_embedding(&a.address(), 5 * MINUTE);
    assert!(batch.try_wait().expect("try_wait").is_none(), "mid-batch");
    a.kill();
    let failover = wait_for_line(&lines, "failing over to", 5 * MINUTE);
    assert!(failover.contains(&format!("embed-server at {} failed", a.address())), "{failover}");
    assert!(failover.contains(&b.address()), "{failover}");
    assert_eq!(wait_with_limit(&mut batch, 15 * MINUTE).code(), Some(0));
    let rows = grid.summary();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["status"] == "succeeded"), "{rows:?}");

    // The same grid against b alone: the same skeletons, byte for byte.
    let single = Batch::new(GRID);
    let out = single.run(&["--workers", "2", "--no-reuse", "--server", &b.address(), "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(outputs(&grid), outputs(&single));
}
