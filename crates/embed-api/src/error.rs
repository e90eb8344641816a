//! What can go wrong talking to an embed-server, as a type: callers decide from the variant
//! whether to wait and try again (a restarting or busy server) or to give up (a bad address,
//! a refused token, a request the server will never accept).

use std::time::Duration;

use crate::client::{ENV_SERVER, ENV_TIMEOUT, ENV_TOKEN};

/// An embed-server client error. The messages say what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The address cannot be used (`--server` or `WILDCARDS_EMBED_SERVER`).
    #[error("--server {server:?}: {problem}")]
    Address { server: String, problem: String },

    /// The server did not answer for the whole retry window.
    #[error(
        "embed-server at {uri} is not reachable ({what} failed {attempts} times over {:.1}s: {message}); \
         start it with `embed-server`, or point --server / {ENV_SERVER} at a running one",
        elapsed.as_secs_f64()
    )]
    Unreachable {
        uri: String,
        what: &'static str,
        attempts: u32,
        elapsed: Duration,
        message: String,
    },

    /// The server stayed too busy (its queue full) for the whole retry window.
    #[error(
        "embed-server at {uri} stayed busy ({what} refused {attempts} times over {:.1}s: \
         {message}); the server is overloaded: try again later, use fewer workers, or raise \
         its --max-queued-texts",
        elapsed.as_secs_f64()
    )]
    Overloaded {
        uri: String,
        what: &'static str,
        attempts: u32,
        elapsed: Duration,
        message: String,
    },

    /// The server wants a (different) token.
    #[error(
        "embed-server at {uri} refused the call: {message}; give the server's token with \
         --token-file FILE or env {ENV_TOKEN}"
    )]
    Unauthenticated { uri: String, message: String },

    /// One request took longer than the request timeout.
    #[error(
        "embed-server at {uri} did not answer {what} in time ({message}); the server may be \
         overloaded or stuck: check it (`embed-server info --server ...`), or allow more time \
         with --timeout SECONDS / {ENV_TIMEOUT}"
    )]
    Timeout { uri: String, what: &'static str, message: String },

    /// The server refused the request itself (too large, bad model name, ...).
    #[error("embed-server at {uri} rejected {what} ({code:?}): {message}")]
    Rejected { uri: String, what: &'static str, code: tonic::Code, message: String },

    /// The server does not serve the model asked for (`semantic_model`, `--semantic-model`).
    #[error(
        "embed-server at {uri} has no model {requested:?}; it serves {available}; set \
         semantic_model (--semantic-model) to one of these names, or start the server with \
         --model {requested}=FOLDER"
    )]
    UnknownModel { uri: String, requested: String, available: String },

    /// The server answered something the contract does not allow.
    #[error("embed-server at {uri} {problem}")]
    Protocol { uri: String, problem: String },

    /// Client and server disagree on TLS, or the server's certificate is not trusted; a
    /// retry cannot fix it (the message says what to change).
    #[error("embed-server at {uri} {problem}")]
    Tls { uri: String, problem: String },

    /// A local problem of the client (runtime, token characters, misuse).
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    /// True when the same call may succeed later without any change: the server is away or
    /// overloaded (slow, or its queue full). False for everything a retry cannot fix.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. }
                | ClientError::Timeout { .. }
                | ClientError::Overloaded { .. }
        )
    }
}
