//! Which embed-server a run uses, and the private one it starts when none answers: the one
//! "find or start a server" path of batch-client and of the `wildcards-gen` commands.
//!
//! Address: `--server`, else env `WILDCARDS_EMBED_SERVER`, else `127.0.0.1:50051`. When a job
//! needs embeddings and nothing answers the health check there, the tool starts the
//! `embed-server` next to its own executable on a free loopback port, waits until it is
//! healthy, hands its address to the workers and stops it at the end. If that private server
//! dies mid-batch (a crash, the OOM killer), [`PrivateServer::supervise`] starts it again on
//! the same address; the workers' embedding calls retry meanwhile, so no job is lost.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use embed_api::client;
use std::os::unix::process::CommandExt;

/// Whether a server at `addr` answers its health check with SERVING within `timeout`.
pub fn is_healthy(addr: &str, timeout: Duration) -> bool {
    client::wait_for_health(addr, timeout).is_ok()
}

/// The server a run talks to: a running one, or a private one it started.
pub struct ServerChoice {
    /// `host:port` (or `http://host:port`) to give clients.
    pub addr: String,
    /// The server this run started, stopped when dropped.
    pub private: Option<PrivateServer>,
}

/// Finds the embed-server for a run: the `--server` flag, else `WILDCARDS_EMBED_SERVER`, else
/// 127.0.0.1:50051 when it answers its health check; else starts a private one (log in
/// `log`). `say` tells the user which it is.
///
/// A comma-separated list names several servers (a lab's): the run uses those that answer
/// (the clients spread their requests over them and fail over when one dies; one that does not
/// answer now joins when it does), and starts a private one only when none answers.
pub fn find_or_start(flag: Option<&str>, log: &Path, say: &dyn Fn(&str)) -> Result<ServerChoice> {
    let addr = client::resolve_server(flag);
    let servers = embed_api::pool::split_servers(&addr)?;
    if let [one] = servers.as_slice() {
        match client::wait_for_health(one, Duration::from_secs(2)) {
            Ok(()) => {
                say(&format!("using the embed-server at {one}"));
                return Ok(ServerChoice { addr: one.clone(), private: None });
            }
            // A server that is there but speaks TLS differently (or whose certificate is not
            // trusted) is a set-up error to say, not a reason to start a private server.
            Err(err @ embed_api::ClientError::Tls { .. }) => return Err(err.into()),
            Err(_) => {}
        }
    } else if let Some(choice) = several(&servers, say) {
        return Ok(choice);
    }
    say(&format!(
        "no embed-server answers at {addr}; starting a private one for this run (log: {})",
        log.display()
    ));
    let private = PrivateServer::start(log, READY_WAIT)?;
    say(&format!("private embed-server ready at {} (pid {})", private.addr, private.pid()));
    Ok(ServerChoice { addr: private.addr.clone(), private: Some(private) })
}

/// The choice of a list of servers when at least one answers its health check (checked in
/// parallel): all of them, for the clients to spread over.
fn several(servers: &[String], say: &dyn Fn(&str)) -> Option<ServerChoice> {
    let healthy: Vec<bool> = std::thread::scope(|s| {
        let checks: Vec<_> = servers
            .iter()
            .map(|a| s.spawn(move || is_healthy(a, Duration::from_secs(2))))
            .collect();
        checks.into_iter().map(|h| h.join().unwrap_or(false)).collect()
    });
    let (up, down): (Vec<_>, Vec<_>) = servers.iter().zip(&healthy).partition(|(_, ok)| **ok);
    if up.is_empty() {
        return None;
    }
    let names = |v: &[(&String, &bool)]| -> String {
        v.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(", ")
    };
    let mut line = format!("using the embed-servers at {}", names(&up));
    if !down.is_empty() {
        line.push_str(&format!(" ({} not answering: used when it answers)", names(&down)));
    }
    say(&line);
    Some(ServerChoice { addr: servers.join(","), private: None })
}

/// How often a private server that died mid-batch is started again before the batch gives
/// up on it (a server that crashes at once every time would otherwise loop forever).
const MAX_RESTARTS: u32 = 3;

/// How long a starting private server may take to answer its health check (loading the
/// model on a busy machine).
pub const READY_WAIT: Duration = Duration::from_secs(180);

/// An embed-server batch-client started for this run; stopped (SIGTERM) when dropped.
pub struct PrivateServer {
    /// The current process (replaced when [`Self::supervise`] restarts it).
    child: Mutex<Child>,
    exe: PathBuf,
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
        let log_file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let child = spawn(&exe, &addr, log_file)?;
        let server = PrivateServer { child: Mutex::new(child), exe, addr, log: log.to_path_buf() };
        server.wait_until_healthy(wait)?;
        Ok(server)
    }

    /// Waits (up to `wait`) until the current process answers its health check.
    fn wait_until_healthy(&self, wait: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child().try_wait() {
                let tail = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                bail!(
                    "the private embed-server exited ({status}) before it was ready: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                );
            }
            if is_healthy(&self.addr, Duration::from_millis(500)) {
                return Ok(());
            }
            if start.elapsed() > wait {
                bail!(
                    "the private embed-server did not become healthy within {} s; see {}",
                    wait.as_secs(),
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// Watches the server until `done` is set: when it dies, starts it again on the same
    /// address (its cache keeps what it had written), at most [`MAX_RESTARTS`] times, and
    /// tells `say` what happened. Meant for its own thread while the jobs run.
    pub fn supervise(&self, done: &AtomicBool, say: &(dyn Fn(&str) + Sync)) {
        let mut restarts = 0;
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(250));
            let Ok(Some(status)) = self.child().try_wait() else { continue };
            if done.load(Ordering::SeqCst) {
                return;
            }
            if restarts == MAX_RESTARTS {
                say(&format!(
                    "the private embed-server exited ({status}) again; not restarting it after \
                     {MAX_RESTARTS} restarts (see {})",
                    self.log.display()
                ));
                return;
            }
            restarts += 1;
            match self.restart() {
                Ok(pid) => say(&format!(
                    "the private embed-server exited ({status}); restarted it at {} (pid {pid})",
                    self.addr
                )),
                Err(e) => {
                    say(&format!(
                        "the private embed-server exited ({status}); restart failed: {e:#}"
                    ));
                    return;
                }
            }
        }
    }

    /// Starts a new process on the same address, appending to the same log.
    fn restart(&self) -> Result<u32> {
        let log = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let child = spawn(&self.exe, &self.addr, log)?;
        let pid = child.id();
        *self.child() = child;
        self.wait_until_healthy(READY_WAIT)?;
        Ok(pid)
    }

    /// SIGTERM (the server finishes in-flight requests and closes its cache), then SIGKILL if
    /// it has not ended within 10 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        embed_api::process::terminate(child, Duration::from_secs(10));
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Starts `embed-server --addr ADDR` with its output in `log`. The server ends with this
/// process however it ends: it holds our end of its stdin pipe (`--exit-on-stdin-eof`; the
/// pipe closes when we exit, are killed or run out of memory), and on Linux it also gets
/// SIGTERM when the thread that started it dies (`PR_SET_PDEATHSIG`).
fn spawn(exe: &Path, addr: &str, log: File) -> Result<Child> {
    let mut command = Command::new(exe);
    command
        .args(["--addr", addr, "--exit-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: Ctrl-C reaches batch-client, which stops the server itself
        // after writing the report.
        .process_group(0);
    // The death signal follows the *thread* that spawns: only worth setting from the main
    // thread (a restart from the supervising thread would be stopped when that thread ends).
    #[cfg(target_os = "linux")]
    if std::thread::current().name() == Some("main") {
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of ours.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                    .map_err(std::io::Error::from)
            });
        }
    }
    command.spawn().with_context(|| format!("starting {}", exe.display()))
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
