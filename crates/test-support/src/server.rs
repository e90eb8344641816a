//! Test support: a real embed-server on a free loopback port.
//!
//! The binary comes from [`crate::binary`] (built once per test process with the running
//! test's profile and target dir). One server per test binary is usually enough: start it in a
//! `OnceLock` and share it, or start one per test when a test kills or restarts it.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use embed_api::client::{self, ClientOptions, EmbedClient};

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// How to start a test server.
#[derive(Debug, Clone, Default)]
pub struct EmbedServerOptions {
    /// SQLite cache file; `None` starts the server with `--no-cache`.
    pub cache: Option<PathBuf>,
    /// Token file (`--api-key-file`).
    pub api_key_file: Option<PathBuf>,
    /// Port to use (e.g. to restart on the same address); a free one when `None`.
    pub port: Option<u16>,
    /// More command-line arguments.
    pub extra_args: Vec<String>,
    /// Serve over TLS with these files (`--tls-cert`, `--tls-key`); clients of
    /// [`EmbedServer::client`] then use `https://` and trust `ca`.
    pub tls: Option<ServerTls>,
}

/// The PEM files of a TLS test server, and the CA that signed its certificate.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// A running embed-server child process, killed (SIGKILL) when dropped.
pub struct EmbedServer {
    child: Child,
    port: u16,
    tls: Option<ServerTls>,
    log: tempfile::NamedTempFile,
}

impl EmbedServer {
    /// Starts the real binary and waits (up to 60 s) until its health service says SERVING.
    pub fn start(options: EmbedServerOptions) -> Result<Self> {
        let binary = crate::binary("embed-server");
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let log = tempfile::NamedTempFile::new().context("cannot create a server log file")?;
        let mut command = Command::new(&binary);
        command.arg("--addr").arg(format!("127.0.0.1:{port}"));
        match &options.cache {
            Some(path) => command.arg("--cache").arg(path),
            None => command.arg("--no-cache"),
        };
        if let Some(path) = &options.api_key_file {
            command.arg("--api-key-file").arg(path);
        }
        if let Some(tls) = &options.tls {
            command.arg("--tls-cert").arg(&tls.cert).arg("--tls-key").arg(&tls.key);
        }
        command
            .args(&options.extra_args)
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen()?);
        let child =
            command.spawn().with_context(|| format!("cannot start {}", binary.display()))?;
        let mut server = Self { child, port, tls: options.tls, log };
        server.wait_until_healthy(Duration::from_secs(60))?;
        Ok(server)
    }

    /// A server without any cache.
    pub fn uncached() -> Result<Self> {
        Self::start(EmbedServerOptions::default())
    }

    /// A server with the given SQLite cache file.
    pub fn with_cache(path: &Path) -> Result<Self> {
        Self::start(EmbedServerOptions { cache: Some(path.to_path_buf()), ..Default::default() })
    }

    fn wait_until_healthy(&mut self, timeout: Duration) -> Result<()> {
        let started = std::time::Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait()? {
                bail!("embed-server exited ({status}) before serving:\n{}", self.log_text());
            }
            let ca = self.tls.as_ref().map(|t| t.ca.as_path());
            if client::wait_for_health_with_ca(&self.url(), ca, Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
        }
        bail!("embed-server not healthy after {timeout:?}:\n{}", self.log_text())
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What a client gives as `--server`: `https://127.0.0.1:<port>` for a TLS server, else
    /// [`Self::address`].
    pub fn url(&self) -> String {
        match &self.tls {
            Some(_) => format!("https://127.0.0.1:{}", self.port),
            None => self.address(),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client with short retries (tests want failures fast).
    pub fn client(&self) -> Result<EmbedClient> {
        self.client_with(|_| {})
    }

    /// The pipeline's view of this server: a client with short retries behind the
    /// `Embedder` trait.
    pub fn embedder(&self) -> Result<batch_client::embedder::GrpcEmbedder> {
        Ok(batch_client::embedder::GrpcEmbedder::new(self.client()?))
    }

    /// A client whose options `adjust` may change (token, retry time, chunk size ...).
    pub fn client_with(&self, adjust: impl FnOnce(&mut ClientOptions)) -> Result<EmbedClient> {
        let mut options = ClientOptions::new(self.url());
        options.ca_cert = self.tls.as_ref().map(|t| t.ca.clone());
        options.retry_for = Duration::from_secs(2);
        adjust(&mut options);
        Ok(EmbedClient::connect(options)?)
    }

    /// Everything the server logged so far.
    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// SIGKILL: the process dies at once, mid-request if there is one.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (in-flight requests finish, the cache closes).
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        embed_api::process::signal(self.child.id(), embed_api::process::Signal::SIGTERM)
            .context("cannot send SIGTERM to embed-server")?;
        Ok(self.child.wait()?)
    }

    /// Peak resident memory (VmHWM) of the server in KiB, from /proc.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        embed_api::process::peak_rss_kib(self.child.id())
    }
}

impl Drop for EmbedServer {
    fn drop(&mut self) {
        self.kill();
    }
}
