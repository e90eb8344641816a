//! Semantic outliers: items that do not belong to their list, by `outlier_method`.
//!
//! - `typicality` (the default, [`super::typicality`]): a calibrated shortfall of the item's
//!   relatedness to its list and its category name, with WordNet where it resolves.
//! - `glosh` (the reference implementation's `detect_outliers_hdbscan`): for a list of at
//!   least [`MIN_ITEMS`] items, HDBSCAN* with `min_cluster_size = min_samples = 2` over the
//!   embeddings of the items as written, GLOSH score per item. Aggressive at 0.1 by design
//!   (see `shared/reference/README.md`); kept bit for bit for compatibility.
//!
//! Either way an item whose score is strictly greater than the threshold is an outlier.

use super::embedder::Embedder;
use super::hdbscan::{hdbscan, HdbscanParams};
use super::reuse::{Key, Kind, ReuseStore};
use super::typicality::{self, Relation};
use super::vectors::VectorTable;
use crate::params::{ClusterMethod, OutlierMethod};
use crate::wordnet::WordNet;

/// Lists shorter than this are never cleaned (every score would be 0 anyway with 3 items).
pub const MIN_ITEMS: usize = 3;

/// Outlier scores of a list's items and which of them exceed the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierAnalysis {
    /// One score per item, in input order (all 0 for lists below [`MIN_ITEMS`]).
    pub scores: Vec<f64>,
    /// Indices (ascending) of the items with score > threshold.
    pub outliers: Vec<usize>,
    /// `glosh` only: clusters HDBSCAN* found and the share of items it left as noise (0 for
    /// `typicality`).
    pub n_clusters: usize,
    pub noise_ratio: f64,
}

/// A list's outlier scores without a threshold: what the reuse store keeps (the flags of any
/// threshold follow from it, so jobs that differ only in `semantic_threshold` share it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    pub scores: Vec<f64>,
    pub n_clusters: usize,
    pub noise_ratio: f64,
}

impl Scored {
    /// The analysis at `threshold`: items with score > threshold are outliers (as
    /// [`Scoring::analyze_with`] flags them).
    pub fn at(self, threshold: f64) -> OutlierAnalysis {
        let outliers = (0..self.scores.len()).filter(|&i| self.scores[i] > threshold).collect();
        OutlierAnalysis {
            scores: self.scores,
            outliers,
            n_clusters: self.n_clusters,
            noise_ratio: self.noise_ratio,
        }
    }
}

impl From<OutlierAnalysis> for Scored {
    fn from(a: OutlierAnalysis) -> Self {
        Scored { scores: a.scores, n_clusters: a.n_clusters, noise_ratio: a.noise_ratio }
    }
}

/// Everything a list's scores depend on besides the model (which the store adds): the reuse
/// key's inputs.
#[derive(serde::Serialize)]
struct ScoreInputs<'a> {
    method: OutlierMethod,
    items: &'a [String],
    key: Option<&'a str>,
    /// WordNet's size when typicality consults it (another WordNet, other relations).
    wordnet: Option<usize>,
}

/// How one list is scored: the method, the threshold, and what the list is known by.
#[derive(Debug, Clone, Copy)]
pub struct Scoring<'a> {
    pub method: OutlierMethod,
    pub threshold: f64,
    /// WordNet, for `typicality`'s membership check (optional).
    pub wordnet: Option<&'a WordNet>,
}

impl<'a> Scoring<'a> {
    /// GLOSH at `threshold` (the reference implementation's method).
    pub fn glosh(threshold: f64) -> Self {
        Scoring { method: OutlierMethod::Glosh, threshold, wordnet: None }
    }

    /// The texts to embed to score a list with items `items` under the key `key` (besides
    /// the [`Self::shared_texts`]).
    pub fn texts(&self, items: &[String], key: Option<&str>) -> Vec<String> {
        match self.method {
            OutlierMethod::Glosh => items.to_vec(),
            OutlierMethod::Typicality => {
                let category = key.and_then(typicality::category_text);
                let mut out: Vec<String> = items.iter().map(|i| typicality::item_text(i)).collect();
                out.extend(category.map(|c| typicality::item_text(&c)));
                out
            }
        }
    }

    /// The reuse-store key of the scores of `items` under `key` (the threshold is not part
    /// of it: see [`Scored`]).
    pub fn reuse_key(&self, store: &ReuseStore, items: &[String], key: Option<&str>) -> Key {
        let wordnet = match self.method {
            OutlierMethod::Typicality => self.wordnet.map(WordNet::len),
            OutlierMethod::Glosh => None,
        };
        store.key(Kind::Outliers, &ScoreInputs { method: self.method, items, key, wordnet })
    }

    /// The texts whose vectors place `items` in the space the scores live in (the lint's
    /// list sums and "fits better in"): typicality's templated texts, glosh's items.
    pub fn sum_texts(&self, items: impl IntoIterator<Item = String>) -> Vec<String> {
        match self.method {
            OutlierMethod::Glosh => items.into_iter().collect(),
            OutlierMethod::Typicality => {
                items.into_iter().map(|i| typicality::item_text(&i)).collect()
            }
        }
    }

    /// The texts every list's scoring needs once per table (typicality's background).
    pub fn shared_texts(&self) -> Vec<String> {
        match self.method {
            OutlierMethod::Glosh => Vec::new(),
            OutlierMethod::Typicality => typicality::background_texts().collect(),
        }
    }

    /// Scores one list (its texts, see [`Self::texts`], must be in `table`).
    pub fn analyze(
        &self,
        items: &[String],
        key: Option<&str>,
        table: &VectorTable,
    ) -> anyhow::Result<OutlierAnalysis> {
        let background = self.background(table)?;
        self.analyze_with(items, key, table, background.as_deref())
    }

    /// What every list of a table shares: typicality's background mean (computed once per
    /// table by callers that score many lists; `None` for glosh).
    pub fn background(&self, table: &VectorTable) -> anyhow::Result<Option<Vec<f64>>> {
        if self.method != OutlierMethod::Typicality {
            return Ok(None);
        }
        let vectors = typicality::background_texts()
            .map(|t| lookup(table, &t))
            .collect::<anyhow::Result<Vec<&[f32]>>>()?;
        Ok(Some(typicality::background_vector(&vectors)))
    }

    /// [`Self::analyze`] with the table's [`Self::background`] already computed.
    pub fn analyze_with(
        &self,
        items: &[String],
        key: Option<&str>,
        table: &VectorTable,
        background: Option<&[f64]>,
    ) -> anyhow::Result<OutlierAnalysis> {
        if items.len() < MIN_ITEMS {
            return Ok(unscored(items.len()));
        }
        match (self.method, background) {
            (OutlierMethod::Typicality, Some(background)) => {
                let scores = self.typicality_scores(items, key, table, background)?;
                let outliers = (0..items.len()).filter(|&i| scores[i] > self.threshold).collect();
                Ok(OutlierAnalysis { scores, outliers, n_clusters: 0, noise_ratio: 0.0 })
            }
            (OutlierMethod::Typicality, None) => {
                self.analyze_with(items, key, table, self.background(table)?.as_deref())
            }
            (OutlierMethod::Glosh, _) => {
                analyze_vectors(&table.vectors_for(items)?, self.threshold)
            }
        }
    }

    fn typicality_scores(
        &self,
        items: &[String],
        key: Option<&str>,
        table: &VectorTable,
        background: &[f64],
    ) -> anyhow::Result<Vec<f64>> {
        let vectors = items
            .iter()
            .map(|i| lookup(table, &typicality::item_text(i)))
            .collect::<anyhow::Result<Vec<&[f32]>>>()?;
        let category = match key.and_then(typicality::category_text) {
            Some(c) => Some(lookup(table, &typicality::item_text(&c))?),
            None => None,
        };
        let relations: Option<Vec<Relation>> = match (self.wordnet, key) {
            (Some(wn), Some(key)) => Some(typicality::wordnet_relations(items, key, wn)),
            _ => None,
        };
        Ok(typicality::score_list(&vectors, background, category, relations.as_deref()))
    }
}

fn lookup<'t>(table: &'t VectorTable, text: &str) -> anyhow::Result<&'t [f32]> {
    table.get(text).ok_or_else(|| anyhow::anyhow!("no embedding for {text:?}"))
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

/// Result of cleaning one list.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleaned {
    /// The items that stay, in input order.
    pub kept: Vec<String>,
    /// The dropped items with their scores, in input order.
    pub removed: Vec<(String, f64)>,
}

impl Cleaned {
    /// Splits `items` by an analysis: flagged items are removed.
    pub fn split(items: &[String], analysis: &OutlierAnalysis) -> Cleaned {
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
        Cleaned { kept, removed }
    }
}

/// `semantic_clean` for a single list (under key `key`) with its own embedding call (for
/// callers outside the batched pipeline).
pub fn semantic_clean(
    items: &[String],
    key: Option<&str>,
    embedder: &dyn Embedder,
    scoring: &Scoring,
) -> anyhow::Result<Cleaned> {
    if items.len() < MIN_ITEMS {
        return Ok(Cleaned { kept: items.to_vec(), removed: Vec::new() });
    }
    let mut texts = scoring.texts(items, key);
    texts.extend(scoring.shared_texts());
    let table = VectorTable::build(embedder, texts)?;
    Ok(Cleaned::split(items, &scoring.analyze(items, key, &table)?))
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
        let cleaned = semantic_clean(&terms, None, &embedder, &Scoring::glosh(0.2)).unwrap();
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
        let cleaned = semantic_clean(&terms[..2], None, &embedder, &Scoring::glosh(0.0)).unwrap();
        assert_eq!(cleaned.kept, terms[..2].to_vec());
        assert!(cleaned.removed.is_empty());
        assert_eq!(embedder.calls(), 0);
    }
}
