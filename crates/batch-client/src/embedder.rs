//! embed-server as the pipeline's [`Embedder`]: the adapter between embed-api's gRPC client
//! and wildcards-core's trait (core knows no gRPC; embed-api knows no pipeline), a counter of
//! what a job embedded, and the [`Session`] the `wildcards-gen` commands use (a running
//! server, or a private one started for the command).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Result;
use embed_api::client::{ClientOptions, EmbedClient, WaitNotice};
use embed_api::pool::{EmbedPool, NoticeFn};
use wildcards_core::semantic::embedder::{Embedder, Embeddings};

use crate::server::{find_or_start, PrivateServer};

/// How a command reaches its server beyond the address: a request timeout and a token file
/// (`--timeout`, `--token-file`; `None`: env `WILDCARDS_EMBED_TIMEOUT` / `WILDCARDS_EMBED_TOKEN`).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub timeout: Option<std::time::Duration>,
    pub token_file: Option<PathBuf>,
    /// The model to use (`semantic_model`), checked against the server's models at
    /// connect; `None`: the server's default.
    pub model: Option<String>,
}

impl Access {
    /// The token of `--token-file`, read now (an unreadable or empty file is an error naming
    /// it), or `None` to fall back on the environment.
    pub fn token(&self) -> Result<Option<String>> {
        match &self.token_file {
            Some(path) => Ok(Some(embed_api::client::read_token_file(path)?)),
            None => Ok(None),
        }
    }
}

/// Makes `--ca-cert FILE` the CA root of every client of this run: it sets env
/// `WILDCARDS_EMBED_CA` (to the absolute path), which every health check and client of this
/// process reads and which worker processes and Slurm tasks inherit, so one flag reaches all of
/// them. Call it early, before any thread that reads the environment starts. A file that
/// cannot be read is an error naming the flag.
pub fn export_ca_cert(flag: Option<&Path>) -> Result<()> {
    let Some(path) = flag else { return Ok(()) };
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| anyhow::anyhow!("--ca-cert {}: cannot read it ({e})", path.display()))?;
    std::env::set_var(embed_api::tls::ENV_CA, absolute);
    Ok(())
}

/// The gRPC client (of one embed-server, or several: `--server a:1,b:2`) behind the
/// [`Embedder`] trait.
pub struct GrpcEmbedder {
    client: EmbedPool,
    /// `model_id#fingerprint` of the model in use (the one asked for, else the server's
    /// default), from the server's Info, read at the first ask.
    model: std::sync::OnceLock<Option<String>>,
}

impl GrpcEmbedder {
    /// Connects to `addr` (`host:port` or `http://host:port`) with the one retry policy
    /// ([`embed_api::client::DEFAULT_RETRY_FOR`]); the token, when the server needs one,
    /// comes from env `WILDCARDS_EMBED_TOKEN`.
    pub fn connect(addr: &str) -> Result<Self> {
        Self::connect_with(addr, &Access::default())
    }

    /// [`Self::connect`] with a request timeout other than `WILDCARDS_EMBED_TIMEOUT` or the
    /// default, and a token other than `WILDCARDS_EMBED_TOKEN` (from `--token-file`). Long
    /// waits are said on stderr ("waiting for the embed-server at ...").
    pub fn connect_with(addr: &str, access: &Access) -> Result<Self> {
        let notice: Arc<NoticeFn> = Arc::new(|line: &str| eprintln!("note: {line}"));
        Self::connect_noticing(addr, access, notice)
    }

    /// [`Self::connect_with`], telling `on_failover` when a server of a list is left out
    /// (it failed mid-batch: its work goes to the others) or rejoins.
    pub fn connect_noticing(
        addr: &str,
        access: &Access,
        on_failover: Arc<NoticeFn>,
    ) -> Result<Self> {
        let token = access.token()?;
        let mut options = ClientOptions::from_env(Some(addr), token.as_deref());
        options.model = access.model.clone();
        let timeout = access.timeout;
        if let Some(t) = timeout {
            options.request_timeout = t;
        }
        options.on_wait = Some(WaitNotice(Arc::new(|server: &str, waited| {
            eprintln!("waiting for the embed-server at {server} ({:.0} s)", waited.as_secs_f64());
        })));
        let client = EmbedPool::connect(options, Some(on_failover))?;
        Ok(Self { client, model: std::sync::OnceLock::new() })
    }

    /// Wraps a client made with other options (tests: short retries).
    pub fn new(client: EmbedClient) -> Self {
        Self { client: EmbedPool::single(client), model: std::sync::OnceLock::new() }
    }

    /// The client of the server or servers.
    pub fn pool(&self) -> &EmbedPool {
        &self.client
    }
}

impl Embedder for GrpcEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        let e = self.client.embed(texts)?;
        Ok(Embeddings { dim: e.dim, vectors: e.vectors, cache_hits: e.cache_hits })
    }

    /// The model's id and weights fingerprint; `None` when the server does not say
    /// (then nothing computed from its vectors is reused across jobs).
    fn model_id(&self) -> Option<String> {
        self.model
            .get_or_init(|| {
                let info = self.client.model_info().ok()?;
                (!info.fingerprint.is_empty())
                    .then(|| format!("{}#{}", info.model_id, info.fingerprint))
            })
            .clone()
    }
}

/// Counts the texts a job embeds and the server's cache hits among them.
pub struct Counting {
    inner: Arc<dyn Embedder>,
    texts: AtomicU64,
    hits: AtomicU64,
}

impl Counting {
    pub fn new(inner: Arc<dyn Embedder>) -> Self {
        Self { inner, texts: AtomicU64::new(0), hits: AtomicU64::new(0) }
    }

    /// (texts embedded, of those served from the server's cache).
    pub fn totals(&self) -> (u64, u64) {
        (self.texts.load(Ordering::Relaxed), self.hits.load(Ordering::Relaxed))
    }
}

impl Embedder for Counting {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        let e = self.inner.embed(texts)?;
        self.texts.fetch_add(texts.len() as u64, Ordering::Relaxed);
        self.hits.fetch_add(e.cache_hits as u64, Ordering::Relaxed);
        Ok(e)
    }

    fn model_id(&self) -> Option<String> {
        self.inner.model_id()
    }
}

/// A connected embedder for one command; a private server it started stops when the session
/// is dropped.
pub struct Session {
    embedder: Arc<GrpcEmbedder>,
    _private: Option<PrivateServer>,
}

impl Session {
    /// The server named by `flag` (else env, else the default) when it answers, else a
    /// private one with its log at `log`; notes go to stderr.
    pub fn connect(flag: Option<&str>, log: &Path, access: &Access) -> Result<Self> {
        // A bad token file is said before a private server is started for nothing.
        access.token()?;
        let say = |s: &str| {
            if !s.starts_with("using ") {
                eprintln!("note: {s}");
            }
        };
        let choice = find_or_start(flag, log, &say)?;
        let embedder = Arc::new(GrpcEmbedder::connect_with(&choice.addr, access)?);
        Ok(Self { embedder, _private: choice.private })
    }

    pub fn embedder(&self) -> Arc<dyn Embedder> {
        self.embedder.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Answers every call; one cache hit per call.
    struct Fixed {
        calls: AtomicUsize,
    }

    impl Embedder for Fixed {
        fn embed(&self, texts: &[String]) -> Result<Embeddings> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Embeddings { dim: 1, vectors: vec![vec![1.0]; texts.len()], cache_hits: 1 })
        }
    }

    #[test]
    fn counting_adds_up_texts_and_cache_hits() {
        let c = Counting::new(Arc::new(Fixed { calls: AtomicUsize::new(0) }));
        c.embed(&["a".to_string(), "b".to_string()]).unwrap();
        c.embed(&["c".to_string()]).unwrap();
        assert_eq!(c.totals(), (3, 2));
    }
}
