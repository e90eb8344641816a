//! wildcards-gen: generate, lint, arrange and compare wildcard skeletons.
fn main() {
    eprintln!("wildcards-gen: not built yet");
    std::process::exit(2);
}
