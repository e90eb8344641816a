//! The embedding cache: an in-memory LRU in front of a SQLite file (WAL mode).
//!
//! Rows are keyed by (model fingerprint, exact text), so another model never gets these
//! vectors. Every row carries a checksum of (fingerprint, text, vector): a damaged row is
//! treated as a miss and recomputed, never served. Any SQLite error (corrupt file, read-only
//! folder, full disk) is logged once and the server carries on without the persistent layer.
//! Writes go through one writer thread so inference never waits for the disk.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lru::LruCache;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

/// A cached vector, shared between the memory layer and responses.
pub type Vector = Arc<[f32]>;

/// Where the cache lives and how big its memory layer may grow.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// SQLite file; `None` keeps only the memory layer.
    pub path: Option<PathBuf>,
    /// Budget of the in-memory layer in bytes.
    pub memory_bytes: usize,
}

/// The default cache file: `~/.cache/wildcards-gen/embeddings.sqlite`.
pub fn default_cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("wildcards-gen/embeddings.sqlite"))
}

/// Memory layer + optional SQLite layer for one model.
pub struct EmbeddingCache {
    memory: Mutex<LruCache<String, Vector>>,
    store: Arc<Mutex<Option<Store>>>,
    path: Option<PathBuf>,
    writer: Mutex<Option<Writer>>,
}

/// How a lookup went per layer: texts found in memory; of the rest, found and not found in
/// SQLite (both zero without a usable SQLite file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerHits {
    pub memory_hits: usize,
    pub sqlite_hits: usize,
    pub sqlite_misses: usize,
}

struct Writer {
    sender: mpsc::Sender<Vec<(String, Vector)>>,
    thread: JoinHandle<()>,
}

impl EmbeddingCache {
    /// Opens the cache. Never fails: an unusable SQLite file is logged and left out.
    pub fn open(options: &CacheOptions, fingerprint: &str, dim: usize) -> Self {
        let per_entry = dim * 4 + 96;
        let capacity = NonZeroUsize::new((options.memory_bytes / per_entry).max(1))
            .unwrap_or(NonZeroUsize::MIN);
        let store = options.path.as_deref().and_then(|path| {
            let started = Instant::now();
            match Store::open(path, fingerprint, dim) {
                Ok(store) => {
                    tracing::debug!(path = %path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "cache opened");
                    Some(store)
                }
                Err(err) => {
                    tracing::error!(
                        "embedding cache {} is unusable ({err:#}); running without a persistent cache \
                         (vectors are computed, not stored). Fix: delete or move the file, or pass --cache PATH / --no-cache",
                        path.display()
                    );
                    None
                }
            }
        });
        let persistent = store.is_some();
        let store = Arc::new(Mutex::new(store));
        let writer = persistent.then(|| Writer::start(Arc::clone(&store)));
        Self {
            memory: Mutex::new(LruCache::new(capacity)),
            store,
            path: options.path.clone(),
            writer: Mutex::new(writer),
        }
    }

    /// True while the SQLite layer is in use.
    pub fn is_persistent(&self) -> bool {
        lock(&self.store).is_some()
    }

    /// The SQLite file, when one was asked for (even if it turned out unusable).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Looks every text up: memory first, then SQLite. `None` is a miss.
    pub fn get_many(&self, texts: &[&str]) -> Vec<Option<Vector>> {
        self.get_many_counted(texts).0
    }

    /// [`Self::get_many`], also telling how each layer did (for the metrics).
    pub fn get_many_counted(&self, texts: &[&str]) -> (Vec<Option<Vector>>, LayerHits) {
        let mut hits = LayerHits::default();
        let mut found: Vec<Option<Vector>> = {
            let mut memory = lock(&self.memory);
            texts.iter().map(|t| memory.get(*t).cloned()).collect()
        };
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        hits.memory_hits = texts.len() - missing.len();
        if missing.is_empty() {
            return (found, hits);
        }
        let from_disk = self.with_store(|store| {
            let keys: Vec<&str> = missing.iter().map(|&i| texts[i]).collect();
            store.get_many(&keys)
        });
        if let Some(from_disk) = from_disk {
            let mut memory = lock(&self.memory);
            for (&i, vector) in missing.iter().zip(from_disk) {
                if let Some(vector) = vector {
                    memory.put(texts[i].to_string(), Arc::clone(&vector));
                    found[i] = Some(vector);
                    hits.sqlite_hits += 1;
                } else {
                    hits.sqlite_misses += 1;
                }
            }
        }
        (found, hits)
    }

    /// Remembers freshly computed vectors (memory now, SQLite on the writer thread).
    pub fn put_many(&self, entries: Vec<(String, Vector)>) {
        {
            let mut memory = lock(&self.memory);
            for (text, vector) in &entries {
                memory.put(text.clone(), Arc::clone(vector));
            }
        }
        if let Some(writer) = lock(&self.writer).as_ref() {
            // A send only fails once the writer stopped after an error; nothing to do then.
            let _ = writer.sender.send(entries);
        }
    }

    /// Rows for this model in SQLite, or the memory layer's size without SQLite.
    pub fn entries(&self) -> u64 {
        self.with_store(|store| store.count()).unwrap_or_else(|| lock(&self.memory).len() as u64)
    }

    /// Flushes pending writes, checkpoints the WAL and closes the file.
    pub fn close(&self) {
        if let Some(writer) = lock(&self.writer).take() {
            drop(writer.sender);
            let _ = writer.thread.join();
        }
        if let Some(store) = lock(&self.store).take() {
            match store.close() {
                Ok(()) => tracing::info!("embedding cache closed cleanly"),
                Err(err) => tracing::warn!("closing the embedding cache: {err:#}"),
            }
        }
    }

    /// Runs `f` on the SQLite layer; an error disables that layer (logged) and gives `None`.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Option<T> {
        run_on_store(&self.store, f)
    }
}

impl Drop for EmbeddingCache {
    fn drop(&mut self) {
        self.close();
    }
}

fn run_on_store<T>(
    store: &Mutex<Option<Store>>,
    f: impl FnOnce(&mut Store) -> Result<T>,
) -> Option<T> {
    let mut guard = lock(store);
    let result = f(guard.as_mut()?);
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            let path = guard.as_ref().map(|s| s.path.display().to_string());
            tracing::error!(
                "embedding cache {} failed ({err:#}); continuing without a persistent cache",
                path.unwrap_or_default()
            );
            *guard = None;
            None
        }
    }
}

impl Writer {
    fn start(store: Arc<Mutex<Option<Store>>>) -> Self {
        let (sender, receiver) = mpsc::channel::<Vec<(String, Vector)>>();
        let thread = std::thread::Builder::new()
            .name("cache-writer".into())
            .spawn(move || {
                while let Ok(mut entries) = receiver.recv() {
                    // Coalesce whatever else is queued into one transaction.
                    while let Ok(more) = receiver.try_recv() {
                        entries.extend(more);
                    }
                    if run_on_store(&store, |s| s.put_many(&entries)).is_none() {
                        break;
                    }
                }
            })
            .expect("spawning a thread only fails when the OS is out of resources");
        Self { sender, thread }
    }
}

/// The SQLite layer.
struct Store {
    conn: Connection,
    path: PathBuf,
    fingerprint: String,
    dim: usize,
}

impl Store {
    fn open(path: &Path, fingerprint: &str, dim: usize) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create folder {}", parent.display()))?;
        }
        let conn = Connection::open(path).context("cannot open SQLite file")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .context("not a usable SQLite database")?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("cannot switch to WAL mode (got {mode})");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            bail!("integrity check failed: {check}");
        }
        // A rowid table (not WITHOUT ROWID): rows of 1.5 KiB would bloat a clustered index.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS embeddings (
                 model TEXT NOT NULL,
                 text TEXT NOT NULL,
                 vector BLOB NOT NULL,
                 checksum BLOB NOT NULL,
                 PRIMARY KEY (model, text)
             );",
        )?;
        // Fail now, not on the first request, when the file cannot be written.
        conn.execute_batch("BEGIN IMMEDIATE; COMMIT;")?;
        Ok(Self { conn, path: path.to_path_buf(), fingerprint: fingerprint.to_string(), dim })
    }

    fn get_many(&mut self, texts: &[&str]) -> Result<Vec<Option<Vector>>> {
        let (fingerprint, dim) = (self.fingerprint.as_str(), self.dim);
        let tx = self.conn.transaction()?;
        let mut out = Vec::with_capacity(texts.len());
        {
            let mut stmt = tx.prepare_cached(
                "SELECT vector, checksum FROM embeddings WHERE model = ?1 AND text = ?2",
            )?;
            for text in texts {
                let row: Option<(Vec<u8>, Vec<u8>)> = stmt
                    .query_row(params![fingerprint, text], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                out.push(
                    row.and_then(|(blob, sum)| decode_row(fingerprint, dim, text, &blob, &sum)),
                );
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn put_many(&mut self, entries: &[(String, Vector)]) -> Result<()> {
        let fingerprint = self.fingerprint.as_str();
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO embeddings (model, text, vector, checksum) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (text, vector) in entries {
                let blob = encode_vector(vector);
                let sum = checksum(fingerprint, text, &blob);
                stmt.execute(params![fingerprint, text, blob, sum])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn count(&mut self) -> Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM embeddings WHERE model = ?1",
            [&self.fingerprint],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    fn close(self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.close().map_err(|(_, e)| e)?;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves plain data behind; keep serving.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// First 8 bytes of SHA-256 over (fingerprint, text, vector bytes).
fn checksum(fingerprint: &str, text: &str, blob: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update((fingerprint.len() as u64).to_le_bytes());
    hasher.update(fingerprint.as_bytes());
    hasher.update((text.len() as u64).to_le_bytes());
    hasher.update(text.as_bytes());
    hasher.update(blob);
    hasher.finalize()[..8].to_vec()
}

/// A row's vector when it is intact: right length, matching checksum, finite values.
fn decode_row(
    fingerprint: &str,
    dim: usize,
    text: &str,
    blob: &[u8],
    sum: &[u8],
) -> Option<Vector> {
    if blob.len() != dim * 4 || checksum(fingerprint, text, blob) != sum {
        tracing::warn!("embedding cache row for {text:?} is damaged; recomputing it");
        return None;
    }
    let vector: Vec<f32> =
        blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    vector.iter().all(|x| x.is_finite()).then(|| Vector::from(vector))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(path: Option<PathBuf>) -> CacheOptions {
        CacheOptions { path, memory_bytes: 1 << 20 }
    }

    fn vector(seed: f32) -> Vector {
        Vector::from(vec![seed, 1.0 - seed, 0.5])
    }

    #[test]
    fn vectors_survive_a_reopen_and_stay_per_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.sqlite");
        let cache = EmbeddingCache::open(&options(Some(path.clone())), "model-a", 3);
        assert!(cache.is_persistent());
        cache.put_many(vec![("dog".into(), vector(0.25)), ("cat".into(), vector(0.75))]);
        cache.close();

        let reopened = EmbeddingCache::open(&options(Some(path.clone())), "model-a", 3);
        assert_eq!(reopened.entries(), 2);
        let got = reopened.get_many(&["dog", "cow", "cat"]);
        assert_eq!(got[0].as_deref(), Some(&vector(0.25)[..]));
        assert!(got[1].is_none());
        assert_eq!(got[2].as_deref(), Some(&vector(0.75)[..]));
        reopened.close();

        let other_model = EmbeddingCache::open(&options(Some(path)), "model-b", 3);
        assert_eq!(other_model.entries(), 0);
        assert!(other_model.get_many(&["dog"])[0].is_none());
    }

    #[test]
    fn a_damaged_row_is_a_miss_never_a_wrong_vector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let cache = EmbeddingCache::open(&options(Some(path.clone())), "m", 3);
        cache.put_many(vec![("dog".into(), vector(0.25)), ("cat".into(), vector(0.75))]);
        cache.close();

        // Flip the stored vector of "dog" behind the cache's back.
        let conn = Connection::open(&path).unwrap();
        let tampered = encode_vector(&[0.9, 0.1, 0.5]);
        conn.execute("UPDATE embeddings SET vector = ?1 WHERE text = 'dog'", params![tampered])
            .unwrap();
        conn.execute("UPDATE embeddings SET vector = x'00' WHERE text = 'cat'", []).unwrap();
        drop(conn);

        let reopened = EmbeddingCache::open(&options(Some(path)), "m", 3);
        let got = reopened.get_many(&["dog", "cat"]);
        assert!(got[0].is_none(), "a checksum mismatch is a miss");
        assert!(got[1].is_none(), "a short blob is a miss");
        assert!(reopened.is_persistent());
    }

    #[test]
    fn an_unusable_file_leaves_a_working_memory_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        std::fs::write(&path, b"not a database at all, just text".repeat(200)).unwrap();
        let cache = EmbeddingCache::open(&options(Some(path.clone())), "m", 3);
        assert!(!cache.is_persistent());
        cache.put_many(vec![("dog".into(), vector(0.25))]);
        assert_eq!(cache.get_many(&["dog"])[0].as_deref(), Some(&vector(0.25)[..]));
        // The user's file is left as it was.
        assert!(std::fs::read(&path).unwrap().starts_with(b"not a database"));

        // A folder in place of the file cannot be opened either.
        let folder = dir.path().join("folder.sqlite");
        std::fs::create_dir(&folder).unwrap();
        assert!(!EmbeddingCache::open(&options(Some(folder)), "m", 3).is_persistent());
    }

    #[test]
    fn the_memory_layer_is_bounded() {
        let cache = EmbeddingCache::open(
            &CacheOptions { path: None, memory_bytes: 10 * (3 * 4 + 96) },
            "m",
            3,
        );
        let entries: Vec<(String, Vector)> =
            (0..50).map(|i| (format!("t{i}"), vector(i as f32))).collect();
        cache.put_many(entries);
        assert_eq!(cache.entries(), 10);
        assert!(cache.get_many(&["t49"])[0].is_some());
        assert!(cache.get_many(&["t0"])[0].is_none());
    }
}
