//! embed-api: the contract between embed-server and its clients.
//!
//! - [`proto`]: the code generated from `proto/embed.proto` (package `wildcards.embed.v1`),
//!   client and server halves, plus the descriptor set for gRPC reflection;
//! - [`client`]: the blocking client every tool uses (chunking within the server's limits,
//!   reconnects, one retry policy), the health check, and the address/token conventions;
//! - [`models`]: which of a server's models a name means (the server and clients share it);
//! - [`pool`]: several servers behind one client (`--server a:1,b:2`), failing over when
//!   one dies;
//! - [`ClientError`]: a typed error, so a caller can tell "the server is away, try again
//!   later" ([`ClientError::is_retryable`]) from "this request will never work".
//!
//! It depends on no other crate of the workspace: embed-server builds on it without the
//! pipeline, and the pipeline (`wildcards-core`) knows nothing of gRPC.

pub mod client;
mod error;
pub mod models;
pub mod pool;
pub mod process;
pub mod tls;

pub use client::{ClientOptions, ClientStats, EmbedClient, Embedded};
pub use error::ClientError;
pub use pool::EmbedPool;

/// Generated gRPC code for `proto/embed.proto` (client and server).
pub mod proto {
    tonic::include_proto!("wildcards.embed.v1");

    /// Encoded descriptors of `embed.proto`, for the server's gRPC reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("embed_descriptor");
}
