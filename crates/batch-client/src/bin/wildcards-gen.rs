//! wildcards-gen: generate, lint, arrange and compare wildcard skeletons.
fn main() -> std::process::ExitCode {
    batch_client::cli::main()
}
