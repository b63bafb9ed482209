//! The identity layer's IO over the store: last-known provider keys persisted as system records
//! (namespace [`PROVIDER_KEYS`]), so a restart during an IdP outage still verifies and, with a
//! shared database, a key document fetched by one node is there for the others; and
//! [`StoreRecords`], the identity layer's [`Records`] (refresh tokens, login attempts, sessions
//! under `auth.*`) as the store's system records, so every node of a shared database sees the
//! same sessions and refresh-token families. (Revocation is checked by the engine itself, from
//! the same user-record read that brings the custom claims.)

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimdb_identity::io::{KeyPersistence, PersistedKeys};
use claimdb_identity::{PersistError, Records, RecordsError};
use claimdb_store::{RecordCondition, Store};
use serde::{Deserialize, Serialize};

/// The record namespace of persisted provider key documents, keyed by provider name.
pub const PROVIDER_KEYS: &str = "provider_keys";

#[derive(Serialize, Deserialize)]
struct Stored {
    /// The key document as fetched, base64.
    body: String,
    /// Microseconds since the Unix epoch.
    fetched_at_us: u64,
}

/// [`KeyPersistence`] over a store's system records.
pub struct StoreKeyPersistence(pub Arc<dyn Store>);

#[async_trait]
impl KeyPersistence for StoreKeyPersistence {
    async fn load(&self, provider: &str) -> Result<Option<PersistedKeys>, PersistError> {
        let Some(text) = self
            .0
            .get_record(PROVIDER_KEYS, provider)
            .await
            .map_err(|e| PersistError(e.to_string()))?
        else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(&text)
            .map_err(|e| PersistError(format!("persisted keys of {provider}: {e}")))?;
        let body = STANDARD
            .decode(stored.body)
            .map_err(|e| PersistError(format!("persisted keys of {provider}: {e}")))?;
        Ok(Some(PersistedKeys {
            body,
            fetched_at: UNIX_EPOCH + Duration::from_micros(stored.fetched_at_us),
        }))
    }

    async fn save(&self, provider: &str, keys: &PersistedKeys) -> Result<(), PersistError> {
        let fetched_at_us = keys
            .fetched_at
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let text = serde_json::to_string(&Stored {
            body: STANDARD.encode(&keys.body),
            fetched_at_us,
        })
        .map_err(|e| PersistError(e.to_string()))?;
        self.0
            .put_record(PROVIDER_KEYS, provider, Some(text), RecordCondition::Any)
            .await
            .map_err(|e| PersistError(e.to_string()))?;
        Ok(())
    }
}

/// [`Records`] over a store's system records: the same operations with the same atomicity
/// (compare-and-set puts, single-winner takes), durable when they return.
pub struct StoreRecords(pub Arc<dyn Store>);

fn records_error(e: claimdb_store::StoreError) -> RecordsError {
    RecordsError(e.to_string())
}

fn condition(c: claimdb_identity::RecordCondition) -> RecordCondition {
    match c {
        claimdb_identity::RecordCondition::Any => RecordCondition::Any,
        claimdb_identity::RecordCondition::Absent => RecordCondition::Absent,
        claimdb_identity::RecordCondition::Equals(v) => RecordCondition::Equals(v),
    }
}

#[async_trait]
impl Records for StoreRecords {
    async fn get_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError> {
        self.0.get_record(ns, key).await.map_err(records_error)
    }

    async fn put_record(
        &self,
        ns: &str,
        key: &str,
        value: Option<String>,
        cond: claimdb_identity::RecordCondition,
    ) -> Result<bool, RecordsError> {
        self.0
            .put_record(ns, key, value, condition(cond))
            .await
            .map_err(records_error)
    }

    async fn take_record(&self, ns: &str, key: &str) -> Result<Option<String>, RecordsError> {
        self.0.take_record(ns, key).await.map_err(records_error)
    }

    async fn list_records(
        &self,
        ns: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, RecordsError> {
        self.0
            .list_records(ns, after, limit)
            .await
            .map_err(records_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_identity::RecordCondition as Cond;
    use claimdb_store::SqliteStore;

    /// The adapter keeps the store's semantics: conditional puts, one winner per take, key
    /// order and paging within a namespace.
    #[tokio::test]
    async fn store_records_behave_like_the_trait_says() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let r = StoreRecords(store);
        assert!(
            r.put_record("auth.t", "b", Some("1".into()), Cond::Absent)
                .await
                .unwrap()
        );
        assert!(
            !r.put_record("auth.t", "b", Some("2".into()), Cond::Absent)
                .await
                .unwrap()
        );
        assert!(
            !r.put_record("auth.t", "b", Some("2".into()), Cond::Equals("0".into()))
                .await
                .unwrap()
        );
        assert!(
            r.put_record("auth.t", "b", Some("2".into()), Cond::Equals("1".into()))
                .await
                .unwrap()
        );
        r.put_record("auth.t", "a", Some("x".into()), Cond::Any)
            .await
            .unwrap();
        r.put_record("auth.u", "a", Some("y".into()), Cond::Any)
            .await
            .unwrap();
        assert_eq!(
            r.list_records("auth.t", None, 10).await.unwrap(),
            vec![
                ("a".to_owned(), "x".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(
            r.list_records("auth.t", Some("a"), 10).await.unwrap(),
            vec![("b".to_owned(), "2".to_owned())]
        );
        assert_eq!(
            r.take_record("auth.t", "b").await.unwrap().as_deref(),
            Some("2")
        );
        assert_eq!(r.take_record("auth.t", "b").await.unwrap(), None);
        assert_eq!(
            r.get_record("auth.u", "a").await.unwrap().as_deref(),
            Some("y")
        );
        assert!(r.put_record("auth.u", "a", None, Cond::Any).await.unwrap());
        assert_eq!(r.get_record("auth.u", "a").await.unwrap(), None);
    }
}
