//! Generates the gRPC client and server code from `proto/embed.proto`.
//! protoc comes from the vendored crate so a fresh machine needs no system protoc.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let proto = "../../proto/embed.proto";
    println!("cargo:rerun-if-changed={proto}");
    // The descriptor set feeds the server's gRPC reflection service (so grpcurl works).
    let descriptor =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("embed_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(descriptor)
        .compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
