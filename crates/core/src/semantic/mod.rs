//! The semantic engine: embeddings (from the embed-server), HDBSCAN/GLOSH outliers, arrangement.

pub mod arrange;
pub mod embedder;
pub mod eval;
pub mod hdbscan;
pub mod lint;
pub mod naming;
pub mod outliers;
pub mod pairwise;
pub mod reduce;
pub mod reuse;
pub mod stage;
pub mod tie_order;
pub mod typicality;
pub mod vectors;

#[cfg(test)]
pub(crate) mod testdata;
