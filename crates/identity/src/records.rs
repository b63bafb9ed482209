//! Small persistent state of the token and login flows (refresh tokens, login attempts,
//! sessions) goes through [`Records`], a trait shaped exactly like the store's system records
//! (`claimdb_store::Store::{get_record, put_record, take_record, list_records}`) so the engine
//! implements it over the store in a few lines. [`MemoryRecords`] serves tests and
//! single-process use.
//!
//! Namespaces used by this crate all start with `auth.` ([`NS_REFRESH`], [`NS_REFRESH_FAMILY`],
//! [`NS_REFRESH_USER`], [`NS_LOGIN`], [`NS_SESSION`]); values are JSON texts defined by the module
//! that owns the namespace. Keys are never secrets: every secret is stored as its SHA-256.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::io::unix_secs;

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

/// When a [`Records::put_record`] applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCondition {
    /// Whatever is there.
    Any,
    /// Only if there is no record.
    Absent,
    /// Only if the record holds exactly this value.
    Equals(String),
}

/// The record storage failed (the store is down, a write was refused, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record storage: {0}")]
pub struct RecordsError(pub String);

/// Durable, atomic key-value records in namespaces (the store's system records).
#[async_trait]
pub trait Records: Send + Sync {
    async fn get_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError>;
    /// Sets (`Some`) or deletes (`None`) a record if `condition` holds, atomically and durably;
    /// returns whether it did.
    async fn put_record(
        &self,
        ns: &str,
        key: &str,
        value: Option<String>,
        condition: RecordCondition,
    ) -> Result<bool, RecordsError>;
    /// Removes a record and returns what it held, atomically: of two concurrent takes, one gets it.
    async fn take_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError>;
    /// The records of one namespace in key order, `limit` at a time, after `after`.
    async fn list_records(
        &self,
        ns: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, RecordsError>;
}

type RecordMap = BTreeMap<(String, String), String>;

/// Records in memory, for tests and single-process use.
#[derive(Debug, Default)]
pub struct MemoryRecords(Mutex<RecordMap>);

impl MemoryRecords {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, RecordMap>, RecordsError> {
        self.0
            .lock()
            .map_err(|_| RecordsError("memory records poisoned".into()))
    }

    /// How many records a namespace holds (tests).
    pub fn count(&self, ns: &str) -> usize {
        self.lock()
            .map(|m| m.keys().filter(|(n, _)| n == ns).count())
            .unwrap_or(0)
    }
}

#[async_trait]
impl Records for MemoryRecords {
    async fn get_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError> {
        Ok(self.lock()?.get(&(ns.to_owned(), key.to_owned())).cloned())
    }

    async fn put_record(
        &self,
        ns: &str,
        key: &str,
        value: Option<String>,
        condition: RecordCondition,
    ) -> Result<bool, RecordsError> {
        let mut m = self.lock()?;
        let k = (ns.to_owned(), key.to_owned());
        let holds = match &condition {
            RecordCondition::Any => true,
            RecordCondition::Absent => !m.contains_key(&k),
            RecordCondition::Equals(v) => m.get(&k) == Some(v),
        };
        if holds {
            match value {
                Some(v) => {
                    m.insert(k, v);
                }
                None => {
                    m.remove(&k);
                }
            }
        }
        Ok(holds)
    }

    async fn take_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError> {
        Ok(self.lock()?.remove(&(ns.to_owned(), key.to_owned())))
    }

    async fn list_records(
        &self,
        ns: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, RecordsError> {
        let m = self.lock()?;
        Ok(m.iter()
            .filter(|((n, k), _)| n == ns && after.is_none_or(|a| k.as_str() > a))
            .take(limit)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// `n` random bytes from the system's CSPRNG, base64url without padding.
pub(crate) fn random_token(n: usize) -> Result<String, RecordsError> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| RecordsError("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// SHA-256 of a text.
pub fn sha256(text: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

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
    records: &dyn Records,
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
    records: &dyn Records,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_records_conditions_take_and_list() {
        let r = MemoryRecords::default();
        assert!(
            r.put_record("a", "k", Some("1".into()), RecordCondition::Absent)
                .await
                .unwrap()
        );
        assert!(
            !r.put_record("a", "k", Some("2".into()), RecordCondition::Absent)
                .await
                .unwrap()
        );
        assert!(
            !r.put_record(
                "a",
                "k",
                Some("2".into()),
                RecordCondition::Equals("0".into())
            )
            .await
            .unwrap()
        );
        assert!(
            r.put_record(
                "a",
                "k",
                Some("2".into()),
                RecordCondition::Equals("1".into())
            )
            .await
            .unwrap()
        );
        r.put_record("a", "j", Some("x".into()), RecordCondition::Any)
            .await
            .unwrap();
        r.put_record("b", "k", Some("y".into()), RecordCondition::Any)
            .await
            .unwrap();
        let all = r.list_records("a", None, 10).await.unwrap();
        assert_eq!(
            all,
            vec![("j".into(), "x".into()), ("k".into(), "2".into())]
        );
        assert_eq!(
            r.list_records("a", Some("j"), 10).await.unwrap(),
            vec![("k".to_owned(), "2".to_owned())]
        );
        assert_eq!(r.take_record("a", "k").await.unwrap().as_deref(), Some("2"));
        assert_eq!(r.take_record("a", "k").await.unwrap(), None);
        assert_eq!(r.get_record("b", "k").await.unwrap().as_deref(), Some("y"));
    }

    #[tokio::test]
    async fn sweep_deletes_only_expired() {
        let r = MemoryRecords::default();
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        let old = format!("{{\"expires_ms\":{}}}", 999_000);
        let new = format!("{{\"expires_ms\":{}}}", 1_001_000);
        r.put_record("n", "old", Some(old), RecordCondition::Any)
            .await
            .unwrap();
        r.put_record("n", "new", Some(new), RecordCondition::Any)
            .await
            .unwrap();
        assert_eq!(sweep_expired(&r, "n", now, 100).await.unwrap(), 1);
        assert_eq!(r.count("n"), 1);
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
        let (n, next) = sweep_expired_after(&r, "m", None, now, 2).await.unwrap();
        assert_eq!((n, next.as_deref()), (2, Some("b")));
        let (n, next) = sweep_expired_after(&r, "m", next.as_deref(), now, 2)
            .await
            .unwrap();
        assert_eq!((n, next), (1, None));
        assert_eq!(r.count("m"), 0);
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
