//! What the workspace's tests share (a dev-dependency, never shipped): where the shared data
//! and reference files are, the real WordNet loaded once, the workspace binaries built with
//! the running test's profile, and [`server::EmbedServer`]: the real embed-server on a free
//! loopback port.

use std::path::PathBuf;
use std::sync::OnceLock;

use wildcards_core::wordnet::WordNet;

pub mod chromium;
pub mod server;
pub use server::{EmbedServer, EmbedServerOptions, ServerTls};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The installed WordNet 3.0, loaded once per test process (loading takes a while).
pub fn wordnet() -> &'static WordNet {
    static WN: OnceLock<WordNet> = OnceLock::new();
    WN.get_or_init(|| WordNet::locate(None).expect("WordNet 3.0 is installed (wordnet-base)"))
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

/// Path of a workspace binary (`wildcards-gen`, `batch-client`, `embed-server`) built with
/// the same profile and target dir as the running test. `CARGO_BIN_EXE_*` only covers the
/// test's own package, so the first call in a test process runs `cargo build --bins` for the
/// workspace (a no-op when up to date) to make sure the binaries exist and are current.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let profile_dir = BUILT.get_or_init(build_binaries).as_ref().unwrap_or_else(|e| panic!("{e}"));
    profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Builds the workspace binaries into the running test's target dir; returns the profile dir
/// (`target/debug` or `target/release`).
fn build_binaries() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the test executable: {e}"))?;
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or("unexpected test executable location")?
        .to_path_buf();
    let target_dir = profile_dir.parent().ok_or("unexpected target dir layout")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(other) => other.to_string(),
        None => return Err("unexpected profile dir".into()),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    // Cargo gives test processes package variables (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...);
    // some build scripts track those, so passing them on would rebuild half the dependency
    // tree. Drop them so this build matches a plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        let per_package = k == "CARGO_MANIFEST_DIR"
            || k == "CARGO_MANIFEST_PATH"
            || k == "CARGO_TARGET_TMPDIR"
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "OUT_DIR"
            || ["CARGO_PKG_", "CARGO_CRATE_", "CARGO_BIN_"].iter().any(|p| k.starts_with(p));
        if per_package {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .current_dir(workspace_root())
        .args(["build", "--workspace", "--bins", "--quiet", "--profile", &profile])
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .map_err(|e| format!("cannot run cargo to build the binaries: {e}"))?;
    if !status.success() {
        return Err(format!("building the workspace binaries failed ({status})"));
    }
    Ok(profile_dir)
}

/// The installed model files (what `scripts/fetch-model.sh` fills): `WILDCARDS_MODEL_DIR`, else
/// the per-user cache dir. Tests that give a tool a fresh cache dir pass this on.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WILDCARDS_MODEL_DIR") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME is set");
    cache.join("wildcards-gen/models/all-MiniLM-L6-v2")
}
