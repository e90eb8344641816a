//! Which embed-server a batch uses, and the private one it starts when none answers.
//!
//! Address: `--server`, else env `WILDCARDS_EMBED_SERVER`, else `127.0.0.1:50051`. When a job
//! needs embeddings and nothing answers the health check there, batch-client starts the
//! `embed-server` next to its own executable on a free loopback port, waits until it is
//! healthy, hands its address to the workers and stops it at the end.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use wildcards_core::semantic::client;

/// The address used when neither `--server` nor the environment names one.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// Whether a server at `addr` answers its health check with SERVING within `timeout`.
pub fn is_healthy(addr: &str, timeout: Duration) -> bool {
    client::wait_for_health(addr, timeout).is_ok()
}

/// An embed-server batch-client started for this run; stopped (SIGTERM) when dropped.
pub struct PrivateServer {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl PrivateServer {
    /// Starts the `embed-server` beside this executable on a free loopback port and waits
    /// (up to `wait`) until it is healthy. Its log goes to `log`.
    pub fn start(log: &Path, wait: Duration) -> Result<Self> {
        let exe = sibling_binary("embed-server")?;
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&exe)
            .args(["--addr", &addr])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Own process group: Ctrl-C reaches batch-client, which stops the server itself
            // after writing the report.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut server = PrivateServer { child, addr, log: log.to_path_buf() };
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                let tail = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "the private embed-server exited ({status}) before it was ready: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                );
            }
            if is_healthy(&server.addr, Duration::from_millis(500)) {
                return Ok(server);
            }
            if start.elapsed() > wait {
                bail!(
                    "the private embed-server did not become healthy within {} s; see {}",
                    wait.as_secs(),
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (the server finishes in-flight requests and closes its cache), then SIGKILL if
    /// it has not ended within 10 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a pid we own (our child, not yet reaped) and a valid
            // signal number; no memory is involved.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A binary installed next to the running executable (cargo builds them side by side).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe.parent().context("executable has no folder")?;
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "no {name} next to {} to start a private embedding server; build it \
             (`cargo build --release -p embed-server`) or pass --server HOST:PORT of a running one",
            exe.display()
        );
    }
    Ok(path)
}

/// A loopback port that was free a moment ago (the OS picks it).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}
