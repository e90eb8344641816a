//! Numbers about a skeleton and about how it was made.
//!
//! - [`StructureStats`]: categories, leaf lists, items, depth, branching, leaf size, bytes.
//! - [`suggest_thresholds`]: smart-mode thresholds that suit a raw (unpruned) hierarchy.
//! - [`Timeline`]: timestamped events of one job (arrangements, cleanings, embedding calls,
//!   limits reached), written with the rest into `<output stem>.stats.json` ([`StatsFile`]).

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::params::Config;
use crate::taxonomy::TaxonomyNode;

/// Shape of a skeleton. Depth counts category levels: a lone root list has depth 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructureStats {
    /// Category keys (every node, the root included).
    pub categories: usize,
    /// Categories that hold a list of items.
    pub leaf_lists: usize,
    /// Items over all lists (a term listed in two lists counts twice).
    pub items: usize,
    pub max_depth: usize,
    /// Mean number of sub-categories over categories that have any.
    pub avg_branching: f64,
    /// Mean list length over leaf lists.
    pub avg_leaf_size: f64,
    /// Size of the rendered output.
    pub file_bytes: u64,
}

/// Computes the structure stats of `tree`; `file_bytes` is the rendered output's size.
pub fn structure_stats(tree: &TaxonomyNode, file_bytes: u64) -> StructureStats {
    let mut s = StructureStats { file_bytes, ..Default::default() };
    let (mut branching_sum, mut branching_nodes) = (0usize, 0usize);
    tree.walk(&mut |n, depth| {
        s.categories += 1;
        s.max_depth = s.max_depth.max(depth + 1);
        if !n.children.is_empty() {
            branching_sum += n.children.len();
            branching_nodes += 1;
        }
        if !n.items.is_empty() {
            s.leaf_lists += 1;
            s.items += n.items.len();
        }
    });
    s.avg_branching = ratio(branching_sum, branching_nodes);
    s.avg_leaf_size = ratio(s.items, s.leaf_lists);
    s
}

/// Shape of a loader's full hierarchy, where labels are nodes without children: those count
/// as items, and the categories holding them as leaf lists. Input for [`suggest_thresholds`].
pub fn hierarchy_stats(tree: &TaxonomyNode) -> StructureStats {
    let mut s = StructureStats::default();
    let (mut branching_sum, mut branching_nodes) = (0usize, 0usize);
    tree.walk(&mut |n, depth| {
        if n.children.is_empty() {
            s.items += 1.max(n.items.len());
            return;
        }
        s.categories += 1;
        s.max_depth = s.max_depth.max(depth + 1);
        branching_sum += n.children.len();
        branching_nodes += 1;
        if n.children.iter().any(|c| c.children.is_empty()) {
            s.leaf_lists += 1;
        }
    });
    s.avg_branching = ratio(branching_sum, branching_nodes);
    s.avg_leaf_size = ratio(s.items, s.leaf_lists);
    s
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        ((a as f64 / b as f64) * 100.0).round() / 100.0
    }
}

/// Smart-mode thresholds suggested for a hierarchy, from its raw (unpruned) shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestions {
    pub min_depth: usize,
    pub min_hyponyms: usize,
    pub min_leaf_size: usize,
}

/// Rules of thumb: keep about the top third of a deep tree as structure (at least 2 levels,
/// at most 4); flatten more as the label count grows (one hyponym per 100 labels, at least
/// 50); and ask for longer lists where the tree branches widely.
pub fn suggest_thresholds(raw: &StructureStats) -> Suggestions {
    let labels = raw.items.max(raw.leaf_lists);
    Suggestions {
        min_depth: raw.max_depth.saturating_sub(2).clamp(2, 4),
        min_hyponyms: (labels / 100).max(50),
        min_leaf_size: ((raw.avg_branching / 5.0) as usize).max(3),
    }
}

/// The kinds of timeline event (`kind` in the stats file, snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A pipeline stage started (`loading`, `pruning`, `shaping`, `rendering`).
    Stage,
    /// Something the user should know (a loader's fallback).
    Note,
    /// `preview_limit` cut the walk short.
    LimitReached,
    /// The tree's texts were embedded (counts, cache hits, calls).
    Embedding,
    /// Semantic cleaning of one list.
    Cleaning,
    /// Semantic arrangement of one list.
    Arrangement,
    /// ImageNet's strict naming: how many items and keys of the skeleton carry a
    /// disambiguated name (data: `labels`, `categories`, `examples` as [plain, name] pairs).
    Renaming,
}

/// One thing that happened during a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the job started.
    pub t_s: f64,
    pub kind: EventKind,
    /// The category it concerns, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// The events of one job, timestamped relative to its start.
#[derive(Debug, Clone)]
pub struct Timeline {
    start: Instant,
    events: Vec<Event>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    pub fn new() -> Self {
        Self { start: Instant::now(), events: Vec::new() }
    }

    /// Records an event now.
    pub fn log(
        &mut self,
        kind: EventKind,
        context: Option<&str>,
        message: impl Into<String>,
        data: serde_json::Value,
    ) {
        self.events.push(Event {
            t_s: self.elapsed_s(),
            kind,
            context: context.map(str::to_string),
            message: message.into(),
            data,
        });
    }

    /// Seconds since the timeline started.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn into_events(self) -> Vec<Event> {
        self.events
    }
}

/// Semantic lint results of a job (filled in when the job analyses outliers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LintStats {
    /// Items flagged as outliers at `threshold`.
    pub outliers: usize,
    pub threshold: f64,
    /// Lists that were checked (lists with at least 3 items).
    pub lists_checked: usize,
    /// The method the scores come from (absent in files written before methods existed:
    /// those were GLOSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<crate::params::OutlierMethod>,
    /// Items in the checked lists, and the share of them flagged.
    #[serde(default)]
    pub items_checked: usize,
    #[serde(default)]
    pub outlier_rate: f64,
    /// Every flagged item with its score, by list: what the skeleton viewer marks. Absent in
    /// stats files written before it was recorded (and empty when nothing was flagged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flagged: Vec<FlaggedList>,
}

impl LintStats {
    /// The method the scores come from; files written before methods existed were GLOSH.
    pub fn method_used(&self) -> crate::params::OutlierMethod {
        self.method.unwrap_or(crate::params::OutlierMethod::Glosh)
    }
}

/// The flagged items of one list (the lint's `lists` entries, kept in the stats file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlaggedList {
    /// Category names from the top of the file down to the list's category.
    pub path: Vec<String>,
    pub outliers: Vec<FlaggedItem>,
}

/// One flagged item and its outlier score (flagged when the score > the threshold).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlaggedItem {
    pub item: String,
    pub score: f64,
}

/// Content of `<output stem>.stats.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsFile {
    pub execution: Execution,
    pub metadata: Metadata,
    pub structure: StructureStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint: Option<LintStats>,
    /// What the job read from the reuse store instead of computing (when it had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<ReuseStats>,
    pub events: Vec<Event>,
}

/// Lookups in the reuse store ([`crate::semantic::reuse`]): found (reused) and not found
/// (computed, then stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitsMisses {
    pub hits: u64,
    pub misses: u64,
}

/// A job's lookups in the reuse store, in all and by kind of result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReuseStats {
    pub hits: u64,
    pub misses: u64,
    /// Outlier scores of a list (semantic cleaning and the lint).
    pub outliers: HitsMisses,
    /// Arrangements of a list (semantic arrangement).
    pub arrangements: HitsMisses,
    /// Vector sums of a list (the lint's "fits better in").
    pub list_sums: HitsMisses,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub duration_s: f64,
    /// When the job finished, seconds since the Unix epoch.
    pub finished_unix_s: u64,
    pub tool_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub dataset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The effective configuration (after presets, dataset overrides and defaults).
    pub config: Config,
}

impl Execution {
    pub fn now(duration_s: f64) -> Self {
        Self {
            duration_s: (duration_s * 1000.0).round() / 1000.0,
            finished_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// `out/tencent.yaml` -> `out/tencent.stats.json`.
pub fn stats_path(output: &Path) -> PathBuf {
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    output.with_file_name(format!("{stem}.stats.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_small_tree() {
        let mut root = TaxonomyNode::new("Root");
        let mut animal = TaxonomyNode::new("Animal");
        animal.children.push(TaxonomyNode::list("Dog", ["puppy", "hound", "pug"]));
        animal.children.push(TaxonomyNode::list("Cat", ["tabby"]));
        root.children.push(animal);
        root.children.push(TaxonomyNode::list("Food", ["bread", "rice"]));
        let s = structure_stats(&root, 123);
        assert_eq!(s.categories, 5);
        assert_eq!(s.leaf_lists, 3);
        assert_eq!(s.items, 6);
        assert_eq!(s.max_depth, 3);
        assert_eq!(s.avg_branching, 2.0);
        assert_eq!(s.avg_leaf_size, 2.0);
        assert_eq!(s.file_bytes, 123);
    }

    #[test]
    fn suggestions_follow_the_shape() {
        let raw = StructureStats {
            max_depth: 12,
            items: 9000,
            leaf_lists: 900,
            avg_branching: 30.0,
            ..Default::default()
        };
        let s = suggest_thresholds(&raw);
        assert_eq!(s, Suggestions { min_depth: 4, min_hyponyms: 90, min_leaf_size: 6 });
        let shallow = StructureStats { max_depth: 3, items: 80, ..Default::default() };
        assert_eq!(suggest_thresholds(&shallow).min_depth, 2);
        assert_eq!(suggest_thresholds(&shallow).min_hyponyms, 50);
    }

    #[test]
    fn stats_path_uses_the_stem() {
        assert_eq!(stats_path(Path::new("a/b.yaml")), PathBuf::from("a/b.stats.json"));
    }
}
