//! batch-client: runs a manifest of experiments (explicit jobs and a parameter grid) in light
//! worker processes that share one embed-server, and writes one consolidated report. Also the
//! library the `wildcards-gen` command line builds on: the one job runner, the one "find or
//! start a server" path, the embed-server adapter and the HTTP downloads.

pub mod batch;
pub mod embedder;
pub mod fetch;
pub mod job;
pub mod manifest;
pub mod report;
pub mod report_html;
pub mod server;
pub mod slurm_options;
pub mod stdout;
pub mod viewer;
