//! batch-client: run a manifest of experiments in parallel worker processes.
use std::path::PathBuf;
use std::process::ExitCode;

use batch_client::batch::{self, BatchArgs};
use clap::{Parser, Subcommand};

/// Run a manifest of wildcard-skeleton experiments (jobs and a parameter grid) in parallel
/// worker processes that share one embed-server, and write report.md, summary.csv and
/// report.html (charts of every measure against every varied parameter).
#[derive(Parser, Debug)]
#[command(
    name = "batch-client",
    version,
    after_help = batch::MANIFEST_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    batch: BatchArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Rebuild report.md, summary.csv and report.html (and missing job viewers) of a batch's
    /// output folder from its run record and stats files, without running anything; also
    /// for an interrupted or partial run.
    Report {
        /// The batch's output folder (holds batch-run.json).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print errors only.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Report { dir, quiet }) => batch::report_dir(&dir, quiet),
        None => batch::main(cli.batch, &[]),
    }
}
