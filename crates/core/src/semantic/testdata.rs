//! Test helpers: the shared reference files (`shared/reference/*.json`) and their vectors.

use base64::Engine;
use std::path::PathBuf;

/// `shared/reference` next to the checkout (or `$WILDCARDS_REFERENCE_DIR`).
pub fn reference_dir() -> PathBuf {
    std::env::var_os("WILDCARDS_REFERENCE_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/reference"))
    })
}

/// Parses one reference file.
pub fn load(name: &str) -> serde_json::Value {
    let path = reference_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes `embeddings_f32_b64`: base64 of little-endian f32 values.
pub fn vectors(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .expect("embeddings array")
        .iter()
        .map(|s| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.as_str().expect("base64 string"))
                .expect("valid base64");
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        })
        .collect()
}

pub fn f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}
