//! batch-client: run a manifest of experiments in parallel worker processes.
use std::process::ExitCode;

use batch_client::batch::{self, BatchCommand};
use clap::Parser;

/// Run a manifest of wildcard-skeleton experiments (jobs and a parameter grid) in parallel
/// worker processes that share one embed-server, and write report.md, summary.csv and
/// report.html (charts of every measure against every varied parameter). `batch-client report
/// DIR` rebuilds those from a batch's output folder without running anything.
#[derive(Parser, Debug)]
#[command(name = "batch-client", version, after_help = batch::MANIFEST_HELP)]
struct Cli {
    #[command(flatten)]
    batch: BatchCommand,
}

fn main() -> ExitCode {
    if batch::is_worker_process() {
        return batch::worker_main(std::env::args_os());
    }
    Cli::parse().batch.run(&[])
}
