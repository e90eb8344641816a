//! embed-server: loads MiniLM once and serves sentence embeddings over gRPC.
fn main() {
    eprintln!("embed-server: not built yet");
    std::process::exit(2);
}
