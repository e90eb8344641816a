//! The end-to-end tests of wildcards-gen, batch-client and embed-server, as one test binary
//! (one link of the whole workspace instead of one per file): the real binaries, the real
//! model on a real gRPC server on loopback, the real WordNet and dataset files.

mod batch_faults;
mod batch_folder;
mod batch_manifests;
mod batch_reuse;
mod batch_seed;
mod batch_server;
mod batch_slurm;
mod batch_support;
mod cli_forms;
mod cli_usage;
mod compare_cli;
mod embed_server;
mod export_cli;
mod grpc_tools;
mod params_agree;
mod processes;
mod report_html;
mod semantic_cli;
mod semantic_quality;
mod several_models;
mod several_servers;
mod source_messages;
mod stalled_server;
mod tencent_generation;
mod tls;
mod tool_interop;
