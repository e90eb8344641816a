//! The gRPC `Embedder` service: validation, cache lookups, hand-off to the batcher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use embed_api::proto::embedder_server::Embedder;
use embed_api::proto::{EmbedRequest, EmbedResponse, InfoRequest, InfoResponse};
use tonic::{Code, Request, Response, Status};

use crate::admission::{DecodePermit, QueueBound};
use crate::auth::ClientName;
use crate::batcher::{Batcher, Work};
use crate::cache::{EmbeddingCache, Vector};
use crate::metrics::Metrics;
use crate::model::{SentenceTokenizer, MAX_SEQ_LEN};

/// Per-request limits (`--max-texts`, `--max-text-bytes`) and the bound on texts admitted
/// and not yet answered (`--max-queued-texts`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_texts: usize,
    pub max_text_bytes: usize,
    pub max_queued_texts: usize,
}

/// What `Info` reports about the model.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub model_id: String,
    pub dim: usize,
    pub fingerprint: String,
}

/// Shared state of the service.
pub struct EmbedService {
    model: ModelInfo,
    tokenizer: SentenceTokenizer,
    batcher: Arc<Batcher>,
    cache: Option<Arc<EmbeddingCache>>,
    limits: Limits,
    queue: QueueBound,
    metrics: Arc<Metrics>,
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl EmbedService {
    pub fn new(
        model: ModelInfo,
        tokenizer: SentenceTokenizer,
        batcher: Arc<Batcher>,
        cache: Option<Arc<EmbeddingCache>>,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            model,
            tokenizer,
            batcher,
            cache,
            queue: QueueBound::new(limits.max_queued_texts),
            metrics,
            limits,
            requests: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Texts admitted and not yet answered (the queue depth).
    pub fn queued_texts(&self) -> usize {
        self.queue.queued()
    }

    /// Names a client may use for the loaded model besides its hub id.
    fn accepts_model(&self, requested: &str) -> bool {
        let id = self.model.model_id.as_str();
        let short = id.rsplit('/').next().unwrap_or(id);
        requested.is_empty()
            || requested == id
            || requested.eq_ignore_ascii_case(short)
            || requested == self.model.fingerprint
            || (short.eq_ignore_ascii_case("all-MiniLM-L6-v2")
                && requested.eq_ignore_ascii_case("minilm"))
    }

    fn validate(&self, request: &EmbedRequest) -> Result<(), Status> {
        if let Some(model) = request.model.as_deref() {
            if !self.accepts_model(model) {
                return Err(Status::not_found(format!(
                    "model {model:?} is not loaded; this server serves {} (omit the model field or start a server with --model)",
                    self.model.model_id
                )));
            }
        }
        if request.texts.len() > self.limits.max_texts {
            return Err(Status::invalid_argument(format!(
                "request has {} texts, the limit is {} (--max-texts); split it into smaller requests",
                request.texts.len(),
                self.limits.max_texts
            )));
        }
        if let Some((i, text)) =
            request.texts.iter().enumerate().find(|(_, t)| t.len() > self.limits.max_text_bytes)
        {
            return Err(Status::invalid_argument(format!(
                "text {i} is {} bytes, the limit is {} (--max-text-bytes); the model reads only the first {MAX_SEQ_LEN} tokens anyway, so shorten it",
                text.len(),
                self.limits.max_text_bytes
            )));
        }
        Ok(())
    }

    /// Embeds the texts: unique texts are looked up in the cache, the rest go to the batcher.
    async fn embed_texts(&self, texts: Vec<String>) -> Result<(Vec<Vector>, usize), Status> {
        // Duplicates are computed once.
        let mut unique_index: HashMap<&str, usize> = HashMap::new();
        let mut unique: Vec<String> = Vec::new();
        let positions: Vec<usize> = texts
            .iter()
            .map(|t| {
                *unique_index.entry(t.as_str()).or_insert_with(|| {
                    unique.push(t.clone());
                    unique.len() - 1
                })
            })
            .collect();

        let cache = self.cache.clone();
        let tokenizer = self.tokenizer.clone();
        let metrics = Arc::clone(&self.metrics);
        let (mut found, work) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = unique.iter().map(String::as_str).collect();
            let found = match &cache {
                Some(cache) => {
                    let (found, layers) = cache.get_many_counted(&refs);
                    metrics.cache(
                        layers.memory_hits,
                        layers.sqlite_hits,
                        layers.sqlite_misses,
                        refs.len(),
                    );
                    found
                }
                None => vec![None; refs.len()],
            };
            let missing: Vec<usize> = (0..unique.len()).filter(|&i| found[i].is_none()).collect();
            let miss_texts: Vec<String> = missing.iter().map(|&i| unique[i].clone()).collect();
            let miss_refs: Vec<&str> = miss_texts.iter().map(String::as_str).collect();
            let token_ids = tokenizer.tokenize(&miss_refs)?;
            anyhow::Ok((found, (missing, Work { texts: miss_texts, token_ids })))
        })
        .await
        .map_err(|e| Status::internal(format!("lookup task failed: {e}")))?
        .map_err(|e| Status::internal(format!("{e:#}")))?;

        let (missing, work) = work;
        let hit_unique: Vec<bool> = found.iter().map(Option::is_some).collect();
        if !missing.is_empty() {
            let computed = self
                .batcher
                .submit(work)
                .await
                .map_err(|_| Status::unavailable("the inference thread stopped"))?
                .map_err(Status::internal)?;
            for (i, vector) in missing.into_iter().zip(computed) {
                found[i] = Some(vector);
            }
        }
        let mut hits = 0;
        let mut vectors = Vec::with_capacity(texts.len());
        for &u in &positions {
            hits += usize::from(hit_unique[u]);
            let vector =
                found[u].clone().ok_or_else(|| Status::internal("a vector went missing"))?;
            vectors.push(vector);
        }
        Ok((vectors, hits))
    }
}

/// The client's name for logs and metrics: its key's name (see [`crate::auth`]), else
/// `anonymous` (a server without a key file).
fn client_name<T>(request: &Request<T>) -> Arc<str> {
    match request.extensions().get::<ClientName>() {
        Some(name) => Arc::clone(&name.0),
        None => Arc::from("anonymous"),
    }
}

/// The status code of an answer, for the metrics.
fn code_of<T>(answer: &Result<T, Status>) -> Code {
    answer.as_ref().map_or_else(Status::code, |_| Code::Ok)
}

#[tonic::async_trait]
impl Embedder for EmbedService {
    async fn embed(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let started = Instant::now();
        let client = client_name(&request);
        let texts = request.get_ref().texts.len();
        let answer = self.embed_request(request).await;
        let (code, took) = (code_of(&answer), started.elapsed());
        self.metrics.request("Embed", code, &client, texts, took);
        // The request log: who asked for how much, and how it went (never the token).
        tracing::info!(
            target: "embed_server::requests",
            "Embed client={client} texts={texts} status={code:?} ms={}",
            took.as_millis()
        );
        answer
    }

    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let started = Instant::now();
        let client = client_name(&request);
        let answer = self.info_request().await;
        self.metrics.request("Info", code_of(&answer), &client, 0, started.elapsed());
        answer
    }
}

impl EmbedService {
    async fn embed_request(
        &self,
        request: Request<EmbedRequest>,
    ) -> Result<Response<EmbedResponse>, Status> {
        let (_, extensions, request) = request.into_parts();
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.validate(&request)?;
        let n = request.texts.len();
        let _admitted = self.queue.admit(n).map_err(|queued| {
            tracing::debug!(texts = n, queued, "request refused: the queue is full");
            self.queue.refusal(n, queued, self.batcher.time_per_text())
        })?;
        // Admitted: the texts now count against the queue bound, so another request may be
        // decoded (see crate::admission).
        if let Some(permit) = extensions.get::<DecodePermit>() {
            permit.release();
        }
        let (vectors, hits) = self.embed_texts(request.texts).await?;
        self.hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.misses.fetch_add((n - hits) as u64, Ordering::Relaxed);
        let mut values = Vec::with_capacity(n * self.model.dim);
        for vector in &vectors {
            values.extend_from_slice(vector);
        }
        Ok(Response::new(EmbedResponse {
            dim: self.model.dim as u32,
            values,
            cache_hits: hits as u32,
        }))
    }

    async fn info_request(&self) -> Result<Response<InfoResponse>, Status> {
        let cache = self.cache.clone();
        let (entries, persistent, path) = tokio::task::spawn_blocking(move || match &cache {
            Some(cache) => (
                cache.entries(),
                cache.is_persistent(),
                cache.path().map(|p| p.display().to_string()).unwrap_or_default(),
            ),
            None => (0, false, String::new()),
        })
        .await
        .map_err(|e| Status::internal(format!("info task failed: {e}")))?;
        Ok(Response::new(InfoResponse {
            model_id: self.model.model_id.clone(),
            dim: self.model.dim as u32,
            max_seq_length: MAX_SEQ_LEN as u32,
            cache_entries: entries,
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            version: env!("CARGO_PKG_VERSION").to_string(),
            model_fingerprint: self.model.fingerprint.clone(),
            max_texts: self.limits.max_texts as u32,
            max_text_bytes: self.limits.max_text_bytes as u32,
            cache_path: path,
            cache_persistent: persistent,
            batches: self.batcher.batches(),
        }))
    }
}
