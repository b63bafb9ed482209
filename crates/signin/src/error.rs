//! The issuer's failures ([`IssuerError`]): its signing keys could not be loaded, created,
//! rotated or used, or a mint request was refused. The flows' own failures are beside them
//! (`RefreshError`, `LoginError`, `OAuthError`, `RecordsError`).
//!
//! No HTTP status is decided here: the engine's error and the server's mapping do that.

/// The issuer could not load, create, rotate or use its signing keys, or a mint request was
/// refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    #[error("signing keys: {0}")]
    KeyFile(String),
    #[error("cryptography: {0}")]
    Crypto(String),
    #[error("issuer settings: {0}")]
    Config(String),
    /// The mint request itself is invalid (TTL, uid, claims); the caller's fault.
    #[error("{0}")]
    InvalidRequest(String),
}
