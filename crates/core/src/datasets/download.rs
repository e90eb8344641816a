//! "Make sure this dataset file is in the data dir": every loader goes through [`ensure`].
//!
//! The data dir is `--data-dir`, else env `WILDCARDS_DATA_DIR`, else the per-user cache dir
//! (`~/.cache/wildcards-gen/data` on Linux). Inside it each dataset has its folder
//! (`tencent/dictionary_and_semantic_hierarchy.txt`, ...). A file already there is used as
//! is; a missing one is downloaded once from its official URL into a temp file beside it,
//! with a progress bar on a terminal, and renamed into place when complete, so an
//! interrupted download never leaves a half file that later runs would trust.

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Environment variable naming the data dir.
pub const DATA_DIR_ENV: &str = "WILDCARDS_DATA_DIR";

/// Environment variable that forbids downloads (air-gapped machines, tests): a missing file
/// is then an error right away instead of a network attempt.
pub const OFFLINE_ENV: &str = "WILDCARDS_OFFLINE";

/// One file of a dataset: where it lives inside the data dir and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFile {
    /// Folder inside the data dir (`tencent`, `imagenet`, ...).
    pub folder: &'static str,
    /// File name inside that folder.
    pub name: &'static str,
    /// Official download URL.
    pub url: &'static str,
}

impl DataFile {
    /// Where the file is (or will be) inside `data_dir`.
    pub fn path_in(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(self.folder).join(self.name)
    }
}

/// The data dir: the explicit flag, else `WILDCARDS_DATA_DIR`, else the per-user cache dir.
pub fn data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match dirs::cache_dir() {
        Some(c) => Ok(c.join("wildcards-gen").join("data")),
        None => bail!(
            "no per-user cache directory found for the dataset files: pass --data-dir DIR or set \
             {DATA_DIR_ENV}"
        ),
    }
}

/// How a download reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A progress bar on stderr when it is a terminal, nothing otherwise.
    Auto,
    /// Never draw anything (workers, `--quiet`).
    Hidden,
}

/// Returns the path of `file` inside `data_dir`, downloading it first when it is missing.
pub fn ensure(data_dir: &Path, file: &DataFile, progress: Progress) -> Result<PathBuf> {
    let dest = file.path_in(data_dir);
    if dest.is_file() {
        return Ok(dest);
    }
    if std::env::var_os(OFFLINE_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        bail!(
            "{} is missing and {OFFLINE_ENV} forbids downloading it; download {} to that path or \
             point --data-dir / {DATA_DIR_ENV} at a folder that has {}/{}",
            dest.display(),
            file.url,
            file.folder,
            file.name
        );
    }
    download(file.url, &dest, progress).with_context(|| {
        format!(
            "{} is missing and could not be downloaded from {}; download it by hand to that path \
             or point --data-dir / {DATA_DIR_ENV} at a folder that has {}/{}",
            dest.display(),
            file.url,
            file.folder,
            file.name
        )
    })?;
    Ok(dest)
}

/// Downloads `url` to `dest` (creating its folder): into a temp file in the same folder,
/// renamed over `dest` only when the body arrived completely.
pub fn download(url: &str, dest: &Path, progress: Progress) -> Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut response = agent.get(url).call().with_context(|| format!("GET {url} failed"))?;
    let expected = response.body().content_length();

    let bar = progress_bar(expected, progress, dest);
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    let mut reader = response.body_mut().as_reader();
    let written = copy_with_progress(&mut reader, tmp.as_file_mut(), &bar)
        .with_context(|| format!("reading {url} failed"))?;
    bar.finish_and_clear();
    if let Some(n) = expected {
        if n != written {
            bail!("{url} ended after {written} of {n} bytes");
        }
    }
    tmp.as_file_mut().sync_all()?;
    tmp.persist(dest).with_context(|| format!("cannot move the download to {}", dest.display()))?;
    Ok(())
}

fn progress_bar(len: Option<u64>, progress: Progress, dest: &Path) -> ProgressBar {
    let visible = progress == Progress::Auto && io::stderr().is_terminal();
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_draw_target(if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    bar.set_message(format!("downloading {name}"));
    bar
}

fn copy_with_progress(r: &mut dyn Read, w: &mut dyn Write, bar: &ProgressBar) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
        bar.set_position(total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-shot HTTP/1.1 server on 127.0.0.1 answering every request with `body`
    /// (or a 404 when `body` is None). Returns the base URL.
    fn serve(body: Option<Vec<u8>>, requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut req = [0u8; 4096];
                let _ = stream.read(&mut req);
                let head = match &body {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        b.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_string()
                    }
                };
                stream.write_all(head.as_bytes()).unwrap();
                if let Some(b) = &body {
                    stream.write_all(b).unwrap();
                }
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn downloads_a_missing_file_into_its_folder() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let base = serve(Some(payload.clone()), 1);
        let url: &'static str = Box::leak(format!("{base}/data.txt").into_boxed_str());
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile { folder: "demo", name: "data.txt", url };
        let path = ensure(dir.path(), &file, Progress::Hidden).unwrap();
        assert_eq!(path, dir.path().join("demo/data.txt"));
        assert_eq!(fs::read(&path).unwrap(), payload);
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("demo")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_present_file_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("demo")).unwrap();
        fs::write(dir.path().join("demo/data.txt"), "local copy").unwrap();
        // The URL points nowhere: it must not be contacted.
        let file = DataFile { folder: "demo", name: "data.txt", url: "http://127.0.0.1:9/none" };
        let path = ensure(dir.path(), &file, Progress::Hidden).unwrap();
        assert_eq!(fs::read_to_string(path).unwrap(), "local copy");
    }

    #[test]
    fn a_failed_download_names_the_path_and_leaves_nothing() {
        let base = serve(None, 1);
        let url: &'static str = Box::leak(format!("{base}/missing.txt").into_boxed_str());
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile { folder: "demo", name: "missing.txt", url };
        let err = format!("{:#}", ensure(dir.path(), &file, Progress::Hidden).unwrap_err());
        assert!(err.contains("missing.txt is missing"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        assert_eq!(fs::read_dir(dir.path().join("demo")).unwrap().count(), 0);
    }

    #[test]
    fn data_dir_prefers_the_flag() {
        assert_eq!(data_dir(Some(Path::new("/x/y"))).unwrap(), PathBuf::from("/x/y"));
    }
}
