//! The skeleton viewer: one self-contained HTML page per skeleton (`wildcards-gen view`, and
//! `<output stem>.html` beside every batch job's YAML when `config.html` is on).
//!
//! The tree is nested `<details>` elements, so it opens and closes without any script and the
//! browser skips the layout of closed branches: the full Tencent skeleton (9,000+ items) loads
//! in well under a second. A little inline script adds the search box (it opens the branches
//! that match) and expand/collapse buttons. Glosses are `title` attributes (shown on hover);
//! items the job's lint flagged carry their score.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use askama::Template;
use serde::Deserialize;
use wildcards_core::output::{read_yaml, write_atomic};
use wildcards_core::stats::{structure_stats, LintStats, StructureStats};
use wildcards_core::taxonomy::TaxonomyNode;

/// `out/tencent_baseline.yaml` -> `out/tencent_baseline.html`.
pub fn viewer_path_for(skeleton: &Path) -> PathBuf {
    skeleton.with_extension("html")
}

/// What was written, for the command line's one-line summary.
#[derive(Debug, Clone)]
pub struct ViewerSummary {
    pub path: PathBuf,
    pub structure: StructureStats,
    /// Items marked as flagged (from the stats file's lint section).
    pub flagged: usize,
    pub bytes: usize,
}

/// Reads the skeleton and writes its viewer to `out` atomically, marking the items `lint`
/// flagged (see [`read_lint`] for a stats file's).
pub fn write_viewer(
    skeleton: &Path,
    lint: Option<&LintStats>,
    out: &Path,
) -> Result<ViewerSummary> {
    let tree = read_yaml(skeleton)?;
    let file_bytes = std::fs::metadata(skeleton).map(|m| m.len()).unwrap_or(0);
    let title = skeleton.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let page = render_viewer(&tree, &title, file_bytes, lint)?;
    write_atomic(out, page.html.as_bytes())?;
    Ok(ViewerSummary {
        path: out.to_path_buf(),
        structure: page.structure,
        flagged: page.flagged,
        bytes: page.html.len(),
    })
}

/// The `lint` section of a stats file (`None` when the job was not linted).
pub fn read_lint(stats: &Path) -> Result<Option<LintStats>> {
    #[derive(Deserialize)]
    struct OnlyLint {
        lint: Option<LintStats>,
    }
    let text = std::fs::read_to_string(stats)
        .with_context(|| format!("cannot read {}", stats.display()))?;
    let parsed: OnlyLint = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a stats file", stats.display()))?;
    Ok(parsed.lint)
}

/// A rendered viewer page.
pub struct ViewerPage {
    pub html: String,
    pub structure: StructureStats,
    pub flagged: usize,
}

/// Renders the viewer of `tree`; `title` names it (usually the file name).
pub fn render_viewer(
    tree: &TaxonomyNode,
    title: &str,
    file_bytes: u64,
    lint: Option<&LintStats>,
) -> Result<ViewerPage> {
    let flags = FlagIndex::new(lint);
    let mut rows = Vec::new();
    let mut path = Vec::new();
    // Several top-level keys are the top of the tree themselves (no nameless wrapper).
    let tops = match tree.name.is_empty() {
        true => tree.children.iter().collect(),
        false => vec![tree],
    };
    let flagged = tops.iter().map(|n| push_rows(n, 0, &mut path, &flags, &mut rows)).sum();
    let structure = structure_stats(tree, file_bytes);
    let page = ViewerTemplate {
        title,
        structure: &structure,
        lint: lint.map(|l| (l.threshold, l.outliers)),
        flagged,
        rows,
    };
    let html = page.render().context("rendering the skeleton viewer")?;
    Ok(ViewerPage { html, structure, flagged })
}

/// The lint's flagged items by list path.
struct FlagIndex {
    by_list: HashMap<Vec<String>, HashMap<String, f64>>,
}

impl FlagIndex {
    fn new(lint: Option<&LintStats>) -> Self {
        let by_list = lint
            .map(|l| {
                l.flagged
                    .iter()
                    .map(|list| {
                        let items = list.outliers.iter().map(|f| (f.item.clone(), f.score));
                        (list.path.clone(), items.collect())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { by_list }
    }

    fn score(&self, path: &[String], item: &str) -> Option<f64> {
        self.by_list.get(path)?.get(item).copied()
    }
}

/// One line of the flattened tree: the template walks these in order (templates have no
/// recursion, so the tree is flattened into open / items / close steps).
pub enum Row {
    Open { name: String, gloss: Option<String>, items: usize, flagged: usize, open: bool },
    Items(Vec<Item>),
    Close,
}

/// One item of a list; `score` when the lint flagged it.
pub struct Item {
    pub text: String,
    pub score: Option<String>,
}

/// Appends `node`'s rows; returns the number of flagged items in its subtree.
fn push_rows(
    node: &TaxonomyNode,
    depth: usize,
    path: &mut Vec<String>,
    flags: &FlagIndex,
    rows: &mut Vec<Row>,
) -> usize {
    path.push(node.name.clone());
    let at = rows.len();
    rows.push(Row::Open {
        name: node.name.clone(),
        gloss: node.metadata.gloss.clone(),
        items: subtree_items(node),
        flagged: 0,
        // The top level starts open; everything below starts closed (fast first paint).
        open: depth == 0,
    });
    let mut flagged = 0;
    if !node.items.is_empty() {
        let items: Vec<Item> = node
            .items
            .iter()
            .map(|text| {
                let score = flags.score(path, text).map(|s| format!("{s:.2}"));
                flagged += usize::from(score.is_some());
                Item { text: text.clone(), score }
            })
            .collect();
        rows.push(Row::Items(items));
    }
    for child in &node.children {
        flagged += push_rows(child, depth + 1, path, flags, rows);
    }
    rows.push(Row::Close);
    if let Row::Open { flagged: f, .. } = &mut rows[at] {
        *f = flagged;
    }
    path.pop();
    flagged
}

fn subtree_items(node: &TaxonomyNode) -> usize {
    node.items.len() + node.children.iter().map(subtree_items).sum::<usize>()
}

#[derive(Template)]
#[template(path = "viewer.html")]
struct ViewerTemplate<'a> {
    title: &'a str,
    structure: &'a StructureStats,
    /// (threshold, outliers) of the job's lint.
    lint: Option<(f64, usize)>,
    flagged: usize,
    rows: Vec<Row>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use wildcards_core::stats::{FlaggedItem, FlaggedList};

    fn tree() -> TaxonomyNode {
        let mut root = TaxonomyNode::with_gloss("Root", "all <things> & \"more\"");
        let mut animal = TaxonomyNode::with_gloss("Animal", "a living organism");
        animal.children.push(TaxonomyNode::list("Frog", ["bullfrog", "tree frog", "teapot"]));
        root.children.push(animal);
        root.children.push(TaxonomyNode::list("Food", ["bread", "rice"]));
        root
    }

    #[test]
    fn every_item_is_a_list_entry_with_counts_glosses_and_flags() {
        let lint = LintStats {
            outliers: 1,
            threshold: 0.1,
            lists_checked: 1,
            flagged: vec![FlaggedList {
                path: vec!["Root".into(), "Animal".into(), "Frog".into()],
                outliers: vec![FlaggedItem { item: "teapot".into(), score: 0.4321 }],
            }],
            ..Default::default()
        };
        let page = render_viewer(&tree(), "t.yaml", 10, Some(&lint)).unwrap();
        let html = &page.html;
        assert_eq!(html.matches("<li").count(), 5, "{html}");
        assert_eq!(html.matches("<details").count(), 4, "{html}");
        assert_eq!(page.flagged, 1);
        // Glosses are escaped attributes; counts are subtree totals.
        assert!(html.contains("title=\"all &#60;things&#62; &#38; &#34;more&#34;\""), "{html}");
        assert!(html.contains("title=\"a living organism\">Animal<i>3</i>"), "{html}");
        assert!(html.contains(">Root<i>5</i>"), "{html}");
        assert!(html.contains("teapot<b>0.43</b>"), "{html}");
        assert!(!html.contains("http://") && !html.contains("https://"), "no network: {html}");
    }

    #[test]
    fn several_top_level_keys_have_no_nameless_wrapper() {
        let mut root = TaxonomyNode::new("");
        root.children.push(TaxonomyNode::list("A", ["x"]));
        root.children.push(TaxonomyNode::list("B", ["y"]));
        let page = render_viewer(&root, "t.yaml", 1, None).unwrap();
        assert_eq!(page.html.matches("<details").count(), 2);
        assert_eq!(page.flagged, 0);
    }
}
