//! User records: what claimdb keeps about a user between requests, in the store's system records
//! (namespace [`USERS`], keyed by uid) so every node sees the same: the user's custom claims
//! (overlaid on the token's claims from the next request on), `tokens_valid_after` (revocation),
//! and when and through which provider the user was first and last seen at sign-in.
//!
//! Every change is a compare-and-set loop on the record's JSON, so concurrent changes (a claims
//! update racing a revocation) never lose each other.

use claimdb_store::{RecordCondition, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::EngineError;

/// The record namespace of users.
pub const USERS: &str = "users";

pub use claimdb_identity::claim_names::{MAX_CUSTOM_CLAIMS_BYTES, RESERVED_CLAIMS};

/// One user's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub uid: String,
    /// The provider the user was first seen through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Unix seconds when the record was created.
    #[serde(default)]
    pub created: i64,
    /// Custom claims set through the admin API (an object, at most 1,000 bytes).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_claims: Map<String, Value>,
    /// Unix seconds: every credential issued before this second is refused (bearer tokens by
    /// their `iat`, exchanged and custom tokens, refresh-token sign-ins, login sessions). A
    /// revocation sets it to the second *after* the one it runs in and returns only once that
    /// second has begun (see `Engine::admin_revoke`), so a token issued in the same second
    /// before the revocation returned is refused, and one issued after it returned is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_valid_after: Option<i64>,
}

/// Refuses a credential of the user issued at `issued_at` (Unix seconds; unknown counts as
/// before) if the user's tokens issued then are revoked: the one revocation rule every way to
/// authenticate applies.
pub fn check_not_revoked(record: &UserRecord, issued_at: Option<i64>) -> Result<(), EngineError> {
    let Some(valid_after) = record.tokens_valid_after else {
        return Ok(());
    };
    claimdb_identity::check_not_revoked(issued_at, valid_after).map_err(|e| {
        metrics::counter!("claimdb_auth_failures_total", "reason" => e.reason()).increment(1);
        EngineError::Unauthenticated {
            message: e.to_string(),
            reason: e.reason(),
        }
    })
}

/// Checks a custom-claims object: a JSON object of at most [`MAX_CUSTOM_CLAIMS_BYTES`]
/// serialized bytes using no reserved claim name.
pub fn validate_custom_claims(claims: &Value) -> Result<Map<String, Value>, EngineError> {
    let Value::Object(map) = claims else {
        return Err(EngineError::invalid_argument(
            "custom claims must be a JSON object",
        ));
    };
    let size = serde_json::to_string(map)
        .map_err(|e| EngineError::internal(format!("serializing claims: {e}")))?
        .len();
    if size > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(EngineError::invalid_argument(format!(
            "custom claims are {size} bytes serialized; the limit is {MAX_CUSTOM_CLAIMS_BYTES}"
        )));
    }
    let mut reserved: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| RESERVED_CLAIMS.contains(k))
        .collect();
    if !reserved.is_empty() {
        reserved.sort_unstable();
        return Err(EngineError::invalid_argument(format!(
            "custom claims may not use the reserved claim name(s) {}",
            reserved.join(", ")
        )));
    }
    Ok(map.clone())
}

/// Checks a uid given in an admin URL: 1 to 128 bytes, like a token's subject.
pub fn validate_uid(uid: &str) -> Result<(), EngineError> {
    if uid.is_empty() || uid.len() > 128 {
        return Err(EngineError::invalid_argument(format!(
            "a uid is 1 to 128 bytes, not {}",
            uid.len()
        )));
    }
    Ok(())
}

/// Reads a user's record.
pub async fn load(store: &dyn Store, uid: &str) -> Result<Option<UserRecord>, EngineError> {
    match store.get_record(USERS, uid).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            EngineError::internal(format!("the stored record of user {uid} is corrupt: {e}"))
        }),
    }
}

/// Applies `change` to the user's record (a new one, created at `now` in Unix seconds, when
/// there is none) with compare-and-set, retrying on a concurrent change. `change` returns false
/// to leave the record as it is. Returns the record as stored afterwards.
pub async fn modify_at(
    store: &dyn Store,
    uid: &str,
    now: i64,
    mut change: impl FnMut(&mut UserRecord) -> bool,
) -> Result<UserRecord, EngineError> {
    validate_uid(uid)?;
    for _ in 0..64 {
        let current = store.get_record(USERS, uid).await?;
        let mut record = match &current {
            Some(text) => serde_json::from_str(text).map_err(|e| {
                EngineError::internal(format!("the stored record of user {uid} is corrupt: {e}"))
            })?,
            None => UserRecord {
                uid: uid.to_owned(),
                created: now,
                ..UserRecord::default()
            },
        };
        if !change(&mut record) {
            return Ok(record);
        }
        let text = serde_json::to_string(&record)
            .map_err(|e| EngineError::internal(format!("serializing user {uid}: {e}")))?;
        let condition = match current {
            Some(old) => RecordCondition::Equals(old),
            None => RecordCondition::Absent,
        };
        if store.put_record(USERS, uid, Some(text), condition).await? {
            return Ok(record);
        }
    }
    Err(EngineError::Aborted {
        message: format!("user {uid} kept changing concurrently; try again"),
        write_index: None,
    })
}

/// One page of users in uid order.
pub async fn list(
    store: &dyn Store,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<UserRecord>, EngineError> {
    store
        .list_records(USERS, after, limit)
        .await?
        .into_iter()
        .map(|(uid, text)| {
            serde_json::from_str(&text).map_err(|e| {
                EngineError::internal(format!("the stored record of user {uid} is corrupt: {e}"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_claims_are_checked() {
        assert!(validate_custom_claims(&json!({"moderator": true})).is_ok());
        assert!(validate_custom_claims(&json!([1])).is_err());
        let e = validate_custom_claims(&json!({"sub": "x", "exp": 1, "ok": 1})).unwrap_err();
        assert!(e.message().contains("exp, sub"), "{e}");
        let big = "x".repeat(993);
        let e = validate_custom_claims(&json!({ "k": big })).unwrap_err();
        assert!(e.message().contains("limit is 1000"), "{e}");
        // Exactly 1000 bytes is allowed: {"k":"…"} is 8 bytes of syntax.
        let fits = "x".repeat(992);
        assert!(validate_custom_claims(&json!({ "k": fits })).is_ok());
    }
}
