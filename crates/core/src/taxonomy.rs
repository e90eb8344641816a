//! The tree every dataset loader produces and every later stage transforms.

use serde::{Deserialize, Serialize};

/// One category of a skeleton: named sub-categories and/or a flat list of items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaxonomyNode {
    /// Display name of the category (for a leaf item: the item text).
    pub name: String,
    /// Sub-categories, in output order.
    pub children: Vec<TaxonomyNode>,
    /// Items directly in this category (terms of the final wildcard lists).
    pub items: Vec<String>,
    pub metadata: NodeMeta,
}

/// What the loaders know about a node; the instruction comment comes from `gloss`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeMeta {
    /// WordNet synset id such as `n02084071`, when the dataset gives one.
    pub wnid: Option<String>,
    /// The instruction text written as `# instruction: <gloss>`.
    pub gloss: Option<String>,
    /// Depth in the source hierarchy (roots are 0).
    pub depth: usize,
    /// True for a dataset root (never flattened by smart pruning).
    pub is_root: bool,
    /// True for a catch-all bin the pipeline made (orphans, "Other"): its name is written as
    /// the template gave it (no Title Case) and the shaper merges small lists into it.
    #[serde(default)]
    pub is_bin: bool,
    /// The synset's plain first lemma when the loader displays another name because that one
    /// is ambiguous (ImageNet's strict naming: `crane` for `crane (wading bird)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plain_name: Option<String>,
    /// Set during a pruning walk on a category whose arrangement is computed after the walk
    /// (the index of its list); never set on a finished tree.
    #[serde(skip)]
    pub pending_arrangement: Option<usize>,
}

impl TaxonomyNode {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Default::default() }
    }

    /// A category with a gloss, e.g. for hand-made trees in tests.
    pub fn with_gloss(name: impl Into<String>, gloss: impl Into<String>) -> Self {
        let mut n = Self::new(name);
        n.metadata.gloss = Some(gloss.into());
        n
    }

    /// A category holding the given items.
    pub fn list<S: Into<String>>(
        name: impl Into<String>,
        items: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            name: name.into(),
            items: items.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// True when the node has neither children nor items.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty() && self.items.is_empty()
    }

    /// Number of nodes in the subtree, this one included.
    pub fn count_nodes(&self) -> usize {
        1 + self.children.iter().map(|c| c.count_nodes()).sum::<usize>()
    }

    /// All items of the subtree, depth first.
    pub fn all_items(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_items(&mut out);
        out
    }

    /// Number of category keys in the subtree (this node included).
    pub fn count_categories(&self) -> usize {
        self.count_nodes()
    }

    /// Names of the subtree's nodes that have no children (dataset labels), depth first,
    /// this node included when it is one.
    pub fn leaf_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_leaf_names(&mut out);
        out
    }

    fn collect_leaf_names(&self, out: &mut Vec<String>) {
        if self.children.is_empty() {
            out.push(self.name.clone());
        }
        for c in &self.children {
            c.collect_leaf_names(out);
        }
    }

    /// Visits every node of the subtree with its depth (this node is depth 0), depth first.
    pub fn walk(&self, f: &mut dyn FnMut(&TaxonomyNode, usize)) {
        fn go(n: &TaxonomyNode, d: usize, f: &mut dyn FnMut(&TaxonomyNode, usize)) {
            f(n, d);
            for c in &n.children {
                go(c, d + 1, f);
            }
        }
        go(self, 0, f)
    }

    fn collect_items(&self, out: &mut Vec<String>) {
        out.extend(self.items.iter().cloned());
        for c in &self.children {
            c.collect_items(out);
        }
    }
}
