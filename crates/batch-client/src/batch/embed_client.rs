//! The embedding client of batch-client and the `wildcards-gen` commands: the team's gRPC
//! [`EmbedClient`] (chunking, reconnects, retries while the server is down or restarting)
//! behind a constructor that takes just an address.

use std::time::Duration;

use anyhow::{Context, Result};
use wildcards_core::semantic::client::{ClientOptions, EmbedClient};
use wildcards_core::semantic::embedder::{Embedder, Embeddings};

/// How long a failing embedding call is retried (the server down or restarting).
pub const RETRY_FOR: Duration = Duration::from_secs(90);

pub struct GrpcEmbedder {
    client: EmbedClient,
}

impl GrpcEmbedder {
    /// Connects to `addr` (`host:port` or `http://host:port`); the token, when the server
    /// needs one, comes from env `WILDCARDS_EMBED_TOKEN`.
    pub fn connect(addr: &str) -> Result<Self> {
        let mut options = ClientOptions::from_env(Some(addr), None);
        options.retry_for = RETRY_FOR;
        let client = EmbedClient::connect(options)
            .with_context(|| format!("connecting to the embed-server at {addr}"))?;
        Ok(Self { client })
    }
}

impl Embedder for GrpcEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        self.client.embed(texts)
    }
}
