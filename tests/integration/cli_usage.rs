//! The command lines of the three binaries: usage errors keep clap's whole message (argument
//! names, "did you mean" tips) and exit 2, runtime failures exit 1, SIGINT 130 and SIGTERM 143;
//! the batch worker mode cannot be reached by a typo of `--workers`; tokens from a file.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::{binary, model_dir, test_data_dir, EmbedServer, EmbedServerOptions};

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(binary(program))
        .args(args)
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env_remove("WILDCARDS_BATCH_WORKER")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit `code` and that stderr holds every needle.
fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in:\n{err}");
    }
}

#[test]
fn usage_errors_keep_clap_message_names_and_suggestions() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["lint"],
            &["required arguments were not provided", "<FILE>", "Usage: wildcards-gen lint"],
        ),
        (&["compare", "a.yaml"], &["<B.yaml>", "Usage: wildcards-gen compare"]),
        (&["arrange"], &["<TERMS>", "Usage: wildcards-gen arrange"]),
        (&["datset"], &["'datset'", "similar subcommand exists: 'dataset'"]),
        (&["dataset", "tencent", "--smrt"], &["'--smrt'", "similar argument exists: '--smart'"]),
        (&["lint", "x.yaml", "--treshold", "0.2"], &["similar argument exists: '--threshold'"]),
    ];
    for (args, needles) in cases {
        let out = run("wildcards-gen", args);
        assert_fails(&out, 2, needles);
        assert!(!stderr(&out).contains("(see --help)"), "{}", stderr(&out));
    }
}

#[test]
fn usage_errors_exit_2_and_help_lists_the_exit_codes() {
    let out = run("wildcards-gen", &["lint", "x.yaml", "-o", "y.yaml"]);
    assert_fails(&out, 2, &["--clean"]);
    let out = run("wildcards-gen", &["arrange", "x.txt", "--threshold", "NaN"]);
    assert_fails(&out, 2, &["NaN"]);
    let out = run("wildcards-gen", &["lint", "x.yaml", "--threshold", "NaN"]);
    assert_fails(&out, 2, &["NaN"]);
    let out = run("embed-server", &["--addr", "no-port-here"]);
    assert_fails(&out, 2, &["HOST:PORT"]);
    let out = run("embed-server", &["--max-texts", "many"]);
    assert_fails(&out, 2, &["many"]);
    for (program, args) in [
        ("wildcards-gen", &["--help"][..]),
        ("wildcards-gen", &["lint", "--help"][..]),
        ("batch-client", &["--help"][..]),
        ("embed-server", &["--help"][..]),
    ] {
        let out = run(program, args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{program} {args:?}");
        for needle in ["Exit status:", "usage error", " 1 "] {
            assert!(help.contains(needle), "{program} {args:?} help lacks `{needle}`:\n{help}");
        }
    }
    let help = String::from_utf8_lossy(&run("wildcards-gen", &["--help"]).stdout).into_owned();
    assert!(help.contains("130") && help.contains("143"), "{help}");
    let help = String::from_utf8_lossy(&run("batch-client", &["--help"]).stdout).into_owned();
    assert!(help.contains("130") && help.contains("143"), "{help}");
}

#[test]
fn embed_server_runtime_failures_exit_1() {
    let dir = tempfile::tempdir().expect("temp");
    let missing = dir.path().join("no-model");
    let out = run("embed-server", &["--no-cache", "--model-dir", missing.to_str().unwrap()]);
    assert_fails(&out, 1, &["config.json is missing"]);

    let short = dir.path().join("key");
    std::fs::write(&short, "short-token\n").expect("write");
    let key = short.to_str().unwrap();
    let out =
        run("embed-server", &["--api-key-file", key, "--model-dir", model_dir().to_str().unwrap()]);
    assert_fails(&out, 1, &["11 characters, fewer than 16"]);

    // Taken before the server binds it: the server loads its model, then cannot listen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let model = model_dir();
    let out = run(
        "embed-server",
        &["--no-cache", "--addr", &addr, "--model-dir", model.to_str().unwrap()],
    );
    assert_fails(&out, 1, &["cannot listen on", "pick another with --addr"]);
}

#[test]
fn embed_server_warns_about_a_reachable_address_without_a_key() {
    // The model is missing, so the server stops before it binds anything.
    let dir = tempfile::tempdir().expect("temp");
    let missing = dir.path().join("no-model");
    let out =
        run("embed-server", &["--addr", "0.0.0.0:50999", "--model-dir", missing.to_str().unwrap()]);
    assert_fails(&out, 1, &["without --api-key-file", "config.json is missing"]);
    let out = run(
        "embed-server",
        &["--addr", "127.0.0.1:50999", "--model-dir", missing.to_str().unwrap()],
    );
    assert!(!stderr(&out).contains("without --api-key-file"), "{}", stderr(&out));
}

#[test]
fn embed_server_resolves_a_host_name_in_addr() {
    let port = test_support::server::free_port().expect("port");
    let mut child = Command::new(binary("embed-server"))
        .args(["--no-cache", "--addr", &format!("localhost:{port}")])
        .env("WILDCARDS_MODEL_DIR", model_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn embed-server");
    let healthy =
        embed_api::client::wait_for_health(&format!("127.0.0.1:{port}"), Duration::from_secs(60));
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    assert!(healthy.is_ok(), "not serving on localhost:{port}: {}", stderr(&out));
}

/// A fifo nobody writes to: a command reading it blocks in `open`, with its handlers set.
fn blocking_input(dir: &Path) -> String {
    let fifo = dir.join("blocked.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success());
    fifo.display().to_string()
}

/// Whether process `pid` catches signal `signal` (its SigCgt mask in /proc).
fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).unwrap_or("0");
    u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & (1 << (signal - 1)) != 0)
}

/// Starts `wildcards-gen lint` on a fifo, waits until it handles the signal, sends it and
/// returns the exit code.
fn exit_code_on(signal: embed_api::process::Signal) -> Option<i32> {
    let dir = tempfile::tempdir().expect("temp");
    let fifo = blocking_input(dir.path());
    let mut child = Command::new(binary("wildcards-gen"))
        .args(["lint", &fifo, "--server", "127.0.0.1:9"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !catches(child.id(), signal as i32) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    embed_api::process::signal(child.id(), signal).expect("signal");
    child.wait().expect("wait").code()
}

#[test]
fn sigint_exits_130_and_sigterm_143() {
    assert_eq!(exit_code_on(embed_api::process::Signal::SIGINT), Some(130));
    assert_eq!(exit_code_on(embed_api::process::Signal::SIGTERM), Some(143));
}

#[test]
fn the_worker_mode_is_not_reachable_by_a_typo_of_workers() {
    let dir = tempfile::tempdir().expect("temp");
    let manifest = dir.path().join("m.yaml");
    std::fs::write(&manifest, "jobs:\n  - name: a\n    params: {}\n").expect("write");
    let m = manifest.to_str().unwrap();
    for (program, args) in [
        ("batch-client", vec!["--worker", "3", m]),
        ("batch-client", vec!["--worker"]),
        ("wildcards-gen", vec!["batch", "--worker", "3", m]),
    ] {
        let started = Instant::now();
        let out = run(program, &args);
        assert_fails(&out, 2, &["'--worker'", "similar argument exists: '--workers'"]);
        assert!(
            out.stdout.is_empty(),
            "no worker started: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    // `wildcards-gen batch` starts its own workers as `wildcards-gen batch --worker`.
    std::fs::write(
        &manifest,
        "config: {output_dir: out, dataset: coco}\njobs:\n  - name: a\n    params: {smart: true}\n",
    )
    .expect("write");
    let out = run("wildcards-gen", &["batch", m, "-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("out/coco_a.yaml").is_file());
    // The variable alone is no way in either.
    let out = Command::new(binary("batch-client"))
        .arg(m)
        .env("WILDCARDS_BATCH_WORKER", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_fails(&out, 2, &["WILDCARDS_BATCH_WORKER"]);
}

#[test]
fn a_token_file_reaches_a_server_that_needs_one() {
    let dir = tempfile::tempdir().expect("temp");
    let key = dir.path().join("key");
    std::fs::write(&key, "correct-horse-battery-staple\n").expect("write");
    let server = EmbedServer::start(EmbedServerOptions {
        api_key_file: Some(key.clone()),
        ..Default::default()
    })
    .expect("server");
    let addr = server.address();
    let terms = dir.path().join("t.yaml");
    std::fs::write(&terms, "Pets:\n  - dog\n  - cat\n  - hamster\n  - goldfish\n").expect("write");
    let t = terms.to_str().unwrap();
    let out = Command::new(binary("wildcards-gen"))
        .args(["lint", t, "--server", &addr])
        .env_remove("WILDCARDS_EMBED_TOKEN")
        .output()
        .expect("run");
    assert_fails(&out, 1, &["--token-file FILE or env WILDCARDS_EMBED_TOKEN"]);
    assert!(!stderr(&out).contains("token flag"), "{}", stderr(&out));
    let out = Command::new(binary("wildcards-gen"))
        .args(["lint", t, "--server", &addr, "--token-file", key.to_str().unwrap()])
        .env_remove("WILDCARDS_EMBED_TOKEN")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));

    // A batch passes the file on to its workers.
    let manifest = dir.path().join("m.yaml");
    let text = "config: {output_dir: out, dataset: coco}\njobs:\n  - name: a\n    params: {smart: true, semantic_clean: true}\n";
    std::fs::write(&manifest, text).expect("write");
    let out = Command::new(binary("batch-client"))
        .arg(&manifest)
        .args(["--server", &addr, "--workers", "1", "-q", "--token-file", key.to_str().unwrap()])
        .env("WILDCARDS_DATA_DIR", test_data_dir())
        .env_remove("WILDCARDS_EMBED_TOKEN")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
