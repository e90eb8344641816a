//! End-to-end tests of embed-server: the real binary on loopback, the real model, the gRPC
//! client from wildcards-core. Reference vectors come from sentence-transformers
//! (`../shared/reference/minilm_reference.json`).

use std::time::{Duration, Instant};

use base64::Engine;
use embed_api::proto::embedder_client::EmbedderClient;
use embed_api::proto::{EmbedRequest, InfoRequest};
use test_support::{reference_dir, test_data_dir, EmbedServer, EmbedServerOptions};

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
    empty_string: Vec<f32>,
}

fn decode(b64: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("reference vectors are base64");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

fn reference() -> Reference {
    let path = reference_dir().join("minilm_reference.json");
    let text = std::fs::read_to_string(&path).expect("minilm_reference.json is readable");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let texts =
        json["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect();
    let vectors = json["embeddings_f32_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| decode(v.as_str().unwrap()))
        .collect();
    let empty_string = decode(json["empty_string"]["embedding_f32_b64"].as_str().unwrap());
    Reference { texts, vectors, empty_string }
}

/// First names of the Tencent categories (4th column, first comma-separated name), distinct,
/// in file order.
pub fn tencent_names(n: usize) -> Vec<String> {
    let path = test_data_dir().join("tencent/dictionary_and_semantic_hierarchy.txt");
    let text = std::fs::read_to_string(&path).expect("Tencent hierarchy is readable");
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .skip(1)
        .filter_map(|line| line.split('\t').nth(3))
        .map(|names| names.split(',').next().unwrap_or("").trim().to_string())
        .filter(|name| seen.insert(name.clone()))
        .take(n)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn fidelity_matches_sentence_transformers() {
    let server = EmbedServer::uncached().unwrap();
    let client = server.client().unwrap();
    let reference = reference();
    let mut texts = reference.texts.clone();
    texts.push(String::new());
    let got = client.embed(&texts).unwrap();
    assert_eq!(got.dim, 384);
    assert_eq!(got.vectors.len(), texts.len());
    assert_eq!(got.cache_hits, 0, "an uncached server has no hits");

    let mut expected = reference.vectors.clone();
    expected.push(reference.empty_string.clone());
    let mut worst = (1.0f64, String::new());
    for ((text, ours), theirs) in texts.iter().zip(&got.vectors).zip(&expected) {
        let cos = cosine(ours, theirs);
        if cos < worst.0 {
            worst = (cos, text.clone());
        }
        let norm: f64 = ours.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?} has norm {norm}");
    }
    println!("lowest cosine {:.7} for {:?}", worst.0, worst.1);
    assert!(worst.0 >= 0.9999, "cosine {} for {:?}", worst.0, worst.1);

    // Uncased tokenizer: three casings give the same vector; truncation at 256 tokens makes
    // cat x254 and cat x255 identical.
    let index = |t: &str| texts.iter().position(|x| x == t).unwrap();
    let golden = &got.vectors[index("Golden Retriever")];
    assert_eq!(golden, &got.vectors[index("GOLDEN RETRIEVER")]);
    assert_eq!(golden, &got.vectors[index("gOlDeN rEtRiEvEr")]);
    let cats: Vec<usize> = (0..texts.len()).filter(|&i| texts[i].starts_with("cat cat")).collect();
    assert_eq!(cats.len(), 2);
    assert_eq!(got.vectors[cats[0]], got.vectors[cats[1]]);

    // An empty list gets an empty answer.
    let empty = client.embed(&[]).unwrap();
    assert!(empty.vectors.is_empty());
    assert_eq!(empty.dim, 384);
}

#[test]
fn second_run_is_served_from_cache_which_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache/embeddings.sqlite");
    let texts = tencent_names(300);
    let mut server = EmbedServer::with_cache(&cache).unwrap();
    let client = server.client().unwrap();

    let first = client.embed(&texts).unwrap();
    assert_eq!(first.cache_hits, 0);
    let second = client.embed(&texts).unwrap();
    assert_eq!(second.cache_hits, texts.len(), "second run entirely from cache");
    assert_eq!(first.vectors, second.vectors);
    let info = client.info().unwrap();
    assert_eq!(info.cache_hits, texts.len() as u64);
    assert_eq!(info.cache_misses, texts.len() as u64);
    assert!(info.cache_persistent);
    assert_eq!(client.stats().cache_hits, texts.len() as u64);

    // Info and health from the command line.
    let binary = test_support::binary("embed-server");
    let out = std::process::Command::new(&binary)
        .args(["info", "--server", &server.address()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["model_id"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(json["cache_hits"], texts.len() as u64);
    let health = std::process::Command::new(&binary)
        .args(["health", "--server", &server.address()])
        .output()
        .unwrap();
    assert!(health.status.success());
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "SERVING");

    // SIGTERM: clean exit, cache closed.
    let status = server.terminate().unwrap();
    assert!(status.success(), "{status}\n{}", server.log_text());
    assert!(server.log_text().contains("embedding cache closed cleanly"));

    let restarted = EmbedServer::with_cache(&cache).unwrap();
    assert!(restarted.log_text().contains(&format!("({} entries)", texts.len())));
    let third = restarted.client().unwrap().embed(&texts).unwrap();
    assert_eq!(third.cache_hits, texts.len(), "served from the cache after a restart");
    assert_eq!(third.vectors, first.vectors);
}

#[test]
fn concurrent_clients_get_exactly_the_single_client_vectors() {
    let server = EmbedServer::uncached().unwrap();
    let texts = tencent_names(2000);
    let single = server.client().unwrap().embed(&texts).unwrap().vectors;

    let started = Instant::now();
    let results: Vec<(usize, Vec<Vec<f32>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                let mut mine = texts.clone();
                mine.rotate_left(i * 250);
                scope.spawn(move || {
                    let client = server.client().unwrap();
                    (i, client.embed(&mine).unwrap().vectors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    println!("8 x 2000 texts in {:?}", started.elapsed());
    for (i, vectors) in results {
        let mut expected = single.clone();
        expected.rotate_left(i * 250);
        assert_eq!(vectors.len(), expected.len());
        for (k, (a, b)) in vectors.iter().zip(&expected).enumerate() {
            assert!(a == b, "client {i}, text {k}: vectors differ");
        }
    }
}

#[test]
fn sigkill_mid_request_gives_a_clean_error_and_the_cache_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("embeddings.sqlite");
    let names = tencent_names(4500);
    let (kept, big) = names.split_at(500);
    let kept = kept.to_vec();
    let big = big.to_vec();

    let mut server = EmbedServer::with_cache(&cache).unwrap();
    let client = server.client().unwrap();
    let before = client.embed(&kept).unwrap();
    // Wait until the writer thread committed them to SQLite.
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.info().unwrap().cache_entries < kept.len() as u64 {
        assert!(Instant::now() < deadline, "cache writes never landed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let batches_before = client.info().unwrap().batches;

    let port = server.port();
    let doomed = server.client_with(|o| o.retry_for = Duration::from_millis(500)).unwrap();
    let outcome = std::thread::scope(|scope| {
        let request = scope.spawn(|| doomed.embed(&big));
        // Kill once the big request is being computed.
        let deadline = Instant::now() + Duration::from_secs(60);
        while client.info().unwrap().batches < batches_before + 2 {
            assert!(Instant::now() < deadline, "the big request never started");
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        request.join().unwrap()
    });
    let err = outcome.expect_err("the server died mid-request");
    let message = format!("{err:#}");
    assert!(message.contains("not reachable"), "{message}");
    drop(server);

    let restarted = EmbedServer::start(EmbedServerOptions {
        cache: Some(cache.clone()),
        port: Some(port),
        ..Default::default()
    })
    .unwrap();
    // The client of the killed server reconnects to the restarted one on its own.
    let after = client.embed(&kept).unwrap();
    assert_eq!(after.cache_hits, kept.len(), "served from the intact cache");
    assert_eq!(after.vectors, before.vectors);
    drop(restarted);
}

#[test]
fn corrupt_cache_file_is_logged_and_vectors_stay_correct() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("embeddings.sqlite");
    std::fs::write(&cache, "this is not a SQLite database\n".repeat(2000)).unwrap();
    let server = EmbedServer::with_cache(&cache).unwrap();
    assert!(server.log_text().contains("is unusable"), "{}", server.log_text());
    let client = server.client().unwrap();
    assert!(!client.info().unwrap().cache_persistent);

    let reference = reference();
    let texts: Vec<String> = reference.texts[..40].to_vec();
    let got = client.embed(&texts).unwrap();
    for (ours, theirs) in got.vectors.iter().zip(&reference.vectors) {
        assert!(cosine(ours, theirs) >= 0.9999);
    }
    // The file was left alone for the user to inspect.
    let untouched = std::fs::read_to_string(&cache).unwrap();
    assert!(untouched.starts_with("this is not a SQLite database"));
}

#[test]
fn oversize_requests_get_invalid_argument_and_the_server_keeps_serving() {
    let server = EmbedServer::start(EmbedServerOptions {
        extra_args: ["--max-texts", "10", "--max-text-bytes", "100"].map(String::from).to_vec(),
        ..Default::default()
    })
    .unwrap();
    let uri = format!("http://{}", server.address());
    runtime().block_on(async {
        let mut grpc = EmbedderClient::connect(uri).await.unwrap();
        let request =
            |n: usize, len: usize| EmbedRequest { texts: vec!["x".repeat(len); n], model: None };
        let too_many = grpc.embed(request(11, 3)).await.unwrap_err();
        assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
        assert!(too_many.message().contains("--max-texts"), "{}", too_many.message());
        let ok = grpc.embed(request(10, 3)).await.unwrap().into_inner();
        assert_eq!(ok.values.len(), 10 * 384);

        let too_long = grpc.embed(request(1, 101)).await.unwrap_err();
        assert_eq!(too_long.code(), tonic::Code::InvalidArgument);
        assert!(too_long.message().contains("--max-text-bytes"));
        let ok = grpc.embed(request(2, 100)).await.unwrap().into_inner();
        assert_eq!(ok.values.len(), 2 * 384);

        let wrong_model = grpc
            .embed(EmbedRequest { texts: vec!["dog".into()], model: Some("bert-large".into()) })
            .await
            .unwrap_err();
        assert_eq!(wrong_model.code(), tonic::Code::InvalidArgument);
        assert!(wrong_model.message().contains("all-MiniLM-L6-v2"), "{}", wrong_model.message());
        let info = grpc.info(InfoRequest {}).await.unwrap().into_inner();
        assert_eq!(info.max_texts, 10);
    });

    // The blocking client splits large inputs into chunks within the server's limit.
    let texts = tencent_names(25);
    let got = server.client().unwrap().embed(&texts).unwrap();
    assert_eq!(got.vectors.len(), 25);
}

#[test]
fn a_token_is_required_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("token");
    std::fs::write(&key, "correct-horse-battery\n").unwrap();
    let server = EmbedServer::start(EmbedServerOptions {
        api_key_file: Some(key.clone()),
        ..Default::default()
    })
    .unwrap();
    let uri = format!("http://{}", server.address());
    runtime().block_on(async {
        let mut grpc = EmbedderClient::connect(uri.clone()).await.unwrap();
        let missing = grpc.info(InfoRequest {}).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        let mut request =
            tonic::Request::new(EmbedRequest { texts: vec!["dog".into()], model: None });
        request.metadata_mut().insert("authorization", "Bearer wrong".parse().unwrap());
        let wrong = grpc.embed(request).await.unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
    });

    let err = server.client().err().expect("no token, no service");
    assert!(format!("{err:#}").contains("WILDCARDS_EMBED_TOKEN"), "{err:#}");
    let client = server.client_with(|o| o.token = Some("correct-horse-battery".into())).unwrap();
    assert_eq!(client.embed(&["dog".to_string()]).unwrap().vectors.len(), 1);
    // Health stays open so supervisors can probe without the token.
    assert!(embed_api::client::health(&server.address()).unwrap());
}

/// The promise of a graceful stop: every request the server accepted before SIGTERM is
/// answered completely (no connection reset while the client reads the answers), the cache is
/// closed cleanly (a restart serves all of them from it) and the server exits 0.
#[test]
fn sigterm_finishes_the_request_in_flight_and_closes_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("embeddings.sqlite");
    // Three chunks of 500, all sent at once (the client keeps up to 4 in flight).
    let texts = tencent_names(1500);
    let mut server = EmbedServer::with_cache(&cache).unwrap();
    let client = server.client_with(|o| o.chunk_texts = 500).unwrap();
    let watcher = server.client().unwrap();
    let (answer, status) = std::thread::scope(|scope| {
        let request = scope.spawn(|| client.embed(&texts));
        // All three chunks accepted, and the model is working on them.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let info = watcher.info().unwrap();
            if info.requests >= 3 && info.batches >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "the request never started: {info:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!request.is_finished(), "answered before SIGTERM: the test would prove nothing");
        let status = server.terminate().unwrap();
        (request.join().unwrap(), status)
    });
    let log = server.log_text();
    let answer = answer.unwrap_or_else(|e| panic!("the in-flight request completes: {e:#}\n{log}"));
    assert_eq!(answer.vectors.len(), texts.len());
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    assert!(log.contains("in-flight requests finished"), "{log}");
    assert!(log.contains("embedding cache closed cleanly"), "{log}");

    let restarted = EmbedServer::with_cache(&cache).unwrap();
    let again = restarted.client().unwrap().embed(&texts).unwrap();
    assert_eq!(again.cache_hits, texts.len(), "every answered vector reached the cache");
    assert_eq!(again.vectors, answer.vectors);
}

/// A long request cut off by a server restart is retried and completes: the client's retry
/// window opens at the failure, not when the request started. One request (one chunk) of long
/// texts runs longer than the window before the kill, so a window counted from the start of
/// the request would give up at once.
#[test]
fn a_long_request_cut_off_by_a_restart_is_retried_and_completes() {
    let window = Duration::from_secs(5);
    // 2,000 texts of 8 names each (~30 tokens): one chunk that takes the model several seconds.
    let names = tencent_names(16_000);
    let texts: Vec<String> = names.chunks(8).map(|c| c.join(", ")).take(2000).collect();
    let mut server = EmbedServer::uncached().unwrap();
    let port = server.port();
    let client = server
        .client_with(|o| {
            o.retry_for = window;
            o.chunk_texts = texts.len();
            o.max_in_flight = 1;
        })
        .unwrap();
    let (answer, restarted) = std::thread::scope(|scope| {
        let started = Instant::now();
        let request = scope.spawn(|| client.embed(&texts));
        while started.elapsed() < window + Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!request.is_finished(), "the request must still be running when killed");
        server.kill();
        let restarted =
            EmbedServer::start(EmbedServerOptions { port: Some(port), ..Default::default() })
                .unwrap();
        (request.join().unwrap(), restarted)
    });
    let answer = answer.expect("the request survives the restart");
    assert_eq!(answer.vectors.len(), texts.len());
    assert_eq!(client.stats().requests, 1, "one request (chunk), answered after the retry");
    // The vectors are the model's: the same as a fresh request to the restarted server.
    let sample: Vec<String> = texts.iter().step_by(97).cloned().collect();
    let fresh = restarted.client().unwrap().embed(&sample).unwrap();
    for (k, v) in fresh.vectors.iter().enumerate() {
        assert_eq!(&answer.vectors[k * 97], v, "{}", sample[k]);
    }
}

/// Peak RSS growth of a server (MiB) while 12 clients each send a ~32 MB request at once
/// (2,049 texts of 16 KB: decoded, then refused as over `--max-texts`).
fn burst_growth_mib(inflight: &str) -> f64 {
    let args = ["--max-inflight-requests", inflight].map(String::from).to_vec();
    let server =
        EmbedServer::start(EmbedServerOptions { extra_args: args, ..Default::default() }).unwrap();
    let before = server.peak_rss_kib().expect("VmHWM");
    let uri = format!("http://{}", server.address());
    runtime().block_on(async {
        let mut calls = Vec::new();
        for _ in 0..12 {
            let uri = uri.clone();
            calls.push(tokio::spawn(async move {
                let mut grpc = EmbedderClient::connect(uri)
                    .await
                    .unwrap()
                    .max_encoding_message_size(usize::MAX);
                let texts = vec!["x".repeat(16_000); 2049];
                let refused = grpc.embed(EmbedRequest { texts, model: None }).await.unwrap_err();
                assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            }));
        }
        for c in calls {
            c.await.unwrap();
        }
    });
    let after = server.peak_rss_kib().expect("VmHWM");
    (after.saturating_sub(before)) as f64 / 1024.0
}

/// A burst of large requests: with at most 2 decoded at once the server's peak memory grows
/// far less than with (practically) no bound.
#[test]
fn a_burst_of_large_requests_is_bounded_in_memory() {
    let bounded = burst_growth_mib("2");
    let unbounded = burst_growth_mib("64");
    println!("peak RSS growth: bounded {bounded:.0} MiB, unbounded {unbounded:.0} MiB");
    assert!(bounded < 0.6 * unbounded, "bounded {bounded:.0} MiB vs {unbounded:.0} MiB");
    assert!(bounded < 200.0, "bounded growth {bounded:.0} MiB");
}

/// Back-pressure: 64 clients at once, each sending 2,000 distinct texts (the same Tencent
/// names, each client in its own rotation, 4 chunks of 512 in flight per client) to a cold
/// server with a queue bound of 4,096 texts. The server refuses what does not fit with
/// RESOURCE_EXHAUSTED and a retry hint; the clients back off and retry, and every client ends
/// with exactly its vectors (all 2,000, bit for bit, in its own order, against a separate
/// server's answer), while the server's memory stays bounded.
#[test]
fn a_burst_of_64_clients_is_pushed_back_and_every_client_gets_exactly_its_vectors() {
    const CLIENTS: usize = 64;
    let names = tencent_names(2000);
    let expected =
        EmbedServer::uncached().unwrap().client().unwrap().embed(&names).unwrap().vectors;
    let dir = tempfile::tempdir().unwrap();
    let server = EmbedServer::start(EmbedServerOptions {
        cache: Some(dir.path().join("cache.sqlite")),
        extra_args: ["--max-queued-texts", "4096"].map(String::from).to_vec(),
        ..Default::default()
    })
    .unwrap();

    let started = Instant::now();
    let pushbacks: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (server, names, expected) = (&server, &names, &expected);
                scope.spawn(move || {
                    // A window long enough for the whole burst on a busy 2-core machine.
                    let client =
                        server.client_with(|o| o.retry_for = Duration::from_secs(900)).unwrap();
                    let mut mine = names.clone();
                    mine.rotate_left(c * 31);
                    let got = client.embed(&mine).unwrap_or_else(|e| panic!("client {c}: {e}"));
                    assert_eq!((got.dim, got.vectors.len()), (384, names.len()), "client {c}");
                    let mut want = expected.clone();
                    want.rotate_left(c * 31);
                    for (k, (a, b)) in got.vectors.iter().zip(&want).enumerate() {
                        assert!(a == b, "client {c}, text {k} ({}): not its vector", mine[k]);
                    }
                    client.stats().pushbacks
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused: u64 = pushbacks.iter().sum();
    let pushed = pushbacks.iter().filter(|&&p| p > 0).count();
    let peak_mib = server.peak_rss_kib().expect("VmHWM") as f64 / 1024.0;
    println!(
        "{CLIENTS} x {} texts in {:?}: {refused} RESOURCE_EXHAUSTED answers, to {pushed} \
         clients; server peak RSS {peak_mib:.0} MiB",
        names.len(),
        started.elapsed()
    );
    assert!(refused > 0, "the queue bound never refused a request");
    assert!(peak_mib < 400.0, "server peak RSS {peak_mib:.0} MiB");
}

/// The body of a server's `/metrics` endpoint, checked strictly: every sample line is
/// `name{labels} value` of a family announced by `# HELP` and `# TYPE` lines, and the whole
/// text parses with prometheus-parse.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("the metrics endpoint answers")
        .body_mut()
        .read_to_string()
        .unwrap();
    let mut typed = std::collections::HashSet::new();
    let mut helped = std::collections::HashSet::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["#", "HELP", name, _] => assert!(helped.insert(name.to_string()), "{line}"),
            ["#", "TYPE", name, kind] => {
                assert!(["counter", "gauge", "histogram"].contains(kind), "{line}");
                assert!(typed.insert(name.to_string()), "{line}");
            }
            _ => {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                value.parse::<f64>().unwrap_or_else(|_| panic!("bad value in {line}"));
                let name = series.split('{').next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
                    .unwrap_or(name);
                assert!(typed.contains(family) && helped.contains(family), "untyped: {line}");
                assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
            }
        }
    }
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the metrics parse as Prometheus text")
}

/// The value of the sample `name` with exactly these labels (0 when absent: a labelled
/// counter appears with its first increment).
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = scrape.samples.iter().find(|s| {
        s.metric == name
            && s.labels.len() == labels.len()
            && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
    });
    match found.map(|s| &s.value) {
        None => 0.0,
        Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        Some(other) => panic!("{name}: unexpected {other:?}"),
    }
}

/// Metrics: the endpoint parses as Prometheus text, and two Embed requests (4 texts, 3
/// distinct, cold; then the same again, warm) move every counter by exactly what they did.
#[test]
fn metrics_parse_as_prometheus_text_and_move_by_exactly_what_requests_did() {
    let dir = tempfile::tempdir().unwrap();
    let port = test_support::server::free_port().unwrap();
    let server = EmbedServer::start(EmbedServerOptions {
        cache: Some(dir.path().join("cache.sqlite")),
        extra_args: vec!["--metrics-addr".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    })
    .unwrap();
    assert!(server.log_text().contains(&format!("metrics on http://127.0.0.1:{port}/metrics")));
    let client = server.client().unwrap();
    let before = scrape(port);
    let batches_before = client.info().unwrap().batches;
    let texts: Vec<String> =
        ["pine marten", "sea otter", "pine marten", "stoat"].map(String::from).to_vec();
    assert_eq!(client.embed(&texts).unwrap().cache_hits, 0);
    assert_eq!(client.embed(&texts).unwrap().cache_hits, 4);
    let batches = client.info().unwrap().batches - batches_before;
    let after = scrape(port);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let ok = [("method", "Embed"), ("status", "OK"), ("client", "anonymous")];
    assert_eq!(delta("embed_server_requests_total", &ok), 2.0);
    assert_eq!(delta("embed_server_texts_total", &ok), 8.0);
    let info = [("method", "Info"), ("status", "OK"), ("client", "anonymous")];
    assert_eq!(delta("embed_server_requests_total", &info), 2.0, "two Info calls between scrapes");
    let lookups = "embed_server_cache_lookups_total";
    // Cold: 3 distinct texts miss memory and SQLite; warm: 3 memory hits.
    assert_eq!(delta(lookups, &[("layer", "memory"), ("result", "miss")]), 3.0);
    assert_eq!(delta(lookups, &[("layer", "sqlite"), ("result", "miss")]), 3.0);
    assert_eq!(delta(lookups, &[("layer", "sqlite"), ("result", "hit")]), 0.0);
    assert_eq!(delta(lookups, &[("layer", "memory"), ("result", "hit")]), 3.0);
    assert!(batches >= 1);
    assert_eq!(delta("embed_server_forward_passes_total", &[]), batches as f64);
    assert_eq!(delta("embed_server_batch_size_texts_count", &[]), batches as f64);
    assert_eq!(delta("embed_server_batch_size_texts_sum", &[]), 3.0, "3 distinct texts ran");
    assert_eq!(delta("embed_server_queue_wait_seconds_count", &[]), 1.0, "one request queued");
    let embed = [("method", "Embed")];
    assert_eq!(delta("embed_server_request_duration_seconds_count", &embed), 2.0);
    assert_eq!(sample(&after, "embed_server_queued_texts", &[]), 0.0);
    assert!(sample(&after, "embed_server_model_load_duration_seconds", &[]) > 0.0);
    let rss = sample(&after, "process_resident_memory_bytes", &[]);
    assert!(rss > 50e6 && rss < 2e9, "RSS {rss}");
}

/// Named keys: each key's requests are counted under its name (metrics and request log,
/// never the token), and a key removed from the file stops working on SIGHUP, without a
/// restart, while the others keep working.
#[test]
fn named_keys_are_counted_per_name_and_a_key_removed_on_sighup_stops_working() {
    let (alice_token, bob_token) = ("alice-0123456789abcdef", "bob-fedcba9876543210");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("alice {alice_token}\nbob {bob_token}\n")).unwrap();
    let port = test_support::server::free_port().unwrap();
    let server = EmbedServer::start(EmbedServerOptions {
        api_key_file: Some(keys.clone()),
        extra_args: vec!["--metrics-addr".into(), format!("127.0.0.1:{port}")],
        ..Default::default()
    })
    .unwrap();
    let alice = server.client_with(|o| o.token = Some(alice_token.into())).unwrap();
    let bob = server.client_with(|o| o.token = Some(bob_token.into())).unwrap();
    alice.embed(&["otter".to_string(), "badger".to_string()]).unwrap();
    bob.embed(&["heron".to_string(), "egret".to_string(), "ibis".to_string()]).unwrap();
    let metrics = scrape(port);
    let texts = |client: &str| {
        let labels = [("method", "Embed"), ("status", "OK"), ("client", client)];
        sample(&metrics, "embed_server_texts_total", &labels)
    };
    assert_eq!((texts("alice"), texts("bob")), (2.0, 3.0));
    let log = server.log_text();
    assert!(log.contains("Embed client=alice texts=2 status=Ok"), "{log}");
    assert!(log.contains("Embed client=bob texts=3 status=Ok"), "{log}");
    assert!(!log.contains(alice_token) && !log.contains(bob_token), "a token in the log");

    std::fs::write(&keys, format!("alice {alice_token}\n")).unwrap();
    embed_api::process::signal(server.pid(), embed_api::process::Signal::SIGHUP).unwrap();
    let started = Instant::now();
    while !server.log_text().contains("re-read --api-key-file") {
        assert!(started.elapsed() < Duration::from_secs(10), "no reload:\n{}", server.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = bob.embed(&["heron".to_string()]).unwrap_err();
    assert!(matches!(refused, embed_api::ClientError::Unauthenticated { .. }), "{refused:?}");
    assert_eq!(alice.embed(&["otter".to_string()]).unwrap().vectors.len(), 1);
    assert!(embed_api::client::health(&server.address()).unwrap(), "still the same server");
}
