//! `wildcards-gen batch MANIFEST [flags]`: the same as `batch-client MANIFEST [flags]` — run a
//! manifest of experiments in worker processes (see [`crate::batch`]). Its exit status is the
//! batch's: 0 all jobs succeeded, 1 some failed, 2 manifest or usage error, 130 interrupted.

use std::process::ExitCode;

pub use crate::batch::BatchArgs;

/// Runs the batch; workers are started as `wildcards-gen batch --worker`.
pub fn run(args: BatchArgs) -> ExitCode {
    crate::batch::main(args, &["batch"])
}
