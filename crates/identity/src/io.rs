//! The injected IO of the identity layer: fetching key documents ([`Fetcher`]), persisting
//! last-known keys ([`KeyPersistence`]) and telling the time ([`Clock`]), with small in-memory
//! implementations for tests and single-process use.
//!
//! The production fetcher lives in `http.rs`; the store-backed persistence belongs to the
//! engine, which knows the store. (No revocation lookup: the verifier does not apply
//! revocation; whoever reads the user's records does, with `check_not_revoked`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::error::{FetchError, PersistError};

/// A fetched key or discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDocument {
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, if the server sent one.
    pub max_age: Option<Duration>,
}

/// GETs a URL. Implementations must treat non-2xx answers as errors and bound the body size.
#[async_trait]
pub trait Fetcher: Send + Sync {
    async fn get(&self, url: &str) -> Result<FetchedDocument, FetchError>;
}

/// The answer to a form POST: any status (an OAuth error comes with 400 and a JSON body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs an `application/x-www-form-urlencoded` body (the OAuth token endpoint), optionally
/// with HTTP Basic client authentication. Implementations bound the body size and time.
#[async_trait]
pub trait FormPoster: Send + Sync {
    async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        basic_auth: Option<(&str, &str)>,
    ) -> Result<PostResponse, FetchError>;
}

/// Last-known keys of one provider, as fetched (raw JWKS or certificate-map JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedKeys {
    pub body: Vec<u8>,
    pub fetched_at: SystemTime,
}

/// Stores the last good key document per provider name, so a restart during an IdP outage
/// still verifies.
#[async_trait]
pub trait KeyPersistence: Send + Sync {
    async fn load(&self, provider: &str) -> Result<Option<PersistedKeys>, PersistError>;
    async fn save(&self, provider: &str, keys: &PersistedKeys) -> Result<(), PersistError>;
}

/// The time, injected so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock tests set by hand.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    pub fn new(t: SystemTime) -> Self {
        Self(Mutex::new(t))
    }
    pub fn set(&self, t: SystemTime) {
        if let Ok(mut g) = self.0.lock() {
            *g = t;
        }
    }
    pub fn advance(&self, d: Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|g| *g).unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// Persistence in memory (survives a `Verifier` rebuilt over the same instance).
#[derive(Debug, Default)]
pub struct MemoryPersistence(Mutex<HashMap<String, PersistedKeys>>);

#[async_trait]
impl KeyPersistence for MemoryPersistence {
    async fn load(&self, provider: &str) -> Result<Option<PersistedKeys>, PersistError> {
        let g = self.0.lock().map_err(|_| PersistError("poisoned".into()))?;
        Ok(g.get(provider).cloned())
    }
    async fn save(&self, provider: &str, keys: &PersistedKeys) -> Result<(), PersistError> {
        let mut g = self.0.lock().map_err(|_| PersistError("poisoned".into()))?;
        g.insert(provider.to_owned(), keys.clone());
        Ok(())
    }
}

/// No persistence: keys live only in memory.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersistence;

#[async_trait]
impl KeyPersistence for NoPersistence {
    async fn load(&self, _: &str) -> Result<Option<PersistedKeys>, PersistError> {
        Ok(None)
    }
    async fn save(&self, _: &str, _: &PersistedKeys) -> Result<(), PersistError> {
        Ok(())
    }
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}
