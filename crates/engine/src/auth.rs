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
//! A verified token's `request.auth` is built once, when it verifies (identity's
//! `VerifiedToken::rules_auth`), and shared by every request the token cache serves it to; only
//! a user with custom claims costs a conversion per request.
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
use claimdb_identity::{VerifiedToken, Verifier, VerifyError, roles::roles_for, rules_auth};
use claimdb_model::Value;
use claimdb_store::Store;
use serde_json::{Map, Value as Json};

use crate::context::RequestContext;
use crate::emulator;
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
    /// The name of the provider the caller signed in with.
    pub provider: String,
    /// Roles granted by the identity and by the provider's mappings on the effective claims.
    pub roles: Vec<String>,
    /// The custom claims that were overlaid (for `/v1/me`).
    pub custom_claims: Map<String, Json>,
    /// The identity's own claims, before the overlay.
    pub(crate) own: OwnClaims,
    /// `request.auth` as rules see the caller: a verified token's own (built once per cached
    /// token) when no custom claims apply, else built for this request.
    pub(crate) auth: Arc<Value>,
    /// Emulator mode's `Bearer owner`: the rules are bypassed (`emulator.rs`).
    pub(crate) owner: bool,
}

/// Where a principal's own claims are: in the verified token (shared with the token cache) or
/// held here (a session's record, an emulator's unverified token).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnClaims {
    Token(Arc<VerifiedToken>),
    Held(Map<String, Json>),
}

impl Principal {
    /// `request.auth` as rules see it: `{uid, token, provider, roles}`.
    pub fn rules_value(&self) -> Arc<Value> {
        self.auth.clone()
    }

    /// Whether this is emulator mode's owner, for whom the rules are bypassed.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// The effective claims: the identity's own with the user's custom claims overlaid (custom
    /// claims win).
    pub fn claims(&self) -> Map<String, Json> {
        let mut claims = match &self.own {
            OwnClaims::Token(token) => token.own_claims(),
            OwnClaims::Held(claims) => claims.clone(),
        };
        for (k, v) in &self.custom_claims {
            claims.insert(k.clone(), v.clone());
        }
        claims
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
    /// Emulator mode: `Bearer owner` and unverified tokens are accepted (`emulator.rs`).
    emulator: bool,
}

impl Authenticator {
    pub(crate) fn new(
        verifier: Option<Arc<Verifier>>,
        admin_roles: Vec<String>,
        admin_key_sha256: Option<[u8; 32]>,
        admin_key_stored: bool,
        emulator: bool,
    ) -> Self {
        Authenticator {
            verifier,
            admin_roles,
            admin_key_sha256,
            admin_key_stored,
            emulator,
        }
    }

    pub(crate) fn verifier(&self) -> Option<&Arc<Verifier>> {
        self.verifier.as_ref()
    }

    pub(crate) fn emulator(&self) -> bool {
        self.emulator
    }

    /// A bearer token (a provider's or claimdb's own) → the caller, at `now`.
    async fn bearer(
        &self,
        store: &dyn Store,
        token: &str,
        now: SystemTime,
    ) -> Result<Principal, EngineError> {
        // Emulator mode reads the token once: unsigned ones are taken as they are; the others
        // too unless a configured provider verifies them.
        let read = if self.emulator {
            if token == emulator::OWNER_TOKEN {
                return Ok(emulator::owner());
            }
            let read = emulator::read(token);
            if matches!(&read, Ok(r) if r.unsigned) {
                return self.unverified(store, read).await;
            }
            Some(read)
        } else {
            None
        };
        let Some(verifier) = &self.verifier else {
            if let Some(read) = read {
                return self.unverified(store, read).await;
            }
            return Err(EngineError::Unauthenticated {
                message: "a bearer token was sent but no identity provider is configured".into(),
                reason: "unknown-issuer",
            });
        };
        let verified = match (verifier.verify(token, now).await, read) {
            (Ok(verified), _) => verified,
            // In emulator mode only a configured provider's tokens are verified.
            (Err(e), Some(read)) if e.reason() == "unknown-issuer" => {
                return self.unverified(store, read).await;
            }
            (Err(e), _) => return Err(refused(e)),
        };
        let custom = custom_claims_unless_revoked(store, &verified.uid, verified.iat).await?;
        Ok(principal(verifier, verified, custom))
    }

    /// Emulator mode: a token read for its claims, not verified; revocation and the stored
    /// custom claims still apply to its uid.
    async fn unverified(
        &self,
        store: &dyn Store,
        read: Result<emulator::Unverified, EngineError>,
    ) -> Result<Principal, EngineError> {
        let (uid, claims) = read?.caller()?;
        let issued_at = claims.get("iat").and_then(Json::as_i64);
        let custom = custom_claims_unless_revoked(store, &uid, issued_at).await?;
        if custom.is_empty() {
            let auth = emulator::unverified_auth(&uid, &claims);
            return Ok(Principal {
                uid,
                provider: emulator::UNSIGNED_PROVIDER.into(),
                roles: Vec::new(),
                custom_claims: custom,
                own: OwnClaims::Held(claims),
                auth,
                owner: false,
            });
        }
        Ok(overlaid(
            self.verifier.as_deref(),
            uid,
            emulator::UNSIGNED_PROVIDER.into(),
            OwnClaims::Held(claims),
            Vec::new(),
            custom,
        ))
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
            Some(p) if p.owner || p.roles.iter().any(|r| self.admin_roles.contains(r)) => Ok(()),
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

/// Builds the principal from a verified token and the user's custom claims. Without custom
/// claims (the common case) nothing is copied or converted but the names.
fn principal(
    verifier: &Verifier,
    token: Arc<VerifiedToken>,
    custom: Map<String, Json>,
) -> Principal {
    let (uid, provider, roles) = (
        token.uid.clone(),
        token.source_provider().to_owned(),
        token.roles.clone(),
    );
    if custom.is_empty() {
        return Principal {
            uid,
            provider,
            roles,
            custom_claims: custom,
            auth: token.rules_auth().clone(),
            own: OwnClaims::Token(token),
            owner: false,
        };
    }
    overlaid(
        Some(verifier),
        uid,
        provider,
        OwnClaims::Token(token),
        roles,
        custom,
    )
}

/// Builds the principal from a session's identity and the user's custom claims.
pub(crate) fn session_principal(
    verifier: Option<&Verifier>,
    uid: String,
    provider: String,
    claims: Map<String, Json>,
    roles: Vec<String>,
    custom: Map<String, Json>,
) -> Principal {
    overlaid(
        verifier,
        uid,
        provider,
        OwnClaims::Held(claims),
        roles,
        custom,
    )
}

/// The claims overlaid (custom claims win), then the provider's role mappings evaluated on the
/// result and added to the identity's roles, and `request.auth` built from them.
fn overlaid(
    verifier: Option<&Verifier>,
    uid: String,
    provider: String,
    own: OwnClaims,
    mut roles: Vec<String>,
    custom: Map<String, Json>,
) -> Principal {
    let mut principal = Principal {
        uid,
        provider,
        roles: Vec::new(),
        custom_claims: custom,
        own,
        auth: Arc::new(Value::Null),
        owner: false,
    };
    let claims = principal.claims();
    if !principal.custom_claims.is_empty() {
        // Roles follow the effective claims: a custom claim can grant a mapped role.
        if let Some(p) = verifier.and_then(|v| v.providers().find(|p| p.name == principal.provider))
        {
            for r in roles_for(&p.roles, &claims) {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
        }
    }
    principal.auth = Arc::new(rules_auth(
        &principal.uid,
        &claims,
        &principal.provider,
        &roles,
    ));
    principal.roles = roles;
    principal
}
