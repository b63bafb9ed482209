//! The verifier's key persistence over the store: last-known provider keys persisted as system
//! records (namespace [`PROVIDER_KEYS`]), so a restart during an IdP outage still verifies and,
//! with a shared database, a key document fetched by one node is there for the others.
//! (Revocation is checked by the engine itself, from the same user-record read that brings the
//! custom claims.)
//!
//! This is verification's IO, so it lives on the verification side of the crate graph: the
//! identity crate does IO only through injected traits and knows no store, and the engine is
//! where identity meets the store (as `users::StoreRevocation` does). The sign-in crate's
//! records (refresh tokens, logins, sessions) use the store directly.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimdb_identity::PersistError;
use claimdb_identity::io::{KeyPersistence, PersistedKeys};
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
