//! Semantic lint of a whole skeleton: the outliers of every item list, and cleaning them out.

use super::embedder::Embedder;
use super::hdbscan::check_list_size;
use super::outliers::{analyze_items, MIN_ITEMS};
use super::vectors::VectorTable;
use crate::taxonomy::TaxonomyNode;
use serde::Serialize;
use std::collections::HashSet;

/// One flagged item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flagged {
    pub item: String,
    pub score: f64,
}

/// The outliers of one item list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListReport {
    /// Category names from the top of the file down to the list's category.
    pub path: Vec<String>,
    /// Items in the list.
    pub items: usize,
    /// Items with score > threshold, in list order.
    pub outliers: Vec<Flagged>,
}

/// Lint result for a tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LintReport {
    pub threshold: f64,
    /// Lists with at least 3 items (the ones that can be scored).
    pub lists_checked: usize,
    pub items_checked: usize,
    pub outliers_total: usize,
    /// Lists with at least one outlier, in tree order.
    pub lists: Vec<ListReport>,
    /// Texts sent to the embedding service and how many it had cached.
    pub embedded_texts: usize,
    pub cache_hits: usize,
}

/// Scores every item list of `root` (lists below 3 items are skipped); all items are embedded
/// in one batch first, after checking that no list is too long to cluster (so a too-long list
/// fails at once, naming the list).
pub fn lint_tree(
    root: &TaxonomyNode,
    embedder: &dyn Embedder,
    threshold: f64,
) -> anyhow::Result<LintReport> {
    let mut lists = Vec::new();
    collect_lists(root, &mut Vec::new(), &mut lists);
    lists.retain(|(_, node)| node.items.len() >= MIN_ITEMS);
    check_lists(&lists)?;
    let table =
        VectorTable::build(embedder, lists.iter().flat_map(|(_, n)| n.items.iter().cloned()))?;

    let mut report = LintReport {
        threshold,
        lists_checked: lists.len(),
        items_checked: lists.iter().map(|(_, n)| n.items.len()).sum(),
        outliers_total: 0,
        lists: Vec::new(),
        embedded_texts: table.texts_embedded,
        cache_hits: table.cache_hits,
    };
    for (path, node) in lists {
        let analysis = analyze_items(&node.items, &table, threshold)?;
        if analysis.outliers.is_empty() {
            continue;
        }
        report.outliers_total += analysis.outliers.len();
        report.lists.push(ListReport {
            path,
            items: node.items.len(),
            outliers: analysis
                .outliers
                .iter()
                .map(|&i| Flagged { item: node.items[i].clone(), score: analysis.scores[i] })
                .collect(),
        });
    }
    Ok(report)
}

/// Refuses a tree with a list too long to cluster, naming the list (callers check before
/// connecting to an embedding server; [`lint_tree`] checks again before embedding).
pub fn check_list_sizes(root: &TaxonomyNode) -> anyhow::Result<()> {
    let mut lists = Vec::new();
    collect_lists(root, &mut Vec::new(), &mut lists);
    check_lists(&lists)
}

fn check_lists(lists: &[(Vec<String>, &TaxonomyNode)]) -> anyhow::Result<()> {
    for (path, node) in lists {
        check_list_size(node.items.len())
            .map_err(|e| e.context(format!("list `{}`", path.join(" > "))))?;
    }
    Ok(())
}

/// Every node that holds items, with its path (empty names, such as a document root, skipped).
fn collect_lists<'a>(
    node: &'a TaxonomyNode,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, &'a TaxonomyNode)>,
) {
    let named = !node.name.is_empty();
    if named {
        path.push(node.name.clone());
    }
    if !node.items.is_empty() {
        out.push((path.clone(), node));
    }
    for child in &node.children {
        collect_lists(child, path, out);
    }
    if named {
        path.pop();
    }
}

/// Removes the reported outliers from `root` (matched by list path and item text), keeping
/// everything else — names, glosses, order — as it is. Returns how many items were removed.
pub fn remove_outliers(root: &mut TaxonomyNode, report: &LintReport) -> usize {
    let mut removed = 0;
    for list in &report.lists {
        if let Some(node) = find_list(root, &list.path) {
            let before = node.items.len();
            let flagged: HashSet<&str> = list.outliers.iter().map(|f| f.item.as_str()).collect();
            node.items.retain(|item| !flagged.contains(item.as_str()));
            removed += before - node.items.len();
        }
    }
    removed
}

/// The node whose named path is `path` (empty names are transparent, as in [`collect_lists`]).
fn find_list<'a>(node: &'a mut TaxonomyNode, path: &[String]) -> Option<&'a mut TaxonomyNode> {
    let rest = if node.name.is_empty() {
        path
    } else {
        match path.split_first() {
            Some((first, rest)) if *first == node.name => rest,
            _ => return None,
        }
    };
    if rest.is_empty() && !node.items.is_empty() {
        return Some(node);
    }
    node.children.iter_mut().find_map(|c| find_list(c, rest))
}

impl LintReport {
    /// A report a person reads: one section per list with outliers.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# Semantic lint\n\nThreshold {}: {} outliers in {} of {} lists ({} items checked).\n",
            self.threshold,
            self.outliers_total,
            self.lists.len(),
            self.lists_checked,
            self.items_checked
        );
        for list in &self.lists {
            out.push_str(&format!("\n## {} ({} items)\n\n", list.path.join(" > "), list.items));
            out.push_str("| item | GLOSH score |\n|---|---|\n");
            for f in &list.outliers {
                out.push_str(&format!("| {} | {:.3} |\n", f.item.replace('|', "\\|"), f.score));
            }
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::semantic::testdata;
    use crate::semantic::vectors::tests::FixedEmbedder;

    /// A tree with two reference lists (as categories) and a short list.
    fn tree_and_embedder() -> (TaxonomyNode, FixedEmbedder, Vec<Vec<String>>) {
        let data = testdata::load("glosh_reference.json");
        let mut root = TaxonomyNode::new("");
        let mut pairs = Vec::new();
        let mut expected = Vec::new();
        for name in ["case_016_European", "case_024_framework"] {
            let case =
                data["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
            let terms: Vec<String> = case["terms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().into())
                .collect();
            expected.push(
                case["flagged"]["0.3"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| terms[i.as_u64().unwrap() as usize].clone())
                    .collect(),
            );
            pairs.extend(terms.iter().cloned().zip(testdata::vectors(&case["embeddings_f32_b64"])));
            let mut parent = TaxonomyNode::new("Group");
            let mut list = TaxonomyNode::new(name);
            list.metadata.gloss = Some(format!("gloss of {name}"));
            list.items = terms;
            parent.children.push(list);
            root.children.push(parent);
        }
        let mut short = TaxonomyNode::new("Short");
        short.items = vec!["a".into(), "b".into()];
        root.children.push(short);
        (root, FixedEmbedder::new(pairs), expected)
    }

    #[test]
    fn lint_reports_each_lists_flagged_items_in_one_embedding_call() {
        let (root, embedder, expected) = tree_and_embedder();
        let report = lint_tree(&root, &embedder, 0.3).unwrap();
        assert_eq!(embedder.calls(), 1);
        assert_eq!(report.lists_checked, 2);
        let got: Vec<Vec<String>> = report
            .lists
            .iter()
            .map(|l| l.outliers.iter().map(|f| f.item.clone()).collect())
            .collect();
        let want: Vec<Vec<String>> = expected.into_iter().filter(|e| !e.is_empty()).collect();
        assert_eq!(got, want);
        assert_eq!(report.lists[0].path, vec!["Group".to_string(), "case_016_European".into()]);
        assert!(report.to_markdown().contains("## Group > case_016_European"));
        assert!(report.to_json().contains("\"outliers_total\""));
    }

    #[test]
    fn a_list_above_the_limit_is_refused_before_embedding() {
        let mut root = TaxonomyNode::new("Things");
        let mut big = TaxonomyNode::new("Big");
        big.items =
            (0..=crate::semantic::hdbscan::MAX_POINTS).map(|i| format!("item {i}")).collect();
        root.children.push(big);
        let embedder = FixedEmbedder::new([]);
        let msg = format!("{:#}", lint_tree(&root, &embedder, 0.1).unwrap_err());
        assert!(msg.starts_with("list `Things > Big`: a list of 50001 items"), "{msg}");
        assert!(msg.contains("limit of 50000 items") && msg.contains("split it"), "{msg}");
        assert_eq!(embedder.calls(), 0);
        assert_eq!(format!("{:#}", check_list_sizes(&root).unwrap_err()), msg);
        root.children[0].items.pop();
        assert!(check_list_sizes(&root).is_ok());
    }

    #[test]
    fn remove_outliers_drops_exactly_the_reported_items_and_keeps_glosses() {
        let (mut root, embedder, _) = tree_and_embedder();
        let before = root.all_items().len();
        let report = lint_tree(&root, &embedder, 0.3).unwrap();
        let removed = remove_outliers(&mut root, &report);
        assert_eq!(removed, report.outliers_total);
        assert_eq!(root.all_items().len(), before - removed);
        assert_eq!(
            root.children[0].children[0].metadata.gloss.as_deref(),
            Some("gloss of case_016_European")
        );
        let remaining = root.all_items();
        for f in report.lists.iter().flat_map(|l| &l.outliers) {
            assert!(!remaining.contains(&f.item), "{} still there", f.item);
        }
    }
}
