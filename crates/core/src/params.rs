//! Generation parameters: what a manifest job or a command line sets ([`Params`]), and the
//! effective configuration after presets and dataset overrides are applied ([`Config`]).
//!
//! Precedence: explicit parameter > dataset override of the preset > preset > default.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The datasets the tool can generate from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    Tencent,
    Imagenet,
    Coco,
    Openimages,
}

impl Dataset {
    pub const ALL: [Dataset; 4] =
        [Dataset::Tencent, Dataset::Imagenet, Dataset::Coco, Dataset::Openimages];

    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Tencent => "tencent",
            Dataset::Imagenet => "imagenet",
            Dataset::Coco => "coco",
            Dataset::Openimages => "openimages",
        }
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dataset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dataset::ALL.into_iter().find(|d| d.as_str() == s.to_ascii_lowercase()).ok_or_else(|| {
            format!("unknown dataset '{s}': use one of tencent, imagenet, coco, openimages")
        })
    }
}

/// HDBSCAN cluster selection used by semantic arrangement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMethod {
    Eom,
    Leaf,
}

/// Output format of a skeleton.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Jsonl,
}

/// ImageNet class-list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImagenetFilter {
    #[serde(rename = "1k")]
    OneK,
    #[serde(rename = "21k")]
    TwentyOneK,
    None,
}

/// The named presets of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    UltraDetailed,
    Detailed,
    Balanced,
    Compact,
    Flat,
    UltraFlat,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::UltraDetailed,
        Preset::Detailed,
        Preset::Balanced,
        Preset::Compact,
        Preset::Flat,
        Preset::UltraFlat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::UltraDetailed => "ultra-detailed",
            Preset::Detailed => "detailed",
            Preset::Balanced => "balanced",
            Preset::Compact => "compact",
            Preset::Flat => "flat",
            Preset::UltraFlat => "ultra-flat",
        }
    }

    /// (min_depth, min_hyponyms, min_leaf_size, merge_orphans, method) for a dataset.
    pub fn values(self, dataset: Dataset) -> PresetValues {
        use Preset::*;
        let (min_depth, min_hyponyms, min_leaf_size, method) = match (dataset, self) {
            (Dataset::Openimages, Balanced) => (4, 50, 5, ClusterMethod::Eom),
            (Dataset::Openimages, Compact) => (3, 200, 10, ClusterMethod::Eom),
            (Dataset::Openimages, Flat) => (2, 1500, 15, ClusterMethod::Eom),
            (Dataset::Tencent, Balanced) => (4, 30, 5, ClusterMethod::Eom),
            (Dataset::Tencent, Compact) => (3, 100, 10, ClusterMethod::Eom),
            (Dataset::Tencent, Flat) => (2, 600, 20, ClusterMethod::Eom),
            (_, UltraDetailed) => (8, 5, 1, ClusterMethod::Eom),
            (_, Detailed) => (6, 10, 3, ClusterMethod::Eom),
            (_, Balanced) => (4, 50, 5, ClusterMethod::Eom),
            (_, Compact) => (3, 100, 8, ClusterMethod::Eom),
            (_, Flat) => (2, 500, 10, ClusterMethod::Eom),
            (_, UltraFlat) => (1, 1000, 20, ClusterMethod::Leaf),
        };
        PresetValues { min_depth, min_hyponyms, min_leaf_size, merge_orphans: true, method }
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Preset::ALL.iter().map(|p| p.as_str()).collect();
            format!("unknown preset '{s}': use one of {}", names.join(", "))
        })
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetValues {
    pub min_depth: usize,
    pub min_hyponyms: usize,
    pub min_leaf_size: usize,
    pub merge_orphans: bool,
    pub method: ClusterMethod,
}

/// Parameters as written in a manifest or given on a command line: every field optional.
/// Unknown names are rejected (see [`PARAM_NAMES`] for the error listing the valid ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_glosses: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_depth: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_hyponyms: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_leaf_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merge_orphans: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_nodes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orphans_label_template: Option<String>,
    /// Category name or wnid -> overrides for that subtree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart_overrides: Option<BTreeMap<String, Params>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_clean: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_arrange: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_arrange_threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_arrange_min_cluster: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_arrange_method: Option<ClusterMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    // ImageNet
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<ImagenetFilter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_subtree: Option<Vec<String>>,
    // Open Images
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bbox_only: Option<bool>,
}

/// Every valid parameter name, for error messages and manifest validation.
pub const PARAM_NAMES: &[&str] = &[
    "smart",
    "preset",
    "depth",
    "no_glosses",
    "min_depth",
    "min_hyponyms",
    "min_leaf_size",
    "merge_orphans",
    "skip_nodes",
    "orphans_label_template",
    "smart_overrides",
    "semantic_clean",
    "semantic_threshold",
    "semantic_model",
    "semantic_arrange",
    "semantic_arrange_threshold",
    "semantic_arrange_min_cluster",
    "semantic_arrange_method",
    "preview_limit",
    "format",
    "root",
    "filter",
    "strict",
    "blacklist",
    "exclude_regex",
    "exclude_subtree",
    "bbox_only",
];

impl Params {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn merged_with(&self, over: &Params) -> Params {
        macro_rules! pick {
            ($($f:ident),*) => { Params { $($f: over.$f.clone().or_else(|| self.$f.clone())),* } };
        }
        pick!(
            smart,
            preset,
            depth,
            no_glosses,
            min_depth,
            min_hyponyms,
            min_leaf_size,
            merge_orphans,
            skip_nodes,
            orphans_label_template,
            smart_overrides,
            semantic_clean,
            semantic_threshold,
            semantic_model,
            semantic_arrange,
            semantic_arrange_threshold,
            semantic_arrange_min_cluster,
            semantic_arrange_method,
            preview_limit,
            format,
            root,
            filter,
            strict,
            blacklist,
            exclude_regex,
            exclude_subtree,
            bbox_only
        )
    }

    /// Whether a job with these parameters needs sentence embeddings (and so a server).
    pub fn needs_embeddings(&self) -> bool {
        let own = self.semantic_clean == Some(true) || self.semantic_arrange == Some(true);
        own || self
            .smart_overrides
            .as_ref()
            .is_some_and(|o| o.values().any(|p| p.needs_embeddings()))
    }

    /// Resolves presets, dataset overrides and defaults into the effective configuration.
    pub fn resolve(&self, dataset: Dataset) -> Config {
        let preset = self.preset.unwrap_or(Preset::Balanced);
        let pv = preset.values(dataset);
        let tencent = dataset == Dataset::Tencent;
        let default_skip: Vec<String> = if tencent {
            TENCENT_SKIP_NODES.iter().map(|s| s.to_string()).collect()
        } else {
            Vec::new()
        };
        let default_template = if tencent { "other_{}" } else { "Other {}" };
        Config {
            dataset,
            smart: self.smart.unwrap_or(false),
            preset,
            depth: self.depth.unwrap_or(10),
            no_glosses: self.no_glosses.unwrap_or(false),
            min_depth: self.min_depth.unwrap_or(pv.min_depth),
            min_hyponyms: self.min_hyponyms.unwrap_or(pv.min_hyponyms),
            min_leaf_size: self.min_leaf_size.unwrap_or(pv.min_leaf_size),
            merge_orphans: self.merge_orphans.unwrap_or(pv.merge_orphans),
            skip_nodes: self.skip_nodes.clone().unwrap_or(default_skip),
            orphans_label_template: self
                .orphans_label_template
                .clone()
                .unwrap_or_else(|| default_template.to_string()),
            smart_overrides: self.smart_overrides.clone().unwrap_or_default(),
            semantic_clean: self.semantic_clean.unwrap_or(false),
            semantic_threshold: self.semantic_threshold.unwrap_or(0.1),
            semantic_model: self.semantic_model.clone().unwrap_or_else(|| "minilm".into()),
            semantic_arrange: self.semantic_arrange.unwrap_or(false),
            semantic_arrange_threshold: self.semantic_arrange_threshold.unwrap_or(0.15),
            semantic_arrange_min_cluster: self.semantic_arrange_min_cluster.unwrap_or(5),
            semantic_arrange_method: self.semantic_arrange_method.unwrap_or(pv.method),
            preview_limit: self.preview_limit,
            format: self.format.unwrap_or(Format::Yaml),
            root: self.root.clone().unwrap_or_else(|| "entity.n.01".into()),
            filter: self.filter.unwrap_or(ImagenetFilter::None),
            strict: self.strict.unwrap_or(true),
            blacklist: self.blacklist.unwrap_or(false),
            exclude_regex: self.exclude_regex.clone(),
            exclude_subtree: self.exclude_subtree.clone().unwrap_or_default(),
            bbox_only: self.bbox_only.unwrap_or(false),
        }
    }
}

/// Tencent's default skip nodes (DESIGN.md): generic WordNet levels that add no structure.
pub const TENCENT_SKIP_NODES: &[&str] = &[
    "placental",
    "organism",
    "living thing",
    "whole",
    "object",
    "physical entity",
    "causal agent",
];

/// The effective configuration of one generation: every value decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub dataset: Dataset,
    pub smart: bool,
    pub preset: Preset,
    pub depth: usize,
    pub no_glosses: bool,
    pub min_depth: usize,
    pub min_hyponyms: usize,
    pub min_leaf_size: usize,
    pub merge_orphans: bool,
    pub skip_nodes: Vec<String>,
    pub orphans_label_template: String,
    pub smart_overrides: BTreeMap<String, Params>,
    pub semantic_clean: bool,
    pub semantic_threshold: f64,
    pub semantic_model: String,
    pub semantic_arrange: bool,
    pub semantic_arrange_threshold: f64,
    pub semantic_arrange_min_cluster: usize,
    pub semantic_arrange_method: ClusterMethod,
    pub preview_limit: Option<usize>,
    pub format: Format,
    pub root: String,
    pub filter: ImagenetFilter,
    pub strict: bool,
    pub blacklist: bool,
    pub exclude_regex: Option<String>,
    pub exclude_subtree: Vec<String>,
    pub bbox_only: bool,
}

impl Config {
    /// The configuration for a subtree that `overrides` applies to: explicit override values
    /// win, the rest is inherited. A preset in the override re-bases the preset values.
    pub fn with_overrides(&self, overrides: &Params) -> Config {
        let mut c = self.clone();
        if let Some(p) = overrides.preset {
            let pv = p.values(self.dataset);
            c.preset = p;
            c.min_depth = pv.min_depth;
            c.min_hyponyms = pv.min_hyponyms;
            c.min_leaf_size = pv.min_leaf_size;
            c.merge_orphans = pv.merge_orphans;
            c.semantic_arrange_method = pv.method;
        }
        macro_rules! set {
            ($($f:ident),*) => { $(if let Some(v) = &overrides.$f { c.$f = v.clone(); })* };
        }
        set!(
            smart,
            depth,
            no_glosses,
            min_depth,
            min_hyponyms,
            min_leaf_size,
            merge_orphans,
            skip_nodes,
            orphans_label_template,
            semantic_clean,
            semantic_threshold,
            semantic_model,
            semantic_arrange,
            semantic_arrange_threshold,
            semantic_arrange_min_cluster,
            semantic_arrange_method,
            format
        );
        if overrides.preview_limit.is_some() {
            c.preview_limit = overrides.preview_limit;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_beats_dataset_override_beats_preset() {
        let p = Params { preset: Some(Preset::Compact), ..Default::default() };
        let c = p.resolve(Dataset::Tencent);
        assert_eq!((c.min_depth, c.min_hyponyms, c.min_leaf_size), (3, 100, 10));
        let c = p.resolve(Dataset::Imagenet);
        assert_eq!((c.min_depth, c.min_hyponyms, c.min_leaf_size), (3, 100, 8));
        let p =
            Params { preset: Some(Preset::Compact), min_leaf_size: Some(42), ..Default::default() };
        assert_eq!(p.resolve(Dataset::Tencent).min_leaf_size, 42);
    }

    #[test]
    fn defaults_are_balanced() {
        let c = Params::default().resolve(Dataset::Tencent);
        assert_eq!(c.preset, Preset::Balanced);
        assert_eq!((c.min_depth, c.min_hyponyms, c.min_leaf_size), (4, 30, 5));
        assert_eq!(c.depth, 10);
        assert_eq!(c.semantic_threshold, 0.1);
        assert_eq!(c.semantic_arrange_threshold, 0.15);
        assert_eq!(c.semantic_arrange_min_cluster, 5);
        assert_eq!(c.orphans_label_template, "other_{}");
        assert!(c.skip_nodes.iter().any(|s| s == "placental"));
        assert_eq!(Params::default().resolve(Dataset::Coco).skip_nodes.len(), 0);
    }

    #[test]
    fn ultra_flat_uses_leaf_selection() {
        let p = Params { preset: Some(Preset::UltraFlat), ..Default::default() };
        assert_eq!(p.resolve(Dataset::Coco).semantic_arrange_method, ClusterMethod::Leaf);
    }

    #[test]
    fn unknown_parameter_is_rejected() {
        let err = serde_yaml::from_str::<Params>("min_leaf: 3").unwrap_err().to_string();
        assert!(err.contains("min_leaf"), "{err}");
    }

    #[test]
    fn param_names_match_the_struct() {
        let v = serde_json::to_value(Params {
            smart: Some(true),
            preset: Some(Preset::Flat),
            depth: Some(1),
            no_glosses: Some(true),
            min_depth: Some(1),
            min_hyponyms: Some(1),
            min_leaf_size: Some(1),
            merge_orphans: Some(true),
            skip_nodes: Some(vec![]),
            orphans_label_template: Some(String::new()),
            smart_overrides: Some(BTreeMap::new()),
            semantic_clean: Some(true),
            semantic_threshold: Some(0.1),
            semantic_model: Some(String::new()),
            semantic_arrange: Some(true),
            semantic_arrange_threshold: Some(0.1),
            semantic_arrange_min_cluster: Some(1),
            semantic_arrange_method: Some(ClusterMethod::Eom),
            preview_limit: Some(1),
            format: Some(Format::Yaml),
            root: Some(String::new()),
            filter: Some(ImagenetFilter::OneK),
            strict: Some(true),
            blacklist: Some(true),
            exclude_regex: Some(String::new()),
            exclude_subtree: Some(vec![]),
            bbox_only: Some(true),
        })
        .unwrap();
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        let mut names: Vec<_> = PARAM_NAMES.iter().map(|s| s.to_string()).collect();
        keys.sort();
        names.sort();
        assert_eq!(keys, names);
    }

    #[test]
    fn merged_with_prefers_the_override() {
        let base = Params { smart: Some(true), min_leaf_size: Some(5), ..Default::default() };
        let over = Params { min_leaf_size: Some(20), ..Default::default() };
        let m = base.merged_with(&over);
        assert_eq!(m.smart, Some(true));
        assert_eq!(m.min_leaf_size, Some(20));
    }
}
