//! Semantic outliers: items that do not belong to their list, by GLOSH score.
//!
//! Method (the reference implementation's `detect_outliers_hdbscan`): for a list of at least
//! [`MIN_ITEMS`] items, HDBSCAN* with `min_cluster_size = min_samples = 2` over the embeddings
//! of the items as written; an item whose GLOSH score is strictly greater than the threshold is
//! an outlier. GLOSH at 0.1 is aggressive by design (see `shared/reference/README.md`).

use super::embedder::Embedder;
use super::hdbscan::{hdbscan, HdbscanParams};
use super::vectors::VectorTable;
use crate::params::ClusterMethod;

/// Lists shorter than this are never cleaned (every score would be 0 anyway with 3 items).
pub const MIN_ITEMS: usize = 3;

/// GLOSH scores of a list's items and which of them exceed the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierAnalysis {
    /// One score per item, in input order (all 0 for lists below [`MIN_ITEMS`]).
    pub scores: Vec<f64>,
    /// Indices (ascending) of the items with score > threshold.
    pub outliers: Vec<usize>,
    /// Clusters HDBSCAN* found and the share of items it left as noise.
    pub n_clusters: usize,
    pub noise_ratio: f64,
}

/// The HDBSCAN* settings of outlier scoring (min cluster size = min samples = 2).
fn cleaning_params() -> HdbscanParams {
    HdbscanParams { min_cluster_size: 2, min_samples: Some(2), selection: ClusterMethod::Eom }
}

/// The analysis of a list too short to score: all scores 0, nothing flagged.
fn unscored(n: usize) -> OutlierAnalysis {
    OutlierAnalysis {
        scores: vec![0.0; n],
        outliers: Vec::new(),
        n_clusters: 0,
        noise_ratio: if n == 0 { 0.0 } else { 1.0 },
    }
}

/// GLOSH outlier scores of `vectors` with the cleaning settings.
pub fn glosh_scores(vectors: &[Vec<f32>]) -> anyhow::Result<Vec<f64>> {
    Ok(analyze_vectors(vectors, f64::INFINITY)?.scores)
}

/// Scores the vectors of one list and flags those above `threshold`.
pub fn analyze_vectors(vectors: &[Vec<f32>], threshold: f64) -> anyhow::Result<OutlierAnalysis> {
    let n = vectors.len();
    if n < MIN_ITEMS {
        return Ok(unscored(n));
    }
    let result = hdbscan(vectors, &cleaning_params())?;
    let outliers = (0..n).filter(|&i| result.outlier_scores[i] > threshold).collect();
    let noise = result.labels.iter().filter(|l| l.is_none()).count();
    Ok(OutlierAnalysis {
        scores: result.outlier_scores,
        outliers,
        n_clusters: result.n_clusters,
        noise_ratio: noise as f64 / n as f64,
    })
}

/// Scores one list of items, embedding them as written.
pub fn analyze_items(
    items: &[String],
    table: &VectorTable,
    threshold: f64,
) -> anyhow::Result<OutlierAnalysis> {
    if items.len() < MIN_ITEMS {
        return Ok(unscored(items.len()));
    }
    analyze_vectors(&table.vectors_for(items)?, threshold)
}

/// Result of cleaning one list.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The items that stay, in input order.
    pub kept: Vec<String>,
    /// The dropped items with their scores, in input order.
    pub removed: Vec<(String, f64)>,
}

/// `semantic_clean` for one list: drops the items whose GLOSH score exceeds `threshold`.
/// Lists with fewer than [`MIN_ITEMS`] items come back unchanged.
pub fn clean_items(
    items: &[String],
    table: &VectorTable,
    threshold: f64,
) -> anyhow::Result<Cleaned> {
    let analysis = analyze_items(items, table, threshold)?;
    let mut kept = Vec::with_capacity(items.len());
    let mut removed = Vec::new();
    let mut flagged = analysis.outliers.iter().peekable();
    for (i, item) in items.iter().enumerate() {
        if flagged.peek() == Some(&&i) {
            flagged.next();
            removed.push((item.clone(), analysis.scores[i]));
        } else {
            kept.push(item.clone());
        }
    }
    Ok(Cleaned { kept, removed })
}

/// `semantic_clean` for a single list with its own embedding call (for callers outside the
/// batched pipeline).
pub fn semantic_clean(
    items: &[String],
    embedder: &dyn Embedder,
    threshold: f64,
) -> anyhow::Result<Cleaned> {
    if items.len() < MIN_ITEMS {
        return Ok(Cleaned { kept: items.to_vec(), removed: Vec::new() });
    }
    let table = VectorTable::build(embedder, items.iter().cloned())?;
    clean_items(items, &table, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::testdata;
    use crate::semantic::vectors::tests::FixedEmbedder;

    /// The first reference case with flagged items, as a fixed embedder.
    fn reference_case() -> (Vec<String>, FixedEmbedder, serde_json::Value) {
        let data = testdata::load("glosh_reference.json");
        let case = data["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "case_016_European")
            .unwrap()
            .clone();
        let terms: Vec<String> =
            case["terms"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().into()).collect();
        let vectors = testdata::vectors(&case["embeddings_f32_b64"]);
        let embedder = FixedEmbedder::new(terms.iter().cloned().zip(vectors));
        (terms, embedder, case)
    }

    #[test]
    fn clean_drops_exactly_the_flagged_items() {
        let (terms, embedder, case) = reference_case();
        let flagged: Vec<usize> = case["flagged"]["0.2"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert!(!flagged.is_empty());
        let cleaned = semantic_clean(&terms, &embedder, 0.2).unwrap();
        let removed: Vec<&str> = cleaned.removed.iter().map(|(t, _)| t.as_str()).collect();
        let expected: Vec<&str> = flagged.iter().map(|&i| terms[i].as_str()).collect();
        assert_eq!(removed, expected);
        assert_eq!(cleaned.kept.len() + removed.len(), terms.len());
        assert!(cleaned.removed.iter().all(|(_, s)| *s > 0.2));
        assert_eq!(embedder.calls(), 1, "one embedding call per list");
    }

    #[test]
    fn short_lists_are_left_alone_without_embedding() {
        let (terms, embedder, _) = reference_case();
        let cleaned = semantic_clean(&terms[..2], &embedder, 0.0).unwrap();
        assert_eq!(cleaned.kept, terms[..2].to_vec());
        assert!(cleaned.removed.is_empty());
        assert_eq!(embedder.calls(), 0);
    }
}
