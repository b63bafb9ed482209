//! claimdb-identity: access providers, JWT verification and JWKS key management for any OpenID
//! Connect provider.
//!
//! Owns: provider configuration and presets ([`config`]), strict token decoding ([`jose`]), key
//! sets and their cache ([`keys`], `cache`), the [`Verifier`] with its verified-token cache, role
//! mappings ([`roles`]) and [`inspect`]. Does not own: HTTP routes, the store, rules. All IO goes
//! through the traits in [`io`] (a reqwest [`HttpFetcher`] is provided), so tests run a real IdP
//! on loopback and the engine backs persistence and revocation with the store.

mod cache;
mod claims;
pub mod config;
mod error;
mod http;
mod inspect;
pub mod io;
pub mod jose;
pub mod keys;
mod presets;
pub mod roles;
mod token_cache;
mod verify;

pub use cache::KeyMetrics;
pub use claims::MAX_UID_BYTES;
pub use config::{Alg, KeyCacheConfig, KeySource, Provider, ProviderConfig, validate_providers};
pub use error::{ConfigError, FetchError, PersistError, RevocationError, VerifyError};
pub use http::{HttpFetcher, MAX_DOCUMENT_BYTES, parse_max_age};
pub use inspect::{Inspection, Verdict, inspect};
pub use token_cache::{TokenDigest, digest as token_digest};
pub use verify::{VerifiedToken, Verifier, VerifierDeps};
