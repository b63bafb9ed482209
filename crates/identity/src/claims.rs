//! The registered-claim checks of a signature-verified token: `exp` required and `nbf`/`iat`
//! with the provider's clock skew, `aud` against the provider's audiences, and the uid claim
//! (`sub` by default) non-empty and at most 128 bytes. Each failure is its own
//! [`VerifyError`] reason.
//!
//! Issuer routing and tenants are the verifier's; revocation is applied by whoever reads the
//! user's records, with [`check_not_revoked`]. This file sees one claims map, and defines what a
//! verification yields ([`VerifiedToken`]), including what rules see of it (`request.auth`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::claim_names::{ISSUER_PROVIDER_NAME, PROVIDER_CLAIM, STORED_CLAIMS_CLAIM};
use crate::error::VerifyError;

/// A token that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub uid: String,
    pub claims: Map<String, Value>,
    /// The name of the provider whose keys verified it.
    pub provider: String,
    pub roles: Vec<String>,
    pub iat: Option<i64>,
    pub exp: i64,
    /// What rules see of this token as `request.auth` (see [`VerifiedToken::rules_auth`]).
    rules_auth: Arc<claimdb_model::Value>,
}

impl VerifiedToken {
    pub fn new(
        uid: String,
        claims: Map<String, Value>,
        provider: String,
        roles: Vec<String>,
        iat: Option<i64>,
        exp: i64,
    ) -> VerifiedToken {
        let mut token = VerifiedToken {
            uid,
            claims,
            provider,
            roles,
            iat,
            exp,
            rules_auth: Arc::new(claimdb_model::Value::Null),
        };
        token.rules_auth = Arc::new(rules_auth(
            &token.uid,
            &token.own_claims(),
            token.source_provider(),
            &token.roles,
        ));
        token
    }

    /// `request.auth` as rules see this token alone — `{uid, token, provider, roles}` with
    /// [`VerifiedToken::own_claims`] and [`VerifiedToken::source_provider`] — built once when it
    /// verified, so the verified-token cache converts each token's claims once, not per request.
    /// Whoever overlays a user's stored custom claims builds its own with [`rules_auth`].
    pub fn rules_auth(&self) -> &Arc<claimdb_model::Value> {
        &self.rules_auth
    }

    /// The claims that are the token's own: for a token claimdb minted with the user's stored
    /// custom claims, those (named by its `claimdb_custom` claim, which goes too) are left out —
    /// the user's current custom claims are overlaid instead, so a deleted custom claim stops
    /// working on the next request, as with any token.
    pub fn own_claims(&self) -> Map<String, Value> {
        let mut claims = self.claims.clone();
        if self.provider == ISSUER_PROVIDER_NAME
            && let Some(Value::Array(names)) = claims.remove(STORED_CLAIMS_CLAIM)
        {
            for name in names {
                if let Value::String(name) = name {
                    claims.remove(&name);
                }
            }
        }
        claims
    }

    /// The provider the user signed in with: for claimdb's own tokens the `provider` claim
    /// claimdb wrote when it minted the token from a provider's token, a custom token or a
    /// login (only claimdb can sign it, and custom claims may not use the name); otherwise,
    /// and for tokens minted directly, the provider whose keys verified it.
    pub fn source_provider(&self) -> &str {
        if self.provider == ISSUER_PROVIDER_NAME
            && let Some(Value::String(p)) = self.claims.get(PROVIDER_CLAIM)
            && !p.is_empty()
        {
            return p;
        }
        &self.provider
    }
}

/// `request.auth` as rules see an identity: `{uid, token, provider, roles}`, the claims taken
/// literally as values.
pub fn rules_auth(
    uid: &str,
    claims: &Map<String, Value>,
    provider: &str,
    roles: &[String],
) -> claimdb_model::Value {
    use claimdb_model::Value as V;
    let mut m = claimdb_model::Map::new();
    m.insert("uid".into(), V::String(uid.to_owned()));
    m.insert(
        "token".into(),
        V::Map(claimdb_model::json::plain_map(claims)),
    );
    m.insert("provider".into(), V::String(provider.to_owned()));
    m.insert(
        "roles".into(),
        V::Array(roles.iter().cloned().map(V::String).collect()),
    );
    V::Map(m)
}

/// `sub` (or the configured uid claim) may be at most this long, as in Firebase.
pub const MAX_UID_BYTES: usize = 128;

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if let Some(f) = n.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15) {
                // NumericDate may carry fractions; whole seconds are enough here.
                #[allow(clippy::cast_possible_truncation)]
                Ok(Some(f.floor() as i64))
            } else {
                Err(VerifyError::Malformed(format!(
                    "the {name} claim is not a usable number"
                )))
            }
        }
        Some(_) => Err(VerifyError::Malformed(format!(
            "the {name} claim is not a number"
        ))),
    }
}

/// `exp` required, `nbf`/`iat` optional; all with the provider's skew. Returns (iat, exp).
/// The revocation rule: a token issued before `valid_after` (Unix seconds) is revoked, and so is
/// one without `iat`, which cannot prove it was issued after the revocation.
pub fn check_not_revoked(iat: Option<i64>, valid_after: i64) -> Result<(), VerifyError> {
    if iat.is_none_or(|iat| iat < valid_after) {
        return Err(VerifyError::Revoked {
            iat: iat.unwrap_or(0),
            valid_after,
        });
    }
    Ok(())
}

pub(crate) fn check_times(
    claims: &Map<String, Value>,
    skew: Duration,
    now: i64,
) -> Result<(Option<i64>, i64), VerifyError> {
    let skew_secs = skew.as_secs();
    let s = i64::try_from(skew_secs).unwrap_or(0);
    let exp = match numeric(claims, "exp") {
        Ok(Some(e)) => e,
        Ok(None) | Err(_) => return Err(VerifyError::MissingExpiry),
    };
    if now >= exp.saturating_add(s) {
        return Err(VerifyError::Expired {
            exp,
            now,
            skew_secs,
        });
    }
    if let Some(nbf) = numeric(claims, "nbf")?
        && now.saturating_add(s) < nbf
    {
        return Err(VerifyError::NotYetValid {
            nbf,
            now,
            skew_secs,
        });
    }
    let iat = numeric(claims, "iat")?;
    if let Some(iat) = iat
        && iat > now.saturating_add(s)
    {
        return Err(VerifyError::IssuedInFuture {
            iat,
            now,
            skew_secs,
        });
    }
    Ok((iat, exp))
}

pub(crate) fn check_audience(
    claims: &Map<String, Value>,
    expected: &[String],
) -> Result<(), VerifyError> {
    let aud = claims.get("aud");
    let listed: &[Value] = match aud {
        Some(Value::Array(a)) => a,
        Some(v) => std::slice::from_ref(v),
        None => &[],
    };
    let found = || listed.iter().filter_map(Value::as_str);
    // Checked without copying; the strings are copied only into the error.
    if found().any(|a| expected.iter().any(|e| e == a)) {
        Ok(())
    } else {
        Err(VerifyError::WrongAudience {
            found: found().map(str::to_owned).collect(),
            expected: expected.to_vec(),
        })
    }
}

pub(crate) fn check_uid(claims: &Map<String, Value>, claim: &str) -> Result<String, VerifyError> {
    let bad = |problem: &str| VerifyError::BadSubject {
        claim: claim.to_owned(),
        problem: problem.to_owned(),
    };
    match claims.get(claim) {
        None => Err(bad("is missing")),
        Some(Value::String(s)) if s.is_empty() => Err(bad("is empty")),
        Some(Value::String(s)) if s.len() > MAX_UID_BYTES => Err(VerifyError::BadSubject {
            claim: claim.to_owned(),
            problem: format!(
                "is {} bytes long; at most {MAX_UID_BYTES} are allowed",
                s.len()
            ),
        }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad("is not a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn time_checks_table() {
        let skew = Duration::from_secs(60);
        let now = 1_000_000;
        let cases: &[(Value, Result<(), &str>)] = &[
            (json!({"exp": now + 10}), Ok(())),
            (json!({"exp": now - 59}), Ok(())),
            (json!({"exp": now - 60}), Err("expired")),
            (json!({}), Err("missing-expiry")),
            (json!({"exp": "tomorrow"}), Err("missing-expiry")),
            (json!({"exp": (now + 10) as f64 + 0.5}), Ok(())),
            (json!({"exp": now + 10, "nbf": now + 60}), Ok(())),
            (
                json!({"exp": now + 10, "nbf": now + 61}),
                Err("not-yet-valid"),
            ),
            (json!({"exp": now + 10, "nbf": "x"}), Err("malformed")),
            (json!({"exp": now + 10, "iat": now + 60}), Ok(())),
            (
                json!({"exp": now + 10, "iat": now + 61}),
                Err("issued-in-future"),
            ),
        ];
        for (c, want) in cases {
            let got = check_times(&m(c.clone()), skew, now)
                .map(|_| ())
                .map_err(|e| e.reason());
            assert_eq!(got, *want, "{c}");
        }
    }

    #[test]
    fn audience_and_uid_table() {
        let exp = vec!["a".to_owned(), "b".to_owned()];
        let cases: &[(Value, Result<(), &str>)] = &[
            (json!({"aud": "a"}), Ok(())),
            (json!({"aud": ["x", "b"]}), Ok(())),
            (json!({"aud": "c"}), Err("wrong-audience")),
            (json!({"aud": []}), Err("wrong-audience")),
            (json!({}), Err("wrong-audience")),
            (json!({"aud": 1}), Err("wrong-audience")),
        ];
        for (c, want) in cases {
            assert_eq!(
                check_audience(&m(c.clone()), &exp).map_err(|e| e.reason()),
                *want,
                "{c}"
            );
        }
        let long = "u".repeat(129);
        let max = "u".repeat(128);
        let uids: &[(Value, Result<&str, &str>)] = &[
            (json!({"sub": "alice"}), Ok("alice")),
            (json!({"sub": ""}), Err("bad-subject")),
            (json!({"sub": long}), Err("bad-subject")),
            (json!({"sub": max.clone()}), Ok(max.as_str())),
            (json!({"sub": 5}), Err("bad-subject")),
            (json!({}), Err("bad-subject")),
        ];
        for (c, want) in uids {
            let got = check_uid(&m(c.clone()), "sub").map_err(|e| e.reason());
            assert_eq!(got.as_deref().map_err(|e| *e), *want, "{c}");
        }
    }
}
