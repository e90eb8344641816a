//! Helpers shared by the batch end-to-end tests: write a manifest, run or spawn the real
//! `batch-client`, read summary.csv, and check report rows against the jobs' stats files.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use test_support::{binary, test_data_dir};

/// A temp folder with `manifest.yaml` in it.
pub struct Batch {
    pub dir: tempfile::TempDir,
    pub manifest: PathBuf,
}

impl Batch {
    pub fn new(manifest_text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let manifest = dir.path().join("manifest.yaml");
        std::fs::write(&manifest, manifest_text).expect("write manifest");
        Batch { dir, manifest }
    }

    /// The output folder (the manifests here use `output_dir: out`).
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// `batch-client <manifest> <args>` with the shared data, offline, and no inherited server.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(binary("batch-client"));
        cmd.arg(&self.manifest)
            .args(args)
            .env("WILDCARDS_DATA_DIR", test_data_dir())
            .env("WILDCARDS_OFFLINE", "1")
            .env_remove("WILDCARDS_EMBED_SERVER")
            .current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run batch-client")
    }

    /// Starts batch-client with stdout piped; its lines arrive on the returned channel.
    pub fn spawn(&self, args: &[&str]) -> (Child, Receiver<String>) {
        self.spawn_command(self.command(args))
    }

    /// [`Self::spawn`] for a command built with [`Self::command`] and adjusted.
    pub fn spawn_command(&self, mut command: Command) -> (Child, Receiver<String>) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn batch-client");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("batch> {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }

    pub fn summary(&self) -> Vec<HashMap<String, String>> {
        read_csv(&self.out().join("summary.csv"))
    }

    pub fn report(&self) -> String {
        std::fs::read_to_string(self.out().join("report.md")).expect("report.md")
    }
}

/// An address where nothing listens, so that batch-client has to start a private server.
pub fn unused_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("127.0.0.1:{}", l.local_addr().expect("addr").port())
}

/// Waits (up to `limit`) for a line containing `needle`; returns it.
pub fn wait_for_line(rx: &Receiver<String>, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?} within {limit:?}: {e}"),
        }
    }
}

/// Waits for a child with a time limit (kills it and fails the test after that).
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("batch-client did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the embed-server at `addr` has answered at least one Embed request (the
/// batch's jobs are embedding): the condition fault tests strike on, instead of a fixed sleep.
pub fn wait_until_embedding(addr: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut options = embed_api::ClientOptions::new(addr);
    options.retry_for = Duration::from_millis(200);
    let client = embed_api::EmbedClient::connect(options).expect("connect to the server");
    while client.info().map(|i| i.requests).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "no Embed request reached {addr} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    assert!(ok.success(), "kill {sig} {pid} failed");
}

pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().expect("csv header").clone();
    r.records()
        .map(|rec| {
            let rec = rec.expect("csv row");
            headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

pub fn row<'a>(rows: &'a [HashMap<String, String>], job: &str) -> &'a HashMap<String, String> {
    rows.iter().find(|r| r["job"] == job).unwrap_or_else(|| panic!("no row for job {job}"))
}

/// Checks a summary.csv row and the report.md table row of a succeeded job against the job's
/// `.stats.json`, number by number.
pub fn check_row_against_stats(row: &HashMap<String, String>, report_md: &str, stats_path: &Path) {
    let text = std::fs::read_to_string(stats_path)
        .unwrap_or_else(|e| panic!("{}: {e}", stats_path.display()));
    let stats: serde_json::Value = serde_json::from_str(&text).expect("stats json");
    let job = &row["job"];
    assert_eq!(stats["batch"]["job"], job.as_str(), "{}", stats_path.display());
    let s = &stats["structure"];
    let int = |v: &serde_json::Value| v.as_u64().map(|n| n.to_string()).unwrap_or_default();
    let two = |v: &serde_json::Value| v.as_f64().map(|f| format!("{f:.2}")).unwrap_or_default();
    let four = |v: &serde_json::Value| v.as_f64().map(|f| format!("{f:.4}")).unwrap_or_default();
    let expected: Vec<(&str, String)> = vec![
        ("status", "succeeded".into()),
        ("duration_s", format!("{:.3}", stats["execution"]["duration_s"].as_f64().unwrap_or(-1.0))),
        ("file_bytes", int(&s["file_bytes"])),
        ("categories", int(&s["categories"])),
        ("leaf_lists", int(&s["leaf_lists"])),
        ("items", int(&s["items"])),
        ("max_depth", int(&s["max_depth"])),
        ("avg_branching", two(&s["avg_branching"])),
        ("avg_leaf_size", two(&s["avg_leaf_size"])),
        ("outliers", int(&stats["lint"]["outliers"])),
        ("outlier_rate", four(&stats["lint"]["outlier_rate"])),
        ("lint_method", stats["lint"]["method"].as_str().unwrap_or_default().to_string()),
        ("embed_texts", int(&stats["batch"]["embed_texts"])),
        ("embed_cache_hits", int(&stats["batch"]["embed_cache_hits"])),
    ];
    for (col, want) in &expected {
        assert_eq!(
            &row[*col],
            want,
            "job {job}: summary.csv column {col} vs {}",
            stats_path.display()
        );
    }
    // The lint section lists every flagged item with its score (for the skeleton viewer).
    let flagged: usize = stats["lint"]["flagged"]
        .as_array()
        .map(|lists| lists.iter().map(|l| l["outliers"].as_array().map_or(0, Vec::len)).sum())
        .unwrap_or(0);
    assert_eq!(flagged.to_string(), row["outliers"], "job {job}: lint.flagged vs lint.outliers");
    // The report.md row of the job carries the same numbers.
    let md_row = report_md
        .lines()
        .find(|l| l.starts_with(&format!("| {job} |")))
        .unwrap_or_else(|| panic!("report.md has no row for {job}"));
    let cells: Vec<&str> = md_row.trim_matches('|').split(" | ").map(str::trim).collect();
    for col in [
        "categories",
        "leaf_lists",
        "items",
        "max_depth",
        "avg_branching",
        "avg_leaf_size",
        "file_bytes",
    ] {
        let want = &row[col];
        assert!(
            cells.contains(&want.as_str()),
            "report.md row of {job} lacks {col}={want}: {md_row}"
        );
    }
    let embedded = format!("{} ({})", row["embed_texts"], row["embed_cache_hits"]);
    assert!(
        cells.contains(&embedded.as_str()),
        "report.md row of {job} lacks {embedded}: {md_row}"
    );
    // The skeleton exists and has the recorded size.
    let output = stats["metadata"]["output"].as_str().expect("metadata.output");
    let out_path =
        stats_path.parent().expect("folder").join(Path::new(output).file_name().expect("name"));
    let len = std::fs::metadata(&out_path).expect("output file").len();
    assert_eq!(len.to_string(), row["file_bytes"], "{}", out_path.display());
}
