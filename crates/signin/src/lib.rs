//! claimdb-signin: claimdb as a token issuer and login broker.
//!
//! Owns: the signing keys and their storage ([`signing`], [`store_keys`]), the issuer's key
//! ring, rotation, JWKS, discovery and minting ([`issuer`]), refresh tokens ([`refresh`]),
//! Firebase-format custom tokens ([`custom_token`]), the `/v1/token` grants ([`exchange`]),
//! the OIDC login client ([`login`], [`redirect`]), browser sessions ([`session`]), their
//! records in the store's system records ([`records`]), and [`SignIn`], which joins them to the
//! engine's user records and serves the engine's [`claimdb_engine::SignInHooks`] (session
//! cookies, refresh-token revocation).
//!
//! Does not own: verifying tokens (`claimdb-identity`; claimdb's own tokens verify through the
//! same `Verifier` as every provider's, the issuer being a provider whose keys are local), HTTP
//! (cookies, statuses, forms and redirects are the server's), or the request path (the engine).
//!
//! Depends on the engine, not the reverse: sign-in's operations need the engine's user records
//! (custom claims, revocation) and admin checks, while the engine needs from sign-in only the
//! small [`claimdb_engine::SignInHooks`] interface.
//!
//! Wiring, as `serve` does it:
//!
//! ```text
//! let issuer = Issuer::open(issuer_cfg, Arc::new(DirKeyStorage::open(data_dir.join("issuer"))?), now).await?;
//! issuer.spawn_maintenance(clock, Duration::from_secs(300));    // scheduled rotation + pruning
//! providers.push(issuer.provider());                            // claimdb tokens: same Verifier
//! let verifier = Arc::new(Verifier::new(providers, key_cache, deps)?);
//! let custom = CustomTokens::new(&config.custom_token_signers, key_cache, deps)?; custom.start().await;
//! let tokens = TokenService::new(issuer.clone(), verifier.clone(), Some(Arc::new(custom)),
//!                                RefreshTokens::new(store.clone(), issuer.config().refresh_ttl));
//! let login = LoginClient::new(public_url, &app_redirects, &providers_cfg,
//!                              LoginDeps { verifier, records: store.clone(), fetcher, poster })?;
//! let sign_in = Arc::new(SignIn::new(issuer, tokens, Some(login), store, app_redirects));
//! engine_options.sign_in = Some(sign_in.clone());               // session cookies, revocation
//! POST /v1/token:             token_grant(Some(&sign_in), ctx, grant_from_form(&pairs))
//! GET /.well-known/jwks.json: sign_in.jwks_json()
//! GET /v1/login/{p}:          sign_in.login_start(p, redirect)
//! GET /v1/login/{p}/callback: sign_in.login_callback(ctx, p, &CallbackParams::from_pairs(q), cookie)
//! POST /v1/logout:            sign_in.logout(cookie)
//! ```

pub mod custom_token;
mod error;
pub mod exchange;
pub mod issuer;
pub mod login;
pub mod records;
pub mod redirect;
pub mod refresh;
mod service;
pub mod session;
pub mod signing;
pub mod store_keys;

pub use custom_token::{CustomTokenSignerConfig, CustomTokens};
pub use error::IssuerError;
pub use exchange::{Grant, OAuthError, Subject, TokenResponse, TokenService, UserState, Users};
pub use issuer::{Issuer, IssuerConfig, IssuerSettings, MintRequest, Minted};
pub use login::{CallbackParams, LoginClient, LoginDeps, LoginError, LoginOutcome, LoginStart};
pub use records::{RecordsError, sha256};
pub use redirect::RedirectPolicy;
pub use refresh::{RefreshError, RefreshGrant, RefreshTokens};
pub use service::{LoginDone, SignIn, admin_mint_token, not_enabled, token_grant};
pub use session::{NewSession, Session, SessionIdentity, Sessions, cookies_need_secure};
pub use signing::{DirKeyStorage, KeyStorage, MemoryKeyStorage, SigningAlg};
pub use store_keys::StoreKeyStorage;
