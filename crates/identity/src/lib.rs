//! claimdb-identity: access providers, JWT verification and JWKS key management for any OpenID
//! Connect provider.
//!
//! Owns: provider configuration and presets ([`config`]), strict token decoding ([`jose`]), key
//! sets and their cache ([`keys`], `cache`), the [`Verifier`] with its verified-token cache, role
//! mappings ([`roles`]), [`inspect`], and the names of claimdb's own claims ([`claim_names`]). Does not own: claimdb as an issuer, its token grants,
//! login and sessions (`claimdb-signin`), HTTP routes, the store, rules. All IO goes
//! through the traits in [`io`] (a reqwest [`HttpFetcher`] is provided), so tests run a real IdP
//! on loopback and the engine backs persistence with the store. Revocation is applied by whoever
//! reads the user's records ([`check_not_revoked`], the one rule), not by the verifier.
//!
//! Wiring, as the server is expected to do it:
//!
//! ```text
//! let providers: Vec<ProviderConfig> = /* [[providers]] from the config file */;
//! let deps = VerifierDeps { fetcher: Arc::new(HttpFetcher::new(timeout)?), persistence,
//!                           clock: Arc::new(SystemClock) };
//! let verifier = Arc::new(Verifier::from_configs(&providers, KeyCacheConfig::default(), deps)?);
//! verifier.start().await;                        // persisted keys, then first fetches
//! verifier.spawn_background(Duration::from_secs(5));   // refresh before expiry
//! verifier.ready(now)                            // for /readyz
//! verifier.metrics(now)                          // for /metrics
//! verifier.verify(bearer, now).await             // Err(e): 401 with details.reason = e.reason()
//! ```
//!
//! Order of checks in [`Verifier::verify`]: size (16 KiB) → verified-token cache (expiry, key
//! still published) → three base64url parts with strictly parsed JSON (duplicate
//! names refused) → header policy (no `jku`/`x5u`/`jwk`/`x5c`, no `crit`, a known asymmetric
//! `alg`) → route by exact `iss` → `alg` pinned for that provider → key by `kid` (one
//! rate-limited refetch when unknown) → signature → `exp`/`nbf`/`iat` with skew → `aud` →
//! tenant (`tid`) for templated issuers → uid claim → roles.

mod alg;
mod cache;
pub mod claim_names;
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
pub mod validate;
mod verify;

pub use alg::Alg;
pub use cache::KeyMetrics;
pub use claims::{MAX_UID_BYTES, check_not_revoked, rules_auth};
pub use config::{
    FixedKeys, KeyCacheConfig, KeySource, LocalKeySource, LocalKeys, Provider, ProviderConfig,
};
pub use error::{ConfigError, FetchError, PersistError, VerifyError};
pub use http::{HttpFetcher, MAX_DOCUMENT_BYTES, parse_max_age};
pub use inspect::{Inspection, Verdict, inspect};
pub use validate::validate_providers;
pub use verify::{VerifiedToken, Verifier, VerifierDeps};
