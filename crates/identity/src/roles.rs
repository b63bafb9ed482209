//! Claim-to-role mappings: a role is granted when a predicate on the verified claims holds
//! (`equals` a value, or `contains` one), on a top-level claim — whose name may itself contain
//! dots and slashes, like `https://app.example/roles` — or on a nested path such as
//! `["realm_access", "roles"]` (Keycloak).
//!
//! Roles are computed once per verification and cached with the token; rules read them as
//! `request.auth.roles`. This file does not know about rules.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `[[providers.roles]]`: grant `role` when the claim at `claim` satisfies the predicate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    pub role: String,
    pub claim: ClaimPath,
    /// The claim equals this JSON value.
    #[serde(default)]
    pub equals: Option<Value>,
    /// The claim is an array holding this value, or a space-separated string (like `scope`)
    /// holding this string as one of its words.
    #[serde(default)]
    pub contains: Option<Value>,
}

/// A claim name (taken whole, dots and all) or a path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ClaimPath {
    Name(String),
    Path(Vec<String>),
}

impl ClaimPath {
    pub fn lookup<'a>(&self, claims: &'a Map<String, Value>) -> Option<&'a Value> {
        match self {
            ClaimPath::Name(n) => claims.get(n),
            ClaimPath::Path(p) => {
                let (first, rest) = p.split_first()?;
                let mut v = claims.get(first)?;
                for seg in rest {
                    v = v.as_object()?.get(seg)?;
                }
                Some(v)
            }
        }
    }
}

impl RoleMapping {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.role.is_empty() {
            return Err("a role mapping has an empty role name".into());
        }
        match &self.claim {
            ClaimPath::Name(n) if n.is_empty() => {
                return Err(format!("role {:?}: claim must not be empty", self.role));
            }
            ClaimPath::Path(p) if p.is_empty() || p.iter().any(String::is_empty) => {
                return Err(format!(
                    "role {:?}: claim path must be non-empty names",
                    self.role
                ));
            }
            _ => {}
        }
        match (&self.equals, &self.contains) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err(format!(
                "role {:?}: give exactly one of equals and contains",
                self.role
            )),
        }
    }

    /// Whether this mapping grants its role for these claims.
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let Some(v) = self.claim.lookup(claims) else {
            return false;
        };
        if let Some(want) = &self.equals {
            return v == want;
        }
        if let Some(want) = &self.contains {
            return match v {
                Value::Array(items) => items.contains(want),
                Value::String(s) => want
                    .as_str()
                    .is_some_and(|w| s.split(' ').any(|word| word == w)),
                _ => false,
            };
        }
        false
    }
}

/// The roles granted by `mappings`, each once, in mapping order.
pub fn roles_for(mappings: &[RoleMapping], claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in mappings {
        if !out.contains(&m.role) && m.holds(claims) {
            out.push(m.role.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn role_predicates_table() {
        let claims = json!({
            "https://app.example/roles": ["admin", "editor"],
            "scope": "read write",
            "tier": "gold",
            "realm_access": {"roles": ["ops"]},
            "n": 3,
        });
        let claims = claims.as_object().cloned().unwrap_or_default();
        let cases: &[(Value, bool)] = &[
            (
                json!({"role": "a", "claim": "https://app.example/roles", "contains": "admin"}),
                true,
            ),
            (
                json!({"role": "a", "claim": "https://app.example/roles", "contains": "root"}),
                false,
            ),
            (
                json!({"role": "a", "claim": "scope", "contains": "write"}),
                true,
            ),
            (
                json!({"role": "a", "claim": "scope", "contains": "wri"}),
                false,
            ),
            (
                json!({"role": "a", "claim": "tier", "equals": "gold"}),
                true,
            ),
            (
                json!({"role": "a", "claim": "tier", "contains": "gold"}),
                true,
            ),
            (json!({"role": "a", "claim": "n", "equals": 3}), true),
            (json!({"role": "a", "claim": "n", "equals": "3"}), false),
            (
                json!({"role": "a", "claim": ["realm_access", "roles"], "contains": "ops"}),
                true,
            ),
            (
                json!({"role": "a", "claim": ["realm_access", "nope"], "contains": "ops"}),
                false,
            ),
            (
                json!({"role": "a", "claim": "missing", "equals": null}),
                false,
            ),
        ];
        for (m, want) in cases {
            let m: RoleMapping = match serde_json::from_value(m.clone()) {
                Ok(m) => m,
                Err(e) => unreachable!("bad case {m}: {e}"),
            };
            assert_eq!(m.holds(&claims), *want, "{m:?}");
        }
    }
}
