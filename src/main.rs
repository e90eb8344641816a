//! wildcards-gen: generate, lint, arrange, compare and batch-run wildcard skeletons.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
