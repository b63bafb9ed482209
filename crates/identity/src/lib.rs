//! claimdb-identity: access providers, JWT verification and JWKS key management for any OpenID
//! Connect provider.
//!
//! Owns: provider configuration and presets ([`config`]), strict token decoding ([`jose`]), key
//! sets and their cache ([`keys`], `cache`), the [`Verifier`] with its verified-token cache, role
//! mappings ([`roles`]) and [`inspect`]; claimdb as a token issuer ([`issuer`], [`signing`]),
//! refresh tokens ([`refresh`]), custom tokens ([`custom_token`]), the token grants
//! ([`exchange`]), OIDC login ([`login`], [`redirect`], [`session`]) and their storage trait
//! ([`records`]). Does not own: HTTP routes, the store, rules. All IO goes
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
//! claimdb as an issuer, token grants and login, as the server is expected to wire them:
//!
//! ```text
//! let issuer_cfg = config.issuer;                               // IssuerSettings::validate(public_url)
//! let issuer = Issuer::open(issuer_cfg, Arc::new(DirKeyStorage::open(data_dir.join("issuer"))?), now)?;
//! issuer.spawn_maintenance(clock, Duration::from_secs(300));    // scheduled rotation + pruning
//! providers.push(issuer.provider());                            // claimdb tokens: same Verifier
//! let verifier = Arc::new(Verifier::new(providers, key_cache, deps)?);
//! let records: Arc<dyn Records> = /* the engine's adapter over Store system records */;
//! let custom = CustomTokens::new(&config.custom_token_signers, key_cache, deps)?; custom.start().await;
//! let tokens = TokenService::new(issuer.clone(), verifier.clone(), Some(Arc::new(custom)),
//!                                RefreshTokens::new(records.clone(), issuer.config().refresh_ttl));
//! POST /v1/token:        tokens.grant(&Grant::from_form(&pairs)?, &user_claims, now)   // OAuthError::http_status
//! GET /.well-known/jwks.json:             issuer.jwks_json()
//! GET /.well-known/openid-configuration:  issuer.discovery_document(login.then_some(url))
//! let login = LoginClient::new(public_url, &app_redirects, &providers_cfg,
//!                              LoginDeps { verifier, records, fetcher, poster })?;
//! GET /v1/login/{p}:          login.start(p, redirect, now) → 302 + Set-Cookie claimdb_login
//! GET /v1/login/{p}/callback: login.callback(p, &CallbackParams::from_pairs(q), cookie, now)
//!                             → Sessions::create → Set-Cookie claimdb_session → 302 outcome.redirect
//! POST /v1/logout:            sessions.end(cookie) + clear_cookie
//! ```
//!
//! Order of checks in [`Verifier::verify`]: size (16 KiB) → verified-token cache (expiry, key
//! still published) → three base64url parts with strictly parsed JSON (duplicate
//! names refused) → header policy (no `jku`/`x5u`/`jwk`/`x5c`, no `crit`, a known asymmetric
//! `alg`) → route by exact `iss` → `alg` pinned for that provider → key by `kid` (one
//! rate-limited refetch when unknown) → signature → `exp`/`nbf`/`iat` with skew → `aud` →
//! tenant (`tid`) for templated issuers → uid claim → roles.

mod cache;
mod claims;
pub mod config;
pub mod custom_token;
mod error;
pub mod exchange;
mod http;
mod inspect;
pub mod io;
pub mod issuer;
pub mod jose;
pub mod keys;
pub mod login;
mod presets;
pub mod records;
pub mod redirect;
pub mod refresh;
pub mod roles;
pub mod session;
pub mod signing;
mod token_cache;
mod verify;

pub use cache::KeyMetrics;
pub use claims::{MAX_UID_BYTES, check_not_revoked};
pub use config::{
    Alg, FixedKeys, KeyCacheConfig, KeySource, LocalKeySource, LocalKeys, Provider, ProviderConfig,
    validate_providers,
};
pub use custom_token::{CustomTokenSignerConfig, CustomTokens};
pub use error::{ConfigError, FetchError, IssuerError, PersistError, VerifyError};
pub use exchange::{Grant, OAuthError, Subject, TokenResponse, TokenService, UserState, Users};
pub use http::{HttpFetcher, MAX_DOCUMENT_BYTES, parse_max_age};
pub use inspect::{Inspection, Verdict, inspect};
pub use issuer::{Issuer, IssuerConfig, IssuerSettings, MintRequest, Minted};
pub use login::{CallbackParams, LoginClient, LoginDeps, LoginError, LoginOutcome, LoginStart};
pub use records::{MemoryRecords, RecordCondition, Records, RecordsError, sha256};
pub use redirect::RedirectPolicy;
pub use refresh::{RefreshError, RefreshGrant, RefreshTokens};
pub use session::{NewSession, Session, SessionIdentity, Sessions};
pub use signing::{DirKeyStorage, KeyStorage, MemoryKeyStorage, SigningAlg};
pub use verify::{VerifiedToken, Verifier, VerifierDeps};
