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

/// How semantic outliers are scored (`outlier_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutlierMethod {
    /// Calibrated: how far an item's similarity to its list falls below the list's typical
    /// similarity (crate::semantic::typicality); the default.
    Typicality,
    /// The Python original's HDBSCAN* GLOSH scores, bit for bit (aggressive at 0.1).
    Glosh,
}

impl OutlierMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            OutlierMethod::Typicality => "typicality",
            OutlierMethod::Glosh => "glosh",
        }
    }
}

impl fmt::Display for OutlierMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Output format of a skeleton.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Jsonl,
}

/// What a job writes besides its skeleton (`export`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A folder of Dynamic Prompts `.txt` wildcard files (crate::export).
    Txt,
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

// ---------------------------------------------------------------------------------------------
// The parameter table.
//
// Every parameter is defined once, in the `define_params!` invocation below: its type in a
// manifest (`Params`), its effective type and default (`Config`), and a [`ParamDef`] with its
// help text, group, command-line flag, value check, matrix-name abbreviation and the datasets
// that read it. From that one entry come the manifest's accepted keys and value checks, the
// clap arguments and `--help` (built by the command line from [`PARAMS`]), merging and
// precedence, per-subtree overrides, the stats file (`Config` is what it records) and the
// report's parameter columns.

/// The part of the tool a parameter belongs to (help headings, docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Smart pruning and the depth cut.
    Smart,
    /// Semantic cleaning and arrangement.
    Semantic,
    /// Read by one dataset's loader.
    Dataset,
    /// What is written.
    Output,
}

impl Group {
    /// The `--help` heading of this group's flags.
    pub fn heading(self) -> &'static str {
        match self {
            Group::Smart => "Smart pruning",
            Group::Semantic => "Semantic cleaning and arrangement",
            Group::Dataset => "Dataset",
            Group::Output => "Output",
        }
    }
}

/// How a value is written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` turns it on (true); off is the default.
    Switch,
    /// `--flag` (true) or `--flag BOOL`.
    Bool,
    /// A whole number.
    Count,
    /// A number between 0 and 1.
    Unit,
    /// A word or text.
    Text,
    /// Comma-separated words.
    List,
    /// One of fixed names (`values` of the definition).
    Choice,
    /// Not on the command line as a value (`smart_overrides`: `--smart-config FILE`).
    Map,
}

/// What the value must satisfy beyond its type (the same check for manifest and command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    None,
    /// At least this much.
    AtLeast(u64),
    /// Between 0 and 1.
    Unit,
    /// Contains `{}`.
    Placeholder,
    /// A valid regular expression.
    Regex,
    /// A model the embed-server serves.
    Model,
}

/// When a command-line flag makes sense (a flag that would do nothing is a usage error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Always,
    /// Only with `--smart`.
    Smart,
    /// Only without `--smart`.
    NoSmart,
    /// Only when one of these switches is on (parameter names, or `analyze`).
    AnyOf(&'static [&'static str]),
}

/// One parameter: everything the tools know about it besides its Rust type.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// Manifest key and `Params` field.
    pub name: &'static str,
    /// Doc text: the first line is the short `--help`.
    pub help: &'static str,
    pub group: Group,
    /// Long command-line flag (without `--`); `None` when the parameter has no flag of its own.
    pub flag: Option<&'static str>,
    pub value_name: &'static str,
    pub kind: Kind,
    /// Accepted names for [`Kind::Choice`].
    pub values: &'static [&'static str],
    pub check: Check,
    pub needs: Needs,
    /// Short name in matrix job names (`leaf` for `min_leaf_size`).
    pub abbrev: &'static str,
    /// The datasets that read it; empty = all.
    pub datasets: &'static [Dataset],
    /// Whether a `smart_overrides` entry may set it for a subtree.
    pub per_subtree: bool,
}

impl ParamDef {
    const BASE: ParamDef = ParamDef {
        name: "",
        help: "",
        group: Group::Smart,
        flag: None,
        value_name: "",
        kind: Kind::Text,
        values: &[],
        check: Check::None,
        needs: Needs::Always,
        abbrev: "",
        datasets: &[],
        per_subtree: true,
    };

    /// The short help (first line of the doc text).
    pub fn short_help(&self) -> &'static str {
        self.help.lines().next().unwrap_or("").trim()
    }

    /// Whether `dataset` reads this parameter.
    pub fn applies_to(&self, dataset: Dataset) -> bool {
        self.datasets.is_empty() || self.datasets.contains(&dataset)
    }

    /// The matrix-name abbreviation, or the name itself.
    pub fn abbreviation(&self) -> &'static str {
        if self.abbrev.is_empty() {
            self.name
        } else {
            self.abbrev
        }
    }

    /// `--min-leaf` (or the manifest key when there is no flag).
    pub fn flag_text(&self) -> String {
        match self.flag {
            Some(f) => format!("--{f}"),
            None => self.name.to_string(),
        }
    }

    /// The value check, on the value as JSON: `Err((problem, fix))` when it fails. Types are
    /// checked by the parser before; this is what no pipeline stage can use.
    pub fn check_value(&self, v: &serde_json::Value) -> Result<(), (String, String)> {
        let fail = |problem: String, fix: &str| Err((problem, fix.to_string()));
        match self.check {
            Check::None => Ok(()),
            Check::AtLeast(min) => match v.as_u64() {
                Some(n) if n < min && min == 1 => {
                    fail("must be at least 1".into(), "use 1 or more")
                }
                Some(n) if n < min => {
                    fail(format!("{n} is too small"), &format!("use {min} or more"))
                }
                _ => Ok(()),
            },
            Check::Unit => match v.as_f64() {
                Some(x) if !(0.0..=1.0).contains(&x) => {
                    fail(format!("{x} is outside 0..1"), "use a value between 0 and 1")
                }
                _ => Ok(()),
            },
            Check::Placeholder => match v.as_str() {
                Some(t) if !t.contains("{}") => fail(
                    format!("{t:?} has no `{{}}`"),
                    "put `{}` where the parent's name goes, e.g. `other_{}`",
                ),
                _ => Ok(()),
            },
            Check::Regex => match v.as_str().map(regex::Regex::new) {
                Some(Err(e)) => fail(
                    format!("not a valid regular expression: {e}"),
                    "fix the pattern (Rust regex syntax)",
                ),
                _ => Ok(()),
            },
            // Which names exist is the embed-server's to say (its `--model NAME=...`): the
            // clients check the name against the server's models before any work.
            Check::Model => match v.as_str() {
                Some(m) if m.trim().is_empty() || m.trim().contains(char::is_whitespace) => fail(
                    format!("{m:?} is not a model name"),
                    "use a name of the embed-server's models (`embed-server info` lists them); \
                     minilm is all-MiniLM-L6-v2",
                ),
                _ => Ok(()),
            },
        }
    }
}

/// The canonical name of all-MiniLM-L6-v2 (`minilm`) for the names people write for it;
/// `None` for other names (used as written: the embed-server resolves them).
pub fn normalize_model(name: &str) -> Option<&'static str> {
    match name.trim().to_ascii_lowercase().as_str() {
        "minilm" | "all-minilm-l6-v2" | "sentence-transformers/all-minilm-l6-v2" => Some("minilm"),
        _ => None,
    }
}

/// What a default may depend on: the dataset and its (preset, dataset-override) values.
pub struct Defaults {
    pub dataset: Dataset,
    pub preset: PresetValues,
}

impl Defaults {
    fn tencent(&self) -> bool {
        self.dataset == Dataset::Tencent
    }
}

macro_rules! define_params {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty => $cty:ty = $default:expr,
        $def:expr;
    )*) => {
        /// Parameters as written in a manifest or given on a command line: every field
        /// optional. Unknown names are rejected (the error lists the valid ones).
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Params {
            $(
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        /// The effective configuration of one generation: every value decided.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct Config {
            pub dataset: Dataset,
            $( $(#[doc = $doc])* pub $name: $cty, )*
        }

        /// Every parameter, in manifest order.
        pub const PARAMS: &[ParamDef] = &[
            $( ParamDef { name: stringify!($name), help: concat!($($doc, "\n"),*), ..$def }, )*
        ];

        impl Params {
            /// `self` with every field that `over` sets replaced by `over`'s value.
            pub fn merged_with(&self, over: &Params) -> Params {
                Params { $( $name: over.$name.clone().or_else(|| self.$name.clone()), )* }
            }

            /// The names of the parameters this sets, with their values as JSON.
            pub fn set_values(&self) -> Vec<(&'static str, serde_json::Value)> {
                let mut out = Vec::new();
                $(
                    if let Some(v) = &self.$name {
                        out.push((stringify!($name), serde_json::to_value(v).unwrap_or_default()));
                    }
                )*
                out
            }

            fn resolve_with(&self, d: &Defaults) -> Config {
                Config {
                    dataset: d.dataset,
                    $(
                        $name: match &self.$name {
                            Some(v) => <$cty>::from(v.clone()),
                            None => {
                                let default: fn(&Defaults) -> $cty = $default;
                                default(d)
                            }
                        },
                    )*
                }
            }
        }

        impl Config {
            /// Takes every value `o` sets that may vary per subtree.
            fn set_per_subtree(&mut self, o: &Params) {
                $(
                    if let Some(v) = &o.$name {
                        if param(stringify!($name)).is_some_and(|d| d.per_subtree) {
                            self.$name = <$cty>::from(v.clone());
                        }
                    }
                )*
            }
        }
    };
}

const SMART: ParamDef = ParamDef { group: Group::Smart, needs: Needs::Smart, ..ParamDef::BASE };
const SEMANTIC: ParamDef = ParamDef { group: Group::Semantic, ..ParamDef::BASE };
const OUTPUT: ParamDef = ParamDef { group: Group::Output, ..ParamDef::BASE };
const IMAGENET: ParamDef = ParamDef {
    group: Group::Dataset,
    datasets: &[Dataset::Imagenet],
    per_subtree: false,
    ..ParamDef::BASE
};
/// Outlier settings matter to cleaning and to the analysis (`analyze`: a job's lint).
const NEEDS_CLEAN: Needs = Needs::AnyOf(&["semantic_clean", "analyze"]);
const NEEDS_ARRANGE: Needs = Needs::AnyOf(&["semantic_arrange"]);

define_params! {
    /// Smart mode: keep only WordNet-significant categories, flatten the rest into lists.
    smart: bool => bool = |_| false,
        ParamDef { flag: Some("smart"), kind: Kind::Switch, needs: Needs::Always, ..SMART };
    /// Smart preset (thresholds below override it).
    preset: Preset => Preset = |_| Preset::Balanced,
        ParamDef { flag: Some("preset"), value_name: "NAME", kind: Kind::Choice,
            values: &["ultra-detailed", "detailed", "balanced", "compact", "flat", "ultra-flat"],
            ..SMART };
    /// Without --smart: how many category levels to keep (dataset roots are level 1).
    depth: usize => usize = |_| 10,
        ParamDef { flag: Some("depth"), value_name: "N", kind: Kind::Count,
            check: Check::AtLeast(1), needs: Needs::NoSmart, ..SMART };
    /// Leave out the `# instruction:` comments.
    no_glosses: bool => bool = |_| false,
        ParamDef { flag: Some("no-glosses"), kind: Kind::Switch, ..OUTPUT };
    /// Keep a category whose WordNet min depth is at most this.
    min_depth: usize => usize = |d| d.preset.min_depth,
        ParamDef { flag: Some("min-depth"), value_name: "N", kind: Kind::Count, abbrev: "depth",
            ..SMART };
    /// Keep a category with at least this many WordNet hyponyms.
    min_hyponyms: usize => usize = |d| d.preset.min_hyponyms,
        ParamDef { flag: Some("min-hyponyms"), value_name: "N", kind: Kind::Count, abbrev: "hyp",
            ..SMART };
    /// Lists smaller than this bubble up to their parent (smart mode).
    min_leaf_size: usize => usize = |d| d.preset.min_leaf_size,
        ParamDef { flag: Some("min-leaf"), value_name: "N", kind: Kind::Count,
            check: Check::AtLeast(1), abbrev: "leaf", ..SMART };
    /// Bubble small lists up into the parent's orphan bin (`--merge-orphans false` to keep
    /// them in place).
    merge_orphans: bool => bool = |d| d.preset.merge_orphans,
        ParamDef { flag: Some("merge-orphans"), value_name: "BOOL", kind: Kind::Bool, ..SMART };
    /// Categories to skip (name, WordNet lemma or wnid; comma-separated): their children take
    /// their place. Replaces the dataset's default list.
    skip_nodes: Vec<String> => Vec<String> = |d| match d.tencent() {
            true => TENCENT_SKIP_NODES.iter().map(|s| s.to_string()).collect(),
            false => Vec::new(),
        },
        ParamDef { flag: Some("skip-nodes"), value_name: "NAMES", kind: Kind::List, ..SMART };
    /// Label of the bin for bubbled-up items; `{}` is the parent's name.
    orphans_label_template: String => String = |d| match d.tencent() {
            true => "other_{}".into(),
            false => "Other {}".into(),
        },
        ParamDef { flag: Some("orphans-label-template"), value_name: "TEMPLATE",
            check: Check::Placeholder, needs: Needs::Always, ..SMART };
    /// Category name or wnid -> overrides for that subtree (`--smart-config FILE`).
    smart_overrides: BTreeMap<String, Params> => BTreeMap<String, Params> = |_| BTreeMap::new(),
        ParamDef { kind: Kind::Map, per_subtree: false, ..SMART };
    /// Remove semantic outliers (score by --outlier-method above --semantic-threshold) from
    /// flattened lists. Needs an embedding server (see --server).
    semantic_clean: bool => bool = |_| false,
        ParamDef { flag: Some("semantic-clean"), kind: Kind::Switch, ..SEMANTIC };
    /// Outlier score (by --outlier-method) above which lint flags an item and --semantic-clean
    /// drops it (0..1, default 0.1; lower removes more). With typicality, t flags about
    /// 10^-(1.4+2t) of a list's ordinary items: 0.1 -> 2.5 %, 0.2 -> 1.6 %, 0.3 -> 1 %.
    semantic_threshold: f64 => f64 = |_| 0.1,
        ParamDef { flag: Some("semantic-threshold"), value_name: "T", kind: Kind::Unit,
            check: Check::Unit, needs: NEEDS_CLEAN, abbrev: "thresh", ..SEMANTIC };
    /// How outliers are scored: typicality (default; calibrated, see the README) or glosh
    /// (the Python original's HDBSCAN GLOSH scores).
    outlier_method: OutlierMethod => OutlierMethod = |_| OutlierMethod::Typicality,
        ParamDef { flag: Some("outlier-method"), value_name: "METHOD", kind: Kind::Choice,
            values: &["typicality", "glosh"], needs: NEEDS_CLEAN, abbrev: "method", ..SEMANTIC };
    /// Sentence-embedding model: a name of the embed-server's models (`minilm`,
    /// all-MiniLM-L6-v2, by default; a server started with `--model NAME=...` has others).
    /// An unknown name is a usage error listing the server's models, before any work.
    semantic_model: String => String = |_| "minilm".into(),
        ParamDef { flag: Some("semantic-model"), value_name: "NAME", check: Check::Model,
            needs: Needs::AnyOf(&["semantic_clean", "semantic_arrange"]), ..SEMANTIC };
    /// Re-grow named sub-groups in long flattened lists (HDBSCAN over embeddings, WordNet
    /// names). Needs an embedding server (see --server).
    semantic_arrange: bool => bool = |_| false,
        ParamDef { flag: Some("semantic-arrange"), kind: Kind::Switch, ..SEMANTIC };
    /// A group is kept when its mean membership probability is at least this (0..1,
    /// default 0.15).
    semantic_arrange_threshold: f64 => f64 = |_| 0.15,
        ParamDef { flag: Some("semantic-arrange-threshold"), value_name: "T", kind: Kind::Unit,
            check: Check::Unit, needs: NEEDS_ARRANGE, abbrev: "athresh", ..SEMANTIC };
    /// Smallest group semantic arrangement forms (default 5).
    semantic_arrange_min_cluster: usize => usize = |_| 5,
        ParamDef { flag: Some("semantic-arrange-min-cluster"), value_name: "N", kind: Kind::Count,
            check: Check::AtLeast(2), needs: NEEDS_ARRANGE, abbrev: "acluster", ..SEMANTIC };
    /// Cluster selection of semantic arrangement: eom or leaf (default: the preset's).
    semantic_arrange_method: ClusterMethod => ClusterMethod = |d| d.preset.method,
        ParamDef { flag: Some("semantic-arrange-method"), value_name: "eom|leaf",
            kind: Kind::Choice, values: &["eom", "leaf"], needs: NEEDS_ARRANGE, ..SEMANTIC };
    /// Fast preview: stop after visiting this many nodes of the hierarchy.
    preview_limit: usize => Option<usize> = |_| None,
        ParamDef { flag: Some("preview-limit"), value_name: "N", kind: Kind::Count,
            check: Check::AtLeast(1), ..OUTPUT };
    /// Output format.
    format: Format => Format = |_| Format::Yaml,
        ParamDef { flag: Some("format"), value_name: "FORMAT", kind: Kind::Choice,
            values: &["yaml", "jsonl"], ..OUTPUT };
    /// Also write the skeleton as wildcard files: `txt` = a folder `<output stem>_wildcards`
    /// beside the output with one .txt per list (Dynamic Prompts `__Category/Sub/List__`; see
    /// `wildcards-gen export --help`). Replaces an earlier export of the same job.
    export: ExportFormat => Option<ExportFormat> = |_| None,
        ParamDef { flag: Some("export"), value_name: "FORMAT", kind: Kind::Choice,
            values: &["txt"], per_subtree: false, ..OUTPUT };
    /// Root synset: a name like animal.n.01 or a wnid like n00015388 [default: entity.n.01].
    root: String => String = |_| "entity.n.01".into(),
        ParamDef { flag: Some("root"), value_name: "SYNSET", ..IMAGENET };
    /// Keep only the ImageNet-1k or -21k classes (and the categories above them).
    filter: ImagenetFilter => ImagenetFilter = |_| ImagenetFilter::None,
        ParamDef { flag: Some("filter"), value_name: "SET", kind: Kind::Choice,
            values: &["1k", "21k", "none"], ..IMAGENET };
    /// Name synsets unambiguously: `tank suit`, `crane (wading bird)` [default: true].
    /// A synset that is not the first sense of its name keeps its place and subtree, and is
    /// called by another of its lemmas that is that lemma's first sense, else by its name and
    /// the nearest hypernym no other sense of the name has. False: plain first lemmas, which
    /// a prompt may read in another sense ("crane" the machine read as the bird).
    strict: bool => bool = |_| true,
        ParamDef { flag: Some("strict"), value_name: "BOOL", kind: Kind::Bool, ..IMAGENET };
    /// Drop synsets that are not the first sense of their name, with their subtrees.
    /// Strict mode did this before it named such synsets instead; it cuts most of the
    /// hierarchy (ImageNet-1k keeps 10 of its 1,000 classes).
    drop_secondary_senses: bool => bool = |_| false,
        ParamDef { flag: Some("drop-secondary-senses"), kind: Kind::Switch, ..IMAGENET };
    /// Drop abstract top categories (abstraction, attribute, act, group, ...).
    blacklist: bool => bool = |_| false,
        ParamDef { flag: Some("blacklist"), kind: Kind::Switch, ..IMAGENET };
    /// Drop synsets whose name matches this regular expression (with their subtrees).
    exclude_regex: String => Option<String> = |_| None,
        ParamDef { flag: Some("exclude-regex"), value_name: "REGEX", check: Check::Regex,
            ..IMAGENET };
    /// Drop these subtrees (synset names or wnids, comma-separated).
    exclude_subtree: Vec<String> => Vec<String> = |_| Vec::new(),
        ParamDef { flag: Some("exclude-subtree"), value_name: "SYNSETS", kind: Kind::List,
            ..IMAGENET };
    /// Only the boxable classes of the bounding-box hierarchy.
    bbox_only: bool => bool = |_| false,
        ParamDef { flag: Some("bbox-only"), kind: Kind::Switch,
            datasets: &[Dataset::Openimages], ..IMAGENET };
}

/// Every valid parameter name, for error messages and manifest validation.
pub fn param_names() -> impl Iterator<Item = &'static str> {
    PARAMS.iter().map(|d| d.name)
}

/// The definition of parameter `name`.
pub fn param(name: &str) -> Option<&'static ParamDef> {
    PARAMS.iter().find(|d| d.name == name)
}

/// One problem with a parameter value: (field path below the params, problem, fix).
pub type Problem = (String, String, String);

impl Params {
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
        let preset = self.preset.unwrap_or(Preset::Balanced).values(dataset);
        self.resolve_with(&Defaults { dataset, preset })
    }

    /// The values no pipeline stage can use, by the table's checks; the same for manifests,
    /// command lines and `--smart-config` files. Subtree overrides are checked too (and may
    /// not set what cannot vary per subtree).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (name, value) in self.set_values() {
            let Some(def) = param(name) else { continue };
            if let Err((problem, fix)) = def.check_value(&value) {
                out.push((name.to_string(), problem, fix));
            }
        }
        for (k, sub) in self.smart_overrides.iter().flatten() {
            for (name, _) in sub.set_values() {
                if param(name).is_some_and(|d| !d.per_subtree) {
                    let problem = "cannot be set for one subtree".to_string();
                    let fix = format!("move `{name}` to the job's own parameters");
                    out.push((format!("smart_overrides.{k}.{name}"), problem, fix));
                }
            }
            for (field, problem, fix) in sub.problems() {
                out.push((format!("smart_overrides.{k}.{field}"), problem, fix));
            }
        }
        out
    }

    /// The first parameter set here that `dataset` does not read.
    pub fn wrong_dataset_param(&self, dataset: Dataset) -> Option<&'static ParamDef> {
        self.set_values().into_iter().filter_map(|(n, _)| param(n)).find(|d| !d.applies_to(dataset))
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

impl Config {
    /// True when the job asks for sentence embeddings anywhere (its overrides included).
    pub fn needs_embeddings(&self) -> bool {
        self.semantic_clean
            || self.semantic_arrange
            || self.smart_overrides.values().any(|p| p.needs_embeddings())
    }

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
        // What cannot vary per subtree is refused by validation and ignored here.
        c.set_per_subtree(overrides);
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
        let err = serde_norway::from_str::<Params>("min_leaf: 3").unwrap_err().to_string();
        assert!(err.contains("min_leaf"), "{err}");
    }

    #[test]
    fn the_table_names_every_field_once_with_a_flag_or_a_reason() {
        let names: Vec<&str> = param_names().collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
        // Every field of the struct is in the table (the macro makes both): a default config
        // serialises exactly the table's names after `dataset`.
        let v = serde_json::to_value(Params::default().resolve(Dataset::Tencent)).unwrap();
        let keys: std::collections::BTreeSet<&str> =
            v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = unique.clone();
        expected.insert("dataset");
        assert_eq!(keys, expected);
        for def in PARAMS {
            assert!(def.flag.is_some() || def.kind == Kind::Map, "{} has no flag", def.name);
            assert!(!def.short_help().is_empty(), "{} has no help", def.name);
        }
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
