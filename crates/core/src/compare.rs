//! Comparing two skeletons: do they hold the same items, and do they group them alike?
//!
//! - **Jaccard** of the item sets: |A ∩ B| / |A ∪ B| (1.0 for two empty skeletons).
//! - **Adjusted Rand index** of the partitions item -> category path, over the common items:
//!   1.0 for the same grouping (whatever the category names), about 0 for unrelated groupings,
//!   negative for worse than chance. Computed like scikit-learn's `adjusted_rand_score`.
//!
//! Items are compared trimmed and lower-cased. An item listed in several categories counts
//! in the first one, in document order. The category path of an item is the chain of
//! category names below the top node.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::taxonomy::TaxonomyNode;

/// The result of comparing skeleton A with skeleton B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Distinct items in A.
    pub items_a: usize,
    /// Distinct items in B.
    pub items_b: usize,
    /// Items in both.
    pub common_items: usize,
    /// Items in either.
    pub union_items: usize,
    pub only_in_a: usize,
    pub only_in_b: usize,
    /// Distinct category paths holding the common items, in A and in B.
    pub categories_a: usize,
    pub categories_b: usize,
    /// |A ∩ B| / |A ∪ B|.
    pub jaccard: f64,
    /// Adjusted Rand index of item -> category path over the common items; `None` when there
    /// are no common items (no grouping to compare: "n/a", not a perfect 1.0).
    pub ari: Option<f64>,
}

/// Compares two trees (see the module docs).
pub fn compare_trees(a: &TaxonomyNode, b: &TaxonomyNode) -> Comparison {
    let pa = item_paths(a);
    let pb = item_paths(b);
    let common: Vec<&String> = pa.keys().filter(|k| pb.contains_key(*k)).collect();
    let union_items = pa.len() + pb.len() - common.len();
    let jaccard = if union_items == 0 { 1.0 } else { common.len() as f64 / union_items as f64 };
    let labels_a = dense_labels(common.iter().map(|k| pa[*k].as_str()));
    let labels_b = dense_labels(common.iter().map(|k| pb[*k].as_str()));
    Comparison {
        items_a: pa.len(),
        items_b: pb.len(),
        common_items: common.len(),
        union_items,
        only_in_a: pa.len() - common.len(),
        only_in_b: pb.len() - common.len(),
        categories_a: labels_a.iter().max().map_or(0, |m| m + 1),
        categories_b: labels_b.iter().max().map_or(0, |m| m + 1),
        jaccard,
        ari: (!common.is_empty()).then(|| adjusted_rand_index(&labels_a, &labels_b)),
    }
}

/// Reads two skeleton files (YAML or the tool's JSONL) and compares them.
pub fn compare_files(a: &Path, b: &Path) -> Result<Comparison> {
    let ta = crate::skeleton::read_skeleton(a)?;
    let tb = crate::skeleton::read_skeleton(b)?;
    Ok(compare_trees(&ta.tree, &tb.tree))
}

/// Normalised item -> category path (names below the top node joined by ` > `), first
/// occurrence in document order. A `BTreeMap` keeps the comparison deterministic.
pub fn item_paths(root: &TaxonomyNode) -> BTreeMap<String, String> {
    fn go(node: &TaxonomyNode, path: &mut Vec<String>, out: &mut BTreeMap<String, String>) {
        let joined = path.join(" > ");
        for item in &node.items {
            let key = item.trim().to_lowercase();
            if !key.is_empty() {
                out.entry(key).or_insert_with(|| joined.clone());
            }
        }
        for c in &node.children {
            path.push(c.name.clone());
            go(c, path, out);
            path.pop();
        }
    }
    let mut out = BTreeMap::new();
    go(root, &mut Vec::new(), &mut out);
    out
}

/// Cluster labels as 0, 1, 2, ... in order of first appearance.
fn dense_labels<'s>(labels: impl Iterator<Item = &'s str>) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    labels
        .map(|l| {
            let next = ids.len();
            *ids.entry(l).or_insert(next)
        })
        .collect()
}

/// Adjusted Rand index of two labelings of the same items (equal lengths), as scikit-learn's
/// `adjusted_rand_score` computes it from the pair confusion matrix: 1.0 when the two agree
/// on every pair (this includes fewer than two items).
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len(), "labelings of the same items");
    let n = a.len() as i128;
    let mut cells: HashMap<(usize, usize), i128> = HashMap::new();
    let mut rows: HashMap<usize, i128> = HashMap::new();
    let mut cols: HashMap<usize, i128> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *cells.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let sum_squares: i128 = cells.values().map(|v| v * v).sum();
    let row_squares: i128 = rows.values().map(|v| v * v).sum();
    let col_squares: i128 = cols.values().map(|v| v * v).sum();
    // Ordered pairs: together in both (tp), only in A's grouping (fn), only in B's (fp), neither (tn).
    let tp = sum_squares - n;
    let fp = col_squares - sum_squares;
    let fn_ = row_squares - sum_squares;
    let tn = n * n - fp - fn_ - sum_squares;
    if fn_ == 0 && fp == 0 {
        return 1.0;
    }
    let num = 2.0 * (tp as f64 * tn as f64 - fn_ as f64 * fp as f64);
    let den = (tp + fn_) as f64 * (fn_ + tn) as f64 + (tp + fp) as f64 * (fp + tn) as f64;
    num / den
}

/// A Markdown report of a comparison of files `a` and `b`.
pub fn to_markdown(c: &Comparison, a: &str, b: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| | A | B |");
    let _ = writeln!(s, "|---|---:|---:|");
    let _ = writeln!(s, "| file | `{a}` | `{b}` |");
    let _ = writeln!(s, "| items | {} | {} |", c.items_a, c.items_b);
    let _ = writeln!(s, "| only in this file | {} | {} |", c.only_in_a, c.only_in_b);
    let _ =
        writeln!(s, "| categories of the common items | {} | {} |", c.categories_a, c.categories_b);
    let _ = writeln!(s);
    let _ = writeln!(s, "| measure | value |");
    let _ = writeln!(s, "|---|---:|");
    let _ = writeln!(s, "| common items | {} of {} |", c.common_items, c.union_items);
    let _ = writeln!(s, "| Jaccard (item sets) | {:.4} |", c.jaccard);
    let ari = c.ari.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
    let _ = writeln!(s, "| adjusted Rand index (category paths of common items) | {ari} |");
    s
}

/// The comparison as JSON, with the file names.
pub fn to_json(c: &Comparison, a: &str, b: &str) -> Result<String> {
    #[derive(Serialize)]
    struct Out<'c> {
        a: &'c str,
        b: &'c str,
        #[serde(flatten)]
        comparison: &'c Comparison,
    }
    Ok(serde_json::to_string_pretty(&Out { a, b, comparison: c })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-12
    }

    #[test]
    fn ari_matches_scikit_learn() {
        // The examples of sklearn.metrics.adjusted_rand_score's documentation.
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 1]), 1.0);
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0, "permuted labels");
        assert!(close(adjusted_rand_index(&[0, 0, 1, 2], &[0, 0, 1, 1]), 4.0 / 7.0));
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]), 0.5714285714285714));
        assert_eq!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
        assert!(close(adjusted_rand_index(&[0, 0, 1, 1], &[0, 1, 0, 1]), -0.5));
        // Degenerate sizes agree on every pair.
        assert_eq!(adjusted_rand_index(&[], &[]), 1.0);
        assert_eq!(adjusted_rand_index(&[3], &[7]), 1.0);
        // A larger permuted case: relabelling both sides changes nothing.
        let a: Vec<usize> = (0..300).map(|i| (i * 7 + i / 13) % 11).collect();
        let b: Vec<usize> = (0..300).map(|i| (i * 5 + i / 17) % 9).collect();
        let pa: Vec<usize> = a.iter().map(|x| (x * 4 + 3) % 11).collect();
        let pb: Vec<usize> = b.iter().map(|x| 100 - x).collect();
        assert!(close(adjusted_rand_index(&a, &b), adjusted_rand_index(&pa, &pb)));
        assert!(adjusted_rand_index(&a, &b).abs() < 0.1, "unrelated groupings score near 0");
    }

    fn tree(groups: &[(&str, &[&str])]) -> TaxonomyNode {
        let mut root = TaxonomyNode::new("root");
        for (name, items) in groups {
            root.children.push(TaxonomyNode::list(*name, items.iter().copied()));
        }
        root
    }

    #[test]
    fn compares_item_sets_and_groupings() {
        let a = tree(&[("Dogs", &["beagle", "pug"]), ("Cats", &["tabby", "manx"])]);
        let same = compare_trees(&a, &a);
        assert_eq!((same.jaccard, same.ari, same.common_items), (1.0, Some(1.0), 4));
        // Renamed categories, same grouping, different case: still 1.0 / 1.0.
        let renamed = tree(&[("Felines", &["Manx", "TABBY"]), ("Canines", &["pug", "beagle"])]);
        let c = compare_trees(&a, &renamed);
        assert_eq!((c.jaccard, c.ari), (1.0, Some(1.0)));
        // One item swapped, one extra item.
        let b = tree(&[("Dogs", &["beagle", "pug", "tabby"]), ("Cats", &["manx", "lynx"])]);
        let c = compare_trees(&a, &b);
        assert_eq!((c.items_a, c.items_b, c.common_items, c.union_items), (4, 5, 4, 5));
        assert_eq!((c.only_in_a, c.only_in_b), (0, 1));
        assert!(close(c.jaccard, 0.8));
        // Over the common items: A = [beagle, manx, pug, tabby] -> [D, C, D, C]; B -> [D, C, D, D].
        let ari = c.ari.unwrap();
        assert!(close(ari, adjusted_rand_index(&[0, 1, 0, 1], &[0, 1, 0, 0])));
        assert!(ari < 1.0);
        assert_eq!((c.categories_a, c.categories_b), (2, 2));
    }

    #[test]
    fn nested_paths_and_duplicates() {
        let mut a = TaxonomyNode::new("root");
        let mut animal = TaxonomyNode::new("Animal");
        animal.children.push(TaxonomyNode::list("Dog", ["pug"]));
        animal.children.push(TaxonomyNode::list("Other", ["pug", "newt"]));
        a.children.push(animal);
        let paths = item_paths(&a);
        assert_eq!(paths["pug"], "Animal > Dog", "first occurrence wins");
        assert_eq!(paths["newt"], "Animal > Other");
        let empty = TaxonomyNode::new("root");
        let c = compare_trees(&empty, &empty);
        assert_eq!((c.jaccard, c.ari), (1.0, None), "nothing in common: no ARI");
    }

    #[test]
    fn reports() {
        let a = tree(&[("Dogs", &["beagle", "pug"])]);
        let c = compare_trees(&a, &a);
        let md = to_markdown(&c, "a.yaml", "b.yaml");
        assert!(md.contains("| Jaccard (item sets) | 1.0000 |"), "{md}");
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&c, "a.yaml", "b.yaml").unwrap()).unwrap();
        assert_eq!(json["ari"], 1.0);
        assert_eq!(json["a"], "a.yaml");
        assert_eq!(json["common_items"], 2);
    }

    #[test]
    fn no_common_item_has_no_ari() {
        let a = tree(&[("Dogs", &["beagle", "pug"]), ("Cats", &["tabby"])]);
        let b = tree(&[("Birds", &["robin", "owl"])]);
        let c = compare_trees(&a, &b);
        assert_eq!((c.common_items, c.jaccard, c.ari), (0, 0.0, None));
        let md = to_markdown(&c, "a.yaml", "b.yaml");
        assert!(
            md.contains("| adjusted Rand index (category paths of common items) | n/a |"),
            "{md}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&to_json(&c, "a.yaml", "b.yaml").unwrap()).unwrap();
        assert!(json["ari"].is_null(), "{json}");
    }
}
