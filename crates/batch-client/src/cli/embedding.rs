//! `--server` for the commands that need sentence embeddings (dataset with semantic options,
//! lint, arrange): connect to a running embed-server, or start a private one for this run
//! when nothing answers (the same rules as batch-client).

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wildcards_core::semantic::embedder::{Embedder, Embeddings};

use crate::batch::embed_client::GrpcEmbedder;
use crate::batch::server::{is_healthy, PrivateServer, DEFAULT_ADDR};

#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Embedding server, `host:port` or `http://host:port` (default: env
    /// WILDCARDS_EMBED_SERVER, else 127.0.0.1:50051; when none answers, a private server is
    /// started for this run).
    #[arg(long, value_name = "URL", env = "WILDCARDS_EMBED_SERVER")]
    pub server: Option<String>,
}

/// How long a private server may take to load the model and become healthy.
const PRIVATE_SERVER_WAIT: Duration = Duration::from_secs(120);

impl ServerArgs {
    /// An embedder for this run: the named (or default) server when it answers its health
    /// check, else a private embed-server started beside this executable.
    pub fn connect(&self) -> Result<Session> {
        let addr = self.server.clone().unwrap_or_else(|| DEFAULT_ADDR.to_string());
        if is_healthy(&addr, Duration::from_secs(2)) {
            let client = GrpcEmbedder::connect(&addr)
                .with_context(|| format!("connecting to the embed-server at {addr}"))?;
            return Ok(Session { client, _private: None });
        }
        if self.server.is_some() {
            eprintln!("note: no embed-server answers at {addr}; starting a private one");
        }
        let log =
            std::env::temp_dir().join(format!("wildcards-gen-embed-{}.log", std::process::id()));
        let private = PrivateServer::start(&log, PRIVATE_SERVER_WAIT)?;
        let client = GrpcEmbedder::connect(&private.addr)?;
        Ok(Session { client, _private: Some(private) })
    }
}

/// A connected embedder; a private server it started stops when the session is dropped.
pub struct Session {
    client: GrpcEmbedder,
    _private: Option<PrivateServer>,
}

impl Session {
    pub fn embedder(&self) -> &dyn Embedder {
        &self.client
    }
}

impl Embedder for Session {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        self.client.embed(texts)
    }
}
