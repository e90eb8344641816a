//! `batch-client MANIFEST` (also `wildcards-gen batch MANIFEST`): run a manifest of experiments.
//!
//! The manifest is parsed and validated completely before anything runs (exit 2 on any
//! problem, nothing written); `--dry-run` prints the expanded job table.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use wildcards_core::manifest::{self, Manifest};
use wildcards_core::report;

/// Exit status: every job succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one job failed (the others ran; see report.md).
pub const EXIT_JOBS_FAILED: u8 = 1;
/// Exit status: the manifest or the command line is wrong; nothing ran.
pub const EXIT_USAGE: u8 = 2;

/// Options of a batch run.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// The manifest (YAML: config, jobs, matrix) to run.
    pub manifest: PathBuf,

    /// Print the expanded job table and exit without running anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a batch from parsed arguments and returns the process exit status.
pub fn main(args: BatchArgs) -> ExitCode {
    let manifest = match manifest::load(&args.manifest) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: invalid manifest {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.dry_run {
        print_dry_run(&manifest);
        return ExitCode::from(EXIT_OK);
    }
    eprintln!("error: running jobs is not available yet; use --dry-run to check the manifest");
    ExitCode::from(EXIT_USAGE)
}

fn print_dry_run(m: &Manifest) {
    let mut out = std::io::stdout().lock();
    let needs = m.jobs.iter().filter(|j| j.needs_embeddings()).count();
    let _ = writeln!(
        out,
        "{}: {} jobs -> {} ({} need the embedding server)\n",
        m.path.display(),
        m.jobs.len(),
        m.config.output_dir.display(),
        needs
    );
    let _ = write!(out, "{}", report::job_table(&m.jobs, &m.config.output_dir));
}
