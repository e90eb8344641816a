//! Where the commands write: `-o -` is stdout; an `-o` onto a folder or into a folder that does
//! not exist is refused before any work. (The library's atomic write creates missing folders,
//! which suits a batch's output_dir, but on the command line it turns a typo into a new tree.)

use std::path::Path;

use anyhow::{bail, Result};
use wildcards_core::output::write_atomic;

/// Whether `-o` means stdout.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Refuses an output path that cannot be written as asked: a folder, or a file in a folder
/// that does not exist.
pub fn check_output(path: &Path) -> Result<()> {
    if is_stdout(path) {
        return Ok(());
    }
    if path.is_dir() {
        bail!("-o {}: that is a folder; give a file name (in it, or elsewhere)", path.display());
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        bail!(
            "-o {}: the folder {} does not exist; create it first (mkdir -p {}) or fix the path",
            path.display(),
            folder.display(),
            folder.display()
        );
    }
    Ok(())
}

/// Writes `text` to the file atomically, or to stdout for `-`.
pub fn write_output(path: &Path, text: &str) -> Result<()> {
    if is_stdout(path) {
        batch_client::out!("{text}");
        return Ok(());
    }
    write_atomic(path, text.as_bytes())
}

/// `path` for messages: "to stdout" for `-`.
pub fn shown(path: &Path) -> String {
    match is_stdout(path) {
        true => "to stdout".to_string(),
        false => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_output(Path::new("-")).is_ok());
        assert!(check_output(&dir.path().join("x.yaml")).is_ok());
        let folder = check_output(dir.path()).unwrap_err().to_string();
        assert!(folder.contains("that is a folder"), "{folder}");
        let missing = check_output(&dir.path().join("no/such/x.yaml")).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        assert!(!dir.path().join("no").exists());
    }
}
