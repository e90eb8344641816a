//! The `wildcards-gen` command line: one clap-derive subcommand per module.
//!
//! Runtime errors are printed as one line (`error: ...`) and give exit code 1. Usage errors give
//! exit code 2: clap's own (unknown flag, missing argument, bad value) exactly as clap renders
//! them, with the usage line and its "did you mean" tips; the commands' own checks (a flag that
//! would do nothing) as one line plus a pointer to `--help`. SIGINT exits 130, SIGTERM 143.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod arrange;
pub mod batch;
pub mod compare;
pub mod dataset;
pub mod embedding;
pub mod export;
pub mod files;
pub mod lint;
pub mod params;
pub mod view;

/// Generate wildcard skeletons (nested YAML taxonomies of prompt terms) from computer-vision
/// label sets via WordNet.
#[derive(Debug, Parser)]
#[command(name = "wildcards-gen", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process, so the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a skeleton from a dataset's label hierarchy.
    Dataset(dataset::DatasetArgs),
    /// Semantic lint of a skeleton: the outliers of every list (by --outlier-method, where
    /// each would fit better), and --clean to write it without them.
    Lint(lint::LintArgs),
    /// Arrange a flat list of terms into named groups (clustering, no LLM).
    Arrange(arrange::ArrangeArgs),
    /// Run a manifest of experiments (jobs and a parameter grid) in worker processes and
    /// write report.md, summary.csv and report.html (the same as `batch-client`); `batch
    /// report DIR` rebuilds those without running anything.
    #[command(after_help = batch_client::batch::MANIFEST_HELP)]
    Batch(batch::BatchCommand),
    /// Compare two skeletons: Jaccard of their items, adjusted Rand index of their grouping.
    Compare(compare::CompareArgs),
    /// Export a skeleton as Dynamic Prompts wildcard files: one .txt per list in folders named
    /// after the categories (`__Category/Sub/List__`).
    Export(export::ExportArgs),
    /// Write a skeleton's viewer: a self-contained HTML page with a collapsible, searchable
    /// tree, item counts, glosses on hover and the lint's flagged items.
    View(view::ViewArgs),
}

impl Command {
    pub fn run(&self) -> anyhow::Result<()> {
        match self {
            Command::Dataset(args) => args.run(),
            Command::Lint(args) => args.run(),
            Command::Arrange(args) => args.run(),
            // Has its own exit statuses; run from `main` below.
            Command::Batch(_) => Ok(()),
            Command::Compare(args) => args.run(),
            Command::View(args) => args.run(),
            Command::Export(args) => args.run(),
        }
    }
}

/// The end of `--help`: the exit statuses, the same for every subcommand but `batch` (whose
/// own help lists its statuses).
pub const EXIT_HELP: &str = "Exit status: 0 success, 1 runtime failure (a file, the server, the \
data), 2 usage error (nothing was run or written), 130 stopped by Ctrl-C (SIGINT), 143 stopped \
by SIGTERM.";

/// `cmd` and every subcommand below it with [`EXIT_HELP`] at the end of their `--help`, unless
/// they have an end of their own (`batch`'s manifest help lists its own statuses).
fn with_exit_help(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    let long = cmd.get_after_long_help().map(|long| format!("{long}\n\n{EXIT_HELP}"));
    let mut cmd = match (cmd.get_after_help(), long) {
        (Some(_), _) => cmd,
        // A command with a long help text of its own (`export`) ends it with the statuses too.
        (None, Some(long)) => cmd.after_help(EXIT_HELP).after_long_help(long),
        (None, None) => cmd.after_help(EXIT_HELP),
    };
    for name in names {
        cmd = cmd.mut_subcommand(name, with_exit_help);
    }
    cmd
}

/// Parses the arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    if let Some(worker_args) = batch::worker_args() {
        return batch_client::batch::worker_main(worker_args);
    }
    let matches = match with_exit_help(<Cli as clap::CommandFactory>::command()).try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return usage_error(e),
    };
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    if let Command::Batch(args) = cli.command {
        return batch::run(args);
    }
    stop_on_interrupt();
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {} (see --help)", one_line(&e.to_string()));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::from(1)
        }
    }
}

/// Ctrl-C (SIGINT) ends a command at once with exit status 130 and SIGTERM with 143 (128 + the
/// signal, what a shell reports for a process the signal killed, so callers can tell the two
/// apart): outputs are written atomically (nothing half-written is left), and a private
/// embed-server ends with us (it watches the stdin pipe we hold).
fn stop_on_interrupt() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    eprintln!("{}", if signal == SIGINT { "interrupted" } else { "terminated" });
                    std::process::exit(128 + signal);
                }
            });
        }
        Err(e) => {
            eprintln!(
                "note: cannot handle Ctrl-C ({e}); it will stop the command without a message"
            )
        }
    }
}

/// A command line that parses but makes no sense (e.g. a flag that would do nothing):
/// reported like clap's own usage errors, with exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Help and version go to stdout as clap renders them; usage errors go to stderr whole, as
/// clap renders them (the problem, the argument's name, "did you mean" tips and the usage
/// line), with exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::from(2),
    }
}

/// Joins a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
