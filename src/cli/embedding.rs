//! `--server` for the commands that need sentence embeddings (dataset with semantic options
//! or `--analyze`, lint, arrange): connect to a running embed-server, or start a private one
//! for this run when nothing answers (batch-client's rules, through the same code). A server
//! started with `--api-key-file` needs its token: `--token-file FILE`, else env
//! `WILDCARDS_EMBED_TOKEN`.

use anyhow::Result;
use batch_client::embedder::{Access, Session};
use clap::Args;

use super::UsageError;

#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Embedding server, `host:port`, `http://host:port` or `https://host:port`, or several separated by commas
    /// (requests spread over them, failing over when one dies) (default: env
    /// WILDCARDS_EMBED_SERVER, else 127.0.0.1:50051; when none answers, a private server is
    /// started for this run).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Seconds one embedding request may take before the command gives up (default: env
    /// WILDCARDS_EMBED_TIMEOUT, else 600); a "waiting for the embed-server" line appears
    /// every few seconds meanwhile.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<f64>,

    /// File holding the token of a server started with --api-key-file (default: env
    /// WILDCARDS_EMBED_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// PEM CA certificate to trust for an `https://` server whose certificate a private CA
    /// signed (default: env WILDCARDS_EMBED_CA; the public web roots are always trusted).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 0.0 && t.is_finite() => Ok(t),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

impl ServerArgs {
    /// An embedder for this run: the named (or default) server when it answers its health
    /// check, else a private embed-server started beside this executable.
    /// `model` (`semantic_model`) must be one of the server's models: else a usage error
    /// (exit 2) listing them, before any work.
    pub fn connect(&self, model: &str) -> Result<Session> {
        batch_client::embedder::export_ca_cert(self.ca_cert.as_deref())?;
        let access = Access {
            timeout: self.timeout.map(std::time::Duration::from_secs_f64),
            token_file: self.token_file.clone(),
            model: Some(model.to_string()),
        };
        Session::connect(self.server.as_deref(), &private_server_log(), &access).map_err(
            |e| match e.downcast_ref::<embed_api::ClientError>() {
                Some(unknown @ embed_api::ClientError::UnknownModel { .. }) => {
                    UsageError(unknown.to_string()).into()
                }
                _ => e,
            },
        )
    }
}

/// `--semantic-model` of the commands without the job parameters (lint, arrange).
#[derive(Debug, Clone, Args)]
pub struct ModelArg {
    /// Sentence-embedding model: a name of the embed-server's models (`embed-server info`
    /// lists them; a model also answers to its hub id or folder name). minilm is
    /// all-MiniLM-L6-v2. An unknown name is a usage error listing the server's models.
    #[arg(long = "semantic-model", value_name = "NAME", default_value = "minilm")]
    pub semantic_model: String,
}

/// Where a private server of the `wildcards-gen` commands logs: one file under the per-user
/// cache dir (appended to by each run), not a new file in /tmp per run.
fn private_server_log() -> std::path::PathBuf {
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("wildcards-gen")
        .join("private-embed-server.log")
}
