//! batch-client: run a manifest of experiments in parallel worker processes.
fn main() {
    eprintln!("batch-client: not built yet");
    std::process::exit(2);
}
