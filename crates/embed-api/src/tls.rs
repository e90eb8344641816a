//! TLS for clients: `https://host:port` addresses, the extra CA root of `--ca-cert` (or env
//! `WILDCARDS_EMBED_CA`), and telling a TLS mismatch apart from a server that is away.
//!
//! A plain client talking to a TLS port (or the reverse) only sees a broken HTTP/2
//! connection, which reads like a restarting server and would be retried for the whole
//! retry window. So when a call fails at the transport, [`diagnose`] looks at the error
//! chain (certificate errors) and, if that does not settle it, [`probe`]s the port once: it
//! sends the HTTP/2 preface and looks at the first bytes that come back (a TLS record, or an
//! HTTP/2 SETTINGS frame).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::error::ClientError;

/// Env var with a PEM file of a CA root to trust for `https://` servers (as `--ca-cert`).
pub const ENV_CA: &str = "WILDCARDS_EMBED_CA";

/// The CA file of `WILDCARDS_EMBED_CA`, when set and not empty.
pub fn env_ca_cert() -> Option<PathBuf> {
    std::env::var_os(ENV_CA).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The tonic endpoint of `uri`: plain for `http://`, TLS for `https://` (the webpki public
/// roots, plus `ca_cert` when given). `server` is the address as the user wrote it.
pub(crate) fn endpoint(
    server: &str,
    uri: &str,
    ca_cert: Option<&Path>,
) -> Result<Endpoint, ClientError> {
    let endpoint = Endpoint::from_shared(uri.to_string()).map_err(|e| ClientError::Address {
        server: server.to_string(),
        problem: format!("not a valid address ({e})"),
    })?;
    if !uri.starts_with("https://") {
        return Ok(endpoint);
    }
    let mut config = ClientTlsConfig::new().with_webpki_roots();
    if let Some(path) = ca_cert {
        config = config.ca_certificate(Certificate::from_pem(read_ca(path)?));
    }
    endpoint.tls_config(config).map_err(|e| ClientError::Tls {
        uri: uri.to_string(),
        problem: format!("cannot set up TLS: {}", chain(&e)),
    })
}

/// The text of a CA file, which must hold a PEM certificate.
fn read_ca(path: &Path) -> Result<String, ClientError> {
    let problem = |what: String| {
        ClientError::Local(format!("--ca-cert / {ENV_CA} {}: {what}", path.display()))
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read it: {e}")))?;
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(problem(
            "not a PEM certificate (no `-----BEGIN CERTIFICATE-----` block); give the CA \
             certificate that signed the server's --tls-cert"
                .into(),
        ));
    }
    Ok(text)
}

/// An error and its sources, joined by ": " (tonic's own message is often just
/// "transport error"; the cause is further down).
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// What a failed connection to `uri` really was, when it was a TLS problem: a certificate
/// the client does not trust, or client and server disagreeing on TLS. `None`: not a TLS
/// problem (the server may be away: retry).
pub(crate) async fn diagnose(uri: &str, failure: &str) -> Option<ClientError> {
    let https = uri.starts_with("https://");
    let authority = uri.split_once("://").map_or(uri, |(_, rest)| rest).trim_end_matches('/');
    let tls = |problem: String| Some(ClientError::Tls { uri: uri.to_string(), problem });
    if https && failure.contains("invalid peer certificate") {
        return tls(format!(
            "sent a certificate this client does not trust ({}); give the CA that signed it \
             with --ca-cert FILE or env {ENV_CA}",
            certificate_problem(failure)
        ));
    }
    if failure.contains("Connection refused") {
        return None;
    }
    match (probe(authority).await, https) {
        (Speaks::Tls, false) => tls(format!(
            "answered with TLS: use https://{authority} (and --ca-cert FILE or env {ENV_CA} \
             when a private CA signed its certificate)"
        )),
        (Speaks::PlainHttp2, true) => tls(format!(
            "answers without TLS (plain gRPC): use http://{authority} or just {authority}"
        )),
        _ => None,
    }
}

/// rustls's reason for refusing a certificate, in words.
fn certificate_problem(failure: &str) -> &'static str {
    const KNOWN: [(&str, &str); 5] = [
        ("UnknownIssuer", "signed by a CA this client does not know"),
        (
            "CaUsedAsEndEntity",
            "a CA certificate used as the server's own: make the server's with \
             basicConstraints CA:FALSE",
        ),
        ("NotValidForName", "not made for this host name"),
        ("Expired", "expired"),
        ("BadSignature", "bad signature"),
    ];
    KNOWN
        .iter()
        .find(|(name, _)| failure.contains(name))
        .map_or("see the server's certificate", |(_, words)| words)
}

/// What a port answers to the HTTP/2 client preface.
#[derive(Debug, PartialEq, Eq)]
enum Speaks {
    /// A TLS record (rustls answers the preface with an alert).
    Tls,
    /// An HTTP/2 frame (the server's SETTINGS).
    PlainHttp2,
    /// Nothing, or something else.
    Unknown,
}

/// Sends the HTTP/2 preface and an empty SETTINGS frame to `authority` (`host:port`) and
/// looks at the first bytes of the answer (at most a second each for connecting and reading).
async fn probe(authority: &str) -> Speaks {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";
    let wait = Duration::from_secs(1);
    let host_port = authority.trim_start_matches('[').replace("]:", ":");
    let Ok(Ok(mut tcp)) =
        tokio::time::timeout(wait, tokio::net::TcpStream::connect(host_port)).await
    else {
        return Speaks::Unknown;
    };
    if tcp.write_all(PREFACE).await.is_err() {
        return Speaks::Unknown;
    }
    let mut head = [0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match tokio::time::timeout(wait, tcp.read(&mut head[got..])).await {
            Ok(Ok(n)) if n > 0 => got += n,
            _ => break,
        }
    }
    classify(&head[..got])
}

/// A TLS record starts with its content type (0x15 alert, 0x16 handshake) and version 3.x;
/// an HTTP/2 frame header has its type in the fourth byte (0x04 SETTINGS, 0x07 GOAWAY).
fn classify(head: &[u8]) -> Speaks {
    match head {
        [0x15 | 0x16, 0x03, ..] => Speaks::Tls,
        [_, _, _, 0x04 | 0x07, ..] => Speaks::PlainHttp2,
        _ => Speaks::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes_tell_tls_from_http2() {
        assert_eq!(classify(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]), Speaks::Tls);
        assert_eq!(classify(&[0, 0, 6, 4, 0, 0, 0, 0, 0]), Speaks::PlainHttp2);
        assert_eq!(classify(&[]), Speaks::Unknown);
        assert_eq!(classify(b"HTTP/1.1 400"), Speaks::Unknown);
    }

    #[test]
    fn a_ca_file_that_is_not_pem_names_the_flag() {
        let dir = std::env::temp_dir().join(format!("embed-api-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.txt");
        std::fs::write(&path, "hello").unwrap();
        let err = endpoint("https://h:1", "https://h:1", Some(&path)).unwrap_err().to_string();
        assert!(
            err.starts_with("--ca-cert / WILDCARDS_EMBED_CA") && err.contains("ca.txt"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
