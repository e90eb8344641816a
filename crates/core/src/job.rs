//! One job of a batch: what to generate ([`JobSpec`], expanded from a manifest) and how it
//! went ([`JobOutcome`]). Both travel between batch-client and its workers as JSON lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::params::{Config, Dataset, Params};

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
    /// The skeleton file to write.
    pub output: PathBuf,
    /// Dataset folder for this job, when the manifest sets one.
    pub data_dir: Option<PathBuf>,
    /// Human-readable origin: `jobs[2]`, `matrix[1]`.
    pub origin: String,
    pub origin_index: Origin,
    /// For matrix jobs, the matrix values that made this job (param name -> text).
    pub axes: BTreeMap<String, String>,
}

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

/// `out.yaml` -> `out.yaml.stats.json`.
pub fn stats_path_for(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".stats.json");
    PathBuf::from(s)
}
