//! One batch per output folder: a lock while a batch runs there, and a record of which
//! manifest the folder's results belong to, so two batches never mix their files and a
//! different manifest never silently overwrites an earlier run.
//!
//! - `.batch.lock` (created exclusively, holds the pid and manifest): a second batch in the
//!   folder is refused (exit 2) naming the running one; a lock whose process is gone is stale
//!   and taken over.
//! - `.batch-run.json` (the manifest's path and SHA-256, the outputs it wrote): a run of a
//!   different manifest is refused unless `--force`, which first removes the earlier run's
//!   outputs; the same manifest may run again (or `--resume`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Manifest;

const LOCK: &str = ".batch.lock";
const RECORD: &str = ".batch-run.json";

/// Why a batch may not use the folder (a usage error: exit 2, nothing touched).
#[derive(Debug)]
pub struct Refused(pub String);

/// What `.batch.lock` and `.batch-run.json` hold.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    manifest: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    manifest: PathBuf,
    manifest_sha256: String,
    outputs: Vec<PathBuf>,
}

/// The folder, held for this batch; the lock goes when this is dropped.
pub struct Claim {
    lock: PathBuf,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Takes the output folder of `m` for this process, or says why not. `resume` lets the same
/// manifest file continue after an edit (each job's parameter hash decides what reruns).
pub fn claim(m: &Manifest, force: bool, resume: bool) -> Result<Claim, Refused> {
    let dir = &m.config.output_dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| Refused(format!("cannot create the output folder {}: {e}", dir.display())))?;
    probe_writable(dir)?;
    let claim = lock(dir, &m.path)?;
    check_record(m, force, resume)?;
    Ok(claim)
}

/// A folder we cannot write is refused before any job runs.
fn probe_writable(dir: &Path) -> Result<(), Refused> {
    let probe = dir.join(".batch-write-test");
    let written = std::fs::write(&probe, b"");
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        Refused(format!(
            "the output folder {} is not writable ({e}); fix its permissions or choose another \
             with --output-dir",
            dir.display()
        ))
    })
}

fn lock(dir: &Path, manifest: &Path) -> Result<Claim, Refused> {
    let path = dir.join(LOCK);
    let me = Holder { pid: std::process::id(), manifest: manifest.to_path_buf() };
    for _ in 0..2 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                let text = serde_json::to_string(&me).unwrap_or_default();
                let _ = file.write_all(text.as_bytes());
                return Ok(Claim { lock: path });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder: Option<Holder> =
                    std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
                match holder {
                    Some(h) if alive(h.pid) => {
                        return Err(Refused(format!(
                            "the output folder {} is in use by another batch (batch-client pid \
                             {}, manifest {}); wait for it to finish or choose another \
                             --output-dir",
                            dir.display(),
                            h.pid,
                            h.manifest.display()
                        )))
                    }
                    // Stale: its batch is gone. Take it over.
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
            Err(e) => return Err(Refused(format!("cannot lock {}: {e}", path.display()))),
        }
    }
    Err(Refused(format!("cannot lock {}: another batch keeps taking it", path.display())))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && pid != std::process::id()
}

/// The SHA-256 of the manifest file, hex.
fn manifest_hash(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a folder that holds another manifest's results (or, with `force`, removes them),
/// then records this manifest as the folder's.
fn check_record(m: &Manifest, force: bool, resume: bool) -> Result<(), Refused> {
    let dir = &m.config.output_dir;
    let path = dir.join(RECORD);
    let hash = manifest_hash(&m.path);
    let earlier: Option<RunRecord> =
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok());
    let same_file = |old: &RunRecord| resume && old.manifest == m.path;
    if let Some(old) = earlier.filter(|old| old.manifest_sha256 != hash && !same_file(old)) {
        if !force {
            return Err(Refused(format!(
                "the output folder {} holds the results of another manifest ({}, which has \
                 changed or differs); use another --output-dir, or --force to remove those \
                 results and run this manifest there",
                dir.display(),
                old.manifest.display()
            )));
        }
        for output in &old.outputs {
            let _ = std::fs::remove_file(output);
            let _ = std::fs::remove_file(crate::job::stats_path_for(output));
        }
    }
    let record = RunRecord {
        manifest: m.path.clone(),
        manifest_sha256: hash,
        outputs: m.jobs.iter().map(|j| j.output.clone()).collect(),
    };
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    wildcards_core::output::write_atomic(&path, text.as_bytes())
        .map_err(|e| Refused(format!("cannot record the run in {}: {e:#}", path.display())))
}
