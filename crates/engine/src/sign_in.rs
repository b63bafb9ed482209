//! What the engine needs from claimdb's own sign-in (the `claimdb-signin` crate, which depends on
//! the engine, not the other way round): the sessions behind session cookies, and revoking a
//! user's refresh tokens when the user is revoked. [`SignInHooks`] is that interface; the CLI
//! hands the sign-in to the engine as one in [`crate::EngineOptions::sign_in`].
//!
//! Authenticating a session stays here, beside bearer tokens, so credential → principal has
//! one owner: the session's identity with the user's current custom claims overlaid and the
//! revocation rule applied exactly as for a token. Sign-in's flows (grants, login, minting)
//! are not engine operations; they call into the engine for users and admin checks.

use std::time::SystemTime;

use async_trait::async_trait;
use claimdb_identity::Verifier;
use claimdb_store::Store;
use serde_json::{Map, Value as Json};

use crate::auth::{self, Principal};
use crate::error::EngineError;
use crate::users;

/// The identity a live session stands for, as the sign-in stored it at login.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveSession {
    pub uid: String,
    pub provider: String,
    pub roles: Vec<String>,
    /// The verified ID token's claims (for `request.auth.token`).
    pub claims: Map<String, Json>,
    /// Unix seconds the session's credential was issued: the login's ID token's `iat`, or the
    /// session's creation if that is older. Revocation compares this.
    pub issued_at: i64,
}

/// The sign-in's part of authentication and revocation.
#[async_trait]
pub trait SignInHooks: Send + Sync {
    /// The live session a cookie value names; `None` when it is unknown, expired or ended.
    async fn session(&self, id: &str, now: SystemTime) -> Result<Option<LiveSession>, EngineError>;

    /// Ends a session (its user was revoked).
    async fn end_session(&self, id: &str) -> Result<(), EngineError>;

    /// Revokes every refresh token of `uid` issued before `now`.
    async fn revoke_refresh_tokens(&self, uid: &str, now: SystemTime) -> Result<(), EngineError>;
}

/// The caller behind a session cookie: the session's uid, provider, roles and ID-token claims
/// with the user's custom claims overlaid, as for a bearer token. A session created at or
/// before the user's `tokens_valid_after` (second) is refused and ended. Without a sign-in
/// every session is unknown.
pub(crate) async fn authenticate_session(
    sign_in: Option<&dyn SignInHooks>,
    store: &dyn Store,
    verifier: Option<&Verifier>,
    id: &str,
    now: SystemTime,
) -> Result<Option<Principal>, EngineError> {
    let unknown = || {
        EngineError::Unauthenticated {
            message: "the session cookie names no live session (it expired, was ended by logout, or never existed); sign in again".into(),
            reason: "unknown-session",
        }
    };
    let Some(sign_in) = sign_in else {
        return Err(unknown());
    };
    let session = sign_in.session(id, now).await?.ok_or_else(unknown)?;
    let record = users::load(store, &session.uid).await?;
    let custom = match record {
        Some(r) => {
            if let Err(e) = users::check_not_revoked(&r, Some(session.issued_at)) {
                // Revoked: the session is dead for good.
                sign_in.end_session(id).await?;
                return Err(e);
            }
            r.custom_claims
        }
        None => Map::new(),
    };
    Ok(Some(auth::session_principal(
        verifier,
        session.uid,
        session.provider,
        session.claims,
        session.roles,
        custom,
    )))
}
