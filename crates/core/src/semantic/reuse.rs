//! Reuse across jobs: a content-addressed store of per-list semantic results.
//!
//! The jobs of a grid share most of their item lists: a list's outlier scores and its
//! arrangement depend only on the list (its items, in order, and its category key), the
//! method and its parameters, the embedding model and WordNet — not on the job. So they are
//! stored under the SHA-256 of a canonical encoding of exactly those inputs ([`ReuseStore::key`]),
//! and any job that meets the same inputs (in any worker process, or any Slurm task on a
//! shared filesystem) reads the result instead of computing it again. A grid's cost then
//! grows with its distinct lists, not with its jobs.
//!
//! Safe under concurrent writers: an entry is written to a unique temporary file in its
//! folder and renamed into place (atomic on POSIX filesystems, NFS included), and two writers
//! of one key write the same result, so either rename is right. Readers never trust an entry
//! blindly: a missing, truncated, unparsable or misfiled entry is a miss, recomputed and
//! written again. Floats round-trip exactly (serde_json's `float_roundtrip`), so a reused
//! result is bit for bit the computed one and the outputs stay byte-identical.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stats::{HitsMisses, ReuseStats};

/// Version of what an entry means. Bump it with any change to outlier scoring, arrangement or
/// the encodings here that changes a stored result: old entries are then never looked up.
pub const FORMAT: u32 = 1;

/// What a stored entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A list's outlier scores ([`super::outliers::Scored`]).
    Outliers,
    /// A list's arrangement ([`super::arrange::Arrangement`]).
    Arrangement,
    /// The sum of a list's vectors in the scoring space (the lint's "fits better").
    ListSum,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Outliers, Kind::Arrangement, Kind::ListSum];

    fn as_str(self) -> &'static str {
        match self {
            Kind::Outliers => "outliers",
            Kind::Arrangement => "arrangement",
            Kind::ListSum => "list_sum",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The address of one entry: its kind and the SHA-256 (hex) of its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    kind: Kind,
    hex: String,
}

/// An entry as stored: the key again (a file copied under another name is not trusted) and
/// the value.
#[derive(Serialize, Deserialize)]
struct Entry<T> {
    format: u32,
    kind: Kind,
    key: String,
    value: T,
}

/// The canonical encoding hashed for a key: everything a result depends on besides the
/// kind's own inputs. Field order is fixed by the struct, so the JSON is canonical.
#[derive(Serialize)]
struct KeyInput<'a, T: Serialize> {
    format: u32,
    tool: &'a str,
    code: &'a str,
    model: &'a str,
    kind: Kind,
    inputs: &'a T,
}

/// How long a claim holds without its owner storing the entry: past it, another worker
/// computes the entry too (a worker that died on another host must not stall a grid; an
/// arrangement of the longest list takes seconds).
pub const CLAIM_TTL: Duration = Duration::from_secs(60);

/// Who computes an entry that is not stored yet (see [`ReuseStore::claim`]).
pub enum Claim {
    /// This process: compute, [`ReuseStore::put`], then drop the guard (it removes the claim).
    Mine(ClaimGuard),
    /// Another live worker is computing it now: look it up again later.
    Theirs,
}

/// A held claim; dropping it removes the claim file (also when the computation failed).
pub struct ClaimGuard {
    path: Option<PathBuf>,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Default)]
struct Counter {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A folder of reusable results for one embedding model; counts its hits and misses (one
/// store per job gives the job's counts).
pub struct ReuseStore {
    dir: PathBuf,
    model: String,
    code: String,
    counters: [Counter; 3],
}

impl ReuseStore {
    /// The store in `dir` (created when missing) for vectors of `model` (the embed-server's
    /// model id and fingerprint: results of another model are other entries).
    pub fn open(dir: &Path, model: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the reuse store {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            model: model.to_string(),
            code: String::new(),
            counters: Default::default(),
        })
    }

    /// Adds an identity of the running code (e.g. the executable's size and modification
    /// time) to every key, so a rebuilt tool never reads what another build stored.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a result of `kind` computed from `inputs` (with this store's model and code).
    pub fn key<T: Serialize>(&self, kind: Kind, inputs: &T) -> Key {
        let input = KeyInput {
            format: FORMAT,
            tool: env!("CARGO_PKG_VERSION"),
            code: &self.code,
            model: &self.model,
            kind,
            inputs,
        };
        // Serialising plain structs of strings and numbers cannot fail; an empty encoding
        // would only make every key of this kind the same miss-prone entry, never a wrong hit
        // across kinds (the kind is in the file path).
        let bytes = serde_json::to_vec(&input).unwrap_or_default();
        let hex = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        Key { kind, hex }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(key.kind.as_str()).join(&key.hex[..2]).join(format!("{}.json", key.hex))
    }

    /// The stored value of `key`, counted as a hit; `None` (a miss) when there is none or it
    /// cannot be read whole.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        let found = self.peek(key);
        self.count(key, found.is_some());
        found
    }

    /// [`Self::get`] without counting: for looking again while another worker computes.
    pub fn peek<T: DeserializeOwned>(&self, key: &Key) -> Option<T> {
        std::fs::read(self.path(key))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Entry<T>>(&bytes).ok())
            .filter(|e| e.format == FORMAT && e.kind == key.kind && e.key == key.hex)
            .map(|e| e.value)
    }

    /// Counts a lookup of `key` as a hit (the value came from the store) or a miss (computed).
    pub fn count(&self, key: &Key, hit: bool) {
        let counter = &self.counters[key.kind.index()];
        match hit {
            true => counter.hits.fetch_add(1, Ordering::Relaxed),
            false => counter.misses.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Claims the computation of `key`, so that concurrent workers (processes, Slurm tasks)
    /// that need the same entry compute it once: a claim file beside the entry, created
    /// exclusively, names its owner. A claim whose owner is gone (a dead process on this host)
    /// or older than [`CLAIM_TTL`] is taken over. A store that cannot hold claims (read-only,
    /// odd filesystem) answers `Mine`: everything is computed, as without claims.
    pub fn claim(&self, key: &Key) -> Claim {
        let path = self.path(key).with_extension("claim");
        for _ in 0..2 {
            match create_claim(&path) {
                Ok(true) => return Claim::Mine(ClaimGuard { path: Some(path) }),
                Ok(false) if claim_is_stale(&path) => {
                    let _ = std::fs::remove_file(&path);
                }
                Ok(false) => return Claim::Theirs,
                Err(_) => break,
            }
        }
        Claim::Mine(ClaimGuard { path: None })
    }

    /// Stores `value` under `key` (write a temporary file, then rename). Best effort: a
    /// store that cannot be written only costs the next job a recomputation, so a failure is
    /// logged, not raised.
    pub fn put<T: Serialize>(&self, key: &Key, value: &T) {
        if let Err(e) = self.try_put(key, value) {
            tracing::warn!("reuse store {}: cannot write an entry: {e:#}", self.dir.display());
        }
    }

    fn try_put<T: Serialize>(&self, key: &Key, value: &T) -> Result<()> {
        let path = self.path(key);
        let folder = path.parent().context("entry path has no folder")?;
        std::fs::create_dir_all(folder)?;
        let entry = Entry { format: FORMAT, kind: key.kind, key: key.hex.clone(), value };
        let bytes = serde_json::to_vec(&entry)?;
        // A uniquely named temporary file in the entry's folder (the rename stays within one
        // filesystem), removed by tempfile when anything fails before the rename. Not fsynced
        // (unlike outputs): after a power loss an entry may be empty, which reads as a miss.
        let mut builder = tempfile::Builder::new();
        builder.prefix(".entry-").suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // 0666 less the umask, as for any new file: a lab's shared store stays readable.
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut temp = builder.tempfile_in(folder)?;
        temp.write_all(&bytes)?;
        temp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Hits and misses so far, by kind.
    pub fn stats(&self) -> ReuseStats {
        let of = |kind: Kind| {
            let c = &self.counters[kind.index()];
            HitsMisses {
                hits: c.hits.load(Ordering::Relaxed),
                misses: c.misses.load(Ordering::Relaxed),
            }
        };
        let [outliers, arrangements, list_sums] = Kind::ALL.map(of);
        ReuseStats {
            hits: outliers.hits + arrangements.hits + list_sums.hits,
            misses: outliers.misses + arrangements.misses + list_sums.misses,
            outliers,
            arrangements,
            list_sums,
        }
    }
}

/// This process's identity in a claim file: host name and process id.
fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{} {}", host.trim(), std::process::id())
}

/// Creates the claim file; `Ok(false)` when it exists already.
fn create_claim(path: &Path) -> std::io::Result<bool> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut file) => {
            file.write_all(owner().as_bytes())?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A claim nobody will finish: older than [`CLAIM_TTL`], or made on this host by a process
/// that no longer runs. A claim removed meanwhile is stale too (look again).
fn claim_is_stale(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return true };
    let age = meta.modified().ok().and_then(|m| m.elapsed().ok()).unwrap_or_default();
    if age > CLAIM_TTL {
        return true;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mine = owner();
    let (host, _) = mine.rsplit_once(' ').unwrap_or_default();
    match text.rsplit_once(' ') {
        Some((h, pid)) if h == host => !Path::new("/proc").join(pid).exists(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Value {
        scores: Vec<f64>,
        name: String,
    }

    fn awkward_floats() -> Vec<f64> {
        let mut v = vec![0.1 + 0.2, 1e-300, f64::MIN_POSITIVE / 3.0, -0.0, 1.0 / 3.0, 2.5e17];
        // A spread of bit patterns (a fixed LCG: deterministic, no dependency).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let f = f64::from_bits(x >> 2); // positive, finite
            if f.is_finite() {
                v.push(f);
            }
        }
        v
    }

    #[test]
    fn a_stored_value_comes_back_bit_for_bit_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReuseStore::open(dir.path(), "model#abc").unwrap();
        let key = store.key(Kind::Outliers, &("items", vec!["a", "b"]));
        assert_eq!(store.get::<Value>(&key), None);
        let value = Value { scores: awkward_floats(), name: "x".into() };
        store.put(&key, &value);
        let back: Value = store.get(&key).unwrap();
        let bits = |v: &Value| v.scores.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&value));
        let s = store.stats();
        assert_eq!((s.outliers.hits, s.outliers.misses, s.hits, s.misses), (1, 1, 1, 1));
    }

    #[test]
    fn keys_depend_on_every_input() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReuseStore::open(dir.path(), "m1").unwrap();
        let b = ReuseStore::open(dir.path(), "m2").unwrap();
        let c = ReuseStore::open(dir.path(), "m1").unwrap().with_code("build 2");
        let k = |s: &ReuseStore, kind, items: &[&str]| s.key(kind, &items);
        let base = k(&a, Kind::Outliers, &["a", "b"]);
        assert_eq!(base, k(&a, Kind::Outliers, &["a", "b"]), "deterministic");
        for other in [
            k(&a, Kind::Outliers, &["b", "a"]),
            k(&a, Kind::Arrangement, &["a", "b"]),
            k(&b, Kind::Outliers, &["a", "b"]),
            k(&c, Kind::Outliers, &["a", "b"]),
        ] {
            assert_ne!(base.hex, other.hex);
        }
    }

    #[test]
    fn damaged_or_misfiled_entries_are_misses_and_get_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReuseStore::open(dir.path(), "m").unwrap();
        let key = store.key(Kind::ListSum, &1);
        let value = Value { scores: vec![1.5], name: "ok".into() };
        store.put(&key, &value);
        let path = store.path(&key);
        let whole = std::fs::read(&path).unwrap();
        // Truncated (a crash of a writer that did not rename would never leave this, but a
        // full disk or a hand edit might).
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        assert_eq!(store.get::<Value>(&key), None);
        // Another key's entry under this name.
        let other = store.key(Kind::ListSum, &2);
        store.put(&other, &value);
        std::fs::copy(store.path(&other), &path).unwrap();
        assert_eq!(store.get::<Value>(&key), None);
        // Rewritten, it reads again; no temporary files are left behind.
        store.put(&key, &value);
        assert_eq!(store.get::<Value>(&key), Some(value));
        let folder = path.parent().unwrap();
        let names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
    }

    #[test]
    fn a_claim_is_held_once_released_on_drop_and_taken_over_from_a_dead_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReuseStore::open(dir.path(), "m").unwrap();
        let key = store.key(Kind::Arrangement, &"claimed");
        let Claim::Mine(guard) = store.claim(&key) else { panic!("first claim is mine") };
        assert!(matches!(store.claim(&key), Claim::Theirs), "second claim waits");
        drop(guard);
        let Claim::Mine(guard) = store.claim(&key) else { panic!("released claim is free") };
        // The owner died (a pid that cannot run: above the kernel's pid_max).
        let path = store.path(&key).with_extension("claim");
        let host = owner().rsplit_once(' ').unwrap().0.to_string();
        std::fs::write(&path, format!("{host} 999999999")).unwrap();
        std::mem::forget(guard);
        assert!(matches!(store.claim(&key), Claim::Mine(_)), "a dead owner's claim is taken");
        // A live owner on another host holds until the claim is older than CLAIM_TTL.
        std::fs::write(&path, "another-host 1").unwrap();
        assert!(matches!(store.claim(&key), Claim::Theirs));
        let old = std::time::SystemTime::now() - CLAIM_TTL - Duration::from_secs(1);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
        assert!(matches!(store.claim(&key), Claim::Mine(_)));
        // Lookups that only peek are not counted.
        assert_eq!(store.peek::<Value>(&key), None);
        assert_eq!(store.stats().misses, 0);
    }

    #[test]
    fn concurrent_writers_and_readers_never_see_a_partial_entry() {
        let dir = tempfile::tempdir().unwrap();
        let value = Value { scores: awkward_floats(), name: "shared".into() };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let store = ReuseStore::open(dir.path(), "m").unwrap();
                    let key = store.key(Kind::Arrangement, &"same inputs");
                    for _ in 0..50 {
                        if let Some(v) = store.get::<Value>(&key) {
                            assert_eq!(v, value);
                        }
                        store.put(&key, &value);
                    }
                });
            }
        });
    }
}
