//! wildcards-core: everything a wildcard skeleton is made of, without the model.
//!
//! The pipeline of one job (see DESIGN.md): a dataset loader builds a [`taxonomy::TaxonomyNode`]
//! tree, [`smart`] prunes it with WordNet significance, [`shaper`] tidies it, [`output`] writes
//! it, [`stats`] analyses it. The [`semantic`] engine cleans and arranges lists with embeddings
//! that come from the embed-server through the [`semantic::embedder::Embedder`] trait.

pub mod compare;
pub mod datasets;
pub mod generate;
pub mod job;
pub mod manifest;
pub mod output;
pub mod params;
pub mod report;
pub mod semantic;
pub mod shaper;
pub mod smart;
pub mod stats;
pub mod taxonomy;
#[cfg(test)]
mod test_support;
pub mod wordnet;

/// Generated gRPC code for `proto/embed.proto` (client and server).
pub mod proto {
    tonic::include_proto!("wildcards.embed.v1");

    /// Encoded descriptors of `embed.proto`, for the server's gRPC reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("embed_descriptor");
}
