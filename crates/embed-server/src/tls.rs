//! gRPC over TLS (`--tls-cert` / `--tls-key`): rustls through tonic. The files are read and
//! checked before the model loads, so a wrong path or a swapped cert and key fails at once
//! with the flag and file named. tonic wraps every accepted connection (already wrapped in
//! [`crate::linger::LingeringClose`]) in the TLS layer, so the lingering close still guards
//! the last answers under TLS.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tonic::transport::{Identity, ServerTlsConfig};

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Reads both files and checks what each holds; the certificate and key are matched by
/// [`apply`] (rustls refuses a key that does not belong to the certificate).
pub fn load(files: &TlsFiles) -> Result<ServerTlsConfig> {
    let cert = read_pem("--tls-cert", &files.cert, "CERTIFICATE", "a PEM certificate (chain)")?;
    let key = read_pem("--tls-key", &files.key, "PRIVATE KEY", "a PEM private key")?;
    Ok(ServerTlsConfig::new().identity(Identity::from_pem(cert, key)))
}

/// `builder` serving TLS with `config`; an unusable pair is an error naming both files.
pub fn apply(
    builder: tonic::transport::Server,
    config: ServerTlsConfig,
    files: &TlsFiles,
) -> Result<tonic::transport::Server> {
    builder.tls_config(config).with_context(|| {
        format!(
            "--tls-cert {} / --tls-key {}: not a usable certificate and key (does the key \
             belong to the certificate?)",
            files.cert.display(),
            files.key.display()
        )
    })
}

/// The text of a PEM file that must hold a `-----BEGIN ...{label}-----` block.
fn read_pem(flag: &str, path: &Path, label: &str, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{flag} {}: cannot read the file", path.display()))?;
    let holds = text.lines().any(|l| l.starts_with("-----BEGIN ") && l.contains(label));
    if !holds {
        bail!(
            "{flag} {}: not {what} (no `-----BEGIN ...{label}-----` block); make one with \
             e.g. `openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem \
             -days 365 -subj /CN=HOST -addext subjectAltName=DNS:HOST -addext \
             basicConstraints=critical,CA:FALSE`",
            path.display()
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_wrong_file_names_its_flag() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load(&TlsFiles { cert: missing.clone(), key: junk.clone() }).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with("--tls-cert ") && text.contains("missing.pem"), "{text}");
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            .unwrap();
        let err = load(&TlsFiles { cert, key: junk }).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.starts_with("--tls-key ") && text.contains("PRIVATE KEY"), "{text}");
    }
}
