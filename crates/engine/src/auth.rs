//! Authentication: every credential a request can carry — a provider's bearer token, claimdb's
//! own token, the admin key, a `claimdb_session` cookie — turned into who is asking, here.
//! [`Engine::authenticate`] is the one entry point the operations call; the admin API's
//! condition ([`Engine::authorize_admin`]) is built on it.
//!
//! A bearer token is verified by the identity layer (provider by exact `iss`, key by `kid`,
//! every signature, time and audience check). Then one read of the user's record applies
//! revocation (a token issued before the user's `tokens_valid_after` is refused — here only:
//! the verifier looks up no revocations, cached verification or not) and overlays
//! the user's stored custom claims on the token's claims — so a change made through the admin
//! API applies from the very next request, with the same token — and the provider's role
//! mappings are evaluated on the result. A session cookie stands for the identity the login
//! verified (`sign_in.rs` looks it up through the sign-in hooks); the same revocation rule and overlay apply. A claimdb
//! token minted with the user's stored custom claims names them in its `claimdb_custom` claim;
//! those are dropped before the overlay, so the current custom claims apply to claimdb's own
//! tokens as to any other.
//!
//! `request.auth.provider` is the provider the user signed in with. For claimdb's own tokens
//! that is the `provider` claim claimdb wrote when it minted the token from a provider's token,
//! a custom token or a login (only claimdb can sign it, and custom claims may not use the name);
//! tokens minted directly (`claimdb token mint`, the admin API) have none and show `claimdb`.
//!
//! Not here: what an authenticated caller may do (the rules, `authz.rs`), the admin key's
//! storage (`admin_key.rs`), session records (the `claimdb-signin` crate).

use std::sync::Arc;
use std::time::SystemTime;

use claimdb_audit::{AuditEvent, Decision as AuditDecision};
use claimdb_identity::claim_names::{ISSUER_PROVIDER_NAME, PROVIDER_CLAIM, STORED_CLAIMS_CLAIM};
use claimdb_identity::{VerifiedToken, Verifier, VerifyError, roles::roles_for};
use claimdb_model::{Map as DocMap, Value};
use claimdb_store::Store;
use serde_json::{Map, Value as Json};

use crate::context::RequestContext;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::users;

/// What the request presented to prove who is asking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Nothing: rules see `request.auth == null`.
    #[default]
    None,
    /// `Authorization: Bearer <jwt>`.
    Bearer(String),
    /// The `claimdb_session` cookie's value (a session id from a login).
    Session(String),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub uid: String,
    /// The name of the provider whose token authenticated the caller.
    pub provider: String,
    /// The token's claims with the user's custom claims overlaid (custom claims win).
    pub claims: Map<String, Json>,
    /// Roles granted by the provider's mappings on those claims.
    pub roles: Vec<String>,
    /// The custom claims that were overlaid (for `/v1/me`).
    pub custom_claims: Map<String, Json>,
}

impl Principal {
    /// `request.auth` as rules see it: `{uid, token, provider, roles}`.
    pub fn rules_value(&self) -> Value {
        let mut m = DocMap::new();
        m.insert("uid".into(), Value::String(self.uid.clone()));
        m.insert("token".into(), plain_map(&self.claims));
        m.insert("provider".into(), Value::String(self.provider.clone()));
        m.insert(
            "roles".into(),
            Value::Array(self.roles.iter().cloned().map(Value::String).collect()),
        );
        Value::Map(m)
    }
}

/// What turns credentials into principals: the token verifier and the admin conditions.
pub(crate) struct Authenticator {
    /// `None` refuses every bearer token (`unknown-issuer`).
    verifier: Option<Arc<Verifier>>,
    /// Callers holding any of these roles may use the admin API.
    admin_roles: Vec<String>,
    /// SHA-256 of the configured admin key; it wins over a stored one.
    admin_key_sha256: Option<[u8; 32]>,
    /// Without a configured key: accept the generated key whose hash is in the store's records.
    admin_key_stored: bool,
}

impl Authenticator {
    pub(crate) fn new(
        verifier: Option<Arc<Verifier>>,
        admin_roles: Vec<String>,
        admin_key_sha256: Option<[u8; 32]>,
        admin_key_stored: bool,
    ) -> Self {
        Authenticator {
            verifier,
            admin_roles,
            admin_key_sha256,
            admin_key_stored,
        }
    }

    pub(crate) fn verifier(&self) -> Option<&Arc<Verifier>> {
        self.verifier.as_ref()
    }

    /// A bearer token (a provider's or claimdb's own) → the caller, at `now`.
    async fn bearer(
        &self,
        store: &dyn Store,
        token: &str,
        now: SystemTime,
    ) -> Result<Principal, EngineError> {
        let Some(verifier) = &self.verifier else {
            return Err(EngineError::Unauthenticated {
                message: "a bearer token was sent but no identity provider is configured".into(),
                reason: "unknown-issuer",
            });
        };
        let verified = verifier.verify(token, now).await.map_err(refused)?;
        let custom = custom_claims_unless_revoked(store, &verified.uid, verified.iat).await?;
        Ok(principal(verifier, &verified, custom))
    }

    /// The admin key's condition: it matches the configured key's hash or, without one, the
    /// stored generated key's (read on every admin request, so a reset applies at once).
    async fn admin_key(&self, store: &dyn Store, key: &str) -> Result<(), EngineError> {
        let want = match self.admin_key_sha256 {
            Some(h) => Some(h),
            None if self.admin_key_stored => crate::admin_key::stored_hash(store).await?,
            None => None,
        };
        let matches = want.is_some_and(|want| {
            let got = crate::admin_key::sha256(key);
            aws_lc_rs::constant_time::verify_slices_are_equal(&got, &want).is_ok()
        });
        if matches {
            return Ok(());
        }
        Err(EngineError::Unauthenticated {
            message: "the admin key is not valid".into(),
            reason: "bad-admin-key",
        })
    }

    /// The admin-role condition on an authenticated caller.
    fn admin_role(&self, who: Option<&Principal>) -> Result<(), EngineError> {
        match who {
            Some(p) if p.roles.iter().any(|r| self.admin_roles.contains(r)) => Ok(()),
            Some(p) => Err(EngineError::PermissionDenied {
                message: format!(
                    "user {} has none of the admin roles ({}); send the admin key or a token with one",
                    p.uid,
                    self.admin_roles.join(", ")
                ),
                details: None,
                write_index: None,
            }),
            None => Err(EngineError::Unauthenticated {
                message: "the admin API needs the admin key (X-Claimdb-Admin-Key) or a bearer token with an admin role".into(),
                reason: "missing-credential",
            }),
        }
    }
}

impl Engine {
    /// Who is asking: `None` without a credential; `unauthenticated` for a refused one (or
    /// `unavailable` when our side could not check it). The one entry point every operation
    /// calls.
    pub async fn authenticate(
        &self,
        ctx: &RequestContext,
    ) -> Result<Option<Principal>, EngineError> {
        match &ctx.credential {
            Credential::None => Ok(None),
            Credential::Session(id) => {
                let (sign_in, verifier) = (self.sign_in().map(|s| &**s), self.verifier());
                let verifier = verifier.map(|v| &**v);
                crate::sign_in::authenticate_session(
                    sign_in,
                    &**self.store(),
                    verifier,
                    id,
                    self.clock().now(),
                )
                .await
            }
            Credential::Bearer(token) => self
                .authenticator()
                .bearer(&**self.store(), token, self.clock().now())
                .await
                .map(Some),
        }
    }

    /// Whether the caller may use the admin API: the admin key, or a token with an admin role.
    /// The decision is audited (method `admin`).
    pub async fn authorize_admin(&self, ctx: &RequestContext) -> Result<(), EngineError> {
        let (who, result) = self.admin_decision(ctx).await;
        if self.audit_log().is_some() {
            let denied = result.as_ref().err();
            self.record(AuditEvent {
                time: self.clock().now(),
                request_id: ctx.request_id.clone(),
                uid: who.as_ref().map(|p| p.uid.clone()),
                provider: who.as_ref().map(|p| p.provider.clone()),
                method: "admin".into(),
                path: "admin".into(),
                decision: if denied.is_some() {
                    AuditDecision::Deny
                } else {
                    AuditDecision::Allow
                },
                rule: Some(if ctx.admin_key.is_some() {
                    "admin key".into()
                } else {
                    "admin_roles".into()
                }),
                reason: denied.map(|e| e.message().to_owned()),
            })
            .await;
        }
        result
    }

    /// The admin condition: the admin key when one was sent (then no caller is named), else
    /// the authenticated caller's roles.
    async fn admin_decision(
        &self,
        ctx: &RequestContext,
    ) -> (Option<Principal>, Result<(), EngineError>) {
        if let Some(key) = &ctx.admin_key {
            return (
                None,
                self.authenticator().admin_key(&**self.store(), key).await,
            );
        }
        match self.authenticate(ctx).await {
            Ok(who) => {
                let result = self.authenticator().admin_role(who.as_ref());
                (who, result)
            }
            Err(e) => (None, Err(e)),
        }
    }
}

/// A refused token as an engine error, counted by reason.
fn refused(e: VerifyError) -> EngineError {
    metrics::counter!("claimdb_auth_failures_total", "reason" => e.reason()).increment(1);
    match e.retry_after_secs() {
        // Our side could not check the token: retryable, not "sign in again".
        Some(retry_after_secs) if e.is_operational() => {
            tracing::warn!(reason = e.reason(), "token check failed on our side: {e}");
            EngineError::CredentialUnavailable {
                message: e.to_string(),
                reason: e.reason(),
                retry_after_secs,
            }
        }
        _ => EngineError::Unauthenticated {
            message: e.to_string(),
            reason: e.reason(),
        },
    }
}

/// The one read of the user's record a credential costs: refuses a credential issued at
/// `issued_at` (Unix seconds) if the user's credentials issued then are revoked, and returns
/// the user's custom claims to overlay (none without a record).
async fn custom_claims_unless_revoked(
    store: &dyn Store,
    uid: &str,
    issued_at: Option<i64>,
) -> Result<Map<String, Json>, EngineError> {
    match users::load(store, uid).await? {
        Some(r) => {
            users::check_not_revoked(&r, issued_at)?;
            Ok(r.custom_claims)
        }
        None => Ok(Map::new()),
    }
}

/// Builds the principal from a verified token and the user's custom claims.
fn principal(verifier: &Verifier, token: &VerifiedToken, custom: Map<String, Json>) -> Principal {
    let mut claims = token.claims.clone();
    if token.provider == ISSUER_PROVIDER_NAME {
        drop_stored_claims(&mut claims);
    }
    principal_of(
        Some(verifier),
        token.uid.clone(),
        source_provider(token),
        claims,
        token.roles.clone(),
        custom,
    )
}

/// Removes from a claimdb token's claims the custom claims it was minted with (named by its
/// `claimdb_custom` claim, which goes too): the user's current custom claims are overlaid
/// instead, so a deleted custom claim stops working on the next request, as with any token.
fn drop_stored_claims(claims: &mut Map<String, Json>) {
    if let Some(Json::Array(names)) = claims.remove(STORED_CLAIMS_CLAIM) {
        for name in names {
            if let Json::String(name) = name {
                claims.remove(&name);
            }
        }
    }
}

/// The provider rules see for a verified token (see the module docs).
fn source_provider(token: &VerifiedToken) -> String {
    if token.provider == ISSUER_PROVIDER_NAME
        && let Some(Json::String(p)) = token.claims.get(PROVIDER_CLAIM)
        && !p.is_empty()
    {
        return p.clone();
    }
    token.provider.clone()
}

/// Builds the principal from an identity (a token's or a session's) and the user's custom
/// claims: the claims overlaid (custom claims win), then the provider's role mappings
/// evaluated on the result and added to the identity's roles.
pub(crate) fn principal_of(
    verifier: Option<&Verifier>,
    uid: String,
    provider: String,
    mut claims: Map<String, Json>,
    mut roles: Vec<String>,
    custom: Map<String, Json>,
) -> Principal {
    if !custom.is_empty() {
        for (k, v) in &custom {
            claims.insert(k.clone(), v.clone());
        }
        // Roles follow the effective claims: a custom claim can grant a mapped role.
        if let Some(p) = verifier.and_then(|v| v.providers().find(|p| p.name == provider)) {
            for r in roles_for(&p.roles, &claims) {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
        }
    }
    Principal {
        uid,
        provider,
        claims,
        roles,
        custom_claims: custom,
    }
}

/// A JSON value as a rules value, taken literally (no `$`-tagged forms: claims are plain JSON).
pub fn plain_value(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(plain_value).collect()),
        Json::Object(m) => plain_map(m),
    }
}

fn plain_map(m: &Map<String, Json>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), plain_value(v)))
            .collect::<DocMap>(),
    )
}
