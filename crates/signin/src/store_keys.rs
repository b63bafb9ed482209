//! claimdb's own issuer keys in the store's system records, so that every node sharing a
//! database signs with, publishes and rotates one key ring: [`StoreKeyStorage`], a
//! [`KeyStorage`] (the key file of [`crate::Issuer`]) kept in namespace
//! [`ISSUER_KEYS`], with a lease record as the cross-node lock held around each
//! [`KeyStorage::update`] (rotation, pruning, first key, adoption).
//!
//! Every call awaits the store directly, so it may be made from any task, on any runtime
//! (a single-threaded one included). Waiting for another node's lease polls with
//! `tokio::time::sleep` and gives up after a bound, with an error saying who holds the lock
//! and when a dead holder's lease runs out. A lease whose holder stops (a crash, or an
//! `update` future dropped half way) is not released: it runs out by itself after 30 s (`LEASE`).
//!
//! What it does not do: encrypt the keys. The signing keys' private parts are in the database
//! in the clear, like the key file on disk; whoever can read claimdb's tables can sign tokens,
//! so grant database access accordingly.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_store::{RecordCondition, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::error::IssuerError;
use crate::signing::{KeyFileEdit, KeyStorage};

/// The record namespace of the issuer's key file and its lock.
pub const ISSUER_KEYS: &str = "issuer_keys";
/// The record holding the key file (its JSON text).
const FILE_KEY: &str = "key_file";
/// The lease record: who holds the lock and until when.
const LOCK_KEY: &str = "lock";

/// How long a lease lasts: a node that crashed while holding it blocks the others at most this
/// long. Key maintenance (reading, maybe saving a new key, writing) takes well under a second;
/// keys are generated before the lease is taken.
const LEASE: Duration = Duration::from_secs(30);
/// How long `update` tries before giving up on a lease held by someone else.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The issuer's key file in a store's system records.
pub struct StoreKeyStorage {
    store: Arc<dyn Store>,
    /// This instance's identity in the lease record.
    holder: String,
}

impl std::fmt::Debug for StoreKeyStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreKeyStorage")
            .field("holder", &self.holder)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Lease {
    holder: String,
    /// Microseconds since the Unix epoch, by the holder's clock.
    until_us: u64,
}

fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn in_store(what: &str) -> impl FnOnce(StoreError) -> IssuerError + '_ {
    move |e| IssuerError::KeyFile(format!("{what} in the store: {e}"))
}

impl StoreKeyStorage {
    /// Key storage over `store`.
    pub fn new(store: Arc<dyn Store>) -> StoreKeyStorage {
        let mut raw = [0u8; 16];
        rand::fill(&mut raw);
        StoreKeyStorage {
            store,
            holder: URL_SAFE_NO_PAD.encode(raw),
        }
    }

    /// Copies the key file of `other` (e.g. the `DirKeyStorage` a node used before its keys
    /// moved into the database) into the store if the store holds none yet, under the lock, so
    /// tokens signed with those keys stay valid. Returns whether it copied. With several nodes
    /// adopting at once, the first one's file wins and the others keep it.
    pub async fn adopt(&self, other: &dyn KeyStorage) -> Result<bool, IssuerError> {
        if self.load().await?.is_some() {
            return Ok(false);
        }
        let Some(content) = other.load().await? else {
            return Ok(false);
        };
        let mut copied = false;
        self.update(&mut |current| {
            copied = current.is_none();
            Ok(copied.then(|| content.clone()))
        })
        .await?;
        Ok(copied)
    }

    fn lease(&self) -> Result<String, IssuerError> {
        serde_json::to_string(&Lease {
            holder: self.holder.clone(),
            until_us: unix_us(SystemTime::now() + LEASE),
        })
        .map_err(|e| IssuerError::KeyFile(format!("encoding the key lock: {e}")))
    }

    /// One attempt at the lease: taken if absent, or if the current one has run out (its
    /// holder died).
    async fn try_acquire(&self, mine: &str) -> Result<bool, StoreError> {
        let store = &self.store;
        if store
            .put_record(
                ISSUER_KEYS,
                LOCK_KEY,
                Some(mine.to_owned()),
                RecordCondition::Absent,
            )
            .await?
        {
            return Ok(true);
        }
        let Some(current) = store.get_record(ISSUER_KEYS, LOCK_KEY).await? else {
            return Ok(false);
        };
        let expired = serde_json::from_str::<Lease>(&current)
            .map_or(true, |l| l.until_us < unix_us(SystemTime::now()));
        if !expired {
            return Ok(false);
        }
        store
            .put_record(
                ISSUER_KEYS,
                LOCK_KEY,
                Some(mine.to_owned()),
                RecordCondition::Equals(current),
            )
            .await
    }

    /// Takes the lease, waiting while another holder's is current; returns the value written.
    async fn acquire(&self) -> Result<String, IssuerError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let mine = self.lease()?;
            if self
                .try_acquire(&mine)
                .await
                .map_err(in_store("taking the key lock"))?
            {
                return Ok(mine);
            }
            if Instant::now() > deadline {
                return Err(IssuerError::KeyFile(format!(
                    "the issuer keys are locked by another claimdb node for over {} s \
                     (a lock left by a crashed node expires {} s after it was taken)",
                    LOCK_WAIT.as_secs(),
                    LEASE.as_secs()
                )));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Gives the lease back if it is still ours. What was done under it stands either way; a
    /// lease not released expires by itself.
    async fn release(&self, lease: String) {
        let released = self
            .store
            .put_record(ISSUER_KEYS, LOCK_KEY, None, RecordCondition::Equals(lease))
            .await;
        match released {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "the issuer key lock expired (and was taken over) before it was released"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release the issuer key lock; it expires by itself")
            }
        }
    }

    /// Load, edit and save, once the lease is held.
    async fn edit(&self, edit: &mut KeyFileEdit<'_>) -> Result<(), IssuerError> {
        let current = self.load().await?;
        let Some(new) = edit(current)? else {
            return Ok(());
        };
        let text = String::from_utf8(new).map_err(|_| {
            IssuerError::KeyFile("the issuer key file is not UTF-8 text (JSON)".into())
        })?;
        self.store
            .put_record(ISSUER_KEYS, FILE_KEY, Some(text), RecordCondition::Any)
            .await
            .map_err(in_store("saving the issuer keys"))?;
        Ok(())
    }
}

#[async_trait]
impl KeyStorage for StoreKeyStorage {
    async fn load(&self) -> Result<Option<Vec<u8>>, IssuerError> {
        let text = self
            .store
            .get_record(ISSUER_KEYS, FILE_KEY)
            .await
            .map_err(in_store("reading the issuer keys"))?;
        Ok(text.map(String::into_bytes))
    }

    async fn update(&self, edit: &mut KeyFileEdit<'_>) -> Result<(), IssuerError> {
        let lease = self.acquire().await?;
        let result = self.edit(edit).await;
        self.release(lease).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::{Issuer, IssuerConfig, SigningAlg};
    use claimdb_store::SqliteStore;

    use super::*;

    fn config() -> IssuerConfig {
        IssuerConfig {
            issuer: "http://127.0.0.1:8787".into(),
            audiences: vec!["http://127.0.0.1:8787".into()],
            algorithm: SigningAlg::ES256,
            rotate_after: None,
            token_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(86_400),
            session_ttl: Duration::from_secs(86_400),
        }
    }

    fn active(issuer: &Issuer) -> String {
        let keys = issuer.keys().unwrap();
        keys.iter()
            .find(|k| k.retired.is_none())
            .map(|k| k.kid.clone())
            .unwrap()
    }

    /// Two nodes (two storages over one store): the second signs with the key the first
    /// created, and a rotation through either is picked up by the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_share_one_key_ring_and_pick_up_each_others_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = Arc::new(StoreKeyStorage::new(store.clone()));
        let b = Arc::new(StoreKeyStorage::new(store.clone()));
        let t0 = SystemTime::now();
        let node_a = Issuer::open(config(), a, t0).await.unwrap();
        let node_b = Issuer::open(config(), b, t0 + Duration::from_secs(10))
            .await
            .unwrap();
        let first = active(&node_a);
        assert_eq!(active(&node_b), first, "B created a key of its own");
        assert_eq!(node_a.jwks_json().unwrap(), node_b.jwks_json().unwrap());
        let rotated = node_b.rotate(t0 + Duration::from_secs(20)).await.unwrap();
        assert_ne!(rotated, first);
        assert!(node_a.maintain(t0 + Duration::from_secs(30)).await.unwrap());
        assert_eq!(active(&node_a), rotated);
        // The old key stays published for the tokens it signed.
        assert!(node_a.jwks_json().unwrap().contains(&first));
        // The key file is a record; the lock was released.
        assert!(
            store
                .get_record(ISSUER_KEYS, FILE_KEY)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.get_record(ISSUER_KEYS, LOCK_KEY).await.unwrap(), None);
    }

    /// Regression: the storage used to be synchronous, bridged to the store by spawning each
    /// operation on a runtime and blocking the calling thread for the answer, so on a
    /// single-threaded runtime (the caller's thread being the only worker) every call waited
    /// out its bound and failed. Now the store is awaited: opening, rotating, maintaining and
    /// reloading over the store complete on a current-thread runtime.
    #[tokio::test(flavor = "current_thread")]
    async fn the_issuer_runs_over_the_store_on_a_single_threaded_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let storage = Arc::new(StoreKeyStorage::new(store.clone()));
        let t0 = SystemTime::now();
        let work = async {
            let issuer = Issuer::open(config(), storage.clone(), t0).await.unwrap();
            let first = active(&issuer);
            let rotated = issuer.rotate(t0 + Duration::from_secs(1)).await.unwrap();
            assert_ne!(rotated, first);
            assert!(!issuer.maintain(t0 + Duration::from_secs(2)).await.unwrap());
            claimdb_identity::LocalKeySource::reload(&*issuer)
                .await
                .unwrap();
            let again = Issuer::open(config(), storage.clone(), t0).await.unwrap();
            assert_eq!(active(&again), rotated);
        };
        // The old bridge failed each call after 30 s; this takes milliseconds.
        tokio::time::timeout(Duration::from_secs(20), work)
            .await
            .expect("the issuer's key storage hung on a single-threaded runtime");
        assert_eq!(store.get_record(ISSUER_KEYS, LOCK_KEY).await.unwrap(), None);
    }

    /// While one holder is inside `update`, another waits for it; a lease left by a holder
    /// that died is taken over once it has run out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lock_excludes_others_and_a_dead_holders_lease_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = StoreKeyStorage::new(store.clone());
        let b = StoreKeyStorage::new(store.clone());
        let inside = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
        let holder = {
            let inside = inside.clone();
            tokio::spawn(async move {
                let mut entered_tx = Some(entered_tx);
                a.update(&mut |_| {
                    inside.store(true, Ordering::SeqCst);
                    if let Some(tx) = entered_tx.take() {
                        tx.send(()).unwrap();
                    }
                    // Hold the lock long enough for B to try many times.
                    std::thread::sleep(Duration::from_millis(300));
                    inside.store(false, Ordering::SeqCst);
                    Ok(None)
                })
                .await
                .unwrap();
            })
        };
        entered_rx.await.unwrap();
        let mut ran = false;
        b.update(&mut |_| {
            assert!(!inside.load(Ordering::SeqCst), "both held the lock at once");
            ran = true;
            Ok(None)
        })
        .await
        .unwrap();
        assert!(ran);
        holder.await.unwrap();

        // A lease whose holder died (expired a second ago).
        let dead = serde_json::to_string(&Lease {
            holder: "dead".into(),
            until_us: unix_us(SystemTime::now() - Duration::from_secs(1)),
        })
        .unwrap();
        store
            .put_record(ISSUER_KEYS, LOCK_KEY, Some(dead), RecordCondition::Any)
            .await
            .unwrap();
        let started = Instant::now();
        b.update(&mut |_| Ok(None)).await.unwrap();
        assert!(started.elapsed() < LOCK_WAIT, "waited out a dead lease");
        assert_eq!(store.get_record(ISSUER_KEYS, LOCK_KEY).await.unwrap(), None);
    }

    /// A node's key file from disk moves into an empty store, keeping its key; a store that
    /// already has keys keeps them.
    #[tokio::test]
    async fn adopting_a_local_key_file_keeps_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let local = Arc::new(crate::DirKeyStorage::open(dir.path().join("issuer")).unwrap());
        let shared = Arc::new(StoreKeyStorage::new(store));
        let t0 = SystemTime::now();
        // Nothing to adopt yet.
        assert!(!shared.adopt(local.as_ref()).await.unwrap());
        let old = active(&Issuer::open(config(), local.clone(), t0).await.unwrap());
        assert!(shared.adopt(local.as_ref()).await.unwrap());
        let node = Issuer::open(config(), shared.clone(), t0).await.unwrap();
        assert_eq!(active(&node), old);
        // Once the store has keys, another local file does not replace them.
        let other_dir = tempfile::tempdir().unwrap();
        let other = Arc::new(crate::DirKeyStorage::open(other_dir.path().join("issuer")).unwrap());
        Issuer::open(config(), other.clone(), t0).await.unwrap();
        assert!(!shared.adopt(other.as_ref()).await.unwrap());
        let node = Issuer::open(config(), shared, t0).await.unwrap();
        assert_eq!(active(&node), old);
    }

    #[tokio::test]
    async fn a_key_file_that_is_not_text_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let storage = StoreKeyStorage::new(store.clone());
        let err = storage
            .update(&mut |_| Ok(Some(vec![0xff, 0xfe])))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        // Nothing was saved, and the lock was released.
        assert_eq!(storage.load().await.unwrap(), None);
        assert_eq!(store.get_record(ISSUER_KEYS, LOCK_KEY).await.unwrap(), None);
    }
}
