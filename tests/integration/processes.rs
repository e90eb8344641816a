//! A private embed-server ends with the command that started it, however that command ends
//! (SIGKILL, Ctrl-C), and Ctrl-C stops a command with exit status 130.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use test_support::{binary, model_dir, test_data_dir};

/// `wildcards-gen arrange` of 3,000 Tencent names with no server at its address: it starts a
/// private one (fresh cache dir, so the embedding takes a while). Returns the child and the
/// private server's pid from its "ready" note. The caller kills and waits for the child.
fn arrange_with_private_server(dir: &std::path::Path) -> (Child, u32) {
    let names = std::fs::read_to_string(
        test_data_dir().join("tencent/dictionary_and_semantic_hierarchy.txt"),
    )
    .expect("tencent file");
    let terms: Vec<&str> = names
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(3))
        .filter_map(|n| n.split(',').next())
        .take(3000)
        .collect();
    let file = dir.join("terms.txt");
    std::fs::write(&file, terms.join("\n")).expect("write terms");
    let out = dir.join("out.yaml");
    let args = ["arrange", file.to_str().unwrap(), "-o", out.to_str().unwrap()];
    with_private_server(dir, "wildcards-gen", &args)
}

/// Runs `program args` with no embed-server at its address and a fresh cache dir, until it
/// says its private server is ready (on stdout or stderr). Returns the child and the server's
/// pid. The caller kills and waits for the child.
#[allow(clippy::zombie_processes)]
fn with_private_server(dir: &std::path::Path, program: &str, args: &[&str]) -> (Child, u32) {
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let unused = format!("127.0.0.1:{}", unused.local_addr().expect("addr").port());
    let mut child = Command::new(binary(program))
        .args(args)
        .args(["--server", &unused])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("WILDCARDS_MODEL_DIR", model_dir())
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    let streams: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for stream in streams {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let line = line.expect("a 'private embed-server ready' note");
        if let Some(pid) = line.split("(pid ").nth(1) {
            let pid = pid.trim_end_matches(')').parse().expect("pid");
            return (child, pid);
        }
    }
}

/// True once process `pid` is gone (or a zombie nobody has reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Asserts the private server `pid` ends within 30 s of `what` ending (killing it if not,
/// so a failing test leaves nothing behind).
fn assert_server_ends(pid: u32, what: &str) {
    let ended = wait_gone(pid, Duration::from_secs(30));
    if !ended {
        let _ = embed_api::process::signal(pid, embed_api::process::Signal::SIGKILL);
    }
    assert!(ended, "embed-server {pid} outlived the {what}");
}

#[test]
fn a_private_server_ends_when_its_command_is_killed() {
    let dir = tempfile::tempdir().expect("temp");
    let (mut child, server) = arrange_with_private_server(dir.path());
    assert!(!gone(server), "the private server runs");
    child.kill().expect("SIGKILL wildcards-gen");
    let _ = child.wait();
    assert_server_ends(server, "killed command");
    let log = dir.path().join("cache/wildcards-gen/private-embed-server.log");
    assert!(log.is_file(), "the private server logs under the cache dir");
}

#[test]
fn ctrl_c_stops_a_command_with_130_and_its_private_server() {
    let dir = tempfile::tempdir().expect("temp");
    let (mut child, server) = arrange_with_private_server(dir.path());
    embed_api::process::signal(child.id(), embed_api::process::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_server_ends(server, "interrupted command");
    assert!(!dir.path().join("out.yaml").exists(), "nothing half-written");
}

/// The batch-client killed outright (as the OOM killer would): its private server ends too.
#[test]
fn a_private_server_ends_when_the_batch_client_is_killed() {
    let dir = tempfile::tempdir().expect("temp");
    let manifest = dir.path().join("m.yaml");
    std::fs::write(
        &manifest,
        "config:\n  dataset: tencent\n  analyze: false\njobs:\n  - name: clean\n    \
         params: {smart: true, semantic_clean: true}\n",
    )
    .expect("manifest");
    let out = dir.path().join("out");
    let args = [manifest.to_str().unwrap(), "--output-dir", out.to_str().unwrap()];
    let (mut child, server) = with_private_server(dir.path(), "batch-client", &args);
    child.kill().expect("SIGKILL batch-client");
    let _ = child.wait();
    assert_server_ends(server, "killed batch-client");
}

/// Ctrl-C during `dataset --semantic-clean` stops it with 130, its private server with it,
/// and writes nothing.
#[test]
fn ctrl_c_stops_a_semantic_dataset_run_with_130() {
    let dir = tempfile::tempdir().expect("temp");
    let out = dir.path().join("clean.yaml");
    let args = ["dataset", "tencent", "--smart", "--semantic-clean", "-o", out.to_str().unwrap()];
    let (mut child, server) = with_private_server(dir.path(), "wildcards-gen", &args);
    embed_api::process::signal(child.id(), embed_api::process::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert_server_ends(server, "interrupted command");
    assert!(!out.exists(), "nothing half-written");
}
