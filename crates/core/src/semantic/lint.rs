//! Semantic lint of a whole skeleton: the outliers of every item list, where each would fit
//! better, and cleaning them out.

use super::embedder::Embedder;
use super::hdbscan::check_list_size;
use super::outliers::{OutlierAnalysis, Scored, Scoring, MIN_ITEMS};
use super::reuse::{Key, Kind, ReuseStore};
use super::typicality;
use super::vectors::VectorTable;
use crate::params::OutlierMethod;
use crate::taxonomy::TaxonomyNode;
use serde::Serialize;
use std::collections::HashSet;

/// One flagged item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flagged {
    pub item: String,
    pub score: f64,
    /// Mean cosine similarity of the item to the other items of its own list.
    pub similarity_own: f64,
    /// The other list of the skeleton the item is most similar to (mean cosine to its items),
    /// when there is another list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fits_better: Option<BetterList>,
}

/// Where a flagged item would fit better.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BetterList {
    pub path: Vec<String>,
    pub similarity: f64,
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
    pub method: OutlierMethod,
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

impl LintReport {
    /// Flagged items / items checked (0 when nothing was checked).
    pub fn outlier_rate(&self) -> f64 {
        if self.items_checked == 0 {
            0.0
        } else {
            self.outliers_total as f64 / self.items_checked as f64
        }
    }
}

/// Scores every item list of `root` (lists below 3 items are skipped) with `scoring`, each
/// under its own key; all texts are embedded in one batch first. Each flagged item is told
/// the other list it is most similar to. GLOSH clusters: a list too long for it fails at
/// once, before embedding, naming the list.
pub fn lint_tree(
    root: &TaxonomyNode,
    embedder: &dyn Embedder,
    scoring: &Scoring,
) -> anyhow::Result<LintReport> {
    lint_tree_reusing(root, embedder, scoring, None)
}

/// [`lint_tree`], reading each list's scores and vector sum from `reuse` when an earlier job
/// stored them (and storing what it computes). Only what is not stored is embedded: the
/// texts of the lists computed here and the flagged items; with everything stored and
/// nothing flagged, nothing.
pub fn lint_tree_reusing(
    root: &TaxonomyNode,
    embedder: &dyn Embedder,
    scoring: &Scoring,
    reuse: Option<&ReuseStore>,
) -> anyhow::Result<LintReport> {
    let mut lists = Vec::new();
    collect_lists(root, &mut Vec::new(), &mut lists);
    lists.retain(|(_, node)| node.items.len() >= MIN_ITEMS);
    check_lists(&lists, scoring.method)?;

    let mut stored = Stored::new(reuse, &lists, scoring);
    // The texts of the lists to score here, then (second call, usually empty) those of the
    // lists to sum and of the flagged items.
    let missing = stored.scores.iter().zip(&lists).filter(|(s, _)| s.is_none());
    let texts: Vec<String> =
        missing.flat_map(|(_, (_, n))| scoring.texts(&n.items, Some(&n.name))).collect();
    let mut table = VectorTable::default();
    if !texts.is_empty() {
        table.add(embedder, texts.into_iter().chain(scoring.shared_texts()))?;
    }
    let analyses = stored.analyses(&lists, scoring, &table)?;

    let outliers_total = analyses.iter().map(|a| a.outliers.len()).sum();
    let mut report = LintReport {
        method: scoring.method,
        threshold: scoring.threshold,
        lists_checked: lists.len(),
        items_checked: lists.iter().map(|(_, n)| n.items.len()).sum(),
        outliers_total,
        lists: Vec::new(),
        embedded_texts: table.texts_embedded,
        cache_hits: table.cache_hits,
    };
    if outliers_total == 0 {
        return Ok(report);
    }
    stored.load_sums();
    let flagged = analyses
        .iter()
        .zip(&lists)
        .flat_map(|(a, (_, n))| a.outliers.iter().map(|&i| n.items[i].clone()).collect::<Vec<_>>());
    let mut texts = scoring.sum_texts(flagged);
    let unsummed = stored.sums.iter().zip(&lists).filter(|(s, _)| s.is_none());
    texts.extend(unsummed.flat_map(|(_, (_, n))| scoring.sum_texts(n.items.iter().cloned())));
    table.add(embedder, texts.into_iter().chain(scoring.shared_texts()))?;
    report.embedded_texts = table.texts_embedded;
    report.cache_hits = table.cache_hits;
    let neighbours = ListSums::new(&lists, scoring, &table, &mut stored)?;
    for (index, ((path, node), analysis)) in lists.iter().zip(&analyses).enumerate() {
        if analysis.outliers.is_empty() {
            continue;
        }
        let outliers = analysis
            .outliers
            .iter()
            .map(|&i| {
                let (similarity_own, fits_better) = neighbours.explain(index, &node.items[i]);
                let item = node.items[i].clone();
                Flagged { item, score: analysis.scores[i], similarity_own, fits_better }
            })
            .collect();
        report.lists.push(ListReport { path: path.clone(), items: node.items.len(), outliers });
    }
    Ok(report)
}

/// The per-list results of a lint found in the reuse store (`None` where not found, and
/// everywhere without a store), with the keys to store the computed ones under.
struct Stored<'s> {
    store: Option<&'s ReuseStore>,
    score_keys: Vec<Option<Key>>,
    scores: Vec<Option<Scored>>,
    sum_keys: Vec<Option<Key>>,
    sums: Vec<Option<Vec<f64>>>,
}

/// Everything a list's vector sum depends on besides the model.
#[derive(serde::Serialize)]
struct SumInputs<'a> {
    method: OutlierMethod,
    items: &'a [String],
}

impl<'s> Stored<'s> {
    fn new(
        store: Option<&'s ReuseStore>,
        lists: &[(Vec<String>, &TaxonomyNode)],
        scoring: &Scoring,
    ) -> Self {
        let score_keys: Vec<Option<Key>> = lists
            .iter()
            .map(|(_, n)| store.map(|s| scoring.reuse_key(s, &n.items, Some(&n.name))))
            .collect();
        let sum_keys: Vec<Option<Key>> = lists
            .iter()
            .map(|(_, n)| {
                let inputs = SumInputs { method: scoring.method, items: &n.items };
                store.map(|s| s.key(Kind::ListSum, &inputs))
            })
            .collect();
        let get = |key: &Option<Key>| store.zip(key.as_ref()).and_then(|(s, k)| s.get(k));
        let scores = score_keys.iter().map(get).collect();
        Self { store, score_keys, scores, sum_keys, sums: Vec::new() }
    }

    /// Every list's analysis at the threshold: stored scores, or computed from `table` (and
    /// stored).
    fn analyses(
        &mut self,
        lists: &[(Vec<String>, &TaxonomyNode)],
        scoring: &Scoring,
        table: &VectorTable,
    ) -> anyhow::Result<Vec<OutlierAnalysis>> {
        let background = match self.scores.iter().any(Option::is_none) {
            true => scoring.background(table)?,
            false => None,
        };
        let mut out = Vec::with_capacity(lists.len());
        for (i, (_, node)) in lists.iter().enumerate() {
            let scored = match self.scores[i].take() {
                Some(scored) => scored,
                None => {
                    let (items, key) = (&node.items, Some(node.name.as_str()));
                    let computed: Scored =
                        scoring.analyze_with(items, key, table, background.as_deref())?.into();
                    self.put(&self.score_keys[i], &computed);
                    computed
                }
            };
            out.push(scored.at(scoring.threshold));
        }
        Ok(out)
    }

    /// Looks up the lists' vector sums: only when something was flagged (a lint that flags
    /// nothing never needs them, and a lookup that is never stored would count as a miss).
    fn load_sums(&mut self) {
        let store = self.store;
        let get = |key: &Option<Key>| store.zip(key.as_ref()).and_then(|(s, k)| s.get(k));
        self.sums = self.sum_keys.iter().map(get).collect();
    }

    fn put<T: serde::Serialize>(&self, key: &Option<Key>, value: &T) {
        if let (Some(store), Some(key)) = (self.store, key) {
            store.put(key, value);
        }
    }
}

/// Per list, the sum of its items' vectors in the space the method scores in (typicality:
/// templated and centred on the background, as its scores see them; glosh: as written): an
/// item's mean cosine to a list is its dot product with the sum over the count.
struct ListSums<'t> {
    table: &'t VectorTable,
    background: Option<Vec<f64>>,
    paths: Vec<Vec<String>>,
    sums: Vec<(Vec<f64>, usize)>,
}

impl<'t> ListSums<'t> {
    /// The sums of `lists`: stored ones from `stored` (already looked up), the others
    /// computed from `table` (and stored).
    fn new(
        lists: &[(Vec<String>, &TaxonomyNode)],
        scoring: &Scoring,
        table: &'t VectorTable,
        stored: &mut Stored,
    ) -> anyhow::Result<Self> {
        let background = scoring.background(table)?;
        let mut me = Self { table, background, paths: Vec::new(), sums: Vec::new() };
        let mut v = Vec::new();
        for (i, (path, node)) in lists.iter().enumerate() {
            let sum = match stored.sums.get_mut(i).and_then(Option::take) {
                Some(sum) => sum,
                None => {
                    let mut sum: Vec<f64> = Vec::new();
                    for item in &node.items {
                        me.vector_into(item, &mut v)?;
                        sum.resize(v.len(), 0.0);
                        sum.iter_mut().zip(&v).for_each(|(s, x)| *s += x);
                    }
                    stored.put(&stored.sum_keys[i], &sum);
                    sum
                }
            };
            me.sums.push((sum, node.items.len()));
            me.paths.push(path.clone());
        }
        Ok(me)
    }
    /// An item's vector in the scoring space.
    fn vector(&self, item: &str) -> anyhow::Result<Vec<f64>> {
        let mut v = Vec::new();
        self.vector_into(item, &mut v)?;
        Ok(v)
    }

    fn vector_into(&self, item: &str, out: &mut Vec<f64>) -> anyhow::Result<()> {
        match &self.background {
            Some(b) => {
                typicality::centre_into(lookup(self.table, &typicality::item_text(item))?, b, out)
            }
            None => {
                out.clear();
                out.extend(lookup(self.table, item)?.iter().map(|x| f64::from(*x)));
            }
        }
        Ok(())
    }

    /// (mean cosine to the rest of its own list, the most similar other list).
    fn explain(&self, own: usize, item: &str) -> (f64, Option<BetterList>) {
        let Ok(v) = self.vector(item) else { return (0.0, None) };
        let dot = |sum: &[f64]| sum.iter().zip(&v).map(|(s, x)| s * x).sum::<f64>();
        let (own_sum, own_n) = &self.sums[own];
        let similarity_own = (dot(own_sum) - dot(&v)) / (own_n - 1).max(1) as f64;
        let best = self
            .sums
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != own)
            .map(|(i, (sum, n))| (i, dot(sum) / *n as f64))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let better =
            best.map(|(i, similarity)| BetterList { path: self.paths[i].clone(), similarity });
        (similarity_own, better)
    }
}

fn lookup<'t>(table: &'t VectorTable, text: &str) -> anyhow::Result<&'t [f32]> {
    table.get(text).ok_or_else(|| anyhow::anyhow!("no embedding for {text:?}"))
}

/// Refuses a tree with a list too long to cluster with `method` (GLOSH builds a spanning tree
/// per list; typicality is linear and has no limit), naming the list. Callers check before
/// connecting to an embedding server; [`lint_tree`] checks again before embedding.
pub fn check_list_sizes(root: &TaxonomyNode, method: OutlierMethod) -> anyhow::Result<()> {
    let mut lists = Vec::new();
    collect_lists(root, &mut Vec::new(), &mut lists);
    check_lists(&lists, method)
}

fn check_lists(
    lists: &[(Vec<String>, &TaxonomyNode)],
    method: OutlierMethod,
) -> anyhow::Result<()> {
    if method != OutlierMethod::Glosh {
        return Ok(());
    }
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

impl Flagged {
    /// `"Sport" (0.58 vs 0.11)` when another list is more similar than its own, else `-`.
    pub fn better_text(&self) -> String {
        match &self.fits_better {
            Some(b) if b.similarity > self.similarity_own => format!(
                "\"{}\" ({:.2} vs {:.2})",
                b.path.last().map(String::as_str).unwrap_or(""),
                b.similarity,
                self.similarity_own
            ),
            _ => "-".to_string(),
        }
    }
}

impl LintReport {
    /// A report a person reads: one section per list with outliers.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# Semantic lint\n\nMethod {}, threshold {}: {} outliers in {} of {} lists ({} of {} \
             items checked, {:.1} %).\n",
            self.method,
            self.threshold,
            self.outliers_total,
            self.lists.len(),
            self.lists_checked,
            self.outliers_total,
            self.items_checked,
            100.0 * self.outlier_rate()
        );
        for list in &self.lists {
            out.push_str(&format!("\n## {} ({} items)\n\n", list.path.join(" > "), list.items));
            out.push_str("| item | score | fits better in |\n|---|---|---|\n");
            for f in &list.outliers {
                out.push_str(&format!(
                    "| {} | {:.2} | {} |\n",
                    f.item.replace('|', "\\|"),
                    f.score,
                    f.better_text().replace('|', "\\|")
                ));
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
        let report = lint_tree(&root, &embedder, &Scoring::glosh(0.3)).unwrap();
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
        let msg = format!("{:#}", lint_tree(&root, &embedder, &Scoring::glosh(0.1)).unwrap_err());
        assert!(msg.starts_with("list `Things > Big`: a list of 50001 items"), "{msg}");
        assert!(msg.contains("limit of 50000 items") && msg.contains("split it"), "{msg}");
        assert_eq!(embedder.calls(), 0);
        assert_eq!(
            format!("{:#}", check_list_sizes(&root, OutlierMethod::Glosh).unwrap_err()),
            msg
        );
        root.children[0].items.pop();
        assert!(check_list_sizes(&root, OutlierMethod::Glosh).is_ok());
        root.children[0].items.push("one more".into());
        assert!(check_list_sizes(&root, OutlierMethod::Typicality).is_ok());
    }

    #[test]
    fn remove_outliers_drops_exactly_the_reported_items_and_keeps_glosses() {
        let (mut root, embedder, _) = tree_and_embedder();
        let before = root.all_items().len();
        let report = lint_tree(&root, &embedder, &Scoring::glosh(0.3)).unwrap();
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
