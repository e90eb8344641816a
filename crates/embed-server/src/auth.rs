//! Optional bearer-token check (`--api-key-file`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tonic::{Request, Status};

/// The name of the key a request came with, put into the request's extensions by the
/// token check, for the request log and the metrics.
#[derive(Clone)]
pub struct ClientName(pub std::sync::Arc<str>);

/// Shortest token a key file may hold: a short token can be guessed by trying.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The token every `Embedder` call must carry as `authorization: Bearer <token>` (the scheme
/// name in any case, as HTTP auth schemes are case-insensitive: RFC 9110, 11.1).
#[derive(Clone)]
pub struct BearerAuth {
    expected: String,
}

impl BearerAuth {
    /// Reads the token (surrounding whitespace ignored) from a file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --api-key-file {}", path.display()))?;
        let token = text.trim();
        if token.is_empty() {
            bail!("--api-key-file {} is empty; put the token on its first line", path.display());
        }
        let chars = token.chars().count();
        if chars < MIN_TOKEN_CHARS {
            bail!(
                "--api-key-file {}: the token has {chars} characters, fewer than \
                 {MIN_TOKEN_CHARS}; use a longer one (e.g. `openssl rand -hex 16`)",
                path.display()
            );
        }
        Ok(Self { expected: token.to_string() })
    }

    /// Lets the request through when it carries the token, else `UNAUTHENTICATED`.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get("authorization") {
            None => Err(Status::unauthenticated(
                "this server requires a token: send `authorization: Bearer <token>` \
                 (wildcards clients: --token-file FILE or env WILDCARDS_EMBED_TOKEN)",
            )),
            Some(value) if self.accepts(value.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong token")),
        }
    }
}

impl BearerAuth {
    /// Whether a header value is `<bearer in any case> <the token>`.
    fn accepts(&self, header: &[u8]) -> bool {
        let Some(space) = header.iter().position(|b| *b == b' ') else { return false };
        let (scheme, token) = (&header[..space], header[space + 1..].trim_ascii_start());
        scheme.eq_ignore_ascii_case(b"bearer") && constant_time_eq(token, self.expected.as_bytes())
    }
}

/// Compares without an early exit, so response timing does not reveal how much of a guessed
/// token was right. Hand-written: a dependency for four lines is not worth it.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> BearerAuth {
        BearerAuth { expected: "s3cret".into() }
    }

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        request
    }

    #[test]
    fn accepts_the_right_token_only() {
        assert!(auth().check(request(Some("Bearer s3cret"))).is_ok());
        let wrong = auth().check(request(Some("Bearer s3cre"))).unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        let missing = auth().check(request(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("WILDCARDS_EMBED_TOKEN"));
    }

    #[test]
    fn the_scheme_is_accepted_in_any_case() {
        for header in ["bearer s3cret", "BEARER s3cret", "beArer  s3cret"] {
            assert!(auth().check(request(Some(header))).is_ok(), "{header}");
        }
        for header in ["Basic s3cret", "Bearers3cret", "s3cret", "Bearer S3CRET"] {
            assert!(auth().check(request(Some(header))).is_err(), "{header}");
        }
    }

    #[test]
    fn a_short_key_file_is_refused() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "correct-horse\n").unwrap();
        let err = format!("{:#}", BearerAuth::from_file(file.path()).err().unwrap());
        assert!(err.contains("13 characters, fewer than 16"), "{err}");
        std::fs::write(file.path(), "correct-horse-battery\n").unwrap();
        assert!(BearerAuth::from_file(file.path()).is_ok());
    }

    #[test]
    fn empty_token_file_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "  \n").unwrap();
        let err = BearerAuth::from_file(file.path()).err().unwrap();
        assert!(format!("{err}").contains("is empty"));
    }
}
