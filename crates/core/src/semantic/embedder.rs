//! The seam between the semantic engine and the embedding model.
//!
//! The engine only needs "texts in, unit vectors out"; the real implementation is the gRPC
//! client of embed-server, tests of callers can use fixed vectors.

/// Vectors for a list of texts, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    pub dim: usize,
    /// One L2-normalised vector per input text.
    pub vectors: Vec<Vec<f32>>,
    /// How many texts the server answered from its cache.
    pub cache_hits: usize,
}

/// Something that turns texts into sentence embeddings. Blocking, so the pipeline stays sync.
pub trait Embedder: Send + Sync {
    fn embed(&self, texts: &[String]) -> anyhow::Result<Embeddings>;

    /// What identifies the vectors: the model's id and a fingerprint of its weights (the
    /// embed-server's Info), or `None` when unknown. Results computed from the vectors are
    /// reused across jobs only under a known model ([`super::reuse`]).
    fn model_id(&self) -> Option<String> {
        None
    }
}
