//! The `wildcards-gen` command line: one clap-derive subcommand per module.
//!
//! Errors are printed as one line (`error: ...`) and give exit code 1; usage errors (unknown
//! flag, bad value) give exit code 2, also as one line plus a pointer to `--help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod arrange;
pub mod batch;
pub mod compare;
pub mod dataset;
pub mod embedding;
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
    /// Semantic lint of a skeleton: the outliers of every list (GLOSH scores), and --clean
    /// to write it without them.
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
        }
    }
}

/// Parses the arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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

/// Ctrl-C (or SIGTERM) ends a command at once with exit status 130: outputs are written
/// atomically (nothing half-written is left), and a private embed-server ends with us (it
/// watches the stdin pipe we hold).
fn stop_on_interrupt() {
    let installed = ctrlc::set_handler(|| {
        eprintln!("interrupted");
        std::process::exit(130);
    });
    if let Err(e) = installed {
        eprintln!("note: cannot handle Ctrl-C ({e}); it will stop the command without a message");
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

/// Help and version go to stdout as clap renders them; real usage errors become one line.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("invalid usage");
            let msg = first.trim().trim_start_matches("error: ");
            eprintln!("error: {msg} (see --help)");
            ExitCode::from(2)
        }
    }
}

/// Joins a multi-line message into one line.
pub fn one_line(s: &str) -> String {
    s.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}
