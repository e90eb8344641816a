//! `wildcards-gen dataset <name> [flags]`: generate one skeleton from a dataset.
//!
//! The flags are the upstream tool's; each maps onto a [`Params`] field, so the command line,
//! a batch manifest and a `--smart-config` file mean the same thing. Flags not given fall back
//! to the preset (with the dataset's override) and then the defaults.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget};
use wildcards_core::datasets::download::{self, Progress};
use wildcards_core::generate::{
    generate, load_dataset_with_notes, needs_embeddings, GenerateContext, Generated, Stage,
};
use wildcards_core::output::write_atomic;
use wildcards_core::params::{
    ClusterMethod, Config, Dataset, Format, ImagenetFilter, Params, Preset,
};
use wildcards_core::stats::{hierarchy_stats, stats_path, suggest_thresholds};

use super::embedding::ServerArgs;
use wildcards_core::wordnet::WordNet;

use super::UsageError;

#[derive(Debug, Args)]
pub struct DatasetArgs {
    #[command(subcommand)]
    pub dataset: DatasetCommand,
}

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Tencent ML-Images: 11,166 WordNet categories in a semantic hierarchy.
    Tencent(TencentArgs),
    /// ImageNet: the WordNet noun hierarchy below a root synset, optionally limited to the
    /// ImageNet-1k or -21k classes.
    Imagenet(ImagenetArgs),
    /// COCO: the 80 object categories under their 12 supercategories.
    Coco(CocoArgs),
    /// Open Images: the 600 boxable classes (--bbox-only), or the V7 label list when present.
    Openimages(OpenimagesArgs),
}

#[derive(Debug, Args)]
pub struct ImagenetArgs {
    /// Root synset: a name like animal.n.01 or a wnid like n00015388 [default: entity.n.01].
    #[arg(long, value_name = "SYNSET")]
    pub root: Option<String>,

    /// Keep only the ImageNet-1k or -21k classes (and the categories above them).
    #[arg(long, value_name = "SET", value_parser = parse_filter)]
    pub filter: Option<ImagenetFilter>,

    /// Drop synsets that are not the first sense of their own name [default: true].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub strict: Option<bool>,

    /// Same as --strict false.
    #[arg(long, conflicts_with = "strict")]
    pub no_strict: bool,

    /// Drop abstract top categories (abstraction, attribute, act, group, ...).
    #[arg(long)]
    pub blacklist: bool,

    /// Drop synsets whose name matches this regular expression (with their subtrees).
    #[arg(long, value_name = "REGEX")]
    pub exclude_regex: Option<String>,

    /// Drop these subtrees (synset names or wnids, comma-separated).
    #[arg(long, value_name = "SYNSETS", num_args = 1.., value_delimiter = ',')]
    pub exclude_subtree: Option<Vec<String>>,

    #[command(flatten)]
    pub common: GenerateArgs,
}

impl ImagenetArgs {
    fn params(&self) -> Params {
        Params {
            root: self.root.clone(),
            filter: self.filter,
            strict: if self.no_strict { Some(false) } else { self.strict },
            blacklist: self.blacklist.then_some(true),
            exclude_regex: self.exclude_regex.clone(),
            exclude_subtree: self.exclude_subtree.clone(),
            ..Default::default()
        }
    }
}

fn parse_filter(s: &str) -> Result<ImagenetFilter, String> {
    match s.to_ascii_lowercase().as_str() {
        "1k" => Ok(ImagenetFilter::OneK),
        "21k" => Ok(ImagenetFilter::TwentyOneK),
        "none" => Ok(ImagenetFilter::None),
        _ => Err(format!("unknown filter '{s}': use 1k, 21k or none")),
    }
}

#[derive(Debug, Args)]
pub struct CocoArgs {
    #[command(flatten)]
    pub common: GenerateArgs,
}

#[derive(Debug, Args)]
pub struct OpenimagesArgs {
    /// Only the boxable classes of the bounding-box hierarchy.
    #[arg(long)]
    pub bbox_only: bool,

    #[command(flatten)]
    pub common: GenerateArgs,
}

#[derive(Debug, Args)]
pub struct TencentArgs {
    #[command(flatten)]
    pub common: GenerateArgs,
}

impl DatasetArgs {
    pub fn run(&self) -> Result<()> {
        match &self.dataset {
            DatasetCommand::Tencent(a) => a.common.run(Dataset::Tencent, Params::default()),
            DatasetCommand::Imagenet(a) => a.common.run(Dataset::Imagenet, a.params()),
            DatasetCommand::Coco(a) => a.common.run(Dataset::Coco, Params::default()),
            DatasetCommand::Openimages(a) => {
                let extra = Params { bbox_only: a.bbox_only.then_some(true), ..Default::default() };
                a.common.run(Dataset::Openimages, extra)
            }
        }
    }
}

/// Flags every dataset takes.
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Output file (default: <dataset>.yaml or <dataset>.jsonl in the current folder).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Smart mode: keep only WordNet-significant categories, flatten the rest into lists.
    #[arg(long)]
    pub smart: bool,

    /// Smart preset (thresholds below override it).
    #[arg(long, value_name = "NAME", value_parser = parse_preset)]
    pub preset: Option<Preset>,

    /// Keep a category whose WordNet min depth is at most this.
    #[arg(long, value_name = "N")]
    pub min_depth: Option<usize>,

    /// Keep a category with at least this many WordNet hyponyms.
    #[arg(long, value_name = "N")]
    pub min_hyponyms: Option<usize>,

    /// Lists smaller than this bubble up to their parent (smart mode).
    #[arg(long = "min-leaf", value_name = "N")]
    pub min_leaf_size: Option<usize>,

    /// Bubble small lists up into the parent's orphan bin (`--merge-orphans false` to keep
    /// them in place).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub merge_orphans: Option<bool>,

    /// Categories to skip (name, WordNet lemma or wnid; comma-separated): their children take
    /// their place. Replaces the dataset's default list.
    #[arg(long, value_name = "NAMES", num_args = 1.., value_delimiter = ',')]
    pub skip_nodes: Option<Vec<String>>,

    /// Label of the bin for bubbled-up items; `{}` is the parent's name.
    #[arg(long, value_name = "TEMPLATE")]
    pub orphans_label_template: Option<String>,

    /// YAML file mapping category names or wnids to parameter overrides for their subtree,
    /// e.g. `dog: {min_hyponyms: 10}`.
    #[arg(long, value_name = "FILE")]
    pub smart_config: Option<PathBuf>,

    /// Without --smart: how many category levels to keep (dataset roots are level 1).
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,

    /// Leave out the `# instruction:` comments.
    #[arg(long)]
    pub no_glosses: bool,

    /// Fast preview: stop after visiting this many nodes of the hierarchy.
    #[arg(long, value_name = "N")]
    pub preview_limit: Option<usize>,

    /// Output format.
    #[arg(long, value_name = "FORMAT", value_parser = parse_format)]
    pub format: Option<Format>,

    /// Remove semantic outliers (GLOSH score above --semantic-threshold) from flattened lists.
    /// Needs an embedding server (see --server).
    #[arg(long)]
    pub semantic_clean: bool,

    /// GLOSH outlier score above which --semantic-clean drops an item (0..1, default 0.1;
    /// lower removes more).
    #[arg(long, value_name = "T", value_parser = parse_unit)]
    pub semantic_threshold: Option<f64>,

    /// Sentence-embedding model (the embed-server's; only `minilm`, all-MiniLM-L6-v2).
    #[arg(long, value_name = "NAME", value_parser = parse_model)]
    pub semantic_model: Option<String>,

    /// Re-grow named sub-groups in long flattened lists (HDBSCAN over embeddings, WordNet
    /// names). Needs an embedding server (see --server).
    #[arg(long)]
    pub semantic_arrange: bool,

    /// A group is kept when its mean membership probability is at least this (0..1,
    /// default 0.15).
    #[arg(long, value_name = "T", value_parser = parse_unit)]
    pub semantic_arrange_threshold: Option<f64>,

    /// Smallest group semantic arrangement forms (default 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(2..))]
    pub semantic_arrange_min_cluster: Option<u16>,

    /// Cluster selection of semantic arrangement: eom or leaf (default: the preset's).
    #[arg(long, value_name = "eom|leaf", value_parser = parse_method)]
    pub semantic_arrange_method: Option<ClusterMethod>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Without -o: print the structure of the dataset's raw hierarchy and suggested smart
    /// thresholds, writing nothing. With -o: also generate, print the skeleton's structure and
    /// write <output stem>.stats.json.
    #[arg(long)]
    pub analyze: bool,

    /// Folder with the dataset files (default: env WILDCARDS_DATA_DIR, else the per-user
    /// cache dir); missing files are downloaded into it.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// WordNet 3.0 database folder (default: WNHOME, WORDNET_DIR, /usr/share/wordnet, NLTK
    /// data dirs).
    #[arg(long, value_name = "DIR")]
    pub wordnet_dir: Option<PathBuf>,

    /// No progress display and no summary.
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

fn parse_unit(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside 0..1"))
    }
}

fn parse_model(s: &str) -> Result<String, String> {
    match s.to_ascii_lowercase().as_str() {
        "minilm" | "all-minilm-l6-v2" | "sentence-transformers/all-minilm-l6-v2" => {
            Ok("minilm".to_string())
        }
        _ => Err(format!("unknown model '{s}': the embed-server serves minilm (all-MiniLM-L6-v2)")),
    }
}

fn parse_method(s: &str) -> Result<ClusterMethod, String> {
    match s.to_ascii_lowercase().as_str() {
        "eom" => Ok(ClusterMethod::Eom),
        "leaf" => Ok(ClusterMethod::Leaf),
        _ => Err(format!("unknown method '{s}': use eom or leaf")),
    }
}

fn parse_format(s: &str) -> Result<Format, String> {
    match s.to_ascii_lowercase().as_str() {
        "yaml" | "yml" => Ok(Format::Yaml),
        "jsonl" => Ok(Format::Jsonl),
        _ => Err(format!("unknown format '{s}': use yaml or jsonl")),
    }
}

impl GenerateArgs {
    /// Refuses flags that would do nothing: smart thresholds without `--smart`, `--depth`
    /// with it.
    pub fn check_usage(&self) -> Result<(), UsageError> {
        let smart_only = [
            ("--preset", self.preset.is_some()),
            ("--min-depth", self.min_depth.is_some()),
            ("--min-hyponyms", self.min_hyponyms.is_some()),
            ("--min-leaf", self.min_leaf_size.is_some()),
            ("--merge-orphans", self.merge_orphans.is_some()),
            ("--skip-nodes", self.skip_nodes.is_some()),
            ("--smart-config", self.smart_config.is_some()),
        ];
        let needs = [
            (
                "--semantic-threshold",
                "--semantic-clean",
                self.semantic_threshold.is_some(),
                self.semantic_clean,
            ),
            (
                "--semantic-arrange-threshold",
                "--semantic-arrange",
                self.semantic_arrange_threshold.is_some(),
                self.semantic_arrange,
            ),
            (
                "--semantic-arrange-min-cluster",
                "--semantic-arrange",
                self.semantic_arrange_min_cluster.is_some(),
                self.semantic_arrange,
            ),
            (
                "--semantic-arrange-method",
                "--semantic-arrange",
                self.semantic_arrange_method.is_some(),
                self.semantic_arrange,
            ),
            (
                "--semantic-model",
                "--semantic-clean or --semantic-arrange",
                self.semantic_model.is_some(),
                self.semantic_clean || self.semantic_arrange,
            ),
        ];
        if let Some((flag, needed, _, _)) = needs.iter().find(|(_, _, given, on)| *given && !*on) {
            return Err(UsageError(format!(
                "{flag} only applies with {needed}; add it (or drop {flag})"
            )));
        }
        if !self.smart {
            if let Some((flag, _)) = smart_only.iter().find(|(_, given)| *given) {
                return Err(UsageError(format!(
                    "{flag} only applies in smart mode; add --smart (or drop {flag})"
                )));
            }
        } else if self.depth.is_some() {
            return Err(UsageError(
                "--depth only applies without --smart (smart mode decides depth by WordNet \
                 significance); drop one of them"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The parameters these flags set (the `--smart-config` file becomes `smart_overrides`).
    pub fn params(&self) -> Result<Params> {
        let smart_overrides = match &self.smart_config {
            Some(path) => Some(wildcards_core::smart::read_smart_config(path)?),
            None => None,
        };
        Ok(Params {
            smart: self.smart.then_some(true),
            preset: self.preset,
            depth: self.depth,
            no_glosses: self.no_glosses.then_some(true),
            min_depth: self.min_depth,
            min_hyponyms: self.min_hyponyms,
            min_leaf_size: self.min_leaf_size,
            merge_orphans: self.merge_orphans,
            skip_nodes: self.skip_nodes.clone(),
            orphans_label_template: self.orphans_label_template.clone(),
            smart_overrides,
            preview_limit: self.preview_limit,
            format: self.format,
            semantic_clean: self.semantic_clean.then_some(true),
            semantic_threshold: self.semantic_threshold,
            semantic_model: self.semantic_model.clone(),
            semantic_arrange: self.semantic_arrange.then_some(true),
            semantic_arrange_threshold: self.semantic_arrange_threshold,
            semantic_arrange_min_cluster: self.semantic_arrange_min_cluster.map(usize::from),
            semantic_arrange_method: self.semantic_arrange_method,
            ..Default::default()
        })
    }

    /// Generates `dataset` with these flags plus the dataset's own `extra` parameters, writes
    /// the output (and the stats with `--analyze`) and prints a summary.
    pub fn run(&self, dataset: Dataset, extra: Params) -> Result<()> {
        self.check_usage()?;
        let cfg = self.params()?.merged_with(&extra).resolve(dataset);
        let output = self.output.clone().unwrap_or_else(|| default_output(dataset, cfg.format));
        let data_dir = download::data_dir(self.data_dir.as_deref())?;
        let wordnet = Arc::new(WordNet::locate(self.wordnet_dir.as_deref())?);

        let interactive = !self.quiet && std::io::stderr().is_terminal();
        let spinner = stage_spinner(interactive);
        let on_stage = |s: Stage| spinner.set_message(format!("{dataset}: {s}"));
        let session = if needs_embeddings(&cfg) { Some(self.server.connect()?) } else { None };
        let mut ctx = GenerateContext::new(data_dir, wordnet);
        ctx.embedder = session.as_ref().map(|s| s.embedder());
        ctx.download_progress = if self.quiet { Progress::Hidden } else { Progress::Auto };
        if interactive {
            ctx.on_stage = Some(&on_stage);
        }
        if self.analyze && self.output.is_none() {
            let result = analyze_hierarchy(&cfg, &ctx);
            spinner.finish_and_clear();
            return result;
        }
        let result = generate(&cfg, &ctx);
        spinner.finish_and_clear();
        let generated = result?;
        if !self.quiet {
            for note in generated.events.iter().filter(|e| e.kind == "note") {
                eprintln!("note: {}", note.message);
            }
        }

        write_atomic(&output, generated.text.as_bytes())?;
        if self.analyze {
            let stats = generated.stats_file(&cfg, Some(&output));
            let path = stats_path(&output);
            write_atomic(&path, serde_json::to_string_pretty(&stats)?.as_bytes())?;
            if !self.quiet {
                print_analysis(&generated, &path);
            }
        }
        if !self.quiet {
            eprintln!("{}", summary(&cfg, &output, &generated));
        }
        Ok(())
    }
}

fn default_output(dataset: Dataset, format: Format) -> PathBuf {
    let ext = match format {
        Format::Yaml => "yaml",
        Format::Jsonl => "jsonl",
    };
    PathBuf::from(format!("{dataset}.{ext}"))
}

fn stage_spinner(visible: bool) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if visible {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.enable_steady_tick(Duration::from_millis(100));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

fn summary(cfg: &Config, output: &Path, g: &Generated) -> String {
    let mode = if cfg.smart {
        format!("smart, {} preset", cfg.preset)
    } else {
        format!("depth {}", cfg.depth)
    };
    format!(
        "wrote {} ({}, {mode}): {} categories, {} leaf lists, {} items, max depth {}, {} bytes; \
         generated in {:.2} s",
        output.display(),
        cfg.dataset,
        g.stats.categories,
        g.stats.leaf_lists,
        g.stats.items,
        g.stats.max_depth,
        g.stats.file_bytes,
        g.duration_s
    )
}

/// `--analyze` without `-o`: the dataset's raw hierarchy (as its loader builds it, with this
/// command's dataset parameters) and the smart thresholds suggested for it; writes nothing.
fn analyze_hierarchy(cfg: &Config, ctx: &GenerateContext) -> Result<()> {
    let (tree, notes) = load_dataset_with_notes(cfg, ctx)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    let s = hierarchy_stats(&tree);
    let sug = suggest_thresholds(&s);
    println!("Raw hierarchy of {} (before pruning)", cfg.dataset);
    println!("  categories       {}", s.categories);
    println!("  labels           {}", s.items);
    println!("  label lists      {}", s.leaf_lists);
    println!("  max depth        {}", s.max_depth);
    println!("  avg branching    {}", s.avg_branching);
    println!("  avg list size    {}", s.avg_leaf_size);
    println!(
        "Suggested smart thresholds: --smart --min-depth {} --min-hyponyms {} --min-leaf {}",
        sug.min_depth, sug.min_hyponyms, sug.min_leaf_size
    );
    Ok(())
}

fn print_analysis(g: &Generated, stats_file: &Path) {
    let s = &g.stats;
    let src = &g.source_stats;
    let sug = &g.suggestions;
    println!("Structure of the skeleton");
    println!("  categories       {}", s.categories);
    println!("  leaf lists       {}", s.leaf_lists);
    println!("  items            {}", s.items);
    println!("  max depth        {}", s.max_depth);
    println!("  avg branching    {}", s.avg_branching);
    println!("  avg leaf size    {}", s.avg_leaf_size);
    println!("  file bytes       {}", s.file_bytes);
    println!(
        "Source hierarchy: {} categories, {} labels, max depth {}, avg branching {}",
        src.categories, src.items, src.max_depth, src.avg_branching
    );
    println!(
        "Suggested smart thresholds: --smart --min-depth {} --min-hyponyms {} --min-leaf {}",
        sug.min_depth, sug.min_hyponyms, sug.min_leaf_size
    );
    println!("Stats written to {}", stats_file.display());
}
