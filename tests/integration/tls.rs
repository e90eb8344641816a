//! embed-server over TLS (issue 15): certificates made here with rcgen (a CA and a server
//! certificate for localhost / 127.0.0.1), the real server with `--tls-cert` / `--tls-key`,
//! and the real clients: the library, `embed-server health|info` and `wildcards-gen arrange`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use test_support::{binary, reference_dir, EmbedServer, EmbedServerOptions, ServerTls};

/// A CA, a server certificate it signed, and a second CA that signed nothing of ours.
struct Certs {
    _dir: tempfile::TempDir,
    tls: ServerTls,
    other_ca: PathBuf,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn make_certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let ca = new_ca("wildcards test CA");
    let key = KeyPair::generate().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = CertificateParams::new(names).unwrap().signed_by(&key, &ca).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let tls = ServerTls {
        cert: write("server.pem", cert.pem()),
        key: write("server.key", key.serialize_pem()),
        ca: write("ca.pem", ca.pem()),
    };
    let other_ca = write("other-ca.pem", new_ca("someone else's CA").pem());
    Certs { _dir: dir, tls, other_ca }
}

fn tls_server(certs: &Certs) -> EmbedServer {
    EmbedServer::start(EmbedServerOptions { tls: Some(certs.tls.clone()), ..Default::default() })
        .expect("embed-server starts with --tls-cert")
}

fn run(program: &str, args: &[&str]) -> Output {
    // No CA from the environment of whoever runs the tests.
    Command::new(binary(program))
        .args(args)
        .env_remove("WILDCARDS_EMBED_CA")
        .output()
        .expect("the binary runs")
}

/// The one line a failed command printed on stderr (asserting it is one line).
fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    stderr
}

#[test]
fn vectors_over_tls_equal_the_plain_servers_bit_for_bit() {
    let certs = make_certs();
    let plain = EmbedServer::uncached().expect("plain embed-server starts");
    let tls = tls_server(&certs);
    let texts = super::embed_server::tencent_names(300);
    let over_tls = tls.client().expect("https client connects").embed(&texts).unwrap();
    let over_plain = plain.client().unwrap().embed(&texts).unwrap();
    assert_eq!(over_tls.vectors.len(), 300);
    let bits = |v: &[Vec<f32>]| -> Vec<Vec<u32>> {
        v.iter().map(|x| x.iter().map(|f| f.to_bits()).collect()).collect()
    };
    assert_eq!(bits(&over_tls.vectors), bits(&over_plain.vectors));
    assert!(tls.log_text().contains("over TLS"), "{}", tls.log_text());

    let ca = certs.tls.ca.to_str().unwrap();
    let health = run("embed-server", &["health", "--server", &tls.url(), "--ca-cert", ca]);
    assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "SERVING");
}

#[test]
fn a_tls_mismatch_or_an_untrusted_certificate_is_one_clear_line() {
    let certs = make_certs();
    let tls = tls_server(&certs);
    let plain = EmbedServer::uncached().expect("plain embed-server starts");
    let port = tls.port();
    let ca = certs.tls.ca.to_str().unwrap();

    for command in ["health", "info"] {
        let started = Instant::now();
        let line = one_error_line(&run("embed-server", &[command, "--server", &tls.address()]));
        let want = format!(
            "embed-server: error: embed-server at http://127.0.0.1:{port} answered with TLS: \
             use https://127.0.0.1:{port} (and --ca-cert"
        );
        assert!(line.starts_with(&want), "{command}: {line}");
        assert!(started.elapsed() < Duration::from_secs(2), "said at once, not retried");

        let other = certs.other_ca.to_str().unwrap();
        let args = [command, "--server", &tls.url(), "--ca-cert", other];
        let line = one_error_line(&run("embed-server", &args));
        assert!(line.contains("does not trust") && line.contains("--ca-cert FILE"), "{line}");
        let line = one_error_line(&run("embed-server", &[command, "--server", &tls.url()]));
        assert!(line.contains("signed by a CA this client does not know"), "{line}");

        let https_to_plain = format!("https://{}", plain.address());
        let args = [command, "--server", &https_to_plain, "--ca-cert", ca];
        let line = one_error_line(&run("embed-server", &args));
        assert!(line.contains("answers without TLS (plain gRPC): use http://"), "{line}");
    }

    // The library says it as a typed error, without retrying for its whole window.
    let err = embed_api::EmbedClient::connect(embed_api::ClientOptions::new(tls.address()))
        .err()
        .expect("plain client to a TLS server fails");
    assert!(matches!(err, embed_api::ClientError::Tls { .. }), "{err:?}");
}

#[test]
fn a_bad_tls_file_stops_the_server_with_the_flag_named() {
    let certs = make_certs();
    let key = certs.tls.key.to_str().unwrap();
    let missing = certs.tls.cert.with_file_name("missing.pem");
    let args = ["--no-cache", "--addr", "127.0.0.1:0", "--tls-cert", missing.to_str().unwrap()];
    let out = run("embed-server", &[&args[..], &["--tls-key", key]].concat());
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out);
    assert!(line.contains("--tls-cert") && line.contains("missing.pem"), "{line}");
    // The key given as the certificate: refused before the model loads.
    let args = ["--no-cache", "--addr", "127.0.0.1:0", "--tls-cert", key, "--tls-key", key];
    let line = one_error_line(&run("embed-server", &args));
    assert!(line.contains("--tls-cert") && line.contains("not a PEM certificate"), "{line}");
    // One without the other is a usage error.
    let out = run("embed-server", &["--no-cache", "--tls-cert", key]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The terms of one list of `arrangement_eval.json`, in a file.
fn terms_file(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(reference_dir().join("arrangement_eval.json")).unwrap();
    let data: serde_json::Value = serde_json::from_str(&text).unwrap();
    let terms: Vec<&str> =
        data["lists"][2]["terms"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    let path = dir.join("terms.txt");
    std::fs::write(&path, terms.join("\n")).unwrap();
    path
}

#[test]
fn wildcards_gen_arrange_works_through_a_tls_server() {
    let certs = make_certs();
    let tls = tls_server(&certs);
    let plain = EmbedServer::uncached().expect("plain embed-server starts");
    let dir = tempfile::tempdir().unwrap();
    let input = terms_file(dir.path());
    let arrange = |out: &str, server: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec!["arrange", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        args.extend(server);
        let run = run("wildcards-gen", &args);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let ca = certs.tls.ca.to_str().unwrap();
    let over_tls = arrange("tls.yaml", &["--server", &tls.url(), "--ca-cert", ca]);
    let over_plain = arrange("plain.yaml", &["--server", &plain.address()]);
    assert_eq!(over_tls, over_plain, "same vectors, same arrangement");

    // Without the CA the named server is refused with the reason, not replaced by a private one.
    let out = dir.path().join("no-ca.yaml");
    let args = ["arrange", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
    let run = run("wildcards-gen", &[&args[..], &["--server", &tls.url()]].concat());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && stderr.contains("--ca-cert"), "{stderr}");
    assert!(!stderr.contains("private"), "no private server started: {stderr}");
}

#[test]
fn a_batch_embeds_through_a_tls_server_with_ca_cert() {
    let certs = make_certs();
    let tls = tls_server(&certs);
    let b = super::batch_support::Batch::new(
        "config:\n  output_dir: out\n  dataset: openimages\n  analyze: true\n\
         jobs:\n  - name: one\n    params: {smart: true, bbox_only: true}\n",
    );
    let ca = certs.tls.ca.to_str().unwrap();
    let args = ["--workers", "1", "--server", &tls.url(), "--ca-cert", ca];
    let out = b.command(&args).env_remove("WILDCARDS_EMBED_CA").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("private"), "the TLS server was used: {stderr}");
    let info = tls.client().unwrap().info().unwrap();
    assert!(info.requests > 0, "the worker's lint embedded through TLS: {info:?}");
}
