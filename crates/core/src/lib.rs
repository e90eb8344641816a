//! wildcards-core: everything a wildcard skeleton is made of, without the model.
//!
//! The pipeline of one job (see DESIGN.md): a dataset loader builds a [`taxonomy::TaxonomyNode`]
//! tree, [`smart`] prunes it with WordNet significance, [`shaper`] tidies it, [`output`] writes
//! it, [`stats`] analyses it. The [`semantic`] engine cleans and arranges lists with embeddings
//! that come from the embed-server through the [`semantic::embedder::Embedder`] trait.
//!
//! Core is the pure pipeline: no gRPC, async runtime, HTTP client or terminal display. Those
//! live with the tools (`batch-client`, `wildcards-gen`), which plug them in through
//! [`semantic::embedder::Embedder`] and [`datasets::download::Fetcher`].

pub mod compare;
pub mod datasets;
pub mod edit;
pub mod export;
pub mod generate;
pub mod instructions;
pub mod output;
pub mod params;
pub mod run;
pub mod semantic;
pub mod senses;
pub mod shaper;
pub mod skeleton;
pub mod smart;
pub mod stats;
pub mod taxonomy;
#[cfg(test)]
mod test_support;
pub mod wordnet;
