//! `wildcards-gen batch MANIFEST [flags]` (and `wildcards-gen batch report DIR`): the same as
//! `batch-client MANIFEST [flags]` — run a manifest of experiments in worker processes (see
//! [`batch_client::batch`]). Its exit status is the batch's: 0 all jobs succeeded, 1 some
//! failed, 2 manifest or usage error, 130 interrupted.

use std::process::ExitCode;

pub use batch_client::batch::BatchCommand;

/// Runs the batch (or `batch report DIR`); workers are started as `wildcards-gen batch
/// --worker` (with env `WILDCARDS_BATCH_WORKER=1`).
pub fn run(args: BatchCommand) -> ExitCode {
    args.run(&["batch"])
}

/// In a worker process of `wildcards-gen batch`: the worker's command line (the program name,
/// then what follows `batch`), for [`batch_client::batch::worker_main`].
pub fn worker_args() -> Option<Vec<std::ffi::OsString>> {
    if !batch_client::batch::is_worker_process() {
        return None;
    }
    let mut args = std::env::args_os();
    let program = args.next()?;
    if args.next()? != "batch" {
        return None;
    }
    Some(std::iter::once(program).chain(args).collect())
}
