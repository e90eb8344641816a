//! One generation job, end to end: load the dataset, prune, shape, render, measure.
//!
//! [`generate`] is the single entry point of the library: the `wildcards-gen` command and the
//! batch workers both call it. It writes nothing; the caller writes [`Generated::text`] (with
//! [`crate::output::write_atomic`]) and, when asked, the [`Generated::stats_file`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use crate::datasets::download::{self, Fetcher};
use crate::datasets::{coco, imagenet, openimages, tencent};
use crate::params::{Config, Dataset};
use crate::semantic::embedder::Embedder;
use crate::semantic::reuse::ReuseStore;
use crate::stats::{self, Event, EventKind, StatsFile, StructureStats, Suggestions, Timeline};
use crate::taxonomy::TaxonomyNode;
use crate::wordnet::WordNet;
use crate::{output, shaper, smart};

/// The stages of a job, reported to [`GenerateContext::on_stage`] as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Reading (or first downloading) the dataset files.
    Loading,
    /// Embedding the texts semantic cleaning/arrangement will score (through the server).
    Embedding,
    /// Smart pruning or the depth cut (and semantic cleaning/arrangement).
    Pruning,
    Shaping,
    Rendering,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Loading => "loading",
            Stage::Embedding => "embedding",
            Stage::Pruning => "pruning",
            Stage::Shaping => "shaping",
            Stage::Rendering => "rendering",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a job runs with besides its configuration.
pub struct GenerateContext<'a> {
    /// Where the dataset files are (see [`download::data_dir`]).
    pub data_dir: PathBuf,
    /// The WordNet database, loaded once and shared.
    pub wordnet: Arc<WordNet>,
    /// Sentence embeddings for semantic cleaning and arrangement; `None` when no server.
    pub embedder: Option<&'a dyn Embedder>,
    /// Called as each stage starts (progress display, worker status).
    pub on_stage: Option<&'a (dyn Fn(Stage) + Sync)>,
    /// Downloads missing dataset files (and draws their progress); `None`: offline.
    pub fetcher: Option<&'a dyn Fetcher>,
    /// Per-list semantic results shared across jobs (a batch's output folder); `None`:
    /// everything is computed.
    pub reuse: Option<&'a ReuseStore>,
    /// Hierarchies loaded by earlier jobs of this process, for the next ones; `None`: every
    /// job reads its dataset files.
    pub sources: Option<&'a SourceCache>,
}

impl<'a> GenerateContext<'a> {
    /// A context without embedder, stage callback or downloads.
    pub fn new(data_dir: PathBuf, wordnet: Arc<WordNet>) -> Self {
        Self {
            data_dir,
            wordnet,
            embedder: None,
            on_stage: None,
            fetcher: None,
            reuse: None,
            sources: None,
        }
    }

    fn stage(&self, stage: Stage, timeline: &mut Timeline) {
        timeline.log(EventKind::Stage, None, stage.as_str(), serde_json::Value::Null);
        if let Some(f) = self.on_stage {
            f(stage);
        }
    }
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The final skeleton.
    pub tree: TaxonomyNode,
    /// The rendered output (YAML or JSONL per `cfg.format`).
    pub text: String,
    /// Structure stats of the skeleton (`file_bytes` = size of `text`).
    pub stats: StructureStats,
    /// Shape of the dataset's full hierarchy, before pruning.
    pub source_stats: StructureStats,
    /// Smart thresholds suggested for that hierarchy.
    pub suggestions: Suggestions,
    /// What happened, in order (stages, limits, semantic work).
    pub events: Vec<Event>,
    pub duration_s: f64,
}

impl Generated {
    /// The `.stats.json` content for this job.
    pub fn stats_file(&self, cfg: &Config, output: Option<&Path>) -> StatsFile {
        StatsFile {
            execution: stats::Execution::now(self.duration_s),
            metadata: stats::Metadata {
                dataset: cfg.dataset.to_string(),
                output: output.map(|p| p.display().to_string()),
                config: cfg.clone(),
            },
            structure: self.stats.clone(),
            lint: None,
            reuse: None,
            events: self.events.clone(),
        }
    }
}

/// Runs one job: dataset -> pruned, shaped skeleton -> rendered text and stats.
pub fn generate(cfg: &Config, ctx: &GenerateContext) -> Result<Generated> {
    let mut timeline = Timeline::new();
    if cfg.needs_embeddings() && ctx.embedder.is_none() {
        let (what, param) = if cfg.semantic_clean {
            ("cleaning", "semantic_clean")
        } else {
            ("arrangement", "semantic_arrange")
        };
        return Err(smart::semantic_unavailable(what, param, false));
    }

    ctx.stage(Stage::Loading, &mut timeline);
    let (source, mut notes) = load_dataset_with_notes(cfg, ctx)?;
    notes.extend(smart::unmatched_names(&source, cfg, &*ctx.wordnet));
    for note in notes {
        timeline.log(EventKind::Note, None, note, serde_json::Value::Null);
    }
    let source_stats = stats::hierarchy_stats(&source);

    if cfg.needs_embeddings() {
        ctx.stage(Stage::Embedding, &mut timeline);
    }
    let facts = &*ctx.wordnet;
    let semantic = smart::embed_texts(&source, cfg, facts, ctx.embedder, ctx.reuse, &mut timeline)?;
    ctx.stage(Stage::Pruning, &mut timeline);
    let pruned = smart::prune_with(&source, cfg, facts, semantic, &mut timeline)?;

    ctx.stage(Stage::Shaping, &mut timeline);
    let mut tree = shaper::shape(pruned, cfg);
    if cfg.no_glosses {
        strip_glosses(&mut tree);
    } else {
        // Groups named by a keyword or a member have no gloss: every key still gets one.
        crate::instructions::fill_missing(&mut tree);
    }
    if cfg.dataset == Dataset::Imagenet && cfg.strict {
        let renames = imagenet::RenameCount::of(&source, &tree);
        let data = serde_json::to_value(&renames).unwrap_or_default();
        timeline.log(EventKind::Renaming, None, renames.message(), data);
    }

    ctx.stage(Stage::Rendering, &mut timeline);
    let text = output::render(&tree, cfg.format)?;
    let stats = stats::structure_stats(&tree, text.len() as u64);
    let duration_s = timeline.elapsed_s();
    Ok(Generated {
        tree,
        text,
        stats,
        suggestions: stats::suggest_thresholds(&source_stats),
        source_stats,
        events: timeline.into_events(),
        duration_s,
    })
}

/// The dataset's full hierarchy as its loader builds it (files fetched when missing).
pub fn load_dataset(cfg: &Config, ctx: &GenerateContext) -> Result<TaxonomyNode> {
    Ok(load_dataset_with_notes(cfg, ctx)?.0)
}

/// [`load_dataset`], plus the loader's notes for the user (fallbacks it took), which
/// [`generate`] records as `note` events.
pub fn load_dataset_with_notes(
    cfg: &Config,
    ctx: &GenerateContext,
) -> Result<(TaxonomyNode, Vec<String>)> {
    let wn = &ctx.wordnet;
    let gloss = |wnid: &str| wn.gloss_of_wnid(wnid).map(str::to_string);
    let fetch = ctx.fetcher;
    let mut notes = Vec::new();
    let tree = match cfg.dataset {
        Dataset::Tencent => {
            let load = |notes: &mut Vec<String>| {
                let path = download::ensure(&ctx.data_dir, &tencent::FILE, fetch, notes)?;
                tencent::load(&path, &gloss)
            };
            match ctx.sources {
                Some(cache) => {
                    cache.get_or_load(&tencent::FILE.path_in(&ctx.data_dir), &mut notes, load)?
                }
                None => load(&mut notes)?,
            }
        }
        Dataset::Imagenet => imagenet::load(wn, cfg, &ctx.data_dir, fetch, &mut notes)?,
        Dataset::Coco => coco::load(wn, &ctx.data_dir)?,
        Dataset::Openimages => {
            let loaded = openimages::load(wn, cfg, &ctx.data_dir, fetch)?;
            return Ok((loaded.tree, loaded.notes));
        }
    };
    Ok((tree, notes))
}

/// The dataset hierarchy a long-lived process (a batch worker) loaded last, kept for its next
/// jobs. Why: every job of a grid loads the same dataset, and checksumming and parsing
/// Tencent's 11k-line file took about 50 ms of each job. Only a load that depends on one file
/// alone is kept (Tencent's); the entry is keyed by the file's path, size and modification
/// time, so a file that changed is read again. The loader's notes are replayed with the tree,
/// so a job's stats are the same whether it loaded or reused.
#[derive(Default)]
pub struct SourceCache {
    last: std::sync::Mutex<Option<CachedSource>>,
}

struct CachedSource {
    stamp: FileStamp,
    tree: TaxonomyNode,
    notes: Vec<String>,
}

/// What identifies a dataset file's content cheaply.
#[derive(PartialEq)]
struct FileStamp {
    path: PathBuf,
    len: u64,
    modified: std::time::SystemTime,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Self { path: path.to_path_buf(), len: meta.len(), modified: meta.modified().ok()? })
    }
}

impl SourceCache {
    /// The hierarchy loaded from `file` by `load` (which may download it first), or a copy of
    /// the one loaded before when the file has not changed since.
    fn get_or_load(
        &self,
        file: &Path,
        notes: &mut Vec<String>,
        load: impl FnOnce(&mut Vec<String>) -> Result<TaxonomyNode>,
    ) -> Result<TaxonomyNode> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(cached), Some(stamp)) = (last.as_ref(), FileStamp::of(file)) {
            if cached.stamp == stamp {
                notes.extend(cached.notes.iter().cloned());
                return Ok(cached.tree.clone());
            }
        }
        let mut fresh = Vec::new();
        let tree = load(&mut fresh)?;
        *last = FileStamp::of(file).map(|stamp| CachedSource {
            stamp,
            tree: tree.clone(),
            notes: fresh.clone(),
        });
        notes.extend(fresh);
        Ok(tree)
    }
}

fn strip_glosses(node: &mut TaxonomyNode) {
    node.metadata.gloss = None;
    for c in &mut node.children {
        strip_glosses(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::test_support::data_dir;

    fn ctx() -> GenerateContext<'static> {
        GenerateContext::new(data_dir(), Arc::new(WordNet::locate(None).unwrap()))
    }

    #[test]
    fn semantic_work_without_an_embedder_fails_before_loading() {
        let mut p = Params { smart: Some(true), semantic_clean: Some(true), ..Default::default() };
        let c = ctx();
        let err = generate(&p.resolve(Dataset::Tencent), &c).unwrap_err().to_string();
        assert!(err.starts_with("semantic cleaning needs an embedding server"), "{err}");
        // Also when only an override asks for it.
        p.semantic_clean = None;
        let over = Params { semantic_arrange: Some(true), ..Default::default() };
        p.smart_overrides = Some([("dog".to_string(), over)].into());
        let err = generate(&p.resolve(Dataset::Tencent), &c).unwrap_err().to_string();
        assert!(err.contains("needs an embedding server"), "{err}");
    }

    #[test]
    fn the_source_cache_loads_a_file_once_until_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hierarchy.txt");
        std::fs::write(&file, "a\n").unwrap();
        let cache = SourceCache::default();
        let loads = std::cell::Cell::new(0);
        let load = |notes: &mut Vec<String>| {
            loads.set(loads.get() + 1);
            notes.push(format!("load {}", loads.get()));
            let mut tree = TaxonomyNode::new(std::fs::read_to_string(&file).unwrap());
            tree.items = vec!["x".into()];
            Ok(tree)
        };
        let mut notes = Vec::new();
        let first = cache.get_or_load(&file, &mut notes, load).unwrap();
        let again = cache.get_or_load(&file, &mut notes, load).unwrap();
        assert_eq!((loads.get(), &first), (1, &again));
        // The loader's notes are replayed with the kept tree.
        assert_eq!(notes, ["load 1", "load 1"]);
        std::fs::write(&file, "a changed file\n").unwrap();
        let changed = cache.get_or_load(&file, &mut Vec::new(), load).unwrap();
        assert_eq!((loads.get(), changed.name.as_str()), (2, "a changed file\n"));
    }

    #[test]
    fn stages_are_reported_and_no_glosses_drops_the_comments() {
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |s: Stage| seen.lock().unwrap().push(s);
        let mut c = ctx();
        c.on_stage = Some(&record);
        let p = Params { smart: Some(true), no_glosses: Some(true), ..Default::default() };
        let g = generate(&p.resolve(Dataset::Tencent), &c).unwrap();
        assert!(!g.text.contains("# instruction:"));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![Stage::Loading, Stage::Pruning, Stage::Shaping, Stage::Rendering]
        );
        assert_eq!(g.events.iter().filter(|e| e.kind == EventKind::Stage).count(), 4);
        assert_eq!(g.stats.file_bytes, g.text.len() as u64);
        assert_eq!(g.source_stats.items, 9219, "Tencent labels (categories without children)");
    }

    /// Vectors from the text's bytes: any text gets one, the same text the same one (a unit
    /// test of the stage sequence, not of the model).
    struct ByteEmbedder;

    impl crate::semantic::embedder::Embedder for ByteEmbedder {
        fn embed(&self, texts: &[String]) -> Result<crate::semantic::embedder::Embeddings> {
            let vector = |t: &String| {
                let mut v = vec![0.1f32; 8];
                t.bytes().enumerate().for_each(|(i, b)| v[(b as usize + i) % 8] += 1.0);
                v
            };
            let vectors: Vec<Vec<f32>> = texts.iter().map(vector).collect();
            Ok(crate::semantic::embedder::Embeddings { dim: 8, vectors, cache_hits: 0 })
        }
    }

    /// Issue 12 item 20: the embedding batch is its own stage, so a progress display says
    /// "embedding" while the server works, not "pruning".
    #[test]
    fn a_semantic_job_reports_an_embedding_stage_before_pruning() {
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |s: Stage| seen.lock().unwrap().push(s);
        let mut c = ctx();
        c.on_stage = Some(&record);
        c.embedder = Some(&ByteEmbedder);
        let p = Params { semantic_clean: Some(true), ..Default::default() };
        generate(&p.resolve(Dataset::Coco), &c).unwrap();
        let want =
            [Stage::Loading, Stage::Embedding, Stage::Pruning, Stage::Shaping, Stage::Rendering];
        assert_eq!(*seen.lock().unwrap(), want);
        assert_eq!(Stage::Embedding.to_string(), "embedding");
    }
}
