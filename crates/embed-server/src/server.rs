//! Starting and stopping the server: model, cache, batcher, gRPC services, signals.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use embed_api::proto::embedder_server::EmbedderServer;
use tokio_stream::StreamExt;
use tonic::transport::server::Router;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::admission::DecodeLimit;
use crate::auth::NamedKeys;
use crate::cache::{default_cache_path, CacheOptions, EmbeddingCache};
use crate::linger::LingeringClose;
use crate::metrics::{self, Metrics};
use crate::models::{self, ModelSpec};
use crate::service::{EmbedService, Limits};
use crate::tls::TlsFiles;

/// How long after SIGINT/SIGTERM requests in flight may still run; a cold chunk takes a few
/// seconds, and supervisors (systemd: 90 s) kill a server that takes much longer to stop.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// How long a closing connection waits for the client to read the last answers and close its
/// side (see [`crate::linger`]); on loopback that takes milliseconds.
const LINGER: Duration = Duration::from_secs(10);

/// Everything `embed-server` needs to run (filled from the command line).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: String,
    /// The one model's folder when `models` is empty (`--model-dir`).
    pub model_dir: Option<PathBuf>,
    /// `--model NAME=SOURCE`, the default first (see [`crate::models`]).
    pub models: Vec<ModelSpec>,
    pub cache: CacheChoice,
    pub memory_cache_bytes: usize,
    pub limits: Limits,
    pub max_batch_tokens: usize,
    pub api_key_file: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`--metrics-addr`); none by default.
    pub metrics_addr: Option<String>,
    /// Also stop when stdin closes (the private server of a tool: see main.rs).
    pub exit_on_stdin_eof: bool,
    /// Embed requests being decoded and admitted at once (see [`DecodeLimit`]).
    pub max_inflight_requests: usize,
    /// Serve gRPC over TLS with these PEM files (`--tls-cert`, `--tls-key`); plain when none.
    pub tls: Option<TlsFiles>,
}

/// Where vectors are cached.
#[derive(Debug, Clone)]
pub enum CacheChoice {
    /// The per-user default file.
    Default,
    /// A given SQLite file.
    Path(PathBuf),
    /// No cache at all (every text is computed).
    Disabled,
}

/// Loads everything, serves until SIGINT/SIGTERM, then finishes in-flight requests and closes
/// the cache.
pub async fn run(config: ServerConfig) -> Result<()> {
    let addr = resolve_addr("--addr", &config.addr)?;
    let metrics_addr = match &config.metrics_addr {
        Some(a) => Some(resolve_addr("--metrics-addr", a)?),
        None => None,
    };
    let auth = match &config.api_key_file {
        Some(path) => Some(Arc::new(NamedKeys::from_file(path)?)),
        None => None,
    };
    // Read before the model loads: a bad file fails in a moment, not after the load.
    let tls = match &config.tls {
        Some(files) => Some((crate::tls::load(files)?, files)),
        None => None,
    };
    if let Some(keys) = &auth {
        reload_keys_on_sighup(Arc::clone(keys));
    }
    if !addr.ip().is_loopback() && auth.is_none() {
        tracing::warn!(
            "listening on {addr}, which other machines can reach, without --api-key-file: \
             anyone who reaches it can use the server; give it a key file (16+ characters)"
        );
    }

    let started = Instant::now();
    let metrics = Arc::new(Metrics::new());
    let open = |fingerprint: &str, dim: usize| open_cache(&config, fingerprint, dim);
    let served = models::specs(&config.models, config.model_dir.as_deref())?
        .iter()
        .map(|spec| models::load(spec, &open, config.max_batch_tokens, &metrics))
        .collect::<Result<Vec<_>>>()?;
    metrics.model_loaded(started.elapsed());
    let model_desc = served
        .iter()
        .map(|m| {
            format!(
                "{} ({}, dim {}, fingerprint {})",
                m.info.name, m.info.model_id, m.info.dim, m.info.fingerprint
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let cache_desc = describe_cache(served[0].cache.as_deref());
    let service = Arc::new(EmbedService::new(served, config.limits, Arc::clone(&metrics)));
    if let Some(metrics_addr) = metrics_addr {
        let queue = Arc::clone(&service);
        let bound =
            metrics::serve(metrics_addr, metrics, Arc::new(move || queue.queued_texts())).await?;
        tracing::info!("Prometheus metrics on http://{bound}/metrics");
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<EmbedderServer<EmbedService>>().await;
    // Reflection in both versions: v1 for current clients, v1alpha for the many older ones
    // still installed (grpcurl before 1.9 speaks only v1alpha and otherwise reports "server
    // does not support the reflection API").
    let reflection_v1 =
        reflection_builder().build_v1().context("cannot build the reflection service (v1)")?;
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .context("cannot build the reflection service (v1alpha)")?;

    // Requests up to the limits must decode, so our INVALID_ARGUMENT (with a message) answers
    // oversize requests instead of a bare transport limit.
    let max_request_bytes = config
        .limits
        .max_texts
        .saturating_mul(config.limits.max_text_bytes.saturating_add(16))
        .saturating_add(1 << 20);
    let embedder = EmbedderServer::from_arc(Arc::clone(&service))
        .max_decoding_message_size(max_request_bytes)
        .max_encoding_message_size(usize::MAX);
    let keys = auth.clone();
    let embedder =
        tonic::service::interceptor::InterceptedService::new(embedder, move |req| match &keys {
            Some(keys) => keys.check(req),
            None => Ok(req),
        });
    let embedder = DecodeLimit::new(embedder, config.max_inflight_requests);

    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (in use by another server?); pick another with --addr")
    })?;
    let bound = listener.local_addr()?;
    tracing::info!(
        "embed-server ready: models {model_desc}, cache {cache_desc}, listening on {bound}{}{}, startup {:.1}s",
        if tls.is_some() { " over TLS (clients: https://)" } else { "" },
        match &auth {
            Some(keys) => format!(", bearer token required (keys: {})", keys.names().join(", ")),
            None => String::new(),
        },
        started.elapsed().as_secs_f64()
    );

    let mut builder = match tls {
        Some((config, files)) => crate::tls::apply(Server::builder(), config, files)?,
        None => Server::builder(),
    };
    let router = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(embedder);
    serve_until_signal(router, listener, config.exit_on_stdin_eof).await?;

    for model in service.models() {
        model.batcher.shutdown();
        if let Some(cache) = &model.cache {
            cache.close();
        }
    }
    tracing::info!("embed-server stopped");
    Ok(())
}

/// What reflection describes: our service, health, and both reflection services themselves,
/// so either version lists the same services.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(embed_api::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// Re-reads the key file on each SIGHUP (a removed key stops working at once); a file that
/// no longer parses is logged and the keys in force stay.
fn reload_keys_on_sighup(keys: Arc<NamedKeys>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(hangup) => hangup,
            Err(err) => {
                tracing::warn!("cannot listen for SIGHUP ({err}); key file changes need a restart");
                return;
            }
        };
        while hangup.recv().await.is_some() {
            let file = keys.path().display().to_string();
            match keys.reload() {
                Ok(n) => tracing::info!(
                    "SIGHUP: re-read --api-key-file {file}: {n} keys ({})",
                    keys.names().join(", ")
                ),
                Err(err) => tracing::error!("SIGHUP: {err:#}; the previous keys stay in force"),
            }
        }
    });
}

/// The socket address of `--addr`: an IP address as written, or a host name resolved (an IPv4
/// address preferred, the usual meaning of `localhost:PORT`).
fn resolve_addr(flag: &str, addr: &str) -> Result<SocketAddr> {
    if let Ok(parsed) = addr.parse() {
        return Ok(parsed);
    }
    let hint = "use HOST:PORT such as 127.0.0.1:50051 or localhost:50051";
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .with_context(|| format!("{flag} {addr:?}: cannot resolve the host name; {hint}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .with_context(|| format!("{flag} {addr:?}: the host name has no address; {hint}"))
}

/// The SQLite cache (with its memory layer) the configuration asks for, or none.
fn open_cache(config: &ServerConfig, fingerprint: &str, dim: usize) -> Option<Arc<EmbeddingCache>> {
    let path = match &config.cache {
        CacheChoice::Disabled => return None,
        CacheChoice::Path(path) => Some(path.clone()),
        _ => default_cache_path(),
    };
    let options = CacheOptions { path, memory_bytes: config.memory_cache_bytes };
    Some(Arc::new(EmbeddingCache::open(&options, fingerprint, dim)))
}

/// The cache as the startup line names it.
fn describe_cache(cache: Option<&EmbeddingCache>) -> String {
    match cache {
        Some(c) if c.is_persistent() => format!(
            "{} ({} entries)",
            c.path().map(|p| p.display().to_string()).unwrap_or_default(),
            c.entries()
        ),
        Some(_) => "memory only (no persistent cache)".to_string(),
        None => "disabled (--no-cache)".to_string(),
    }
}

/// Serves `router` on `listener` until SIGINT/SIGTERM, then drains the open connections.
async fn serve_until_signal(
    router: Router,
    listener: tokio::net::TcpListener,
    exit_on_stdin_eof: bool,
) -> Result<()> {
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(|tcp| LingeringClose::new(tcp, LINGER)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serve = router.serve_with_incoming_shutdown(incoming, async {
        let _ = stopped.await;
    });
    tokio::pin!(serve);
    // On the signal tonic closes the listener, sends GOAWAY and waits for every connection to
    // finish its streams; the deadline keeps a stuck client from holding the server forever.
    tokio::select! {
        served = &mut serve => served.context("the gRPC server failed")?,
        () = shutdown_signal(exit_on_stdin_eof) => {
            let _ = stop.send(());
            match tokio::time::timeout(DRAIN_DEADLINE, &mut serve).await {
                Ok(served) => {
                    served.context("the gRPC server failed")?;
                    tracing::info!("in-flight requests finished; stopping");
                }
                Err(_) => tracing::warn!(
                    "requests still running {}s after the signal; stopping without them",
                    DRAIN_DEADLINE.as_secs()
                ),
            }
        }
    }

    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal(exit_on_stdin_eof: bool) {
    let stdin_closed = async move {
        if exit_on_stdin_eof {
            stdin_eof().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = os_signal() => {}
        () = stdin_closed => tracing::info!("stdin closed (the tool that started this server is gone); finishing in-flight requests"),
    }
}

/// Resolves when standard input reaches its end (or fails): read on a plain thread, since
/// the parent never writes and the read just waits for the pipe to close.
async fn stdin_eof() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = tx.send(());
    });
    let _ = rx.await;
}

async fn os_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(
                        "cannot listen for SIGTERM ({err}); only Ctrl-C stops the server"
                    );
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => tracing::info!("SIGINT received; finishing in-flight requests"),
            _ = terminate.recv() => tracing::info!("SIGTERM received; finishing in-flight requests"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        tracing::info!("Ctrl-C received; finishing in-flight requests");
    }
}
