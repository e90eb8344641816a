//! Optional bearer-token check (`--api-key-file`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use tonic::{Request, Status};

/// The token every `Embedder` call must carry as `authorization: Bearer <token>`.
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
        Ok(Self { expected: format!("Bearer {token}") })
    }

    /// Lets the request through when it carries the token, else `UNAUTHENTICATED`.
    pub fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get("authorization") {
            None => Err(Status::unauthenticated(
                "this server requires a token: send `authorization: Bearer <token>` \
                 (wildcards clients read it from WILDCARDS_EMBED_TOKEN)",
            )),
            Some(value) if constant_time_eq(value.as_bytes(), self.expected.as_bytes()) => {
                Ok(request)
            }
            Some(_) => Err(Status::unauthenticated("wrong token")),
        }
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
        BearerAuth { expected: "Bearer s3cret".into() }
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
    fn empty_token_file_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "  \n").unwrap();
        let err = BearerAuth::from_file(file.path()).err().unwrap();
        assert!(format!("{err}").contains("is empty"));
    }
}
