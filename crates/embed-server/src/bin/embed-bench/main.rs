//! embed-bench: throughput of embed-server on the 11,166 Tencent category first names.
//!
//! Starts the `embed-server` binary that sits beside this one (same build) on a free loopback
//! port with a fresh cache file, and measures through the real gRPC client:
//! - cold, 1 client: every name computed by the model;
//! - warm, 1 client: the same names again (memory layer);
//! - warm after a restart, 1 client (SQLite layer);
//! - cold, 4 clients: a fresh server, the names split into 4 disjoint quarters sent at once;
//! - warm, 4 clients: each client sends all names at once;
//!
//! and the server's peak resident memory (VmHWM from /proc). Run it with the release build:
//! `cargo run --release -p embed-server --bin embed-bench`.
//!
//! `--clients 1,4,16,64` is the load mode instead (see [`load`]): one table row per number
//! of concurrent clients, each against a fresh server with a fresh cache (cold).

mod load;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use embed_api::client::{self, ClientOptions, EmbedClient};

#[derive(Parser)]
#[command(name = "embed-bench", about = "Benchmark embed-server on the Tencent category names")]
struct Args {
    /// Data folder holding tencent/dictionary_and_semantic_hierarchy.txt
    /// [default: env WILDCARDS_DATA_DIR, else the per-user data dir]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N names (all 11,166 by default).
    #[arg(long)]
    limit: Option<usize>,
    /// Extra arguments for embed-server (e.g. `--max-batch-tokens 8192`), space-separated.
    #[arg(long, default_value = "")]
    server_args: String,
    /// Load mode: numbers of concurrent clients, comma-separated (e.g. 1,4,16,64); one table
    /// row each, against a fresh server with a fresh cache (cold, so every row computes its
    /// texts). Without it: cold and warm 1-client runs, warm after a restart (SQLite), and
    /// cold and warm 4-client runs, on all the names.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    clients: Vec<u32>,
    /// Load mode: texts per client. Each client gets its own slice of the distinct names
    /// (client i the i-th M names), so clients share no text while clients x M is at most
    /// the 10,289 distinct names; beyond that the slices wrap around (and repeats are cache hits).
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u32).range(1..))]
    texts: u32,
    /// Load mode: texts per request; each client sends its requests one after another.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
    /// Serve over TLS with this PEM certificate (with --tls-key); clients use https://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// CA certificate the clients trust for --tls-cert [default: the certificate itself,
    /// right for a self-signed one].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    ca_cert: Option<PathBuf>,
}

/// How the bench starts its servers and reaches them.
#[derive(Clone)]
struct Setup {
    /// Extra embed-server arguments (`--server-args`, and the TLS files).
    extra: Vec<String>,
    /// The CA the clients trust; `Some` means the server speaks TLS.
    ca: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let data_dir = data_dir(args.data_dir.as_deref())?;
    let mut names = tencent_first_names(&data_dir)?;
    if let Some(limit) = args.limit {
        names.truncate(limit);
    }
    let mut extra: Vec<String> = args.server_args.split_whitespace().map(String::from).collect();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        extra.extend(["--tls-cert".into(), path_arg(cert), "--tls-key".into(), path_arg(key)]);
    }
    let setup = Setup { extra, ca: args.ca_cert.clone().or(args.tls_cert.clone()) };
    println!(
        "embed-bench: {} Tencent first names ({} distinct), {} cores, load average {}",
        names.len(),
        names.iter().collect::<std::collections::HashSet<_>>().len(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    if !args.clients.is_empty() {
        let plan = load::Plan {
            clients: args.clients.iter().map(|&n| n as usize).collect(),
            texts: args.texts as usize,
            batch: args.batch as usize,
        };
        return load::run(&plan, &names, &setup);
    }

    let dir = tempfile::tempdir()?;
    let cache = dir.path().join("bench-cache.sqlite");
    let mut rows = Vec::new();

    let mut server = Server::start(&cache, &setup)?;
    rows.push(run("cold, 1 client", &server, std::slice::from_ref(&names))?);
    let cold_rss = server.peak_rss_mib();
    rows.push(run("warm (memory), 1 client", &server, std::slice::from_ref(&names))?);
    rows.push(run("warm (memory), 4 clients x all names", &server, &vec![names.clone(); 4])?);
    let warm_rss = server.peak_rss_mib();
    server.stop();

    let server = Server::start(&cache, &setup)?;
    rows.push(run(
        "warm (SQLite, after restart), 1 client",
        &server,
        std::slice::from_ref(&names),
    )?);
    drop(server);

    let cold4_cache = dir.path().join("bench-cache-4.sqlite");
    let server = Server::start(&cold4_cache, &setup)?;
    let quarters: Vec<Vec<String>> =
        names.chunks(names.len().div_ceil(4)).map(<[String]>::to_vec).collect();
    rows.push(run("cold, 4 clients x 1/4 of the names", &server, &quarters)?);
    let cold4_rss = server.peak_rss_mib();
    drop(server);

    println!();
    println!("| run | texts | seconds | texts/s | cache hits |");
    println!("|---|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} |",
            row.label,
            row.texts,
            row.seconds,
            row.texts as f64 / row.seconds,
            row.hits
        );
    }
    println!();
    println!(
        "server peak RSS (VmHWM): {} MiB after the cold 1-client run, {} MiB after the warm runs, {} MiB for the cold 4-client server",
        fmt_mib(cold_rss),
        fmt_mib(warm_rss),
        fmt_mib(cold4_rss)
    );
    Ok(())
}

struct Row {
    label: &'static str,
    texts: usize,
    seconds: f64,
    hits: usize,
}

/// Every client (own connection, own thread) embeds its list; wall time over all of them.
fn run(label: &'static str, server: &Server, lists: &[Vec<String>]) -> Result<Row> {
    let clients: Vec<EmbedClient> = lists.iter().map(|_| server.client()).collect::<Result<_>>()?;
    let started = Instant::now();
    let results: Vec<Result<usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .zip(lists)
            .map(|(client, texts)| scope.spawn(move || Ok(client.embed(texts)?.cache_hits)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a client thread panicked")))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let hits = results.into_iter().sum::<Result<usize>>()?;
    let texts = lists.iter().map(Vec::len).sum();
    eprintln!("  {label}: {texts} texts in {seconds:.2}s");
    Ok(Row { label, texts, seconds, hits })
}

/// First comma-separated name of the 4th column, one per category line.
fn tencent_first_names(data_dir: &Path) -> Result<Vec<String>> {
    let path = data_dir.join("tencent/dictionary_and_semantic_hierarchy.txt");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("cannot read {}; pass --data-dir or set WILDCARDS_DATA_DIR", path.display())
    })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| line.split('\t').nth(3))
        .map(|names| names.split(',').next().unwrap_or("").trim().to_string())
        .collect())
}

/// The embed-server binary beside this one, on a free loopback port.
struct Server {
    child: Child,
    address: String,
    ca: Option<PathBuf>,
}

impl Server {
    fn start(cache: &Path, setup: &Setup) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let binary = exe.with_file_name(format!("embed-server{}", std::env::consts::EXE_SUFFIX));
        if !binary.is_file() {
            bail!(
                "{} not found; build it first: cargo build --release -p embed-server",
                binary.display()
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let address = match setup.ca {
            Some(_) => format!("https://{listen}"),
            None => listen.clone(),
        };
        let child = Command::new(&binary)
            .args(["--addr", &listen, "--cache"])
            .arg(cache)
            .args(&setup.extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let server = Self { child, address, ca: setup.ca.clone() };
        let ca = server.ca.as_deref();
        client::wait_for_health_with_ca(&server.address, ca, Duration::from_secs(60))?;
        Ok(server)
    }

    fn client(&self) -> Result<EmbedClient> {
        self.client_with(|_| {})
    }

    /// A client whose options `adjust` may change.
    fn client_with(&self, adjust: impl FnOnce(&mut ClientOptions)) -> Result<EmbedClient> {
        let mut options = ClientOptions::new(self.address.clone());
        options.ca_cert = self.ca.clone();
        adjust(&mut options);
        Ok(EmbedClient::connect(options)?)
    }

    fn peak_rss_mib(&self) -> Option<f64> {
        embed_api::process::peak_rss_kib(self.child.id()).map(|kib| kib as f64 / 1024.0)
    }

    /// SIGTERM and wait, so the cache is checkpointed before the next server opens it.
    fn stop(&mut self) {
        let _ = embed_api::process::signal(self.child.id(), embed_api::process::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// The dataset folder (as wildcards-gen finds it): the flag, else `WILDCARDS_DATA_DIR`, else
/// the per-user cache dir. Written out here because embed-server does not depend on the
/// pipeline crate that defines it.
fn data_dir(flag: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("WILDCARDS_DATA_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::cache_dir()
        .map(|c| c.join("wildcards-gen").join("data"))
        .context("no per-user cache dir: pass --data-dir")
}

fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn fmt_mib(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}
