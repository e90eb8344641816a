//! One job of a batch: what to generate ([`JobSpec`], expanded from a manifest) and how it
//! went ([`JobOutcome`]). Both travel between batch-client and its workers as JSON lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use wildcards_core::params::{Config, Dataset, OutlierMethod, Params};
use wildcards_core::stats::StructureStats;

/// Where in the manifest a job was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// `jobs[i]`
    Job(usize),
    /// `matrix` / `matrix[i]`
    Matrix(usize),
}

/// A fully expanded job: every value decided, paths absolute or relative to the caller's
/// working directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// Position in the batch (run order, report order).
    pub index: usize,
    pub name: String,
    pub dataset: Dataset,
    /// The job's parameters with `default_params` (and a matrix's `base_params`) merged under.
    pub params: Params,
    pub analyze: bool,
    pub save_stats: bool,
    /// Write the skeleton viewer (`<output stem>.html`) after the job (`config.html`).
    #[serde(default = "yes")]
    pub html: bool,
    /// The skeleton file to write.
    pub output: PathBuf,
    /// Dataset folder for this job, when the manifest sets one.
    pub data_dir: Option<PathBuf>,
    /// Human-readable origin: `jobs[2]`, `matrix[1]`.
    pub origin: String,
    pub origin_index: Origin,
    /// For matrix jobs, the matrix values that made this job (param name -> text).
    pub axes: BTreeMap<String, String>,
    /// The batch's reuse store (`output_dir/.reuse`): per-list semantic results shared by
    /// the jobs; `None` computes everything (`--no-reuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_dir: Option<PathBuf>,
}

/// The reuse store's folder inside a batch's output folder.
pub const REUSE_DIR: &str = ".reuse";

impl JobSpec {
    /// The effective configuration (presets and dataset overrides resolved).
    pub fn config(&self) -> Config {
        self.params.resolve(self.dataset)
    }

    /// Whether the job calls the embedding service: semantic cleaning or arrangement, or the
    /// analysis, whose lint scores outliers with embeddings.
    pub fn needs_embeddings(&self) -> bool {
        self.params.needs_embeddings() || self.analyze
    }

    /// `<output>.stats.json`.
    pub fn stats_path(&self) -> PathBuf {
        stats_path_for(&self.output)
    }

    /// Whether the job gets a skeleton viewer: `config.html` is on and the output is YAML
    /// (the viewer reads the YAML with its `# instruction:` glosses).
    pub fn wants_viewer(&self) -> bool {
        self.html && self.config().format == wildcards_core::params::Format::Yaml
    }

    /// `<output stem>.html`, beside the output.
    pub fn viewer_path(&self) -> PathBuf {
        crate::viewer::viewer_path_for(&self.output)
    }

    /// A hash of everything that decides the job's output: the effective configuration and
    /// whether it is analysed. Recorded in the stats file; `--resume` compares it.
    pub fn param_hash(&self) -> String {
        #[derive(Serialize)]
        struct Hashed<'a> {
            config: &'a Config,
            analyze: bool,
        }
        let json = serde_json::to_string(&Hashed { config: &self.config(), analyze: self.analyze })
            .unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

fn yes() -> bool {
    true
}

/// `out/tencent_baseline.yaml` -> `out/tencent_baseline.stats.json` (as `wildcards-gen`).
pub fn stats_path_for(output: &Path) -> PathBuf {
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    output.with_file_name(format!("{stem}.stats.json"))
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    Failed,
    /// Not run again: `--resume` found its outputs made with the same parameters.
    Resumed,
    /// Stopped by Ctrl-C while running.
    Interrupted,
    /// Never started (the batch was interrupted first).
    NotRun,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Resumed => "resumed",
            JobStatus::Interrupted => "interrupted",
            JobStatus::NotRun => "not run",
        }
    }

    /// Succeeded now or earlier (resumed): its outputs are there.
    pub fn is_success(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Resumed)
    }
}

/// The numbers of one finished job, as report.md and summary.csv show them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobMetrics {
    /// The skeleton's shape, as its `.stats.json` records it (flattened: the JSON line keeps
    /// one flat object of numbers).
    #[serde(flatten)]
    pub structure: StructureStats,
    /// Outliers the lint finds at the job's `semantic_threshold` (only when analysed).
    pub outliers: Option<usize>,
    /// Flagged / items checked by that lint.
    #[serde(default)]
    pub outlier_rate: Option<f64>,
    /// The method that lint scored with (the job's `outlier_method`), so a reader of the
    /// report sees what the outlier numbers mean even when the method does not vary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lint_method: Option<OutlierMethod>,
    /// Texts the job sent to the embedding service, and how many it served from its cache.
    pub embed_texts: u64,
    pub embed_cache_hits: u64,
    /// Per-list results the job read from the reuse store, and those it computed (and
    /// stored); both 0 without a store.
    #[serde(default)]
    pub reuse_hits: u64,
    #[serde(default)]
    pub reuse_misses: u64,
}

/// How one job went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutcome {
    pub status: JobStatus,
    /// Why it failed (or was interrupted).
    pub error: Option<String>,
    /// Wall time of the job in its worker, seconds.
    pub duration_s: f64,
    pub metrics: Option<JobMetrics>,
}

impl JobOutcome {
    pub fn failed(error: impl Into<String>, duration_s: f64) -> Self {
        Self { status: JobStatus::Failed, error: Some(error.into()), duration_s, metrics: None }
    }
}

/// What batch-client adds to a job's `.stats.json` (under the key `batch`): the job, the
/// parameter hash `--resume` compares, and the embedding counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchStats {
    pub job: String,
    pub param_hash: String,
    pub embed_texts: u64,
    pub embed_cache_hits: u64,
    /// Size and SHA-256 of the skeleton as written: `--resume` reruns a job whose output no
    /// longer matches (truncated, edited, damaged).
    #[serde(default)]
    pub output_bytes: Option<u64>,
    #[serde(default)]
    pub output_sha256: Option<String>,
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
