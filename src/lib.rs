//! The root package only carries the end-to-end tests in `tests/`; this library holds the
//! helpers they share (where the shared data, WordNet and the model are).

use std::path::PathBuf;

/// The workspace root (this package's folder).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The dataset folder tests use: `WILDCARDS_DATA_DIR`, else `../shared/data` beside the checkout.
pub fn test_data_dir() -> PathBuf {
    std::env::var_os("WILDCARDS_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"))
}

/// The reference folder (`../shared/reference`) with sentence-transformers and hdbscan outputs.
pub fn reference_dir() -> PathBuf {
    workspace_root().join("../shared/reference")
}
