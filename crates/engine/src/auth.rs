//! Authentication: from the request's credential to the principal rules see as `request.auth`.
//!
//! A bearer token is verified by the identity layer (provider by exact `iss`, key by `kid`,
//! every check of the design's Security section, revocation). Then the user's stored custom
//! claims are overlaid on the token's claims — so a change made through the admin API applies
//! from the very next request, with the same token — and the provider's role mappings are
//! evaluated on the result. A session cookie stands for the identity the login verified
//! (`sign_in.rs` has the sign-in look it up); the same overlay applies. A claimdb token minted with the user's
//! stored custom claims names them in its `claimdb_custom` claim; those are dropped before the
//! overlay, so the current custom claims apply to claimdb's own tokens as to any other.
//!
//! `request.auth.provider` is the provider the user signed in with. For claimdb's own tokens
//! that is the `provider` claim claimdb wrote when it minted the token from a provider's token,
//! a custom token or a login (only claimdb can sign it, and custom claims may not use the name);
//! tokens minted directly (`claimdb token mint`, the admin API) have none and show `claimdb`.

use claimdb_identity::claim_names::{ISSUER_PROVIDER_NAME, PROVIDER_CLAIM, STORED_CLAIMS_CLAIM};
use claimdb_identity::{Verifier, roles::roles_for};
use claimdb_model::{Map as DocMap, Value};
use serde_json::{Map, Value as Json};

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

/// Builds the principal from a verified token and the user's custom claims.
pub(crate) fn principal(
    verifier: &Verifier,
    token: &claimdb_identity::VerifiedToken,
    custom: Map<String, Json>,
) -> Principal {
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
fn source_provider(token: &claimdb_identity::VerifiedToken) -> String {
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
