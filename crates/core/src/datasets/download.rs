//! "Make sure this dataset file is in the data dir": every loader goes through [`ensure`].
//!
//! The data dir is `--data-dir`, else env `WILDCARDS_DATA_DIR`, else the per-user cache dir
//! (`~/.cache/wildcards-gen/data` on Linux). Inside it each dataset has its folder
//! (`tencent/dictionary_and_semantic_hierarchy.txt`, ...). A file already there is used as
//! is; a missing one is downloaded once from its official URL (through the caller's
//! [`Fetcher`], which draws the progress) into a temp file beside it, and renamed into place
//! when complete, so an interrupted download never leaves a half file that later runs would
//! trust. Where the file is a known published one ([`Published`]), a download must match its
//! size and SHA-256 (else an error and nothing saved), and a file already in the data dir that
//! differs (cut short, edited, another release) is used but reported in a note, so a result
//! built from a partial hierarchy never passes for the real one.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

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
    /// Size and digest of the published file, where known.
    pub published: Option<Published>,
}

/// The size and SHA-256 of a published dataset file (facts recorded in the source; a new
/// upstream release needs a new entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: &'static str,
}

impl Published {
    /// How `bytes` (`len` of them, digest `sha256`) differ from the published file, if they do.
    fn difference(&self, len: u64, sha256: &str) -> Option<String> {
        if len != self.bytes {
            let hint = if len < self.bytes { " (cut short?)" } else { "" };
            return Some(format!("{len} bytes where the published file has {}{hint}", self.bytes));
        }
        (sha256 != self.sha256).then(|| {
            format!(
                "the right size but SHA-256 {sha256} where the published file has {}",
                self.sha256
            )
        })
    }
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

/// Fetches official dataset files over the network. Core has no HTTP client of its own (it
/// stays free of network and terminal crates): the command-line tools plug one in, and
/// tests plug in one that reads files on disk.
pub trait Fetcher: Send + Sync {
    /// Starts a download of `url`.
    fn open(&self, url: &str) -> Result<Body>;

    /// Called as bytes arrive: `done` of `total` (when the server said), for a progress bar.
    fn progress(&self, _file: &str, _done: u64, _total: Option<u64>) {}

    /// Called once when the file is complete or the download failed.
    fn finished(&self, _file: &str) {}
}

/// The body of a download in progress.
pub struct Body {
    /// Length the server announced, checked against what arrives.
    pub len: Option<u64>,
    pub reader: Box<dyn Read + Send>,
}

/// How a loader may get a missing file: `None` means offline (a missing file is an error).
pub type Fetch<'a> = Option<&'a dyn Fetcher>;

/// Returns the path of `file` inside `data_dir`, downloading it first when it is missing. A
/// present file that differs from the published one adds a note to `notes` (it is used: it
/// may be one the user made on purpose).
pub fn ensure(
    data_dir: &Path,
    file: &DataFile,
    fetch: Fetch,
    notes: &mut Vec<String>,
) -> Result<PathBuf> {
    let dest = file.path_in(data_dir);
    if dest.is_file() {
        if let Some(difference) = check_present(&dest, file)? {
            notes.push(format!(
                "{} is not the published {}: it has {difference}. It is used as it is; if you did \
                 not make it yourself, delete it and it is downloaded again from {}",
                dest.display(),
                file.name,
                file.url
            ));
        }
        return Ok(dest);
    }
    let offline = std::env::var_os(OFFLINE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    let fetcher = match fetch {
        Some(f) if !offline => f,
        _ => bail!(
            "{} is missing and {OFFLINE_ENV} forbids downloading it; download {} to that path or \
             point --data-dir / {DATA_DIR_ENV} at a folder that has {}/{}",
            dest.display(),
            file.url,
            file.folder,
            file.name
        ),
    };
    download(fetcher, file.url, &dest, file.published).with_context(|| {
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

/// How a present file differs from the published one (`None`: it matches, or nothing is known).
fn check_present(path: &Path, file: &DataFile) -> Result<Option<String>> {
    let Some(published) = file.published else { return Ok(None) };
    let len = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    if len != published.bytes {
        return Ok(published.difference(len, ""));
    }
    let mut hasher = Sha256::new();
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    io::copy(&mut f, &mut hasher).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(published.difference(len, &hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Downloads `url` to `dest` (creating its folder): into a temp file in the same folder,
/// renamed over `dest` only when the body arrived completely and, where `published` is known,
/// matches it. A failed download removes the folders it created, so no empty data folder is
/// left to puzzle over.
pub fn download(
    fetcher: &dyn Fetcher,
    url: &str,
    dest: &Path,
    published: Option<Published>,
) -> Result<()> {
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let created: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let result = fetch_into(fetcher, url, dir, dest, &name, published);
    fetcher.finished(&name);
    if result.is_err() {
        // Innermost first; remove_dir only removes an empty folder.
        for d in &created {
            let _ = fs::remove_dir(d);
        }
    }
    result
}

fn fetch_into(
    fetcher: &dyn Fetcher,
    url: &str,
    dir: &Path,
    dest: &Path,
    name: &str,
    published: Option<Published>,
) -> Result<()> {
    let mut body = fetcher.open(url).with_context(|| format!("GET {url} failed"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temp file in {}", dir.display()))?;
    let report = |done: u64| fetcher.progress(name, done, body.len);
    let mut out = Hashing { inner: tmp.as_file_mut(), hasher: Sha256::new() };
    let written = copy_with_progress(&mut body.reader, &mut out, &report)
        .with_context(|| format!("reading {url} failed"))?;
    if let Some(n) = body.len {
        if n != written {
            bail!("{url} ended after {written} of {n} bytes");
        }
    }
    let sha256 = hex(&out.hasher.finalize());
    if let Some(difference) = published.and_then(|p| p.difference(written, &sha256)) {
        bail!(
            "{url} sent {difference}: the download is damaged or the file changed upstream; \
             nothing was saved"
        );
    }
    tmp.as_file_mut().sync_all()?;
    tmp.persist(dest).with_context(|| format!("cannot move the download to {}", dest.display()))?;
    Ok(())
}

/// A writer that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut fs::File,
    hasher: Sha256,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn copy_with_progress(
    r: &mut dyn Read,
    w: &mut dyn Write,
    report: &dyn Fn(u64),
) -> io::Result<u64> {
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
        report(total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Serves `file://`-like URLs from a folder on disk (the real HTTP fetcher lives with the
    /// command-line tools); records the progress calls.
    struct FromDisk {
        root: PathBuf,
        /// Claims this length instead of the real one (a cut-off body).
        claim: Option<u64>,
        seen: Mutex<Vec<u64>>,
    }

    impl Fetcher for FromDisk {
        fn open(&self, url: &str) -> Result<Body> {
            let path = self.root.join(url.rsplit('/').next().unwrap_or(url));
            let file = fs::File::open(&path).with_context(|| format!("404 {url}"))?;
            let len = self.claim.or(Some(file.metadata()?.len()));
            Ok(Body { len, reader: Box::new(file) })
        }
        fn progress(&self, _file: &str, done: u64, _total: Option<u64>) {
            self.seen.lock().unwrap().push(done);
        }
    }

    fn source(payload: &[u8], claim: Option<u64>) -> (tempfile::TempDir, FromDisk) {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("data.txt"), payload).unwrap();
        let root = src.path().to_path_buf();
        (src, FromDisk { root, claim, seen: Mutex::new(Vec::new()) })
    }

    #[test]
    fn downloads_a_missing_file_into_its_folder() {
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (_src, fetcher) = source(&payload, None);
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile {
            folder: "demo",
            name: "data.txt",
            url: "https://example/data.txt",
            published: None,
        };
        let path = ensure(dir.path(), &file, Some(&fetcher), &mut Vec::new()).unwrap();
        assert_eq!(path, dir.path().join("demo/data.txt"));
        assert_eq!(fs::read(&path).unwrap(), payload);
        assert_eq!(fetcher.seen.lock().unwrap().last(), Some(&200_000));
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("demo")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_present_file_is_used_as_is() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("demo")).unwrap();
        fs::write(dir.path().join("demo/data.txt"), "local copy").unwrap();
        // No fetcher: it must not be needed.
        let file = DataFile {
            folder: "demo",
            name: "data.txt",
            url: "http://127.0.0.1:9/none",
            published: None,
        };
        let path = ensure(dir.path(), &file, None, &mut Vec::new()).unwrap();
        assert_eq!(fs::read_to_string(path).unwrap(), "local copy");
    }

    #[test]
    fn a_failed_or_short_download_names_the_path_and_leaves_nothing() {
        let (_src, fetcher) = source(b"0123456789", None);
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile {
            folder: "demo",
            name: "missing.txt",
            url: "https://x/missing.txt",
            published: None,
        };
        let err = format!(
            "{:#}",
            ensure(dir.path(), &file, Some(&fetcher), &mut Vec::new()).unwrap_err()
        );
        assert!(err.contains("missing.txt is missing"), "{err}");
        assert!(err.contains("--data-dir"), "{err}");
        assert!(!dir.path().join("demo").exists(), "the folder the download made is removed");

        let (_src, short) = source(b"0123456789", Some(20));
        let file = DataFile {
            folder: "demo",
            name: "data.txt",
            url: "https://x/data.txt",
            published: None,
        };
        let err =
            format!("{:#}", ensure(dir.path(), &file, Some(&short), &mut Vec::new()).unwrap_err());
        assert!(err.contains("ended after 10 of 20 bytes"), "{err}");
        assert!(!dir.path().join("demo").exists());
    }

    #[test]
    fn without_a_fetcher_a_missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = DataFile {
            folder: "demo",
            name: "data.txt",
            url: "https://x/data.txt",
            published: None,
        };
        let err = ensure(dir.path(), &file, None, &mut Vec::new()).unwrap_err().to_string();
        assert!(err.contains("data.txt is missing"), "{err}");
    }

    fn published_of(payload: &[u8]) -> Published {
        let sha256: &'static str = Box::leak(hex(&Sha256::digest(payload)).into_boxed_str());
        Published { bytes: payload.len() as u64, sha256 }
    }

    /// Issue 12 item 12: a known file cut short (or edited) in the data dir is used, with a
    /// note saying how it differs; the published file itself gives no note.
    #[test]
    fn a_present_file_that_differs_from_the_published_one_gives_a_note() {
        let full: Vec<u8> =
            (0..10_000u32).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let published = Some(published_of(&full));
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("demo")).unwrap();
        let file =
            DataFile { folder: "demo", name: "data.txt", url: "https://x/data.txt", published };
        let edited: Vec<u8> = full.iter().map(|b| b.to_ascii_uppercase()).collect();
        let cut = format!("5000 bytes where the published file has {} (cut short?)", full.len());
        let cases: [(&[u8], Option<&str>); 3] = [
            (&full, None),
            (&full[..5_000], Some(&cut)),
            (&edited, Some("the right size but SHA-256")),
        ];
        for (content, want) in cases {
            fs::write(file.path_in(dir.path()), content).unwrap();
            let mut notes = Vec::new();
            let path = ensure(dir.path(), &file, None, &mut notes).unwrap();
            assert_eq!(fs::read(path).unwrap(), content);
            match want {
                None => assert!(notes.is_empty(), "{notes:?}"),
                Some(w) => {
                    assert_eq!(notes.len(), 1, "{notes:?}");
                    assert!(notes[0].contains("is not the published data.txt"), "{}", notes[0]);
                    assert!(notes[0].contains(w), "{}", notes[0]);
                    assert!(notes[0].contains("delete it"), "{}", notes[0]);
                }
            }
        }
    }

    /// A download that does not match the published size and digest is refused: an error, no
    /// file, and (issue 12 item 20) no data folder left behind when the download created it.
    #[test]
    fn a_download_that_differs_from_the_published_file_is_an_error_and_leaves_nothing() {
        let (_src, fetcher) = source(b"a truncated body", None);
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let published = Some(published_of(b"the complete published body"));
        let file =
            DataFile { folder: "demo", name: "data.txt", url: "https://x/data.txt", published };
        let err =
            format!("{:#}", ensure(&data, &file, Some(&fetcher), &mut Vec::new()).unwrap_err());
        assert!(err.contains("sent 16 bytes where the published file has 27"), "{err}");
        assert!(err.contains("nothing was saved"), "{err}");
        assert!(!data.exists(), "the download's folders stay behind");

        let (_src, right) = source(b"the complete published body", None);
        let path = ensure(&data, &file, Some(&right), &mut Vec::new()).unwrap();
        assert_eq!(fs::read(path).unwrap(), b"the complete published body");
    }

    #[test]
    fn a_failed_download_into_an_existing_folder_keeps_the_folder() {
        let (_src, fetcher) = source(b"x", None);
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("demo")).unwrap();
        let file = DataFile {
            folder: "demo",
            name: "gone.txt",
            url: "https://x/gone.txt",
            published: None,
        };
        assert!(ensure(dir.path(), &file, Some(&fetcher), &mut Vec::new()).is_err());
        assert!(dir.path().join("demo").is_dir());
    }

    #[test]
    fn data_dir_prefers_the_flag() {
        assert_eq!(data_dir(Some(Path::new("/x/y"))).unwrap(), PathBuf::from("/x/y"));
    }
}
