//! The blocking gRPC embedding client a worker uses: an [`Embedder`] over the generated
//! `wildcards.embed.v1.Embedder` client, with its own single-threaded tokio runtime (the
//! pipeline is synchronous). The channel connects lazily and tonic reconnects it after a
//! server restart; failed calls are retried by the worker's retry layer.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use tonic::transport::{Channel, Endpoint};
use wildcards_core::proto::embedder_client::EmbedderClient;
use wildcards_core::proto::EmbedRequest;
use wildcards_core::semantic::embedder::{Embedder, Embeddings};

/// Texts per request: well under the server's default request limits.
const CHUNK: usize = 512;

pub struct GrpcEmbedder {
    runtime: tokio::runtime::Runtime,
    client: Mutex<EmbedderClient<Channel>>,
}

impl GrpcEmbedder {
    /// A client for `addr` (`host:port` or `http://host:port`); connects on first use.
    pub fn connect(addr: &str) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the gRPC runtime")?;
        let endpoint = Endpoint::from_shared(super::server::uri(addr))
            .with_context(|| format!("'{addr}' is not a server address (host:port)"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(600));
        let channel = {
            let _guard = runtime.enter();
            endpoint.connect_lazy()
        };
        let client = EmbedderClient::new(channel)
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        Ok(Self { runtime, client: Mutex::new(client) })
    }
}

impl Embedder for GrpcEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Embeddings> {
        let mut out =
            Embeddings { dim: 0, vectors: Vec::with_capacity(texts.len()), cache_hits: 0 };
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for chunk in texts.chunks(CHUNK) {
            let req = EmbedRequest { texts: chunk.to_vec(), model: None };
            let resp = self
                .runtime
                .block_on(client.embed(req))
                .map_err(|s| anyhow::anyhow!("embed-server: {} ({:?})", s.message(), s.code()))?
                .into_inner();
            let dim = resp.dim as usize;
            anyhow::ensure!(
                dim > 0 && resp.values.len() == dim * chunk.len(),
                "embed-server answered {} values for {} texts of dim {dim}",
                resp.values.len(),
                chunk.len()
            );
            out.dim = dim;
            out.cache_hits += resp.cache_hits as usize;
            out.vectors.extend(resp.values.chunks(dim).map(<[f32]>::to_vec));
        }
        Ok(out)
    }
}
