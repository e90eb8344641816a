//! The gRPC `Embedder` service: validation, cache lookups, hand-off to the batcher.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use embed_api::proto::embedder_server::Embedder;
use embed_api::proto::{EmbedRequest, EmbedResponse, InfoRequest, InfoResponse, ModelInfo};
use tonic::{Code, Request, Response, Status};

use crate::admission::{DecodePermit, QueueBound};
use crate::auth::ClientName;
use crate::batcher::Work;
use crate::cache::{EmbeddingCache, Vector};
use crate::metrics::Metrics;
use crate::models::ServedModel;

/// Per-request limits (`--max-texts`, `--max-text-bytes`) and the bound on texts admitted
/// and not yet answered (`--max-queued-texts`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_texts: usize,
    pub max_text_bytes: usize,
    pub max_queued_texts: usize,
}

/// Shared state of the service.
pub struct EmbedService {
    /// The served models, the default first (see [`crate::models`]).
    models: Vec<ServedModel>,
    /// Their descriptions, for [`embed_api::models::resolve`] and `Info`.
    infos: Vec<ModelInfo>,
    limits: Limits,
    queue: QueueBound,
    metrics: Arc<Metrics>,
    requests: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl EmbedService {
    /// `models` must hold at least one model; the first is the default.
    pub fn new(models: Vec<ServedModel>, limits: Limits, metrics: Arc<Metrics>) -> Self {
        assert!(!models.is_empty(), "a server serves at least one model");
        let infos = models.iter().map(|m| m.info.clone()).collect();
        Self {
            models,
            infos,
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

    /// The served models (to stop their inference threads and close their caches).
    pub fn models(&self) -> &[ServedModel] {
        &self.models
    }

    /// The model a request names (empty or absent: the default); an unknown name is
    /// INVALID_ARGUMENT listing the models.
    fn model(&self, requested: Option<&str>) -> Result<&ServedModel, Status> {
        let requested = requested.unwrap_or("");
        match embed_api::models::resolve(&self.infos, requested) {
            Some(i) => Ok(&self.models[i]),
            None => Err(Status::invalid_argument(format!(
                "model {requested:?} is not served here; this server serves {} (omit the \
                 model field for the default, {}, or start a server with --model NAME=FOLDER)",
                embed_api::models::describe(&self.infos),
                self.infos[0].name
            ))),
        }
    }

    fn validate(&self, request: &EmbedRequest, model: &ServedModel) -> Result<(), Status> {
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
                "text {i} is {} bytes, the limit is {} (--max-text-bytes); the model reads only the first {} tokens anyway, so shorten it",
                text.len(),
                self.limits.max_text_bytes,
                model.info.max_seq_length
            )));
        }
        Ok(())
    }

    /// Embeds the texts: unique texts are looked up in the cache, the rest go to the batcher.
    async fn embed_texts(
        &self,
        model: &ServedModel,
        texts: Vec<String>,
    ) -> Result<(Vec<Vector>, usize), Status> {
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

        let cache = model.cache.clone();
        let tokenizer = model.tokenizer.clone();
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
            let computed = model
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
        let model = self.model(request.model.as_deref())?;
        self.validate(&request, model)?;
        let n = request.texts.len();
        let _admitted = self.queue.admit(n).map_err(|queued| {
            tracing::debug!(texts = n, queued, "request refused: the queue is full");
            self.queue.refusal(n, queued, model.batcher.time_per_text())
        })?;
        // Admitted: the texts now count against the queue bound, so another request may be
        // decoded (see crate::admission).
        if let Some(permit) = extensions.get::<DecodePermit>() {
            permit.release();
        }
        let (vectors, hits) = self.embed_texts(model, request.texts).await?;
        self.hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.misses.fetch_add((n - hits) as u64, Ordering::Relaxed);
        let mut values = Vec::with_capacity(n * model.info.dim as usize);
        for vector in &vectors {
            values.extend_from_slice(vector);
        }
        Ok(Response::new(EmbedResponse { dim: model.info.dim, values, cache_hits: hits as u32 }))
    }

    async fn info_request(&self) -> Result<Response<InfoResponse>, Status> {
        let caches: Vec<Option<Arc<EmbeddingCache>>> =
            self.models.iter().map(|m| m.cache.clone()).collect();
        let (entries, persistent, path) = tokio::task::spawn_blocking(move || {
            let entries: Vec<u64> =
                caches.iter().map(|c| c.as_ref().map_or(0, |c| c.entries())).collect();
            let (persistent, path) = match &caches[0] {
                Some(cache) => (
                    cache.is_persistent(),
                    cache.path().map(|p| p.display().to_string()).unwrap_or_default(),
                ),
                None => (false, String::new()),
            };
            (entries, persistent, path)
        })
        .await
        .map_err(|e| Status::internal(format!("info task failed: {e}")))?;
        let models: Vec<ModelInfo> = self
            .infos
            .iter()
            .zip(&entries)
            .map(|(info, &cache_entries)| ModelInfo { cache_entries, ..info.clone() })
            .collect();
        let default = &models[0];
        Ok(Response::new(InfoResponse {
            model_id: default.model_id.clone(),
            dim: default.dim,
            max_seq_length: default.max_seq_length,
            cache_entries: entries[0],
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            version: env!("CARGO_PKG_VERSION").to_string(),
            model_fingerprint: default.fingerprint.clone(),
            max_texts: self.limits.max_texts as u32,
            max_text_bytes: self.limits.max_text_bytes as u32,
            cache_path: path,
            cache_persistent: persistent,
            batches: self.models.iter().map(|m| m.batcher.batches()).sum(),
            models,
        }))
    }
}
