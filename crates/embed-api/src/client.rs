//! The blocking gRPC client of embed-server.
//!
//! The pipeline is synchronous, so the client owns a small tokio runtime (one worker thread)
//! and blocks on it. It connects with retry and backoff, splits large inputs into chunks within
//! the server's limits (several in flight, so the server can batch them together), reconnects
//! after a server restart (a failed call is retried until `retry_for` has passed; embedding
//! is idempotent, so a retry is safe) and counts how many texts the server answered from its
//! cache. Do not call it from inside another tokio runtime: it returns an error there.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::error::ClientError;
use crate::proto::embedder_client::EmbedderClient;
use crate::proto::{EmbedRequest, InfoRequest, InfoResponse};
use crate::tls;

/// Env var with the server address (`host:port`, `http://host:port` or `https://host:port`).
pub const ENV_SERVER: &str = "WILDCARDS_EMBED_SERVER";
/// Env var with the deadline of one request, in seconds (default 600).
pub const ENV_TIMEOUT: &str = "WILDCARDS_EMBED_TIMEOUT";
/// Env var with the bearer token for servers started with `--api-key-file`.
pub const ENV_TOKEN: &str = "WILDCARDS_EMBED_TOKEN";
/// Where embed-server listens by default.
pub const DEFAULT_SERVER: &str = "127.0.0.1:50051";
/// The one retry policy of every tool: how long a call that fails because the server is
/// away (down, restarting, not yet listening) is retried before it fails. Long enough for a
/// private server to be restarted and load its model on a busy machine.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(90);
/// The metadata of a `RESOURCE_EXHAUSTED` answer that says when to retry, in milliseconds
/// (the standard gRPC pushback header, gRFC A6): embed-server sends it when its queue is full.
pub const PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Vectors for a list of texts, in input order, as the server sent them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embedded {
    pub dim: usize,
    /// One L2-normalised vector per input text.
    pub vectors: Vec<Vec<f32>>,
    /// How many texts the server answered from its cache.
    pub cache_hits: usize,
}

/// Largest response a client accepts (a chunk of 1,024 vectors of 384 floats is 1.5 MiB).
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Request bytes per chunk, well below the server's decode limit.
const MAX_CHUNK_BYTES: usize = 2 << 20;

/// How to reach the server and how patient to be.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host:port`, `http://host:port` or `https://host:port`.
    pub server: String,
    /// A PEM CA root to trust besides the public ones, for `https://` servers signed by a
    /// private CA (`--ca-cert`; [`ClientOptions::from_env`] reads env `WILDCARDS_EMBED_CA`).
    pub ca_cert: Option<PathBuf>,
    /// Bearer token, when the server requires one.
    pub token: Option<String>,
    /// How long a failing call (server down, restarting, connection lost) is retried.
    pub retry_for: Duration,
    /// Deadline of one request (a chunk); cold embedding of a big chunk on a busy server
    /// takes a while, so this is generous.
    pub request_timeout: Duration,
    /// Texts per request (capped by the server's `max_texts`).
    pub chunk_texts: usize,
    /// Requests in flight at once for one `embed` call.
    pub max_in_flight: usize,
    /// Told how long an `embed` call has been waiting, every few seconds while it waits
    /// (a "waiting for the embed-server" line), so a stalled server is not silent.
    pub on_wait: Option<WaitNotice>,
    /// The model every Embed request names (`semantic_model`); `None`: the server's default.
    /// Checked against the server's Info at connect ([`ClientError::UnknownModel`]).
    pub model: Option<String>,
}

/// What a [`WaitNotice`] calls: the server address and the time waited so far.
pub type WaitFn = dyn Fn(&str, Duration) + Send + Sync;

/// A callback for long waits.
#[derive(Clone)]
pub struct WaitNotice(pub Arc<WaitFn>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

/// When the first wait notice comes, and then how often.
const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(5);
const WAIT_NOTICE_EVERY: Duration = Duration::from_secs(10);

impl ClientOptions {
    /// Defaults for a server address.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            ca_cert: None,
            token: None,
            retry_for: DEFAULT_RETRY_FOR,
            request_timeout: Duration::from_secs(600),
            chunk_texts: 512,
            max_in_flight: 4,
            on_wait: None,
            model: None,
        }
    }

    /// Address from the flag, else `WILDCARDS_EMBED_SERVER`, else 127.0.0.1:50051; token
    /// from the flag, else `WILDCARDS_EMBED_TOKEN`; CA root from `WILDCARDS_EMBED_CA`.
    pub fn from_env(server_flag: Option<&str>, token_flag: Option<&str>) -> Self {
        let mut options = Self::new(resolve_server(server_flag));
        options.ca_cert = tls::env_ca_cert();
        options.token = token_flag
            .map(str::to_string)
            .or_else(|| std::env::var(ENV_TOKEN).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if let Some(secs) =
            std::env::var(ENV_TIMEOUT).ok().and_then(|v| v.trim().parse::<f64>().ok())
        {
            if secs > 0.0 {
                options.request_timeout = Duration::from_secs_f64(secs);
            }
        }
        options
    }
}

/// The server address to use: the flag, else `WILDCARDS_EMBED_SERVER`, else the default.
pub fn resolve_server(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| std::env::var(ENV_SERVER).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string())
}

/// Turns `host:port`, `http://host:port` or `https://host:port` into the URI tonic wants.
pub fn server_uri(server: &str) -> Result<String> {
    let server = server.trim();
    let uri = if server.starts_with("http://") || server.starts_with("https://") {
        server.to_string()
    } else if server.contains("://") {
        return Err(address(
            server,
            "only http:// and https:// addresses are supported (or plain host:port)",
        ));
    } else {
        format!("http://{server}")
    };
    let authority = uri.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let host_port = authority.trim_end_matches('/');
    if host_port.is_empty() || !host_port.contains(':') {
        return Err(address(
            server,
            &format!("needs a port: use host:port such as {DEFAULT_SERVER}"),
        ));
    }
    Ok(uri)
}

fn address(server: &str, problem: &str) -> ClientError {
    ClientError::Address { server: server.to_string(), problem: problem.to_string() }
}

/// Reads a token file (first line, trimmed).
pub fn read_token_file(path: &std::path::Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ClientError::Local(format!("cannot read token file {}: {e}", path.display()))
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(ClientError::Local(format!("token file {} is empty", path.display())));
    }
    Ok(token)
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct AuthHeader(Option<MetadataValue<Ascii>>);

impl tonic::service::Interceptor for AuthHeader {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Grpc = EmbedderClient<InterceptedService<Channel, AuthHeader>>;

/// Counters of one client since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Embed requests sent (chunks, retries not counted).
    pub requests: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Of those, served from the server's cache.
    pub cache_hits: u64,
    /// Times the server said it was busy (`RESOURCE_EXHAUSTED` with a retry hint) and the
    /// request was sent again later.
    pub pushbacks: u64,
}

/// A blocking embed-server client.
pub struct EmbedClient {
    runtime: Runtime,
    grpc: Grpc,
    options: ClientOptions,
    uri: String,
    server_info: Mutex<InfoResponse>,
    requests: AtomicU64,
    texts: AtomicU64,
    cache_hits: AtomicU64,
    pushbacks: Arc<AtomicU64>,
}

impl EmbedClient {
    /// Connects (retrying for `options.retry_for`) and reads the server's model and limits.
    pub fn connect(options: ClientOptions) -> Result<Self> {
        refuse_inside_runtime()?;
        let uri = server_uri(&options.server)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("embed-client")
            .enable_all()
            .build()
            .map_err(|e| {
                ClientError::Local(format!("cannot start the embed client's runtime: {e}"))
            })?;
        let token = match &options.token {
            Some(token) => {
                Some(format!("Bearer {token}").parse::<MetadataValue<Ascii>>().map_err(|_| {
                    ClientError::Local(
                        "the embed-server token has characters a header cannot carry".into(),
                    )
                })?)
            }
            None => None,
        };
        let endpoint = tls::endpoint(&options.server, &uri, options.ca_cert.as_deref())?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let channel = {
            let _guard = runtime.enter();
            endpoint.connect_lazy()
        };
        let grpc = EmbedderClient::with_interceptor(channel, AuthHeader(token))
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
            .max_encoding_message_size(usize::MAX);
        let client = Self {
            runtime,
            grpc,
            options,
            uri,
            server_info: Mutex::new(InfoResponse::default()),
            requests: AtomicU64::new(0),
            texts: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            pushbacks: Arc::new(AtomicU64::new(0)),
        };
        let info = client.info()?;
        if let Some(model) = &client.options.model {
            client.check_model(&info, model)?;
        }
        Ok(client)
    }

    /// `model` is one of the server's models; else [`ClientError::UnknownModel`] listing them.
    fn check_model(&self, info: &InfoResponse, model: &str) -> Result<()> {
        match crate::models::find(info, model) {
            Some(_) => Ok(()),
            None => Err(ClientError::UnknownModel {
                uri: self.uri.clone(),
                requested: model.to_string(),
                available: crate::models::describe(&info.models),
            }),
        }
    }

    /// The server's description of the model the requests use (the default when
    /// [`ClientOptions::model`] is `None`), from the last Info.
    pub fn model_info(&self) -> Option<crate::proto::ModelInfo> {
        crate::models::find(&self.cached_info(), self.options.model.as_deref().unwrap_or(""))
    }

    /// Connects with [`ClientOptions::from_env`] for this address flag and token flag.
    pub fn from_env(server_flag: Option<&str>, token_flag: Option<&str>) -> Result<Self> {
        Self::connect(ClientOptions::from_env(server_flag, token_flag))
    }

    /// The server URI (`http://host:port`).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The server's model, limits and cache counters (fresh from the server).
    pub fn info(&self) -> Result<InfoResponse> {
        refuse_inside_runtime()?;
        let grpc = self.grpc.clone();
        let info = self.runtime.block_on(self.retrying("Info", move || {
            let mut grpc = grpc.clone();
            async move { grpc.info(InfoRequest {}).await.map(|r| r.into_inner()) }
        }))?;
        *self.server_info.lock().unwrap_or_else(|p| p.into_inner()) = info.clone();
        Ok(info)
    }

    /// Counters since this client was created.
    pub fn stats(&self) -> ClientStats {
        ClientStats {
            requests: self.requests.load(Ordering::Relaxed),
            texts: self.texts.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            pushbacks: self.pushbacks.load(Ordering::Relaxed),
        }
    }

    /// The chunks `texts` is sent in: within the server's `max_texts`, our `chunk_texts` and a
    /// byte budget.
    fn chunks(&self, texts: &[String]) -> Vec<std::ops::Range<usize>> {
        let server_max = self.cached_info().max_texts as usize;
        let per_chunk = match server_max {
            0 => self.options.chunk_texts,
            max => self.options.chunk_texts.min(max),
        }
        .max(1);
        let mut chunks = Vec::new();
        let mut start = 0;
        let mut bytes = 0;
        for (i, text) in texts.iter().enumerate() {
            let full =
                i - start >= per_chunk || (bytes + text.len() > MAX_CHUNK_BYTES && i > start);
            if full {
                chunks.push(start..i);
                start = i;
                bytes = 0;
            }
            bytes += text.len() + 8;
        }
        if start < texts.len() {
            chunks.push(start..texts.len());
        }
        chunks
    }

    fn cached_info(&self) -> InfoResponse {
        self.server_info.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn embed_async(&self, texts: &[String]) -> Result<Embedded> {
        let chunks = self.chunks(texts);
        let limit = Arc::new(tokio::sync::Semaphore::new(self.options.max_in_flight.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, range) in chunks.iter().cloned().enumerate() {
            let chunk: Vec<String> = texts[range].to_vec();
            let grpc = self.grpc.clone();
            let limit = Arc::clone(&limit);
            let timeout = self.options.request_timeout;
            let model = self.options.model.clone();
            let call = self.retrying("Embed", move || {
                let mut grpc = grpc.clone();
                let mut request = tonic::Request::new(EmbedRequest {
                    texts: chunk.clone(),
                    model: model.clone(),
                });
                // The server drops the work a little after we stop waiting (tonic answers an
                // expired deadline with CANCELLED, which would read as a restart and be
                // retried); the deadline is enforced here, so a server that never answers
                // cannot stall us.
                request.set_timeout(timeout + Duration::from_secs(1));
                async move {
                    match tokio::time::timeout(timeout, grpc.embed(request)).await {
                        Ok(answer) => answer.map(|r| r.into_inner()),
                        Err(_) => Err(Status::deadline_exceeded(format!(
                            "no answer within {:.0} s",
                            timeout.as_secs_f64()
                        ))),
                    }
                }
            });
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (index, call.await)
            });
        }
        // Each answer is split into vectors as it arrives and its flat buffer dropped, so the
        // job never holds the whole tree's embeddings twice (a worker stays light: ~13 MB of
        // vectors for Tencent, not ~27 MB).
        let mut answers: Vec<Option<Embedded>> = vec![None; chunks.len()];
        while let Some(joined) = tasks.join_next().await {
            let (index, answer) =
                joined.map_err(|e| ClientError::Local(format!("an embed task failed: {e}")))?;
            // The first failure ends the call; the JoinSet cancels the rest on drop.
            let answer = answer?;
            let expected = chunks[index].len();
            let dim = answer.dim as usize;
            if dim == 0 || answer.values.len() != expected * dim {
                return Err(ClientError::Protocol {
                    uri: self.uri.clone(),
                    problem: format!(
                        "sent {} values for {expected} texts of dim {dim}",
                        answer.values.len()
                    ),
                });
            }
            let vectors = answer.values.chunks_exact(dim).map(<[f32]>::to_vec).collect();
            answers[index] =
                Some(Embedded { dim, vectors, cache_hits: answer.cache_hits as usize });
        }
        let mut out = Embedded::default();
        out.vectors.reserve(texts.len());
        for answer in answers {
            let answer = answer.ok_or_else(|| ClientError::Protocol {
                uri: self.uri.clone(),
                problem: "left an embed chunk without an answer".into(),
            })?;
            out.dim = answer.dim;
            out.cache_hits += answer.cache_hits;
            out.vectors.extend(answer.vectors);
            self.requests.fetch_add(1, Ordering::Relaxed);
        }
        self.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        self.cache_hits.fetch_add(out.cache_hits as u64, Ordering::Relaxed);
        Ok(out)
    }

    /// Runs `call` until it succeeds, fails for good, or has kept failing for `retry_for`.
    /// The window opens at the first failure, not at the first attempt: a chunk that ran for
    /// minutes on a busy shared server and then lost its connection to a restart still gets
    /// the whole window to find the server again. A busy server's answer (`RESOURCE_EXHAUSTED`
    /// with a retry hint) is retried after the hint, spread by jitter (0.5-1.5x) so refused
    /// clients do not all come back at the same moment.
    fn retrying<T, F, Fut>(
        &self,
        what: &'static str,
        call: F,
    ) -> impl std::future::Future<Output = Result<T>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, Status>> + Send,
    {
        let retry_for = self.options.retry_for;
        let uri = self.uri.clone();
        let pushbacks = Arc::clone(&self.pushbacks);
        async move {
            let started = Instant::now();
            let mut failing_since: Option<Instant> = None;
            let mut delay = Duration::from_millis(50);
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                let status = match call().await {
                    Ok(value) => return Ok(value),
                    Err(status) => status,
                };
                let since = *failing_since.get_or_insert_with(Instant::now);
                let hint = pushback(&status);
                let retry = is_retryable(&status) || hint.is_some();
                // A TLS mismatch shows as a broken connection (or, plain-to-TLS, an HTTP/2
                // protocol error: INTERNAL); find out once instead of retrying in vain.
                if hint.is_none() && (retry || status.code() == Code::Internal) {
                    if let Some(mismatch) = tls::diagnose(&uri, &tls::chain(&status)).await {
                        return Err(mismatch);
                    }
                }
                if !retry || since.elapsed() >= retry_for {
                    return Err(describe(&uri, what, attempts, started, &status));
                }
                tracing::debug!(%uri, attempts, "{what} failed ({}), retrying", status.message());
                match hint {
                    Some(hint) => {
                        pushbacks.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(hint.mul_f64(0.5 + fastrand::f64())).await;
                    }
                    None => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(1));
                    }
                }
            }
        }
    }
}

impl EmbedClient {
    /// Embeds `texts` (any number: sent in chunks), in input order.
    pub fn embed(&self, texts: &[String]) -> Result<Embedded> {
        refuse_inside_runtime()?;
        if texts.is_empty() {
            let dim = self.model_info().map_or(self.cached_info().dim, |m| m.dim);
            return Ok(Embedded { dim: dim as usize, ..Embedded::default() });
        }
        self.runtime.block_on(self.with_wait_notices(self.embed_async(texts)))
    }

    /// Runs `work`, telling [`ClientOptions::on_wait`] every few seconds how long it waits.
    async fn with_wait_notices<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let Some(notice) = self.options.on_wait.clone() else { return work.await };
        tokio::pin!(work);
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval_at(start + WAIT_NOTICE_AFTER, WAIT_NOTICE_EVERY);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => (notice.0)(&self.options.server, start.elapsed()),
            }
        }
    }
}

/// Waits until the server at `server` reports SERVING on the standard health service (an
/// `https://` server checked with the CA root of env `WILDCARDS_EMBED_CA`, if any).
pub fn wait_for_health(server: &str, timeout: Duration) -> Result<()> {
    wait_for_health_with_ca(server, tls::env_ca_cert().as_deref(), timeout)
}

/// [`wait_for_health`] trusting the CA root in `ca_cert` for an `https://` server.
pub fn wait_for_health_with_ca(
    server: &str,
    ca_cert: Option<&Path>,
    timeout: Duration,
) -> Result<()> {
    refuse_inside_runtime()?;
    let uri = server_uri(server)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(health_runtime)?;
    runtime.block_on(async {
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < timeout {
            match check_health(&uri, ca_cert).await {
                Ok(true) => return Ok(()),
                Ok(false) => last = "server answers but is not serving yet".into(),
                // A TLS mismatch or an untrusted certificate does not go away by waiting.
                Err(err @ ClientError::Tls { .. }) => return Err(err),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ClientError::Unreachable {
            uri: uri.clone(),
            what: "the health check",
            attempts: 0,
            elapsed: started.elapsed(),
            message: format!("not healthy after {timeout:?}: {last}"),
        })
    })
}

/// One health check: `Ok(true)` when the server reports SERVING (an `https://` server
/// checked with the CA root of env `WILDCARDS_EMBED_CA`, if any).
pub fn health(server: &str) -> Result<bool> {
    health_with_ca(server, tls::env_ca_cert().as_deref())
}

/// [`health`] trusting the CA root in `ca_cert` for an `https://` server.
pub fn health_with_ca(server: &str, ca_cert: Option<&Path>) -> Result<bool> {
    refuse_inside_runtime()?;
    let uri = server_uri(server)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(health_runtime)?
        .block_on(check_health(&uri, ca_cert))
}

fn health_runtime(e: std::io::Error) -> ClientError {
    ClientError::Local(format!("cannot start a runtime for the health check: {e}"))
}

async fn check_health(uri: &str, ca_cert: Option<&Path>) -> Result<bool> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let unreachable = |message: String| ClientError::Unreachable {
        uri: uri.to_string(),
        what: "the health check",
        attempts: 1,
        elapsed: Duration::ZERO,
        message,
    };
    let connected = tls::endpoint(uri, uri, ca_cert)?
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        .connect()
        .await;
    let channel = match connected {
        Ok(channel) => channel,
        Err(e) => {
            let failure = tls::chain(&e);
            return Err(match tls::diagnose(uri, &failure).await {
                Some(mismatch) => mismatch,
                None => unreachable(format!("cannot connect to {uri}: {failure}")),
            });
        }
    };
    let answer =
        HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
    let response = match answer {
        Ok(response) => response,
        Err(s) => {
            let failure = tls::chain(&s);
            return Err(match tls::diagnose(uri, &failure).await {
                Some(mismatch) => mismatch,
                None => unreachable(format!("health check failed: {}", s.message())),
            });
        }
    };
    Ok(response.into_inner().status == ServingStatus::Serving as i32)
}

/// The retry hint of a busy server's `RESOURCE_EXHAUSTED` answer ([`PUSHBACK_HEADER`]);
/// `None` for any other status (a `RESOURCE_EXHAUSTED` without the hint, e.g. a message over a
/// size limit, is not retried: it would fail again).
pub fn pushback(status: &Status) -> Option<Duration> {
    if status.code() != Code::ResourceExhausted {
        return None;
    }
    let value = status.metadata().get(PUSHBACK_HEADER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_millis)
}

/// Statuses that mean "the server is not there right now": retry.
fn is_retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
}

fn describe(
    uri: &str,
    what: &'static str,
    attempts: u32,
    started: Instant,
    status: &Status,
) -> ClientError {
    let uri = uri.to_string();
    let message = status.message().to_string();
    match status.code() {
        Code::Unavailable | Code::Unknown | Code::Cancelled => {
            ClientError::Unreachable { uri, what, attempts, elapsed: started.elapsed(), message }
        }
        Code::ResourceExhausted if pushback(status).is_some() => {
            ClientError::Overloaded { uri, what, attempts, elapsed: started.elapsed(), message }
        }
        Code::Unauthenticated => ClientError::Unauthenticated { uri, message },
        Code::DeadlineExceeded => ClientError::Timeout { uri, what, message },
        code => ClientError::Rejected { uri, what, code, message },
    }
}

/// `block_on` inside a runtime panics; say so as an error instead.
fn refuse_inside_runtime() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(ClientError::Local("the blocking embed client cannot be used from inside an async runtime; call it from a plain thread (e.g. tokio::task::spawn_blocking)".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(server_uri("127.0.0.1:50051").unwrap(), "http://127.0.0.1:50051");
        assert_eq!(server_uri("http://localhost:9").unwrap(), "http://localhost:9");
        assert_eq!(server_uri(" localhost:9 ").unwrap(), "http://localhost:9");
        assert!(server_uri("localhost").unwrap_err().to_string().contains("needs a port"));
        assert!(server_uri("grpc://x:1").is_err());
    }

    #[test]
    fn flag_wins_over_default() {
        assert_eq!(resolve_server(Some("h:1")), "h:1");
    }

    #[test]
    fn a_busy_answer_with_a_hint_is_retryable_and_says_what_to_do() {
        let mut status = Status::resource_exhausted("server busy");
        assert_eq!(pushback(&status), None, "no hint: e.g. a size limit, not retried");
        let err = describe("http://h:1", "Embed", 1, Instant::now(), &status);
        assert!(!err.is_retryable(), "{err:?}");
        status.metadata_mut().insert(PUSHBACK_HEADER, "250".parse().unwrap());
        assert_eq!(pushback(&status), Some(Duration::from_millis(250)));
        let err = describe("http://h:1", "Embed", 7, Instant::now(), &status);
        assert!(err.is_retryable(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("refused 7 times") && text.contains("--max-queued-texts"), "{text}");
    }

    #[test]
    fn unreachable_server_is_a_clean_error() {
        // Port 9 (discard) on loopback has no gRPC server.
        let mut options = ClientOptions::new("127.0.0.1:9");
        options.retry_for = Duration::from_millis(200);
        let err = EmbedClient::connect(options).err().expect("no server there");
        assert!(err.is_retryable(), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("not reachable"), "{text}");
        assert!(text.contains("127.0.0.1:9"), "{text}");
    }
}
