//! The identity layer's failures: why a token was refused ([`VerifyError`], each with a stable
//! machine-readable reason and a sentence a newcomer understands), why a provider configuration
//! is invalid ([`ConfigError`]), and the failures of the injected IO traits.
//!
//! This file does not decide HTTP statuses: the server maps a `VerifyError` to 401 with
//! `details.reason = err.reason()`, except the operational ones ([`VerifyError::is_operational`]:
//! our side could not check the token, so nothing is known against it), which become a
//! retryable 503 `unavailable` with the same `details.reason` and a `Retry-After` of
//! [`VerifyError::retry_after_secs`].

use std::time::Duration;

/// Why a token did not verify. [`VerifyError::reason`] is the stable code; `Display` is the
/// human explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("the token is {size} bytes; tokens over {limit} bytes are refused before parsing")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "a JSON object in the token repeats the name \"{0}\"; duplicate names are refused because parsers disagree on which one wins"
    )]
    DuplicateClaim(String),
    #[error("the token's algorithm \"{alg}\" is not allowed{}", allowed_suffix(.allowed))]
    AlgorithmNotAllowed { alg: String, allowed: Vec<String> },
    #[error(
        "the token header carries \"{0}\", which would let the token choose its own key; such headers are refused"
    )]
    ForbiddenHeader(String),
    #[error(
        "the token marks header \"{0}\" as critical (crit), and claimdb does not understand it"
    )]
    UnsupportedCritical(String),
    #[error(
        "no configured provider has the issuer {0:?} (issuers must match exactly, including any trailing slash)"
    )]
    UnknownIssuer(String),
    #[error(
        "the issuer names tenant {issuer_tenant:?} but the token's tid claim is {token_tenant:?}"
    )]
    TenantMismatch {
        issuer_tenant: String,
        token_tenant: String,
    },
    #[error("tenant {0:?} is not among the tenants this provider accepts")]
    TenantNotAllowed(String),
    #[error("provider \"{provider}\" publishes no {alg} key {}", describe_kid(.kid))]
    UnknownKey {
        provider: String,
        kid: Option<String>,
        alg: String,
    },
    #[error("provider \"{provider}\" has no signing keys yet: {detail}")]
    KeysUnavailable {
        provider: String,
        detail: String,
        retry_after_secs: u64,
    },
    /// The token names a key the cache does not hold, and the provider could not be asked for
    /// its current keys (its key endpoint hangs or fails): the token may well be genuine.
    #[error(
        "provider \"{provider}\" could not be reached to fetch key {}: {detail}; the token could not be checked, retry later",
        kid.as_deref().map_or_else(|| "(no kid)".to_owned(), |k| format!("{k:?}"))
    )]
    IdpUnreachable {
        provider: String,
        kid: Option<String>,
        detail: String,
        retry_after_secs: u64,
    },
    #[error(
        "the signature does not match provider \"{provider}\"'s key {kid:?}; the token was altered or signed by someone else"
    )]
    BadSignature {
        provider: String,
        kid: Option<String>,
    },
    #[error("the token has no usable exp (expiry) claim; tokens without an expiry are refused")]
    MissingExpiry,
    #[error(
        "the token expired at {exp} (unix seconds); now is {now}, allowed clock skew {skew_secs} s"
    )]
    Expired { exp: i64, now: i64, skew_secs: u64 },
    #[error(
        "the token is not valid before {nbf} (unix seconds); now is {now}, allowed clock skew {skew_secs} s"
    )]
    NotYetValid { nbf: i64, now: i64, skew_secs: u64 },
    #[error(
        "the token claims to be issued at {iat} (unix seconds), in the future; now is {now}, allowed clock skew {skew_secs} s"
    )]
    IssuedInFuture { iat: i64, now: i64, skew_secs: u64 },
    #[error("the token's audience {found:?} does not include any of {expected:?}")]
    WrongAudience {
        found: Vec<String>,
        expected: Vec<String>,
    },
    #[error("the user id claim \"{claim}\" {problem}")]
    BadSubject { claim: String, problem: String },
    #[error(
        "the token was issued at {iat} (unix seconds), before the user's tokens were revoked at {valid_after}; sign in again"
    )]
    Revoked { iat: i64, valid_after: i64 },
}

fn describe_kid(kid: &Option<String>) -> String {
    match kid {
        Some(k) => format!("with key id {k:?} (it may have been rotated out, or the token is forged)"),
        None => "matching this token, which names no key id (kid) while the provider has several keys or none".into(),
    }
}

fn allowed_suffix(allowed: &[String]) -> String {
    if allowed.is_empty() {
        String::new()
    } else {
        format!(" (this provider allows {})", allowed.join(", "))
    }
}

impl VerifyError {
    /// The stable machine-readable reason (the server puts it in `details.reason`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::TooLarge { .. } => "too-large",
            Self::DuplicateClaim(_) => "duplicate-claim",
            Self::AlgorithmNotAllowed { .. } => "algorithm-not-allowed",
            Self::ForbiddenHeader(_) => "forbidden-header",
            Self::UnsupportedCritical(_) => "unsupported-critical-header",
            Self::UnknownIssuer(_) => "unknown-issuer",
            Self::TenantMismatch { .. } => "tenant-mismatch",
            Self::TenantNotAllowed(_) => "tenant-not-allowed",
            Self::UnknownKey { .. } => "unknown-key",
            Self::KeysUnavailable { .. } => "keys-unavailable",
            Self::IdpUnreachable { .. } => "idp-unreachable",
            Self::BadSignature { .. } => "bad-signature",
            Self::MissingExpiry => "missing-expiry",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not-yet-valid",
            Self::IssuedInFuture { .. } => "issued-in-future",
            Self::WrongAudience { .. } => "wrong-audience",
            Self::BadSubject { .. } => "bad-subject",
            Self::Revoked { .. } => "revoked",
        }
    }

    /// True when the refusal is our side's fault (keys could not be had),
    /// not the token's: the caller should retry later rather than sign in again (503, not 401).
    pub fn is_operational(&self) -> bool {
        matches!(
            self,
            Self::KeysUnavailable { .. } | Self::IdpUnreachable { .. }
        )
    }

    /// For an operational refusal, how many seconds a client should wait before retrying.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::KeysUnavailable {
                retry_after_secs, ..
            }
            | Self::IdpUnreachable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

/// An invalid provider or cache configuration. Messages name the provider and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("provider {provider:?}: {message}")]
    Invalid { provider: String, message: String },
    #[error("two providers are named {0:?}; names must be unique")]
    DuplicateName(String),
    #[error(
        "providers {first:?} and {second:?} both have issuer {issuer:?}; a token must route to exactly one provider"
    )]
    DuplicateIssuer {
        issuer: String,
        first: String,
        second: String,
    },
    #[error("cache settings: {0}")]
    Cache(String),
}

impl ConfigError {
    pub fn invalid(provider: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            provider: provider.to_owned(),
            message: message.into(),
        }
    }
}

/// A key-document fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("GET {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} timed out after {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("the document from {url} is not usable: {message}")]
    Document { url: String, message: String },
}

/// Loading or saving persisted keys failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key persistence: {0}")]
pub struct PersistError(pub String);
