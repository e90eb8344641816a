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
#[allow(clippy::zombie_processes)]
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
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let unused = format!("127.0.0.1:{}", unused.local_addr().expect("addr").port());
    let mut child = Command::new(binary("wildcards-gen"))
        .args(["arrange", file.to_str().unwrap(), "-o", dir.join("out.yaml").to_str().unwrap()])
        .args(["--server", &unused])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("WILDCARDS_MODEL_DIR", model_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wildcards-gen");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
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

#[test]
fn a_private_server_ends_when_its_command_is_killed() {
    let dir = tempfile::tempdir().expect("temp");
    let (mut child, server) = arrange_with_private_server(dir.path());
    assert!(!gone(server), "the private server runs");
    child.kill().expect("SIGKILL wildcards-gen");
    let _ = child.wait();
    let ended = wait_gone(server, Duration::from_secs(30));
    if !ended {
        let _ = embed_api::process::signal(server, embed_api::process::Signal::SIGKILL);
    }
    assert!(ended, "embed-server {server} outlived the killed command");
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
    let ended = wait_gone(server, Duration::from_secs(30));
    if !ended {
        let _ = embed_api::process::signal(server, embed_api::process::Signal::SIGKILL);
    }
    assert!(ended, "embed-server {server} outlived the interrupted command");
    assert!(!dir.path().join("out.yaml").exists(), "nothing half-written");
}
