//! Small persistent state of the token and login flows (refresh tokens, login attempts,
//! sessions) lives in the store's system records (`claimdb_store::Store::{get_record,
//! put_record, take_record, list_records}`), used directly: compare-and-set puts, single-winner
//! takes, durable when they return, and on a shared database seen by every node.
//!
//! Namespaces used by this crate all start with `auth.` ([`NS_REFRESH`], [`NS_REFRESH_FAMILY`],
//! [`NS_REFRESH_USER`], [`NS_LOGIN`], [`NS_SESSION`]); values are JSON texts defined by the module
//! that owns the namespace. Keys are never secrets: every secret is stored as its SHA-256.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_identity::io::unix_secs;
use claimdb_store::{RecordCondition, Store, StoreError};

/// Refresh tokens, keyed by the SHA-256 of the token.
pub const NS_REFRESH: &str = "auth.refresh";
/// Refresh-token families (one per sign-in), keyed by family id.
pub const NS_REFRESH_FAMILY: &str = "auth.refresh_family";
/// Per-user refresh-token revocation (`revoke_user`), keyed by uid.
pub const NS_REFRESH_USER: &str = "auth.refresh_user";
/// Login attempts in flight, keyed by the SHA-256 of the `state`.
pub const NS_LOGIN: &str = "auth.login";
/// Browser sessions, keyed by the SHA-256 of the session id.
pub const NS_SESSION: &str = "auth.session";

/// The record storage failed (the store is down, a write was refused, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record storage: {0}")]
pub struct RecordsError(pub String);

impl From<StoreError> for RecordsError {
    fn from(e: StoreError) -> Self {
        RecordsError(e.to_string())
    }
}

/// `n` random bytes from the system's CSPRNG, base64url without padding.
pub(crate) fn random_token(n: usize) -> Result<String, RecordsError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| RecordsError("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a text (the engine's, which hashes the admin key the same way).
pub use claimdb_engine::admin_key::sha256;

/// The record key of a secret: base64url(SHA-256(secret)).
pub(crate) fn secret_key(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(secret))
}

/// Milliseconds since the Unix epoch (for expiry fields in record values).
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => unix_secs(t).saturating_mul(1000),
    }
}

/// Deletes records of `ns` whose JSON value has an `expires_ms` before `now`, at most `limit`
/// examined per call; returns how many were deleted. For the server's periodic sweep.
pub async fn sweep_expired(
    records: &dyn Store,
    ns: &str,
    now: SystemTime,
    limit: usize,
) -> Result<usize, RecordsError> {
    Ok(sweep_expired_after(records, ns, None, now, limit).await?.0)
}

/// [`sweep_expired`] resuming after the key `after`: returns how many were deleted and the
/// last key examined, or `None` when the end of the namespace was reached — pass it back as
/// `after` on the next round, so a large namespace is swept a bounded slice at a time.
pub async fn sweep_expired_after(
    records: &dyn Store,
    ns: &str,
    after: Option<&str>,
    now: SystemTime,
    limit: usize,
) -> Result<(usize, Option<String>), RecordsError> {
    let now_ms = unix_millis(now);
    let mut after: Option<String> = after.map(str::to_owned);
    let mut examined = 0;
    let mut deleted = 0;
    while examined < limit {
        let page = records
            .list_records(ns, after.as_deref(), (limit - examined).min(256))
            .await?;
        if page.is_empty() {
            return Ok((deleted, None));
        }
        examined += page.len();
        for (key, value) in &page {
            let expires = serde_json::from_str::<serde_json::Value>(value)
                .ok()
                .and_then(|v| v.get("expires_ms").and_then(serde_json::Value::as_i64));
            if expires.is_some_and(|e| e <= now_ms)
                && records
                    .put_record(ns, key, None, RecordCondition::Equals(value.clone()))
                    .await?
            {
                deleted += 1;
            }
        }
        after = page.last().map(|(k, _)| k.clone());
    }
    Ok((deleted, after))
}

/// A store in a fresh temporary directory, for tests (kept while the directory lives).
#[cfg(test)]
pub(crate) fn test_store() -> (std::sync::Arc<dyn Store>, tempfile::TempDir) {
    #[allow(clippy::unwrap_used)]
    let dir = tempfile::tempdir().unwrap();
    #[allow(clippy::unwrap_used)]
    let store = claimdb_store::SqliteStore::open(dir.path()).unwrap();
    (std::sync::Arc::new(store), dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweep_deletes_only_expired() {
        let (r, _dir) = test_store();
        let r = &*r;
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let old = format!("{{\"expires_ms\":{}}}", 999_000);
        let new = format!("{{\"expires_ms\":{}}}", 1_001_000);
        r.put_record("n", "old", Some(old), RecordCondition::Any)
            .await
            .unwrap();
        r.put_record("n", "new", Some(new), RecordCondition::Any)
            .await
            .unwrap();
        assert_eq!(sweep_expired(r, "n", now, 100).await.unwrap(), 1);
        assert_eq!(r.list_records("n", None, 10).await.unwrap().len(), 1);
        assert!(r.get_record("n", "new").await.unwrap().is_some());
        // A bounded slice at a time, resuming where the last round stopped.
        for k in ["a", "b", "c"] {
            r.put_record(
                "m",
                k,
                Some(format!("{{\"expires_ms\":{}}}", 999_000)),
                RecordCondition::Any,
            )
            .await
            .unwrap();
        }
        let (n, next) = sweep_expired_after(r, "m", None, now, 2).await.unwrap();
        assert_eq!((n, next.as_deref()), (2, Some("b")));
        let (n, next) = sweep_expired_after(r, "m", next.as_deref(), now, 2)
            .await
            .unwrap();
        assert_eq!((n, next), (1, None));
        assert!(r.list_records("m", None, 10).await.unwrap().is_empty());
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let a = random_token(32).unwrap();
        let b = random_token(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(secret_key(&a), a);
        assert_eq!(secret_key(&a), secret_key(&a));
    }
}
