//! Command-line front ends of wildcards-gen: the `wildcards-gen` tool and `batch-client`.

pub mod batch;
pub mod cli;
