//! From a dataset's full hierarchy to the categories of a skeleton.
//!
//! The loaders give every label as a node; a node without children (and without items) is a
//! label that ends up as an item. [`prune`] walks the hierarchy top-down and decides per node
//! whether it stays a category or is flattened into a list of the labels below it:
//!
//! **Smart mode** (`cfg.smart`), per node:
//! - the top node and dataset roots (`is_root`) are kept;
//! - `smart_overrides` (category name, case-insensitive, or wnid) re-configure the node and
//!   its subtree;
//! - a child in `skip_nodes` (wnid, name or any WordNet lemma of its synset) is skipped: its
//!   children take its place, so generic levels such as "organism" disappear;
//! - a node with at most one child is flattened (linear chain removal);
//! - a node is kept when *significant* — WordNet min depth <= `min_depth` or hyponym closure
//!   >= `min_hyponyms` — and flattened otherwise (also when its wnid is not in WordNet);
//! - a flattened list smaller than `min_leaf_size` with `merge_orphans` bubbles up: the
//!   parent files bubbled items (and its own direct labels) under the orphan label
//!   (`orphans_label_template`, `other_{}` -> `other_bird`);
//! - `preview_limit` stops the walk after that many nodes (a fast, partial preview).
//!
//! **Depth mode** (no `smart`): categories are kept down to `cfg.depth` levels (dataset roots
//! are level 1); deeper labels are collected into the list of their level-`depth` ancestor.
//!
//! Flattening is where the semantic engine plugs in: see [`Pruner::semantic_clean`] and
//! [`Pruner::semantic_arrange`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{anyhow, Result};

use crate::params::{Config, OutlierMethod, Params};
use crate::semantic::arrange::{ArrangeParams, Arrangement};
use crate::semantic::embedder::Embedder;
use crate::semantic::reuse::ReuseStore;
use crate::semantic::stage::{DeferredList, SemanticStage};
use crate::stats::{EventKind, Timeline};
use crate::taxonomy::{NodeMeta, TaxonomyNode};

/// What smart pruning needs to know about a synset. Implemented by the WordNet database;
/// unit tests of the pruning rules use small hand-made tables.
pub trait WordNetFacts {
    /// Shortest hypernym path length to the root (`entity` is 0).
    fn min_depth(&self, wnid: &str) -> Option<usize>;
    /// Size of the hyponym closure (all synsets below).
    fn hyponym_count(&self, wnid: &str) -> Option<usize>;
    /// Lemma names of the synset, with spaces instead of underscores.
    fn lemma_names(&self, wnid: &str) -> Vec<String>;
    /// The full database, when there is one (semantic arrangement names groups with it).
    fn wordnet(&self) -> Option<&crate::wordnet::WordNet> {
        None
    }
}

impl WordNetFacts for crate::wordnet::WordNet {
    fn min_depth(&self, wnid: &str) -> Option<usize> {
        self.synset(wnid).map(|s| crate::wordnet::WordNet::min_depth(self, s))
    }
    fn hyponym_count(&self, wnid: &str) -> Option<usize> {
        self.synset(wnid).map(|s| self.hyponym_closure_size(s))
    }
    fn lemma_names(&self, wnid: &str) -> Vec<String> {
        self.synset(wnid)
            .map(|s| s.lemmas.iter().map(|l| l.replace('_', " ")).collect())
            .unwrap_or_default()
    }
    fn wordnet(&self) -> Option<&crate::wordnet::WordNet> {
        Some(self)
    }
}

/// The overrides from `cfg.smart_overrides` that apply to `node`: by wnid first, then by
/// name (case-insensitive).
pub fn override_for<'a>(cfg: &'a Config, node: &TaxonomyNode) -> Option<&'a Params> {
    if cfg.smart_overrides.is_empty() {
        return None;
    }
    if let Some(p) = node.metadata.wnid.as_deref().and_then(|w| cfg.smart_overrides.get(w)) {
        return Some(p);
    }
    let name = node.name.trim();
    cfg.smart_overrides.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, p)| p)
}

/// Settings that name categories no node of `tree` has: `smart_overrides` keys and
/// `skip_nodes` entries (by name, wnid or WordNet lemma, case-insensitive). They do nothing,
/// so the user hears about it (a misspelt key, a list meant for another dataset).
pub fn unmatched_names(tree: &TaxonomyNode, cfg: &Config, facts: &dyn WordNetFacts) -> Vec<String> {
    if !cfg.smart {
        return Vec::new();
    }
    let mut known = std::collections::HashSet::new();
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        known.insert(node.name.trim().to_lowercase());
        if let Some(w) = node.metadata.wnid.as_deref() {
            known.insert(w.to_lowercase());
            known.extend(facts.lemma_names(w).into_iter().map(|l| l.to_lowercase()));
        }
        stack.extend(node.children.iter());
    }
    let missing = |k: &&String| !known.contains(&k.trim().to_lowercase());
    let mut notes: Vec<String> = cfg
        .smart_overrides
        .keys()
        .filter(missing)
        .map(|k| {
            format!(
                "smart-config key {k:?} matches no category of {}; it does nothing",
                cfg.dataset
            )
        })
        .collect();
    notes.extend(cfg.skip_nodes.iter().filter(missing).map(|k| {
        format!("skip node {k:?} matches no category of {}; it does nothing", cfg.dataset)
    }));
    notes.extend(dropped_default_skips(cfg));
    notes
}

/// A `skip_nodes` list replaces the dataset's default one; when it leaves defaults out, the
/// user may have meant to add to it, so say which are no longer skipped.
fn dropped_default_skips(cfg: &Config) -> Option<String> {
    if cfg.dataset != crate::params::Dataset::Tencent {
        return None;
    }
    let given = |d: &&str| cfg.skip_nodes.iter().any(|k| k.trim().eq_ignore_ascii_case(d));
    let dropped: Vec<&str> =
        crate::params::TENCENT_SKIP_NODES.iter().copied().filter(|d| !given(d)).collect();
    (!dropped.is_empty() && !cfg.skip_nodes.is_empty()).then(|| {
        format!(
            "skip_nodes replaces tencent's default list, so {} are no longer skipped; list them \
             too to keep skipping them",
            dropped.join(", ")
        )
    })
}

/// The configuration that holds for `node`: `cfg` with the node's smart overrides applied, or
/// `cfg` itself (borrowed, no copy) when none apply. Both the pruning and the shaping walk call
/// this at every node so that an override reaches the whole subtree in both passes.
pub fn config_for<'a>(cfg: &'a Config, node: &TaxonomyNode) -> Cow<'a, Config> {
    match override_for(cfg, node) {
        Some(p) => Cow::Owned(cfg.with_overrides(p)),
        None => Cow::Borrowed(cfg),
    }
}

/// Reads a smart-config file: a YAML mapping of category name or wnid to parameter
/// overrides for that subtree, e.g. `dog: {min_hyponyms: 10}`. Errors name the file, the
/// line and the fix; an empty file means no overrides.
pub fn read_smart_config(path: &std::path::Path) -> Result<BTreeMap<String, Params>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read smart config {}: {e}; check the path", path.display()))?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_norway::from_str(&text).map_err(|e| {
        anyhow!(
            "smart config {} is invalid: {e}; it must map category names or wnids to parameter \
             overrides, e.g. `dog: {{min_hyponyms: 10}}`",
            path.display()
        )
    })
}

/// The label of the orphan bin of category `name`.
pub fn orphan_label(template: &str, name: &str) -> String {
    if template.contains("{}") {
        template.replace("{}", name)
    } else {
        template.to_string()
    }
}

/// A bin node for loose items of category `parent`.
pub fn bin(label: String, parent: &str, items: Vec<String>) -> TaxonomyNode {
    TaxonomyNode {
        name: label,
        children: Vec::new(),
        items,
        metadata: NodeMeta {
            gloss: Some(format!("Miscellaneous {parent} items")),
            is_bin: true,
            ..Default::default()
        },
    }
}

/// Prunes `tree` (a loader's full hierarchy) into skeleton categories per `cfg`.
/// `embedder` serves semantic cleaning and arrangement; events go to `timeline`.
pub fn prune(
    tree: &TaxonomyNode,
    cfg: &Config,
    facts: &dyn WordNetFacts,
    embedder: Option<&dyn Embedder>,
    timeline: &mut Timeline,
) -> Result<TaxonomyNode> {
    let semantic = embed_texts(tree, cfg, facts, embedder, None, timeline)?;
    prune_with(tree, cfg, facts, semantic, timeline)
}

/// The semantic stage for `embedder`, with every text the pruning walk can meet (labels and
/// items, and the templated texts typicality scores) embedded in one batch up front. Its own
/// step so a caller can say "embedding" while it runs, not "pruning". With `reuse`, each
/// list's outlier scores and arrangement are read from the store when an earlier job stored
/// them (and what is computed is stored): the same tree, less work.
pub fn embed_texts<'a>(
    tree: &TaxonomyNode,
    cfg: &Config,
    facts: &'a dyn WordNetFacts,
    embedder: Option<&'a dyn Embedder>,
    reuse: Option<&'a ReuseStore>,
    timeline: &mut Timeline,
) -> Result<Option<SemanticStage<'a>>> {
    let mut semantic = embedder.map(|e| SemanticStage::new(e, facts.wordnet()).with_reuse(reuse));
    if let (Some(stage), true) = (semantic.as_mut(), cfg.needs_embeddings()) {
        let mut texts = Vec::new();
        collect_texts(tree, &mut texts);
        if cleans_with_typicality(cfg) {
            let mut keys = Vec::new();
            collect_names(tree, &mut keys);
            let templated = crate::semantic::stage::typicality_texts(&texts, &keys);
            texts.extend(templated);
        }
        stage.prefetch(texts, timeline)?;
    }
    Ok(semantic)
}

/// [`prune`] with the semantic stage [`embed_texts`] made.
pub fn prune_with<'a>(
    tree: &TaxonomyNode,
    cfg: &Config,
    facts: &'a dyn WordNetFacts,
    semantic: Option<SemanticStage<'a>>,
    timeline: &mut Timeline,
) -> Result<TaxonomyNode> {
    let mut pruner = Pruner {
        facts,
        semantic,
        timeline,
        limit: cfg.preview_limit,
        visited: 0,
        limit_logged: false,
        deferred: Vec::new(),
    };
    let outcome = pruner.visit(tree, cfg, true)?;
    let mut root = outcome.category.unwrap_or_else(|| header(tree));
    pruner.arrange_deferred(&mut root)?;
    if !outcome.loose.is_empty() {
        root.items.extend(outcome.loose);
    }
    root.metadata.is_root = true;
    Ok(root)
}

/// What a visited node hands to its parent: a category to add, and/or loose items (labels
/// and bubbled orphans) for the parent to file.
#[derive(Default)]
struct Outcome {
    category: Option<TaxonomyNode>,
    loose: Vec<String>,
}

/// The state of one pruning walk.
pub struct Pruner<'a> {
    facts: &'a dyn WordNetFacts,
    /// Embeddings for cleaning and arrangement; `None` without an embedding server.
    semantic: Option<SemanticStage<'a>>,
    timeline: &'a mut Timeline,
    limit: Option<usize>,
    visited: usize,
    limit_logged: bool,
    /// Lists whose arrangement waits until the walk is over (their categories are marked
    /// with the list's index in `metadata.pending_arrangement`).
    deferred: Vec<DeferredList>,
}

impl Pruner<'_> {
    fn visit(&mut self, node: &TaxonomyNode, cfg: &Config, is_top: bool) -> Result<Outcome> {
        if !self.take_budget(node) {
            return Ok(Outcome::default());
        }
        let cfg = &*config_for(cfg, node);
        let is_root = is_top || node.metadata.is_root;

        if node.children.is_empty() {
            if node.items.is_empty() {
                // A dataset label: it becomes an item of whatever category takes it.
                return Ok(if is_root {
                    self.finish_list(node, cfg, vec![tidy(&node.name)], true)?
                } else {
                    Outcome { category: None, loose: vec![tidy(&node.name)] }
                });
            }
            return self.finish_list(node, cfg, tidy_all(node.items.iter()), is_root);
        }

        let children = if cfg.smart { self.effective_children(node, cfg) } else { refs(node) };
        let flatten = if is_top {
            false
        } else if cfg.smart {
            !is_root && (children.len() <= 1 || !self.is_significant(node, cfg))
        } else {
            node.metadata.depth + 1 >= cfg.depth
        };

        if flatten {
            let mut labels = node.leaf_names();
            labels.extend(node.all_items());
            return self.finish_list(node, cfg, tidy_all(labels.iter()), is_root);
        }

        let mut category = header(node);
        let mut loose = tidy_all(node.items.iter());
        for child in children {
            let o = self.visit(child, cfg, false)?;
            category.children.extend(o.category);
            loose.extend(o.loose);
        }
        if !loose.is_empty() {
            loose.sort();
            loose.dedup();
            if category.children.is_empty() {
                return self.finish_list(node, cfg, loose, is_root);
            }
            let loose = self.semantic_clean(&node.name, loose, cfg)?;
            let label = orphan_label(&cfg.orphans_label_template, &node.name);
            category.children.push(bin(label, &node.name, loose));
        }
        if category.children.is_empty() {
            return Ok(Outcome::default());
        }
        Ok(Outcome { category: Some(category), loose: Vec::new() })
    }

    /// A flattened node: clean its list, bubble it up when too small, else make it a
    /// category (arranged into sub-groups when asked).
    fn finish_list(
        &mut self,
        node: &TaxonomyNode,
        cfg: &Config,
        items: Vec<String>,
        is_root: bool,
    ) -> Result<Outcome> {
        if items.is_empty() {
            return Ok(Outcome::default());
        }
        let items = self.semantic_clean(&node.name, items, cfg)?;
        if cfg.smart && cfg.merge_orphans && !is_root && items.len() < cfg.min_leaf_size {
            return Ok(Outcome { category: None, loose: items });
        }
        let category = self.semantic_arrange(node, items, cfg)?;
        Ok(Outcome { category: Some(category), loose: Vec::new() })
    }

    /// SEMANTIC CLEANING CALL SITE. When `cfg.semantic_clean` is set, a flattened list (and
    /// an orphan bin) has its outliers removed here: HDBSCAN/GLOSH over the embeddings of the
    /// items (crate::semantic::outliers), logging a `cleaning` event to `self.timeline`.
    fn semantic_clean(
        &mut self,
        context: &str,
        items: Vec<String>,
        cfg: &Config,
    ) -> Result<Vec<String>> {
        if !cfg.semantic_clean {
            return Ok(items);
        }
        match self.semantic.as_mut() {
            Some(stage) => stage.clean(context, items, cfg, self.timeline),
            None => Err(semantic_unavailable("cleaning", "semantic_clean", false)),
        }
    }

    /// SEMANTIC ARRANGEMENT CALL SITE. When `cfg.semantic_arrange` is set, a flattened list is
    /// re-grown here into named sub-groups (crate::semantic::arrange), returning `node`'s
    /// header with sub-categories instead of one list, and logging an `arrangement` event.
    fn semantic_arrange(
        &mut self,
        node: &TaxonomyNode,
        items: Vec<String>,
        cfg: &Config,
    ) -> Result<TaxonomyNode> {
        let mut category = header(node);
        if !cfg.semantic_arrange {
            category.items = items;
            return Ok(category);
        }
        let Some(stage) = self.semantic.as_mut() else {
            return Err(semantic_unavailable("arrangement", "semantic_arrange", false));
        };
        if stage.defers_arrangement() && items.len() >= ArrangeParams::from_config(cfg).min_items()
        {
            // Arranged after the walk (see `arrange_deferred`); the walk only needs to know a
            // category is here.
            category.metadata.pending_arrangement = Some(self.deferred.len());
            let context = node.name.clone();
            self.deferred.push(DeferredList { context, items: items.clone(), cfg: cfg.clone() });
            category.items = items;
            return Ok(category);
        }
        match stage.arrange(&node.name, &items, cfg, self.timeline)? {
            Some(arrangement) => category.children = arrangement.to_nodes(),
            None => category.items = items,
        }
        Ok(category)
    }

    /// Arranges the lists the walk deferred and puts each arrangement in its category
    /// (which keeps its flat list when no groups formed).
    fn arrange_deferred(&mut self, root: &mut TaxonomyNode) -> Result<()> {
        let (Some(stage), false) = (self.semantic.as_mut(), self.deferred.is_empty()) else {
            return Ok(());
        };
        let arrangements = stage.arrange_deferred(&self.deferred, self.timeline)?;
        fill_arrangements(root, &arrangements);
        Ok(())
    }

    /// Children after skipping: a skipped child's children take its place (recursively).
    /// Dataset roots are never skipped.
    fn effective_children<'t>(
        &self,
        node: &'t TaxonomyNode,
        cfg: &Config,
    ) -> Vec<&'t TaxonomyNode> {
        let mut out = Vec::with_capacity(node.children.len());
        let mut stack: Vec<&TaxonomyNode> = node.children.iter().rev().collect();
        while let Some(child) = stack.pop() {
            let skippable = !child.children.is_empty() && !child.metadata.is_root;
            if skippable && self.is_skip_node(child, cfg) {
                stack.extend(child.children.iter().rev());
            } else {
                out.push(child);
            }
        }
        out
    }

    fn is_skip_node(&self, node: &TaxonomyNode, cfg: &Config) -> bool {
        if cfg.skip_nodes.is_empty() {
            return false;
        }
        let listed =
            |s: &str| cfg.skip_nodes.iter().any(|k| k.trim().eq_ignore_ascii_case(s.trim()));
        if listed(&node.name) {
            return true;
        }
        match node.metadata.wnid.as_deref() {
            Some(w) => listed(w) || self.facts.lemma_names(w).iter().any(|l| listed(l)),
            None => false,
        }
    }

    fn is_significant(&self, node: &TaxonomyNode, cfg: &Config) -> bool {
        let Some(wnid) = node.metadata.wnid.as_deref() else { return false };
        self.facts.min_depth(wnid).is_some_and(|d| d <= cfg.min_depth)
            || self.facts.hyponym_count(wnid).is_some_and(|n| n >= cfg.min_hyponyms)
    }

    fn take_budget(&mut self, node: &TaxonomyNode) -> bool {
        let Some(limit) = self.limit else { return true };
        if self.visited >= limit {
            if !self.limit_logged {
                self.limit_logged = true;
                self.timeline.log(
                    EventKind::LimitReached,
                    Some(&node.name),
                    format!("preview limit of {limit} nodes reached; the rest is left out"),
                    serde_json::json!({ "limit": limit }),
                );
            }
            return false;
        }
        self.visited += 1;
        true
    }
}

/// The error a job asking for semantic work gets while that work is unavailable.
pub(crate) fn semantic_unavailable(what: &str, param: &str, have_embedder: bool) -> anyhow::Error {
    if have_embedder {
        anyhow!("semantic {what} is not available in this build yet; set {param}: false")
    } else {
        anyhow!(
            "semantic {what} needs an embedding server: start `embed-server` and pass --server \
             (or set WILDCARDS_EMBED_SERVER), or set {param}: false"
        )
    }
}

/// Replaces each category marked by a deferred arrangement with its groups.
fn fill_arrangements(node: &mut TaxonomyNode, arrangements: &[Option<Arrangement>]) {
    if let Some(index) = node.metadata.pending_arrangement.take() {
        if let Some(arrangement) = &arrangements[index] {
            node.children = arrangement.to_nodes();
            node.items.clear();
        }
    }
    for child in &mut node.children {
        fill_arrangements(child, arrangements);
    }
}

fn refs(node: &TaxonomyNode) -> Vec<&TaxonomyNode> {
    node.children.iter().collect()
}

/// The node without its children and items.
fn header(node: &TaxonomyNode) -> TaxonomyNode {
    TaxonomyNode { name: node.name.clone(), metadata: node.metadata.clone(), ..Default::default() }
}

/// Every text the walk can turn into an item, tidied: the names of childless nodes (labels)
/// and all items. Names of inner nodes never become items, so they are not embedded.
fn collect_texts(node: &TaxonomyNode, out: &mut Vec<String>) {
    if node.children.is_empty() {
        out.push(tidy(&node.name));
    }
    out.extend(node.items.iter().map(|i| tidy(i)));
    for c in &node.children {
        collect_texts(c, out);
    }
}

/// Every node name (the keys lists can end up under).
fn collect_names(node: &TaxonomyNode, out: &mut Vec<String>) {
    out.push(node.name.clone());
    for c in &node.children {
        collect_names(c, out);
    }
}

/// Whether semantic cleaning with the typicality method can happen anywhere in the job (its
/// subtree overrides included), so its templated texts belong in the job's embedding batch.
fn cleans_with_typicality(cfg: &Config) -> bool {
    let typical = |method: Option<OutlierMethod>, clean: Option<bool>| {
        method.unwrap_or(cfg.outlier_method) == OutlierMethod::Typicality
            && clean.unwrap_or(cfg.semantic_clean)
    };
    typical(None, None)
        || cfg.smart_overrides.values().any(|o| typical(o.outlier_method, o.semantic_clean))
}

fn tidy(s: &str) -> String {
    s.trim().to_lowercase()
}

/// Trimmed, lower-cased, de-duplicated and sorted.
fn tidy_all<'s>(items: impl Iterator<Item = &'s String>) -> Vec<String> {
    let mut out: Vec<String> = items.map(|s| tidy(s)).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::params::{Dataset, Preset};
    use std::collections::HashMap;

    /// Hand-made WordNet facts: wnid -> (min depth, hyponym count, lemmas).
    #[derive(Default)]
    pub(crate) struct Facts(pub HashMap<String, (usize, usize, Vec<String>)>);

    impl Facts {
        pub(crate) fn with(mut self, wnid: &str, depth: usize, hyponyms: usize) -> Self {
            self.0.insert(wnid.into(), (depth, hyponyms, vec![]));
            self
        }
    }

    impl WordNetFacts for Facts {
        fn min_depth(&self, wnid: &str) -> Option<usize> {
            self.0.get(wnid).map(|f| f.0)
        }
        fn hyponym_count(&self, wnid: &str) -> Option<usize> {
            self.0.get(wnid).map(|f| f.1)
        }
        fn lemma_names(&self, wnid: &str) -> Vec<String> {
            self.0.get(wnid).map(|f| f.2.clone()).unwrap_or_default()
        }
    }

    /// A category node with a wnid and children.
    pub(crate) fn cat(name: &str, wnid: &str, children: Vec<TaxonomyNode>) -> TaxonomyNode {
        let mut n = TaxonomyNode::new(name);
        n.metadata.wnid = Some(wnid.into());
        n.children = children;
        n
    }

    /// Dataset labels (leaf nodes).
    pub(crate) fn labels(names: &[&str]) -> Vec<TaxonomyNode> {
        names.iter().map(|n| TaxonomyNode::new(*n)).collect()
    }

    pub(crate) fn smart_cfg(min_depth: usize, min_hyponyms: usize, min_leaf: usize) -> Config {
        Params {
            smart: Some(true),
            min_depth: Some(min_depth),
            min_hyponyms: Some(min_hyponyms),
            min_leaf_size: Some(min_leaf),
            merge_orphans: Some(true),
            skip_nodes: Some(vec![]),
            orphans_label_template: Some("other_{}".into()),
            ..Default::default()
        }
        .resolve(Dataset::Imagenet)
    }

    fn run(tree: &TaxonomyNode, cfg: &Config, facts: &Facts) -> TaxonomyNode {
        prune(tree, cfg, facts, None, &mut Timeline::new()).unwrap()
    }

    fn child<'a>(n: &'a TaxonomyNode, name: &str) -> &'a TaxonomyNode {
        n.children.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no {name} in {n:#?}"))
    }

    fn root(children: Vec<TaxonomyNode>) -> TaxonomyNode {
        let mut r = TaxonomyNode::new("Root");
        r.metadata.is_root = true;
        r.children = children;
        r
    }

    #[test]
    fn linear_chain_is_flattened() {
        // animal -> canine (one child) -> dog -> [pug, beagle]
        let tree = root(vec![cat(
            "animal",
            "a",
            vec![
                cat("canine", "c", vec![cat("dog", "d", labels(&["pug", "beagle"]))]),
                cat("cat", "f", labels(&["tabby", "siamese"])),
            ],
        )]);
        let facts = Facts::default()
            .with("a", 1, 100)
            .with("c", 2, 100)
            .with("d", 3, 100)
            .with("f", 3, 100);
        let out = run(&tree, &smart_cfg(9, 1, 1), &facts);
        let animal = child(&out, "animal");
        let canine = child(animal, "canine");
        assert!(canine.children.is_empty(), "the chain is one list");
        assert_eq!(canine.items, vec!["beagle", "pug"]);
        assert_eq!(child(animal, "cat").items, vec!["siamese", "tabby"]);
    }

    #[test]
    fn significance_by_depth_and_by_hyponyms() {
        let tree = root(vec![cat(
            "animal",
            "a",
            vec![
                cat(
                    "shallow",
                    "s",
                    vec![
                        cat("x", "x", labels(&["x1", "x2"])),
                        cat("y", "y", labels(&["y1", "y2"])),
                    ],
                ),
                cat(
                    "bushy",
                    "b",
                    vec![
                        cat("p", "p", labels(&["p1", "p2"])),
                        cat("q", "q", labels(&["q1", "q2"])),
                    ],
                ),
                cat(
                    "plain",
                    "n",
                    vec![
                        cat("r", "r", labels(&["r1", "r2"])),
                        cat("t", "t", labels(&["t1", "t2"])),
                    ],
                ),
            ],
        )]);
        let facts = Facts::default()
            .with("a", 1, 1000)
            .with("s", 3, 2) // shallow enough: kept by depth
            .with("b", 9, 80) // deep but with many hyponyms: kept by count
            .with("n", 9, 2) // neither: flattened
            .with("x", 9, 0)
            .with("y", 9, 0)
            .with("p", 9, 0)
            .with("q", 9, 0)
            .with("r", 9, 0)
            .with("t", 9, 0);
        let out = run(&tree, &smart_cfg(4, 50, 1), &facts);
        let animal = child(&out, "animal");
        assert_eq!(child(animal, "shallow").children.len(), 2);
        assert_eq!(child(animal, "bushy").children.len(), 2);
        let plain = child(animal, "plain");
        assert!(plain.children.is_empty());
        assert_eq!(plain.items, vec!["r1", "r2", "t1", "t2"]);
        // An unknown wnid is not significant either.
        let tree = root(vec![cat(
            "animal",
            "a",
            vec![
                cat(
                    "z",
                    "missing",
                    vec![cat("k", "x", labels(&["k1"])), cat("l", "y", labels(&["l1"]))],
                ),
                cat("shallow", "s", labels(&["s1", "s2"])),
            ],
        )]);
        let out = run(&tree, &smart_cfg(4, 50, 1), &facts);
        assert_eq!(child(child(&out, "animal"), "z").items, vec!["k1", "l1"]);
    }

    #[test]
    fn skip_node_gives_its_place_to_its_children() {
        let tree = root(vec![cat(
            "thing",
            "t",
            vec![cat(
                "organism",
                "o",
                vec![
                    cat("plant", "p", labels(&["oak", "fern"])),
                    cat("fungus", "f", labels(&["morel", "truffle"])),
                ],
            )],
        )]);
        let facts = Facts::default()
            .with("t", 0, 1000)
            .with("o", 1, 1000)
            .with("p", 2, 100)
            .with("f", 2, 100);
        let mut cfg = smart_cfg(9, 1, 1);
        cfg.skip_nodes = vec!["Organism".into()];
        let out = run(&tree, &cfg, &facts);
        let thing = child(&out, "thing");
        let names: Vec<_> = thing.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["plant", "fungus"]);
        // By wnid and by WordNet lemma too.
        cfg.skip_nodes = vec!["o".into()];
        assert_eq!(child(&run(&tree, &cfg, &facts), "thing").children.len(), 2);
        let mut facts = facts;
        facts.0.insert("o".into(), (1, 1000, vec!["being".into()]));
        cfg.skip_nodes = vec!["being".into()];
        assert_eq!(child(&run(&tree, &cfg, &facts), "thing").children.len(), 2);
    }

    #[test]
    fn small_lists_bubble_into_the_orphan_label() {
        let tree = root(vec![cat(
            "bird",
            "b",
            vec![
                cat(
                    "raptor",
                    "r",
                    vec![
                        cat("hawk", "h", labels(&["kestrel", "harrier"])),
                        cat("owl", "o", labels(&["barn owl"])),
                    ],
                ),
                cat("finch", "f", labels(&["goldfinch"])),
                TaxonomyNode::new("dodo"),
                cat(
                    "duck",
                    "d",
                    labels(&["mallard", "teal", "eider", "wigeon", "pintail", "scaup"]),
                ),
            ],
        )]);
        let facts = Facts::default()
            .with("b", 1, 1000)
            .with("r", 9, 2)
            .with("h", 9, 0)
            .with("o", 9, 0)
            .with("f", 9, 0)
            .with("d", 9, 0);
        let out = run(&tree, &smart_cfg(4, 50, 5), &facts);
        let bird = child(&out, "bird");
        // raptor (3 items) and finch (1) are too small and bubble up with the label dodo.
        assert_eq!(
            child(bird, "other_bird").items,
            vec!["barn owl", "dodo", "goldfinch", "harrier", "kestrel"]
        );
        assert!(child(bird, "other_bird").metadata.is_bin);
        assert_eq!(child(bird, "duck").items.len(), 6);
        // Without merge_orphans small lists stay where they are.
        let mut cfg = smart_cfg(4, 50, 5);
        cfg.merge_orphans = false;
        let out = run(&tree, &cfg, &facts);
        assert_eq!(child(child(&out, "bird"), "finch").items, vec!["goldfinch"]);
    }

    #[test]
    fn preview_limit_stops_the_walk() {
        let tree = root(vec![cat(
            "a",
            "a",
            vec![cat("b", "b", labels(&["b1", "b2", "b3"])), cat("c", "c", labels(&["c1", "c2"]))],
        )]);
        let facts = Facts::default().with("a", 0, 100).with("b", 1, 100).with("c", 1, 100);
        let mut cfg = smart_cfg(9, 1, 1);
        cfg.preview_limit = Some(5);
        let mut timeline = Timeline::new();
        let out = prune(&tree, &cfg, &facts, None, &mut timeline).unwrap();
        // root, a, b, b1, b2 visited; the rest is left out.
        let all = out.all_items();
        assert_eq!(all, vec!["b1", "b2"]);
        assert_eq!(timeline.events()[0].kind, EventKind::LimitReached);
    }

    #[test]
    fn smart_overrides_apply_to_a_subtree() {
        let tree = root(vec![cat(
            "animal",
            "a",
            vec![
                cat(
                    "dog",
                    "d",
                    vec![
                        cat("hound", "h", labels(&["beagle", "basset"])),
                        cat("toy", "t", labels(&["pug", "chihuahua"])),
                    ],
                ),
                cat(
                    "cat",
                    "c",
                    vec![
                        cat("big", "g", labels(&["lion", "tiger"])),
                        cat("small", "s", labels(&["tabby", "manx"])),
                    ],
                ),
            ],
        )]);
        let facts = Facts::default()
            .with("a", 1, 1000)
            .with("d", 8, 40)
            .with("c", 8, 40)
            .with("h", 9, 1)
            .with("t", 9, 1)
            .with("g", 9, 1)
            .with("s", 9, 1);
        let mut cfg = smart_cfg(4, 50, 1);
        let base = run(&tree, &cfg, &facts);
        assert!(child(child(&base, "animal"), "dog").children.is_empty());
        // Lower the hyponym bar for Dog (by name, any case) only.
        cfg.smart_overrides
            .insert("DOG".into(), Params { min_hyponyms: Some(10), ..Default::default() });
        let out = run(&tree, &cfg, &facts);
        let animal = child(&out, "animal");
        assert_eq!(child(animal, "dog").children.len(), 2);
        assert!(child(animal, "cat").children.is_empty());
        // By wnid as well.
        cfg.smart_overrides.clear();
        cfg.smart_overrides
            .insert("c".into(), Params { min_hyponyms: Some(10), ..Default::default() });
        let out = run(&tree, &cfg, &facts);
        assert_eq!(child(child(&out, "animal"), "cat").children.len(), 2);
    }

    #[test]
    fn preset_precedence_reaches_pruning() {
        // Explicit min_hyponyms beats the preset (compact = 100 hyponyms for ImageNet).
        let p = Params {
            smart: Some(true),
            preset: Some(Preset::Compact),
            min_hyponyms: Some(40),
            ..Default::default()
        };
        let cfg = p.resolve(Dataset::Imagenet);
        assert_eq!((cfg.min_depth, cfg.min_hyponyms, cfg.min_leaf_size), (3, 40, 8));
        let tree = root(vec![cat(
            "animal",
            "a",
            vec![
                cat(
                    "dog",
                    "d",
                    vec![
                        cat("x", "x", labels(&["1", "2", "3", "4", "5", "6", "7", "8"])),
                        cat("y", "y", labels(&["a", "b", "c", "d", "e", "f", "g", "h"])),
                    ],
                ),
                cat("cat", "x", labels(&["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"])),
            ],
        )]);
        let facts =
            Facts::default().with("a", 1, 1000).with("d", 8, 45).with("x", 9, 0).with("y", 9, 0);
        let out = run(&tree, &cfg, &facts);
        assert!(
            child(child(&out, "animal"), "dog").items.is_empty(),
            "dog kept by min_hyponyms 40"
        );
        let plain =
            Params { smart: Some(true), preset: Some(Preset::Compact), ..Default::default() }
                .resolve(Dataset::Imagenet);
        let out = run(&tree, &plain, &facts);
        assert_eq!(
            child(child(&out, "animal"), "dog").items.len(),
            16,
            "preset's 100 flattens dog"
        );
    }

    #[test]
    fn depth_mode_cuts_at_depth() {
        let mut tree = root(vec![cat(
            "a",
            "a",
            vec![
                cat("b", "b", vec![cat("c", "c", labels(&["c1", "c2"]))]),
                TaxonomyNode::new("leaf"),
            ],
        )]);
        // Loader depths: dataset roots are 0.
        fn set_depth(n: &mut TaxonomyNode, d: usize) {
            n.metadata.depth = d;
            for c in &mut n.children {
                set_depth(c, d + 1);
            }
        }
        for c in &mut tree.children {
            set_depth(c, 0);
        }
        let mut cfg = Params::default().resolve(Dataset::Imagenet);
        cfg.depth = 2;
        let out = run(&tree, &cfg, &Facts::default());
        let a = child(&out, "a");
        assert_eq!(child(a, "b").items, vec!["c1", "c2"]);
        assert_eq!(child(a, "Other a").items, vec!["leaf"]);
        cfg.depth = 1;
        let out = run(&tree, &cfg, &Facts::default());
        assert_eq!(child(&out, "a").items, vec!["c1", "c2", "leaf"]);
    }

    #[test]
    fn semantic_options_without_a_server_are_an_error() {
        let tree = root(vec![cat(
            "a",
            "a",
            vec![cat("b", "b", labels(&["x", "y", "z"])), cat("c", "c", labels(&["u", "v"]))],
        )]);
        let facts = Facts::default().with("a", 0, 100).with("b", 9, 0).with("c", 9, 0);
        let mut cfg = smart_cfg(4, 50, 1);
        cfg.semantic_clean = true;
        let err = prune(&tree, &cfg, &facts, None, &mut Timeline::new()).unwrap_err().to_string();
        assert!(err.starts_with("semantic cleaning needs an embedding server"), "{err}");
        cfg.semantic_clean = false;
        cfg.semantic_arrange = true;
        let err = prune(&tree, &cfg, &facts, None, &mut Timeline::new()).unwrap_err().to_string();
        assert!(err.starts_with("semantic arrangement needs an embedding server"), "{err}");
    }
}
