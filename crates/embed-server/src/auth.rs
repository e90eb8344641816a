//! Optional bearer tokens with names (`--api-key-file`).
//!
//! The key file holds one key per line, `name token` (blank lines and `#` comments are
//! skipped); a file of one bare token is one key named `default`. The name says who made a
//! request: it goes into the request log and the metrics, never the token. The file is read
//! again on SIGHUP, so a removed key stops working without a restart; a file that no longer
//! parses is reported and the keys in force stay.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Request, Status};

/// Shortest token a key file may hold: a short token can be guessed by trying.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The name of the key a request came with, put into the request's extensions by the
/// token check, for the request log and the metrics.
#[derive(Clone)]
pub struct ClientName(pub Arc<str>);

/// One key: its name and the SHA-256 of its token. Comparing digests of equal length in
/// constant time reveals neither a token's content nor its length through timing, and the
/// server never holds the token itself.
struct Key {
    name: Arc<str>,
    digest: [u8; 32],
}

/// The keys of `--api-key-file`, replaceable while the server runs.
pub struct NamedKeys {
    path: PathBuf,
    keys: RwLock<Arc<Vec<Key>>>,
}

impl NamedKeys {
    /// Reads the key file; any problem is an error naming the file and line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let keys = read_keys(path)?;
        Ok(Self { path: path.to_path_buf(), keys: RwLock::new(Arc::new(keys)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key names now in force.
    pub fn names(&self) -> Vec<String> {
        self.current().iter().map(|k| k.name.to_string()).collect()
    }

    /// Reads the file again (SIGHUP). On error the keys in force stay.
    pub fn reload(&self) -> Result<usize> {
        let keys = read_keys(&self.path)?;
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        Ok(n)
    }

    fn current(&self) -> Arc<Vec<Key>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Lets the request through, named, when it carries a known token; else
    /// `UNAUTHENTICATED`.
    pub fn check(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated(
                "this server requires a token: send `authorization: Bearer <token>` \
                 (wildcards clients: --token-file FILE or env WILDCARDS_EMBED_TOKEN)",
            ));
        };
        match self.name_of(value.as_bytes()) {
            Some(name) => {
                request.extensions_mut().insert(ClientName(name));
                Ok(request)
            }
            None => Err(Status::unauthenticated("wrong token (or a key that was removed)")),
        }
    }

    /// The key name of a header value `<bearer in any case> <token>` (HTTP auth schemes are
    /// case-insensitive: RFC 9110, 11.1). Every key is compared, with no early exit.
    fn name_of(&self, header: &[u8]) -> Option<Arc<str>> {
        let space = header.iter().position(|b| *b == b' ')?;
        let (scheme, token) = (&header[..space], header[space + 1..].trim_ascii_start());
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(token).into();
        let mut found = None;
        for key in self.current().iter() {
            if bool::from(key.digest.ct_eq(&digest)) {
                found = Some(Arc::clone(&key.name));
            }
        }
        found
    }
}

/// Parses the key file: `name token` lines, or one bare token (named `default`).
fn read_keys(path: &Path) -> Result<Vec<Key>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let file = path.display();
    if lines.is_empty() {
        bail!("--api-key-file {file} is empty; put one key per line as `name token`");
    }
    let mut keys: Vec<Key> = Vec::with_capacity(lines.len());
    for &(number, line) in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, token) = match words.as_slice() {
            [token] if lines.len() == 1 => ("default", *token),
            [name, token] => (*name, *token),
            _ => bail!(
                "--api-key-file {file}, line {number}: expected `name token` (two words), \
                 e.g. `alice 3f9c2a...`"
            ),
        };
        check_key(name, token).with_context(|| format!("--api-key-file {file}, line {number}"))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if keys.iter().any(|k| &*k.name == name) {
            bail!("--api-key-file {file}, line {number}: the name {name:?} is used twice");
        }
        if keys.iter().any(|k| k.digest == digest) {
            bail!("--api-key-file {file}, line {number}: this token is already another key's; give each key its own");
        }
        keys.push(Key { name: Arc::from(name), digest });
    }
    Ok(keys)
}

fn check_key(name: &str, token: &str) -> Result<()> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_.-@".contains(c)) {
        bail!("the key name {name:?} may only hold letters, digits and _ . - @");
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        bail!(
            "the token of {name:?} has {chars} characters, fewer than {MIN_TOKEN_CHARS}; use \
             a longer one (e.g. `openssl rand -hex 16`)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Result<NamedKeys> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        NamedKeys::from_file(file.path())
    }

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        request
    }

    fn name(keys: &NamedKeys, header: &str) -> Option<String> {
        let request = keys.check(request(Some(header))).ok()?;
        Some(request.extensions().get::<ClientName>().unwrap().0.to_string())
    }

    const TWO: &str = "# lab keys\nalice aaaaaaaaaaaaaaaa1\n\nbob   bbbbbbbbbbbbbbbb2\n";

    #[test]
    fn each_token_is_accepted_under_its_name_only() {
        let keys = keys(TWO).unwrap();
        assert_eq!(name(&keys, "Bearer aaaaaaaaaaaaaaaa1").as_deref(), Some("alice"));
        assert_eq!(name(&keys, "bearer  bbbbbbbbbbbbbbbb2").as_deref(), Some("bob"));
        for header in ["Bearer aaaaaaaaaaaaaaaa", "Basic aaaaaaaaaaaaaaaa1", "alice"] {
            assert_eq!(name(&keys, header), None, "{header}");
        }
        let missing = keys.check(request(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("WILDCARDS_EMBED_TOKEN"));
    }

    #[test]
    fn a_bare_token_is_one_key_named_default() {
        let keys = keys("correct-horse-battery\n").unwrap();
        assert_eq!(name(&keys, "Bearer correct-horse-battery").as_deref(), Some("default"));
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        for (text, expected) in [
            ("  \n# only a comment\n", "is empty"),
            ("alice short\n", "line 1: the token of \"alice\" has 5 characters, fewer than 16"),
            ("alice aaaaaaaaaaaaaaaa1\nbobbbbbbbbbbbbbbbbbbbbb\n", "line 2: expected `name token`"),
            (
                "alice aaaaaaaaaaaaaaaa1\nalice bbbbbbbbbbbbbbbb2\n",
                "line 2: the name \"alice\" is used twice",
            ),
            ("alice aaaaaaaaaaaaaaaa1\nbob aaaaaaaaaaaaaaaa1\n", "already another key's"),
            ("al/ce aaaaaaaaaaaaaaaa1\n", "may only hold"),
        ] {
            let err = format!("{:#}", keys(text).err().expect(text));
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains("aaaaaaaaaaaaaaaa1"), "a token in an error: {err}");
        }
    }

    #[test]
    fn reload_drops_a_removed_key_and_keeps_the_old_keys_on_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), TWO).unwrap();
        let keys = NamedKeys::from_file(file.path()).unwrap();
        std::fs::write(file.path(), "alice aaaaaaaaaaaaaaaa1\n").unwrap();
        assert_eq!(keys.reload().unwrap(), 1);
        assert_eq!(name(&keys, "Bearer bbbbbbbbbbbbbbbb2"), None);
        std::fs::write(file.path(), "alice x\n").unwrap();
        assert!(keys.reload().is_err());
        assert_eq!(name(&keys, "Bearer aaaaaaaaaaaaaaaa1").as_deref(), Some("alice"));
    }
}
