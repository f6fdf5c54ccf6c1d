//! Authentication of netra's WebSocket upgrades and admin requests by JWT.
//!
//! An [`Authenticator`] is built once from an [`AuthConfig`] (or in dev mode from a secret
//! kept in the data directory) and shared by every connection. It checks a token before
//! the upgrade and turns it into a [`Principal`]; a bad token becomes a [`Rejection`] whose
//! short reason goes into the 401 body.
//!
//! Accepted tokens:
//! - `HS256` when a shared secret is configured, `RS256` when an RSA public key is, `ES256`
//!   when an EC P-256 public key is. Nothing else, and never `alg: none`. The algorithm is
//!   taken from the token only to pick among the configured keys, so an `HS256` token
//!   "signed" with an RSA public key is rejected.
//! - `exp`, `iss`, `aud` and `sub` are required, `nbf` is checked when present, and the
//!   configured leeway applies to both times. `sub` becomes the user id and the optional
//!   `roles` claim (a list of strings) the roles; `admin` opens the admin API.
//!
//! The token travels as `Authorization: Bearer <token>` or, because browsers cannot set
//! headers on a WebSocket, as a `bearer.<token>` entry of `Sec-WebSocket-Protocol`. A
//! server that accepts the latter must answer with the real subprotocol (`netra.v1`), not
//! with the bearer entry.
//!
//! This crate knows nothing of sockets or HTTP servers; it reads an [`http::HeaderMap`].

#![warn(missing_docs)]

mod authenticator;
mod dev;
mod headers;
mod keys;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use authenticator::{AuthConfig, Authenticator, DEFAULT_LEEWAY, Principal, Rejection};
pub use dev::{DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET_FILE};
pub use keys::{PublicKey, Secret, load_jwks, parse_jwks};

/// Why an [`Authenticator`] could not be built or could not issue a token.
///
/// These are operator-facing configuration problems; a bad token is a [`Rejection`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither an HS256 secret nor any public key is configured.
    #[error(
        "no JWT verification key configured: set an HS256 secret, PEM public keys or a JWKS file"
    )]
    NoKeys,
    /// `issuer` or `audience` is empty.
    #[error("the JWT `{0}` setting must not be empty")]
    EmptySetting(&'static str),
    /// A key, JWKS or secret file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The dev secret (or its directory) could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A PEM public key is malformed, of the wrong type, private, or too weak.
    #[error("invalid {kind} public key: {reason}")]
    InvalidKey {
        /// `RSA` or `EC`.
        kind: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A JWKS document is malformed or holds no usable key.
    #[error("invalid JWKS{}: {reason}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    InvalidJwks {
        /// The file, when the document came from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
    /// The HS256 secret is shorter than the 32 bytes RFC 7518 demands for HS256.
    #[error("the HS256 secret is {len} bytes long; at least 32 are required")]
    WeakSecret {
        /// Its length in bytes.
        len: usize,
    },
    /// [`Authenticator::issue`] was called without an HS256 secret.
    #[error("cannot issue tokens: no HS256 secret is configured")]
    NoSigningKey,
    /// [`Authenticator::issue`] was given an empty subject.
    #[error("cannot issue a token with an empty `sub`")]
    EmptySubject,
    /// Signing failed.
    #[error("cannot sign a token: {0}")]
    Sign(String),
    /// The operating system's random source failed.
    #[error("cannot generate a random secret: {0}")]
    Random(String),
}

/// Issues a dev-mode token for `sub`, for `netra token`.
///
/// Uses (and on first use creates) the secret in `data_dir`, exactly as
/// [`Authenticator::dev`] does, so a host serving from the same data directory accepts it.
pub fn dev_token(
    data_dir: &Path,
    sub: &str,
    roles: &[&str],
    ttl: Duration,
) -> Result<String, AuthError> {
    Authenticator::dev(data_dir)?.issue(sub, roles, ttl)
}
