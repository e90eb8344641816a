//! `--server` for the commands that need sentence embeddings (dataset with semantic options,
//! lint, arrange): connect to a running embed-server, or start a private one for this run
//! when nothing answers (the same rules as batch-client). A server started with
//! `--api-key-file` needs its token in `WILDCARDS_EMBED_TOKEN`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use wildcards_core::semantic::client::{self, ClientOptions, EmbedClient};
use wildcards_core::semantic::embedder::Embedder;

use crate::batch::server::PrivateServer;

#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Embedding server, `host:port` or `http://host:port` (default: env
    /// WILDCARDS_EMBED_SERVER, else 127.0.0.1:50051; when none answers, a private server is
    /// started for this run).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
}

/// How long a private server may take to load the model and become healthy.
const PRIVATE_SERVER_WAIT: Duration = Duration::from_secs(120);

impl ServerArgs {
    /// An embedder for this run: the named (or default) server when it answers its health
    /// check, else a private embed-server started beside this executable.
    pub fn connect(&self) -> Result<Session> {
        let options = ClientOptions::from_env(self.server.as_deref(), None);
        client::server_uri(&options.server)?;
        if client::health(&options.server).unwrap_or(false) {
            let addr = options.server.clone();
            let client = EmbedClient::connect(options)
                .with_context(|| format!("connecting to the embed-server at {addr}"))?;
            return Ok(Session { client, _private: None });
        }
        eprintln!("note: no embed-server answers at {}; starting a private one", options.server);
        let log = std::env::temp_dir()
            .join(format!("wildcards-gen-embed-server-{}.log", std::process::id()));
        let private = PrivateServer::start(&log, PRIVATE_SERVER_WAIT)?;
        let client =
            EmbedClient::connect(ClientOptions { server: private.addr.clone(), ..options })
                .context("connecting to the private embed-server")?;
        Ok(Session { client, _private: Some(private) })
    }
}

/// A connected embedder; a private server it started stops when the session is dropped.
pub struct Session {
    client: EmbedClient,
    _private: Option<PrivateServer>,
}

impl Session {
    pub fn embedder(&self) -> &dyn Embedder {
        &self.client
    }
}
