//! A server that passes the health check but never answers Embed: the command says it is
//! waiting, then fails with a clear error after its timeout (not a silent 600 s stall).

use std::process::Command;
use std::time::{Duration, Instant};

use embed_api::proto::embedder_server::{Embedder, EmbedderServer};
use embed_api::proto::{EmbedRequest, EmbedResponse, InfoRequest, InfoResponse};
use test_support::binary;
use tonic::{Request, Response, Status};

/// Answers Info like a real server, and Embed never.
struct Stalled;

#[tonic::async_trait]
impl Embedder for Stalled {
    async fn embed(&self, _: Request<EmbedRequest>) -> Result<Response<EmbedResponse>, Status> {
        std::future::pending().await
    }

    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let info =
            InfoResponse { dim: 384, max_texts: 2048, max_text_bytes: 16384, ..Default::default() };
        Ok(Response::new(info))
    }
}

/// Serves [`Stalled`] (and a SERVING health service) on a free loopback port, on its own
/// runtime thread; returns the address.
fn start_stalled_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let (reporter, health) = tonic_health::server::health_reporter();
            reporter.set_serving::<EmbedderServer<Stalled>>().await;
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(health)
                .add_service(EmbedderServer::new(Stalled))
                .serve_with_incoming(incoming)
                .await;
        });
    });
    addr.to_string()
}

#[test]
fn a_server_that_never_answers_gives_a_waiting_line_and_a_clear_error() {
    let addr = start_stalled_server();
    let dir = tempfile::tempdir().expect("temp");
    let terms = dir.path().join("terms.txt");
    std::fs::write(&terms, "dog\ncat\nhorse\ncow\n").expect("write");
    let started = Instant::now();
    let out = Command::new(binary("wildcards-gen"))
        .args(["arrange", terms.to_str().unwrap(), "--server", &addr, "--timeout", "7"])
        .output()
        .expect("run wildcards-gen");
    let waited = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(waited < Duration::from_secs(60), "gave up after {waited:?}");
    assert!(err.contains(&format!("waiting for the embed-server at {addr} (")), "{err}");
    assert!(err.contains("did not answer Embed in time"), "{err}");
    assert!(err.contains("--timeout"), "{err}");
}

/// The same timeout from the environment (`WILDCARDS_EMBED_TIMEOUT`), for tools started by
/// scripts: the lint command gives up after it with the same clear error.
#[test]
fn the_timeout_can_come_from_the_environment() {
    let addr = start_stalled_server();
    let dir = tempfile::tempdir().expect("temp");
    let skeleton = dir.path().join("s.yaml");
    std::fs::write(&skeleton, "Animals:\n  - dog\n  - cat\n  - horse\n  - cow\n").expect("write");
    let started = Instant::now();
    let out = Command::new(binary("wildcards-gen"))
        .args(["lint", skeleton.to_str().unwrap(), "--server", &addr])
        .env(embed_api::client::ENV_TIMEOUT, "5")
        .output()
        .expect("run wildcards-gen");
    let waited = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(waited < Duration::from_secs(40), "gave up after {waited:?}");
    assert!(err.contains("did not answer Embed in time"), "{err}");
}
