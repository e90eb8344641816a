//! `wildcards-gen batch MANIFEST [flags]` (and `wildcards-gen batch report DIR`): the same as
//! `batch-client MANIFEST [flags]` — run a manifest of experiments in worker processes (see
//! [`batch_client::batch`]). Its exit status is the batch's: 0 all jobs succeeded, 1 some
//! failed, 2 manifest or usage error, 130 interrupted.

use std::process::ExitCode;

pub use batch_client::batch::BatchCommand;

/// Runs the batch (or `batch report DIR`); workers are started as `wildcards-gen batch
/// --worker`.
pub fn run(args: BatchCommand) -> ExitCode {
    args.run(&["batch"])
}
