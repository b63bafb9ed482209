//! Emulator mode's credentials: what the Firebase emulators accept and claimdb, outside emulator
//! mode, never does. Only an engine built with `EngineOptions::emulator` reaches this module.
//!
//! - `Bearer owner` — what the server SDKs send to an emulator and what
//!   `@firebase/rules-unit-testing`'s `withSecurityRulesDisabled` sends: the caller is the
//!   project's owner and the rules are bypassed (decided by [`owner_rules`], which allow
//!   everything, so the decision is still counted and audited like any other).
//! - Unsigned tokens — the `alg: none` JWTs of `authenticatedContext(uid, claims)` and of
//!   `mockUserToken` objects, and any token whose issuer no configured provider has: decoded
//!   for their claims, never verified (no signature, `exp`, `aud` or `iss` check — the
//!   emulators check none). A token whose issuer *is* a configured provider is verified for
//!   real by `auth.rs`, so a forged token of a real provider is refused even here.
//!
//! Revocation and the stored custom claims apply to an unsigned token's uid as to any other.
//!
//! Also the emulator's "clear the database" ([`Engine::clear_documents`]), refused outside
//! emulator mode.

use std::sync::Arc;

use claimdb_identity::{MAX_UID_BYTES, jose, rules_auth};
use claimdb_model::Value;
use claimdb_rules::Ruleset;
use serde_json::{Map, Value as Json};

use claimdb_store::{Commit, Write, WriteOp};

use crate::auth::{OwnClaims, Principal};
use crate::authz::ActiveRules;
use crate::engine::Engine;
use crate::error::EngineError;

/// The bearer token that stands for the project's owner.
pub const OWNER_TOKEN: &str = "owner";

/// The provider name an unsigned token's caller shows (`request.auth.provider`, audit lines).
pub const UNSIGNED_PROVIDER: &str = "emulator";

/// Where the owner's decisions come from, in audit lines and explanations.
const OWNER_ORIGIN: &str = "emulator owner (rules bypassed)";

const OWNER_RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /{document=**} {
      allow read, write: if true;
    }
  }
}
";

/// The rules the owner is decided by: everything allowed. `None` only if they failed to
/// compile, which a unit test rules out.
pub(crate) fn owner_rules() -> Option<Arc<ActiveRules>> {
    let ruleset = Ruleset::compile(OWNER_RULES).ok()?;
    Some(Arc::new(ActiveRules {
        ruleset,
        origin: OWNER_ORIGIN.into(),
        version: None,
    }))
}

/// The owner as a caller.
pub(crate) fn owner() -> Principal {
    let claims = Map::new();
    let auth = rules_auth(OWNER_TOKEN, &claims, UNSIGNED_PROVIDER, &[]);
    Principal {
        uid: OWNER_TOKEN.into(),
        provider: UNSIGNED_PROVIDER.into(),
        roles: Vec::new(),
        custom_claims: Map::new(),
        own: OwnClaims::Held(claims),
        auth: Arc::new(auth),
        owner: true,
    }
}

/// A token decoded without verification: its claims, and whether it is unsigned (`alg:
/// none`). Decoded once per request, whichever way emulator mode then takes it.
pub(crate) struct Unverified {
    pub unsigned: bool,
    claims: Map<String, Json>,
}

/// Decodes a token without verifying it; refused only when it is no JWT.
pub(crate) fn read(token: &str) -> Result<Unverified, EngineError> {
    let decoded = jose::decode(token).map_err(|e| EngineError::Unauthenticated {
        message: format!("the token cannot be read: {e}"),
        reason: "malformed",
    })?;
    let unsigned = decoded
        .header
        .get("alg")
        .and_then(Json::as_str)
        .is_some_and(|alg| alg.eq_ignore_ascii_case("none"));
    Ok(Unverified {
        unsigned,
        claims: decoded.claims,
    })
}

impl Unverified {
    /// The caller: uid from `sub` (or `user_id`, as Firebase tokens also carry it), the payload
    /// as `request.auth.token`. Refused when it names no uid.
    pub(crate) fn caller(self) -> Result<(String, Map<String, Json>), EngineError> {
        let claims = self.claims;
        let uid = ["sub", "user_id"]
            .iter()
            .find_map(|name| claims.get(*name).and_then(Json::as_str))
            .filter(|uid| !uid.is_empty())
            .ok_or_else(|| EngineError::Unauthenticated {
                message: "the token names no user: it needs a non-empty `sub` or `user_id` claim"
                    .into(),
                reason: "missing-sub",
            })?;
        if uid.len() > MAX_UID_BYTES {
            return Err(EngineError::Unauthenticated {
                message: format!("the token's uid is longer than {MAX_UID_BYTES} bytes"),
                reason: "bad-sub",
            });
        }
        Ok((uid.to_owned(), claims))
    }
}

/// `request.auth` of an unverified token's caller without custom claims.
pub(crate) fn unverified_auth(uid: &str, claims: &Map<String, Json>) -> Arc<Value> {
    Arc::new(rules_auth(uid, claims, UNSIGNED_PROVIDER, &[]))
}

impl Engine {
    /// Emulator mode's `clearFirestore`: deletes every document, in commits of up to 500
    /// deletes (each announced on the change feed like any delete). Users, custom claims and
    /// rules stay. Returns how many documents were deleted. Refused outside emulator mode.
    pub async fn clear_documents(&self) -> Result<u64, EngineError> {
        if !self.is_emulator() {
            return Err(EngineError::failed_precondition(
                "clearing every document is the emulator's; this server is not in emulator mode",
            ));
        }
        let mut deleted = 0u64;
        loop {
            let docs = self
                .store
                .scan(None, claimdb_model::limits::MAX_BATCH_WRITES)
                .await?;
            if docs.is_empty() {
                return Ok(deleted);
            }
            let writes: Vec<Write> = docs
                .into_iter()
                .map(|d| Write::new(d.path, WriteOp::Delete))
                .collect();
            deleted += writes.len() as u64;
            self.store.commit(Commit::new(writes)).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn the_owners_rules_compile_and_allow_everything() {
        let rules = owner_rules().expect("the owner's rules compile");
        assert_eq!(rules.origin, OWNER_ORIGIN);
    }

    #[test]
    fn rules_unit_testing_tokens_are_read_without_verification() {
        // What `authenticatedContext('alice', {admin: true})` sends: alg none, exp in 1970.
        let t = token(
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"iss":"https://securetoken.google.com/demo","aud":"demo","iat":0,"exp":3600,"sub":"alice","user_id":"alice","admin":true}"#,
        );
        let decoded = read(&t).unwrap();
        assert!(decoded.unsigned);
        let (uid, claims) = decoded.caller().unwrap();
        assert_eq!(uid, "alice");
        assert_eq!(claims["admin"], Json::Bool(true));
        // `user_id` alone names the user too.
        let t = token(r#"{"alg":"none"}"#, r#"{"user_id":"bob"}"#);
        assert_eq!(read(&t).unwrap().caller().unwrap().0, "bob");
    }

    #[test]
    fn tokens_without_a_user_or_with_a_bad_shape_are_refused() {
        for (t, reason) in [
            (token(r#"{"alg":"none"}"#, r#"{"iss":"x"}"#), "missing-sub"),
            (token(r#"{"alg":"none"}"#, r#"{"sub":""}"#), "missing-sub"),
            (token(r#"{"alg":"none"}"#, r#"{"sub":7}"#), "missing-sub"),
            (
                token(
                    r#"{"alg":"none"}"#,
                    &format!(r#"{{"sub":"{}"}}"#, "u".repeat(MAX_UID_BYTES + 1)),
                ),
                "bad-sub",
            ),
            ("not a token".to_owned(), "malformed"),
            (token(r#"{"alg":"none"}"#, "[1]"), "malformed"),
        ] {
            match read(&t).and_then(Unverified::caller) {
                Err(EngineError::Unauthenticated { reason: got, .. }) => {
                    assert_eq!(got, reason, "{t}")
                }
                other => panic!("{t}: {other:?}"),
            }
        }
        assert!(
            !read(&token(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#))
                .unwrap()
                .unsigned
        );
        assert!(read("owner").is_err());
    }
}
