//! Embeddings looked up by text, fetched from the [`Embedder`] in as few calls as possible.
//!
//! The pipeline collects every text of a tree first and embeds them together (one server call
//! for the whole tree is ideal), then cleaning and arrangement read vectors from this table.

use super::embedder::Embedder;
use std::collections::HashMap;

/// Unique texts handed to the embedder per call: a whole tree (Tencent: ~9k texts) in one.
/// The gRPC client splits a call into requests within the server's limits and keeps several
/// in flight, so the server batches them together.
pub const TEXTS_PER_CALL: usize = 65_536;

/// Text -> unit vector, plus what it cost to fill.
#[derive(Debug, Clone, Default)]
pub struct VectorTable {
    map: HashMap<String, Vec<f32>>,
    /// Unique texts requested from the embedder so far.
    pub texts_embedded: usize,
    /// How many of those the server answered from its cache.
    pub cache_hits: usize,
    /// Embedder calls made.
    pub calls: usize,
}

impl VectorTable {
    /// Embeds the unique texts of `texts`.
    pub fn build(
        embedder: &dyn Embedder,
        texts: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Self> {
        let mut table = Self::default();
        table.add(embedder, texts)?;
        Ok(table)
    }

    /// Embeds the texts not yet in the table (first-seen order, so requests are deterministic).
    pub fn add(
        &mut self,
        embedder: &dyn Embedder,
        texts: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<()> {
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<String> = texts
            .into_iter()
            .filter(|t| !self.map.contains_key(t) && seen.insert(t.clone()))
            .collect();
        for chunk in missing.chunks(TEXTS_PER_CALL) {
            let got = embedder.embed(chunk)?;
            anyhow::ensure!(
                got.vectors.len() == chunk.len(),
                "the embedding service returned {} vectors for {} texts",
                got.vectors.len(),
                chunk.len()
            );
            if let Some(bad) = got.vectors.iter().find(|v| v.len() != got.dim) {
                anyhow::bail!(
                    "the embedding service returned a {}-dimensional vector, expected {}",
                    bad.len(),
                    got.dim
                );
            }
            self.calls += 1;
            self.texts_embedded += chunk.len();
            self.cache_hits += got.cache_hits;
            self.map.extend(chunk.iter().cloned().zip(got.vectors));
        }
        Ok(())
    }

    /// The vector of one text, if embedded.
    pub fn get(&self, text: &str) -> Option<&[f32]> {
        self.map.get(text).map(Vec::as_slice)
    }

    /// Vectors of `texts` in order; every text must have been added before.
    pub fn vectors_for(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        texts
            .iter()
            .map(|t| {
                self.get(t).map(<[f32]>::to_vec).ok_or_else(|| {
                    anyhow::anyhow!("internal error: no embedding was fetched for {t:?}")
                })
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::semantic::embedder::Embeddings;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Fixed vectors by text, for unit tests of callers. Unknown texts are an error.
    pub struct FixedEmbedder {
        vectors: HashMap<String, Vec<f32>>,
        calls: AtomicUsize,
    }

    impl FixedEmbedder {
        pub fn new(pairs: impl IntoIterator<Item = (String, Vec<f32>)>) -> Self {
            Self { vectors: pairs.into_iter().collect(), calls: AtomicUsize::new(0) }
        }

        pub fn calls(&self) -> usize {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Embedder for FixedEmbedder {
        fn embed(&self, texts: &[String]) -> anyhow::Result<Embeddings> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let vectors = texts
                .iter()
                .map(|t| {
                    self.vectors
                        .get(t)
                        .cloned()
                        .ok_or_else(|| anyhow::anyhow!("no vector for {t:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let dim = vectors.first().map_or(0, Vec::len);
            Ok(Embeddings { dim, vectors, cache_hits: 0 })
        }
    }

    #[test]
    fn duplicates_and_known_texts_are_embedded_once() {
        let embedder = FixedEmbedder::new([
            ("a".to_string(), vec![1.0, 0.0]),
            ("b".to_string(), vec![0.0, 1.0]),
        ]);
        let mut table = VectorTable::build(&embedder, ["a", "b", "a"].map(String::from)).unwrap();
        assert_eq!((table.calls, table.texts_embedded, table.len()), (1, 2, 2));
        table.add(&embedder, ["b".to_string()]).unwrap();
        assert_eq!(table.calls, 1, "nothing new, no call");
        let v = table.vectors_for(&["b".into(), "a".into()]).unwrap();
        assert_eq!(v, vec![vec![0.0, 1.0], vec![1.0, 0.0]]);
        assert!(table.vectors_for(&["c".into()]).is_err());
    }
}
