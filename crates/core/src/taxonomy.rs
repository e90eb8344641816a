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
}

impl TaxonomyNode {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Default::default() }
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

    fn collect_items(&self, out: &mut Vec<String>) {
        out.extend(self.items.iter().cloned());
        for c in &self.children {
            c.collect_items(out);
        }
    }
}
