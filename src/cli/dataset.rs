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
use batch_client::fetch::HttpFetcher;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget};
use wildcards_core::datasets::download;
use wildcards_core::generate::{load_dataset_with_notes, GenerateContext, Generated, Stage};
use wildcards_core::params::{Config, Dataset, Format, Params};
use wildcards_core::run::{run_job, JobRequest, JobResult};
use wildcards_core::stats::{hierarchy_stats, suggest_thresholds, Event, EventKind};
use wildcards_core::wordnet::WordNet;

use super::embedding::ServerArgs;
use super::files::{check_output, is_stdout, shown};
use super::params::{self, ParamArgs};
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
    #[command(flatten)]
    pub own: ParamArgs<params::Imagenet>,

    /// Same as --strict false.
    #[arg(long, conflicts_with = "strict", help_heading = "Dataset")]
    pub no_strict: bool,

    #[command(flatten)]
    pub common: GenerateArgs,
}

impl ImagenetArgs {
    fn params(&self) -> Params {
        let mut p = self.own.params.clone();
        if self.no_strict {
            p.strict = Some(false);
        }
        p
    }
}

#[derive(Debug, Args)]
pub struct CocoArgs {
    #[command(flatten)]
    pub common: GenerateArgs,
}

#[derive(Debug, Args)]
pub struct OpenimagesArgs {
    #[command(flatten)]
    pub own: ParamArgs<params::Openimages>,

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
                a.common.run(Dataset::Openimages, a.own.params.clone())
            }
        }
    }
}

/// Flags every dataset takes: the parameter table's common entries, plus what is not a
/// parameter (where to write, the server, the folders, the analysis).
#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Output file (default: <dataset>.yaml or <dataset>.jsonl in the current folder; `-`:
    /// stdout). Without --format, a .jsonl name writes JSONL. Its folder must exist.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub params: ParamArgs<params::Common>,

    /// YAML file mapping category names or wnids to parameter overrides for their subtree,
    /// e.g. `dog: {min_hyponyms: 10}`.
    #[arg(long, value_name = "FILE", help_heading = "Smart pruning")]
    pub smart_config: Option<PathBuf>,

    #[command(flatten)]
    pub server: ServerArgs,

    /// Without -o: print the structure of the dataset's raw hierarchy and suggested smart
    /// thresholds, writing nothing. With -o: also generate, print the skeleton's structure,
    /// lint it (outliers at the threshold) and write <output stem>.stats.json.
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

impl GenerateArgs {
    /// The parameters these flags set (the `--smart-config` file becomes `smart_overrides`),
    /// checked like a manifest's: flags that would do nothing, then the values.
    pub fn params(&self) -> Result<Params> {
        let mut p = self.params.params.clone();
        let also_on: &[&str] = if self.analyze { &["analyze"] } else { &[] };
        params::check_usage(&p, &[("--smart-config", self.smart_config.is_some())], also_on)?;
        if let Some(path) = &self.smart_config {
            p.smart_overrides = Some(wildcards_core::smart::read_smart_config(path)?);
        }
        params::check_values(&p)?;
        Ok(p)
    }

    /// Generates `dataset` with these flags plus the dataset's own `extra` parameters through
    /// the shared job runner: writes the output (and, with `--analyze`, lints it and writes
    /// the stats) and prints a summary.
    pub fn run(&self, dataset: Dataset, extra: Params) -> Result<()> {
        let mut params = self.params()?.merged_with(&extra);
        if params.format.is_none() {
            params.format = self.output.as_deref().and_then(format_of_name);
        }
        let cfg = params.resolve(dataset);
        let output = self.output.clone().unwrap_or_else(|| default_output(dataset, cfg.format));
        if is_stdout(&output) && cfg.export.is_some() {
            return Err(UsageError(
                "--export writes <output stem>_wildcards/ beside the output; give -o a file \
                 name, not -"
                    .into(),
            )
            .into());
        }
        if is_stdout(&output) && self.analyze {
            return Err(UsageError(
                "--analyze writes <output stem>.stats.json beside the output; give -o a file \
                 name, not -"
                    .into(),
            )
            .into());
        }
        check_output(&output)?;
        let lint = self.analyze;
        let hierarchy_only = self.analyze && self.output.is_none();
        // Connected (and `semantic_model` checked against the server) before any loading.
        let session = match (cfg.needs_embeddings() || lint) && !hierarchy_only {
            true => Some(self.server.connect(&cfg.semantic_model)?),
            false => None,
        };
        let data_dir = download::data_dir(self.data_dir.as_deref())?;
        let wordnet = Arc::new(WordNet::locate(self.wordnet_dir.as_deref())?);

        let interactive = !self.quiet && std::io::stderr().is_terminal();
        let spinner = stage_spinner(interactive);
        let on_stage = |s: Stage| spinner.set_message(format!("{dataset}: {s}"));
        let fetcher = HttpFetcher::new(!self.quiet);
        let mut ctx = GenerateContext::new(data_dir, wordnet);
        ctx.fetcher = Some(&fetcher);
        if interactive {
            ctx.on_stage = Some(&on_stage);
        }
        if hierarchy_only {
            let result = analyze_hierarchy(&cfg, &ctx);
            spinner.finish_and_clear();
            return result;
        }
        let embedder = session.as_ref().map(|s| s.embedder());
        ctx.embedder = embedder.as_deref();
        let request = JobRequest {
            config: &cfg,
            output: &output,
            lint,
            save_stats: lint,
            started: std::time::Instant::now(),
            stats_extra: None,
        };
        let result = match is_stdout(&output) {
            true => to_stdout(&cfg, &ctx, request.started),
            false => run_job(&request, &ctx, &|s| spinner.set_message(format!("{dataset}: {s}"))),
        };
        spinner.finish_and_clear();
        let result = result?;
        if !self.quiet {
            for note in result.generated.events.iter().filter(|e| e.kind == EventKind::Note) {
                eprintln!("note: {}", note.message);
            }
            if let Some(path) = &result.stats_path {
                print_analysis(&result, path);
            }
            eprintln!("{}", summary(&cfg, &output, &result.generated));
            if let Some((dir, report)) = &result.export {
                eprintln!("{}", report.summary(&format!("to {}", dir.display()), 10));
            }
        }
        Ok(())
    }
}

/// `-o -`: the skeleton generated and printed (nothing written, so no stats and no lint).
fn to_stdout(
    cfg: &Config,
    ctx: &GenerateContext,
    started: std::time::Instant,
) -> Result<JobResult> {
    let generated = wildcards_core::generate::generate(cfg, ctx)?;
    batch_client::out!("{}", generated.text);
    let duration_s = started.elapsed().as_secs_f64();
    Ok(JobResult { generated, export: None, lint: None, stats_path: None, duration_s, reuse: None })
}

/// The format an output name implies: `.jsonl` / `.ndjson` JSONL, `.yaml` / `.yml` YAML.
fn format_of_name(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "yaml" | "yml" => Some(Format::Yaml),
        _ => None,
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
        shown(output),
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
    batch_client::outln!("Raw hierarchy of {} (before pruning)", cfg.dataset);
    batch_client::outln!("  categories       {}", s.categories);
    batch_client::outln!("  labels           {}", s.items);
    batch_client::outln!("  label lists      {}", s.leaf_lists);
    batch_client::outln!("  max depth        {}", s.max_depth);
    batch_client::outln!("  avg branching    {}", s.avg_branching);
    batch_client::outln!("  avg list size    {}", s.avg_leaf_size);
    batch_client::outln!(
        "Suggested smart thresholds: --smart --min-depth {} --min-hyponyms {} --min-leaf {}",
        sug.min_depth,
        sug.min_hyponyms,
        sug.min_leaf_size
    );
    Ok(())
}

fn print_analysis(result: &JobResult, stats_file: &Path) {
    let g = &result.generated;
    let s = &g.stats;
    let src = &g.source_stats;
    let sug = &g.suggestions;
    batch_client::outln!("Structure of the skeleton");
    batch_client::outln!("  categories       {}", s.categories);
    batch_client::outln!("  leaf lists       {}", s.leaf_lists);
    batch_client::outln!("  items            {}", s.items);
    batch_client::outln!("  max depth        {}", s.max_depth);
    batch_client::outln!("  avg branching    {}", s.avg_branching);
    batch_client::outln!("  avg leaf size    {}", s.avg_leaf_size);
    batch_client::outln!("  file bytes       {}", s.file_bytes);
    batch_client::outln!(
        "Source hierarchy: {} categories, {} labels, max depth {}, avg branching {}",
        src.categories,
        src.items,
        src.max_depth,
        src.avg_branching
    );
    batch_client::outln!(
        "Suggested smart thresholds: --smart --min-depth {} --min-hyponyms {} --min-leaf {}",
        sug.min_depth,
        sug.min_hyponyms,
        sug.min_leaf_size
    );
    if let Some(renaming) = g.events.iter().find(|e| e.kind == EventKind::Renaming) {
        batch_client::outln!("{}{}", upper_first(&renaming.message), rename_examples(renaming));
    }
    if let Some(lint) = &result.lint {
        batch_client::outln!(
            "Outliers (lint at threshold {}): {} in {} lists checked",
            lint.threshold,
            lint.outliers,
            lint.lists_checked
        );
    }
    batch_client::outln!("Stats written to {}", stats_file.display());
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// ` (e.g. crane -> crane (lifting device), ...)` from a renaming event's examples.
fn rename_examples(event: &Event) -> String {
    let pairs: Vec<String> = event.data["examples"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
        .filter_map(|p| Some(format!("{} -> {}", p[0].as_str()?, p[1].as_str()?)))
        .collect();
    match pairs.is_empty() {
        true => String::new(),
        false => format!(" (e.g. {})", pairs.join(", ")),
    }
}
