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

/// The path of a workspace binary (`batch-client`, `wildcards-gen`, `embed-server`) in the
/// target folder the running test was built into, building it first (once per test process):
/// `cargo test` builds only the root package, and binaries of other packages are not
/// dependencies cargo can provide to it.
pub fn binary(name: &str) -> PathBuf {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    // tests run from <target>/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--workspace", "--bin", name, "--manifest-path"])
        .arg(workspace_root().join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build --bin {name} failed");
    let path = profile_dir.join(name);
    built.insert(name.to_string(), path.clone());
    path
}
