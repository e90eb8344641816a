//! Quality evaluation against the shared reference files: outlier detection on
//! `outlier_eval.json` and arrangement on `arrangement_eval.json` (see
//! `shared/reference/README.md` for how the reference numbers were made).

use super::arrange::{arrange_list, ArrangeParams, Arrangement, Group};
use super::embedder::Embedder;
use super::outliers::Scoring;
use super::vectors::VectorTable;
use crate::wordnet::WordNet;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// The thresholds `outlier_eval.json` reports.
pub const OUTLIER_THRESHOLDS: [&str; 4] = ["0.1", "0.2", "0.3", "0.5"];

#[derive(Debug, Deserialize)]
struct OutlierFile {
    reference_results: BTreeMap<String, ReferenceScore>,
    lists: Vec<OutlierList>,
}

#[derive(Debug, Deserialize)]
struct ReferenceScore {
    precision: f64,
    recall: f64,
    tp: usize,
    fp: usize,
    #[serde(rename = "fn")]
    fn_: usize,
}

#[derive(Debug, Deserialize)]
struct OutlierList {
    category_name: String,
    terms: Vec<String>,
    outlier_indices: Vec<usize>,
    reference_flagged: BTreeMap<String, Vec<usize>>,
}

/// Micro-averaged detection quality at one threshold, next to the reference's.
#[derive(Debug, Clone, Serialize)]
pub struct OutlierScore {
    pub threshold: String,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub reference_precision: f64,
    pub reference_recall: f64,
    /// The reference's counts (its precision and recall are rounded to 4 decimals).
    pub reference_tp: usize,
    pub reference_fp: usize,
    pub reference_fn: usize,
    /// Lists whose flagged set equals the reference implementation's exactly.
    pub lists_matching_reference: usize,
    pub lists: usize,
}

/// Runs outlier detection on every list of `outlier_eval.json` (terms embedded as written,
/// all lists in one embedding batch).
pub fn evaluate_outliers(path: &Path, embedder: &dyn Embedder) -> Result<Vec<OutlierScore>> {
    let file: OutlierFile = read_json(path)?;
    let table = VectorTable::build(embedder, file.lists.iter().flat_map(|l| l.terms.clone()))?;
    let mut scores = Vec::new();
    for t in OUTLIER_THRESHOLDS {
        let threshold: f64 = t.parse()?;
        let (mut tp, mut fp, mut fn_, mut matching) = (0, 0, 0, 0);
        for list in &file.lists {
            let flagged = Scoring::glosh(threshold).analyze(&list.terms, None, &table)?.outliers;
            let planted: HashSet<usize> = list.outlier_indices.iter().copied().collect();
            tp += flagged.iter().filter(|i| planted.contains(i)).count();
            fp += flagged.iter().filter(|i| !planted.contains(i)).count();
            fn_ += planted.iter().filter(|i| !flagged.contains(i)).count();
            matching += usize::from(list.reference_flagged.get(t) == Some(&flagged));
        }
        let reference = file.reference_results.get(t).context("reference result missing")?;
        scores.push(OutlierScore {
            threshold: t.to_string(),
            tp,
            fp,
            fn_,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            reference_precision: reference.precision,
            reference_recall: reference.recall,
            reference_tp: reference.tp,
            reference_fp: reference.fp,
            reference_fn: reference.fn_,
            lists_matching_reference: matching,
            lists: file.lists.len(),
        });
    }
    Ok(scores)
}

/// Detection quality of one method at one threshold, as `lint` sees the lists (each under its
/// category name as the key).
#[derive(Debug, Clone, Serialize)]
pub struct MethodScore {
    pub threshold: f64,
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Ordinary (not planted) items flagged, as a share of all ordinary items.
    pub ordinary_flagged: f64,
}

/// The thresholds of the README's table: 0.05 to 0.5 in steps of 0.05.
pub fn sweep_thresholds() -> Vec<f64> {
    (1..=10).map(|i| f64::from(i) * 0.05).map(|t| (t * 100.0).round() / 100.0).collect()
}

/// Scores every list of `outlier_eval.json` once with `method` (WordNet when given) and counts
/// the planted and ordinary items flagged at each threshold.
pub fn evaluate_method(
    path: &Path,
    embedder: &dyn Embedder,
    method: crate::params::OutlierMethod,
    wordnet: Option<&WordNet>,
    thresholds: &[f64],
) -> Result<Vec<MethodScore>> {
    let file: OutlierFile = read_json(path)?;
    let scoring = Scoring { method, threshold: f64::INFINITY, wordnet };
    let texts = file.lists.iter().flat_map(|l| scoring.texts(&l.terms, Some(&l.category_name)));
    let texts = texts.chain(scoring.shared_texts());
    let table = VectorTable::build(embedder, texts)?;
    let mut scored = Vec::new();
    let background = scoring.background(&table)?;
    for list in &file.lists {
        let key = Some(list.category_name.as_str());
        let scores = scoring.analyze_with(&list.terms, key, &table, background.as_deref())?.scores;
        let planted: HashSet<usize> = list.outlier_indices.iter().copied().collect();
        scored.extend(scores.into_iter().enumerate().map(|(i, s)| (s, planted.contains(&i))));
    }
    let ordinary = scored.iter().filter(|(_, p)| !p).count();
    Ok(thresholds
        .iter()
        .map(|&threshold| {
            let count = |planted: bool| {
                scored.iter().filter(|(s, p)| *p == planted && *s > threshold).count()
            };
            let (tp, fp) = (count(true), count(false));
            let fn_ = scored.iter().filter(|(_, p)| *p).count() - tp;
            let (precision, recall) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            let ordinary_flagged = ratio(fp, ordinary);
            MethodScore { threshold, tp, fp, fn_, precision, recall, f1, ordinary_flagged }
        })
        .collect())
}

#[derive(Debug, Deserialize)]
struct ArrangementFile {
    reference_results: ArrangementReference,
    lists: Vec<ArrangementList>,
}

#[derive(Debug, Deserialize)]
struct ArrangementReference {
    mean_ari_singletons: f64,
    mean_name_is_hypernym: f64,
    pooled_name_is_hypernym: f64,
}

#[derive(Debug, Deserialize)]
struct ArrangementList {
    terms: Vec<String>,
    truth: Vec<String>,
}

/// One list's arrangement quality.
#[derive(Debug, Clone, Serialize)]
pub struct ListQuality {
    pub items: usize,
    pub groups: usize,
    pub leftovers: usize,
    /// ARI against the truth, every leftover its own cluster (the primary measure).
    pub ari_singletons: f64,
    /// Share of named groups whose name is a WordNet hypernym of at least half the members.
    pub name_is_hypernym: f64,
    /// Group names with member counts and whether the name passed the hypernym check.
    pub names: Vec<(String, usize, bool)>,
}

/// Arrangement quality over all lists, next to the reference's.
#[derive(Debug, Clone, Serialize)]
pub struct ArrangementQuality {
    pub lists: Vec<ListQuality>,
    pub mean_ari_singletons: f64,
    pub mean_name_is_hypernym: f64,
    pub pooled_name_is_hypernym: f64,
    pub reference_mean_ari_singletons: f64,
    pub reference_mean_name_is_hypernym: f64,
    pub reference_pooled_name_is_hypernym: f64,
}

/// Arranges every list of `arrangement_eval.json` and scores it as the reference was scored.
pub fn evaluate_arrangement(
    path: &Path,
    embedder: &dyn Embedder,
    wordnet: &WordNet,
    params: &ArrangeParams,
) -> Result<ArrangementQuality> {
    let file: ArrangementFile = read_json(path)?;
    let mut lists = Vec::new();
    let (mut named, mut passed) = (0usize, 0usize);
    for list in &file.lists {
        let (arrangement, _) = arrange_list(&list.terms, embedder, Some(wordnet), None, params)?;
        let truth = labels_of(&list.truth);
        let predicted = predicted_labels(&list.terms, &arrangement);
        let mut names = Vec::new();
        for g in named_groups(&arrangement) {
            let members = g.all_items();
            let ok = name_is_hypernym(wordnet, &g.name, &members);
            names.push((g.name.clone(), members.len(), ok));
        }
        named += names.len();
        passed += names.iter().filter(|n| n.2).count();
        let share = if names.is_empty() {
            0.0
        } else {
            names.iter().filter(|n| n.2).count() as f64 / names.len() as f64
        };
        lists.push(ListQuality {
            items: list.terms.len(),
            groups: arrangement.groups.len(),
            leftovers: arrangement.leftovers.len(),
            ari_singletons: adjusted_rand_index(&truth, &predicted),
            name_is_hypernym: share,
            names,
        });
    }
    let with_groups: Vec<&ListQuality> = lists.iter().filter(|l| !l.names.is_empty()).collect();
    Ok(ArrangementQuality {
        mean_ari_singletons: mean(lists.iter().map(|l| l.ari_singletons)),
        mean_name_is_hypernym: mean(with_groups.iter().map(|l| l.name_is_hypernym)),
        pooled_name_is_hypernym: ratio(passed, named),
        reference_mean_ari_singletons: file.reference_results.mean_ari_singletons,
        reference_mean_name_is_hypernym: file.reference_results.mean_name_is_hypernym,
        reference_pooled_name_is_hypernym: file.reference_results.pooled_name_is_hypernym,
        lists,
    })
}

/// The reference's name check: the name, without a trailing ` (...)` and a trailing
/// ` <number>`, has noun senses, and for at least half of the members some noun sense equals
/// one of them or has one among its transitive (instance) hypernyms.
pub fn name_is_hypernym(wordnet: &WordNet, name: &str, members: &[String]) -> bool {
    let base = base_name(name);
    let senses: HashSet<u32> = wordnet.synsets_for(&base).iter().map(|s| s.offset).collect();
    if senses.is_empty() || members.is_empty() {
        return false;
    }
    let covered = members
        .iter()
        .filter(|m| {
            wordnet.synsets_for(m).iter().any(|s| {
                let mut stack = vec![*s];
                let mut seen = HashSet::new();
                while let Some(cur) = stack.pop() {
                    if senses.contains(&cur.offset) {
                        return true;
                    }
                    for h in wordnet.hypernyms(cur) {
                        if seen.insert(h.offset) {
                            stack.push(h);
                        }
                    }
                }
                false
            })
        })
        .count();
    2 * covered >= members.len()
}

/// `name` without a trailing ` (...)` suffix, then without a trailing ` <number>` counter.
fn base_name(name: &str) -> String {
    let mut base = name.trim().to_string();
    if base.ends_with(')') {
        if let Some(open) = base.rfind(" (") {
            base.truncate(open);
        }
    }
    if let Some((head, last)) = base.rsplit_once(' ') {
        if !last.is_empty() && last.chars().all(|c| c.is_ascii_digit()) {
            base = head.to_string();
        }
    }
    base
}

/// Groups that carry a real name: every group and sub-group except "Other" bins.
fn named_groups(arrangement: &Arrangement) -> Vec<&Group> {
    fn walk<'a>(g: &'a Group, out: &mut Vec<&'a Group>) {
        if g.source != super::naming::NameSource::Bin {
            out.push(g);
        }
        for c in &g.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    for g in &arrangement.groups {
        walk(g, &mut out);
    }
    out
}

/// Cluster label of each item: its deepest group; top-level leftovers are singletons.
pub fn predicted_labels(items: &[String], arrangement: &Arrangement) -> Vec<usize> {
    fn walk(g: &Group, next: &mut usize, out: &mut HashMap<String, usize>) {
        let own = *next;
        *next += 1;
        for i in &g.items {
            out.insert(i.clone(), own);
        }
        for c in &g.children {
            walk(c, next, out);
        }
    }
    let mut map = HashMap::new();
    let mut next = 0;
    for g in &arrangement.groups {
        walk(g, &mut next, &mut map);
    }
    items
        .iter()
        .map(|i| {
            *map.entry(i.clone()).or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// Dense integer labels for string labels (first-seen order).
fn labels_of(names: &[String]) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    names
        .iter()
        .map(|n| {
            let next = ids.len();
            *ids.entry(n.as_str()).or_insert(next)
        })
        .collect()
}

/// Adjusted Rand index of two labelings of the same items (sklearn's `adjusted_rand_score`).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let pairs = |x: f64| x * (x - 1.0) / 2.0;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let mut rows: HashMap<usize, f64> = HashMap::new();
    let mut cols: HashMap<usize, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *rows.entry(x).or_default() += 1.0;
        *cols.entry(y).or_default() += 1.0;
    }
    let index: f64 = table.values().map(|&v| pairs(v)).sum();
    let sum_rows: f64 = rows.values().map(|&v| pairs(v)).sum();
    let sum_cols: f64 = cols.values().map(|&v| pairs(v)).sum();
    let expected = if n > 1.0 { sum_rows * sum_cols / pairs(n) } else { 0.0 };
    let max = (sum_rows + sum_cols) / 2.0;
    if (max - expected).abs() < f64::EPSILON {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 {
        0.0
    } else {
        sum / count as f64
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ari_matches_sklearn() {
        assert!((adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]) - 1.0).abs() < 1e-12);
        // sklearn.metrics.adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2])
        let v = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]);
        assert!((v - 0.571_428_571_428_571_5).abs() < 1e-12, "{v}");
        // adjusted_rand_score([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 4, 5]) == 0
        assert!(adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 1, 2, 3, 4, 5]).abs() < 1e-12);
    }

    #[test]
    fn base_names_drop_suffix_and_counter() {
        assert_eq!(base_name("measuring instrument (counter tube)"), "measuring instrument");
        assert_eq!(base_name("wine 2"), "wine");
        assert_eq!(base_name("wine"), "wine");
    }

    #[test]
    fn hypernym_check_follows_the_reference_method() {
        let wn = crate::test_support::wn();
        let snakes: Vec<String> = ["python", "tiger snake", "glossy snake", "bread"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(name_is_hypernym(wn, "snake", &snakes));
        assert!(name_is_hypernym(wn, "snake (python)", &snakes));
        assert!(!name_is_hypernym(wn, "bread", &snakes));
        assert!(!name_is_hypernym(wn, "zzzz", &snakes));
    }
}
