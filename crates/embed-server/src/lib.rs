//! embed-server: loads all-MiniLM-L6-v2 (or several sentence models) once and serves sentence embeddings over gRPC
//! (`proto/embed.proto`), with dynamic batching and a SQLite cache.
//!
//! Modules: [`models`] (the models of `--model NAME=SOURCE` and the names requests use),
//! [`model`] (tokenizer, pooling, sentence-transformers semantics), [`encoder`] (the BERT forward pass on candle), [`batcher`]
//! (merges concurrent requests into forward passes), [`cache`] (memory + SQLite), [`service`]
//! (the gRPC handlers), [`admission`] (back-pressure: decode and queue bounds), [`auth`] (optional bearer token), [`server`] (start-up and shutdown),
//! [`linger`] (closing connections without cutting off answers), [`metrics`] (Prometheus), [`tls`] (`--tls-cert` / `--tls-key`).

pub mod admission;
pub mod auth;
pub mod batcher;
pub mod cache;
pub mod encoder;
pub mod linger;
pub mod metrics;
pub mod model;
pub mod models;
pub mod server;
pub mod service;
pub mod tls;
