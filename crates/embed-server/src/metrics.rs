//! Prometheus metrics (`--metrics-addr`): what a lab that shares one server watches.
//!
//! The registry always exists (updating a counter costs nanoseconds); the HTTP endpoint is
//! only started with `--metrics-addr`. Names follow Prometheus conventions: a
//! `embed_server_` prefix, base units in the name (`_seconds`, `_bytes`), `_total` for
//! counters; the process RSS uses the standard `process_resident_memory_bytes`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use tonic::Code;

/// Every metric of the server.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    texts: IntCounterVec,
    cache_lookups: IntCounterVec,
    forward_passes: IntCounter,
    batch_texts: Histogram,
    batch_tokens: Histogram,
    queue_wait: Histogram,
    forward_time: Histogram,
    request_latency: HistogramVec,
    queued_texts: IntGauge,
    model_load: Gauge,
    resident_memory: IntGauge,
}

/// Buckets of durations from 1 ms to about 2 minutes (x2 steps).
fn seconds_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 18).expect("constant, valid buckets")
}

/// Buckets of counts from 1 to 8192 (x2 steps).
fn count_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(1.0, 2.0, 14).expect("constant, valid buckets")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // The names and labels below are constants, so creating and registering them cannot
        // fail (a duplicate or malformed name would be a bug caught by any test).
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let client = ["method", "status", "client"];
        let requests = counter_vec(
            "embed_server_requests_total",
            "gRPC requests answered, by method, status code and client (key name)",
            &client,
        );
        let texts = counter_vec(
            "embed_server_texts_total",
            "Texts in Embed requests, by status code and client (key name)",
            &client,
        );
        let cache_lookups = counter_vec(
            "embed_server_cache_lookups_total",
            "Cache lookups of distinct texts by layer (memory, then sqlite for memory misses) and result (hit, miss)",
            &["layer", "result"],
        );
        let forward_passes = IntCounter::new(
            "embed_server_forward_passes_total",
            "Forward passes of the model (dynamic batching merges requests into them)",
        )
        .expect("valid metric");
        registry.register(Box::new(forward_passes.clone())).expect("unique metric");
        let batch_texts = histogram(
            "embed_server_batch_size_texts",
            "Texts in one forward pass",
            count_buckets(),
        );
        let batch_tokens = histogram(
            "embed_server_batch_size_tokens",
            "Tokens (texts x length) in one forward pass",
            count_buckets(),
        );
        let queue_wait = histogram(
            "embed_server_queue_wait_seconds",
            "Time from a request's texts entering the batcher to their first forward pass",
            seconds_buckets(),
        );
        let forward_time = histogram(
            "embed_server_forward_duration_seconds",
            "Time of one forward pass",
            seconds_buckets(),
        );
        let request_latency = HistogramVec::new(
            HistogramOpts::new(
                "embed_server_request_duration_seconds",
                "Time from a decoded request to its answer, by method",
            )
            .buckets(seconds_buckets()),
            &["method"],
        )
        .expect("valid metric");
        registry.register(Box::new(request_latency.clone())).expect("unique metric");
        let queued_texts = int_gauge(
            "embed_server_queued_texts",
            "Texts admitted and not yet answered (bounded by --max-queued-texts)",
        );
        let model_load = Gauge::new(
            "embed_server_model_load_duration_seconds",
            "Time the model took to load at start",
        )
        .expect("valid metric");
        registry.register(Box::new(model_load.clone())).expect("unique metric");
        let resident_memory =
            int_gauge("process_resident_memory_bytes", "Resident memory size of the server");
        Self {
            registry,
            requests,
            texts,
            cache_lookups,
            forward_passes,
            batch_texts,
            batch_tokens,
            queue_wait,
            forward_time,
            request_latency,
            queued_texts,
            model_load,
            resident_memory,
        }
    }

    /// One answered request: `texts` is the number of texts it carried (0 for `Info`).
    pub fn request(&self, method: &str, code: Code, client: &str, texts: usize, took: Duration) {
        let status = status_label(code);
        self.requests.with_label_values(&[method, status, client]).inc();
        if method == "Embed" {
            self.texts.with_label_values(&[method, status, client]).inc_by(texts as u64);
        }
        self.request_latency.with_label_values(&[method]).observe(took.as_secs_f64());
    }

    /// The cache lookups of one request's distinct texts.
    pub fn cache(
        &self,
        memory_hits: usize,
        sqlite_hits: usize,
        sqlite_misses: usize,
        texts: usize,
    ) {
        let memory_misses = texts.saturating_sub(memory_hits);
        let add = |layer: &str, result: &str, n: usize| {
            self.cache_lookups.with_label_values(&[layer, result]).inc_by(n as u64);
        };
        add("memory", "hit", memory_hits);
        add("memory", "miss", memory_misses);
        add("sqlite", "hit", sqlite_hits);
        add("sqlite", "miss", sqlite_misses);
    }

    /// One forward pass of `texts` sequences of `len` tokens.
    pub fn forward(&self, texts: usize, len: usize, took: Duration) {
        self.forward_passes.inc();
        self.batch_texts.observe(texts as f64);
        self.batch_tokens.observe((texts * len) as f64);
        self.forward_time.observe(took.as_secs_f64());
    }

    /// A request's wait in the batcher before its first forward pass.
    pub fn queue_wait(&self, waited: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
    }

    pub fn model_loaded(&self, took: Duration) {
        self.model_load.set(took.as_secs_f64());
    }

    /// The text exposition of every metric, with the gauges read now.
    pub fn render(&self, queued_texts: usize) -> String {
        self.queued_texts.set(queued_texts as i64);
        if let Some(kib) = embed_api::process::resident_kib(std::process::id()) {
            self.resident_memory.set((kib * 1024) as i64);
        }
        // Encoding only fails for metric names the registry would have refused already.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding the metrics failed: {e}\n"))
    }
}

/// gRPC's canonical status names as Prometheus exporters write them (`OK`,
/// `ResourceExhausted`, ...).
fn status_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Binds `--metrics-addr` and serves `GET /metrics` on it in the background; `queued` reads
/// the queue depth at each scrape.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    queued: Arc<dyn Fn() -> usize + Send + Sync>,
) -> Result<SocketAddr> {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on --metrics-addr {addr} (in use?); pick another port")
    })?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, queued) = (Arc::clone(&metrics), Arc::clone(&queued));
            async move {
                let body = metrics.render(queued());
                ([(axum::http::header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body)
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!("the metrics endpoint stopped: {err}");
        }
    });
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_their_labels() {
        let metrics = Metrics::new();
        metrics.request("Embed", Code::Ok, "alice", 3, Duration::from_millis(5));
        metrics.request("Embed", Code::ResourceExhausted, "bob", 7, Duration::ZERO);
        metrics.cache(1, 1, 1, 3);
        let text = metrics.render(42);
        for line in [
            r#"embed_server_requests_total{client="alice",method="Embed",status="OK"} 1"#,
            r#"embed_server_texts_total{client="bob",method="Embed",status="ResourceExhausted"} 7"#,
            r#"embed_server_cache_lookups_total{layer="memory",result="miss"} 2"#,
            "embed_server_queued_texts 42",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line} in\n{text}");
        }
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
    }
}
