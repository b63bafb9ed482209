//! claimdb's own issuer keys in the store's system records, so that every node sharing a
//! database signs with, publishes and rotates one key ring: [`StoreKeyStorage`], a
//! [`KeyStorage`] (the key file of [`crate::Issuer`]) kept in namespace
//! [`ISSUER_KEYS`], with a lease record as the cross-node lock the issuer takes around
//! read-modify-write (rotation, pruning, first key).
//!
//! `KeyStorage` is a synchronous trait and the store is asynchronous. Each call runs the store
//! operation as a task on the runtime named by the [`Handle`] it was built with and waits for the
//! answer on the calling thread — so **call it from a thread that may block** (inside
//! `tokio::task::spawn_blocking`, or a thread outside the runtime), never on an async worker.
//! The issuer already does so for its maintenance; `Issuer::open` and `Issuer::rotate` must be
//! called that way too. A call made on a worker anyway cannot hang forever: the wait is bounded
//! (it fails with a message saying why) rather than a deadlock on a single-threaded runtime.
//!
//! What it does not do: encrypt the keys. The signing keys' private parts are in the database
//! in the clear, like the key file on disk; whoever can read claimdb's tables can sign tokens,
//! so grant database access accordingly.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_store::{RecordCondition, Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::error::IssuerError;
use crate::signing::KeyStorage;

/// The record namespace of the issuer's key file and its lock.
pub const ISSUER_KEYS: &str = "issuer_keys";
/// The record holding the key file (its JSON text).
const FILE_KEY: &str = "key_file";
/// The lease record: who holds the lock and until when.
const LOCK_KEY: &str = "lock";

/// How long a lease lasts: a node that crashed while holding it blocks the others at most this
/// long. Key maintenance (reading, maybe generating a key, writing) takes well under a second.
const LEASE: Duration = Duration::from_secs(30);
/// How long `locked` tries before giving up on a lease held by someone else.
const LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(20);
/// The default bound on one store operation (the stores' own timeouts are shorter).
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The issuer's key file in a store's system records. See the module docs for the threading
/// contract.
pub struct StoreKeyStorage {
    store: Arc<dyn Store>,
    handle: Handle,
    /// This instance's identity in the lease record.
    holder: String,
    wait: Duration,
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

impl StoreKeyStorage {
    /// Key storage over `store`, whose operations run on the runtime of `handle` (which must
    /// be a multi-threaded runtime, or one driven by some other thread while this waits).
    pub fn new(store: Arc<dyn Store>, handle: Handle) -> StoreKeyStorage {
        let mut raw = [0u8; 16];
        rand::fill(&mut raw);
        StoreKeyStorage {
            store,
            handle,
            holder: URL_SAFE_NO_PAD.encode(raw),
            wait: DEFAULT_WAIT,
        }
    }

    /// Bounds how long one store operation may take before the call fails (default 30 s).
    pub fn with_wait(mut self, wait: Duration) -> StoreKeyStorage {
        self.wait = wait;
        self
    }

    /// Runs `op` on the store, on the runtime, and waits for its answer on this thread.
    fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, IssuerError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn Store>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let store = self.store.clone();
        let task = self.handle.spawn(async move {
            let _ = tx.send(op(store).await);
        });
        match rx.recv_timeout(self.wait) {
            Ok(result) => {
                result.map_err(|e| IssuerError::KeyFile(format!("{what} in the store: {e}")))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                task.abort();
                Err(IssuerError::KeyFile(format!(
                    "{what} in the store took over {} ms (was it called on an async worker \
                     thread instead of a blocking one?)",
                    self.wait.as_millis()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(IssuerError::KeyFile(format!(
                "{what} in the store: the runtime stopped"
            ))),
        }
    }

    /// Copies the key file of `other` (e.g. the `DirKeyStorage` a node used before its keys
    /// moved into the database) into the store if the store holds none yet, under the lock, so
    /// tokens signed with those keys stay valid. Returns whether it copied. With several nodes
    /// adopting at once, the first one's file wins and the others keep it.
    pub fn adopt(&self, other: &dyn KeyStorage) -> Result<bool, IssuerError> {
        if self.load()?.is_some() {
            return Ok(false);
        }
        let Some(content) = other.load()? else {
            return Ok(false);
        };
        let mut copied = false;
        self.locked(&mut || {
            if self.load()?.is_none() {
                self.save(&content)?;
                copied = true;
            }
            Ok(())
        })?;
        Ok(copied)
    }

    fn lease(&self) -> Result<String, IssuerError> {
        let until = SystemTime::now() + LEASE;
        let until_us = until
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        serde_json::to_string(&Lease {
            holder: self.holder.clone(),
            until_us,
        })
        .map_err(|e| IssuerError::KeyFile(format!("encoding the key lock: {e}")))
    }

    /// Takes the lease, waiting while another holder's is current; returns the value written.
    fn acquire(&self) -> Result<String, IssuerError> {
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let mine = self.lease()?;
            let value = mine.clone();
            let taken = self.run("taking the key lock", move |store| async move {
                if store
                    .put_record(
                        ISSUER_KEYS,
                        LOCK_KEY,
                        Some(value.clone()),
                        RecordCondition::Absent,
                    )
                    .await?
                {
                    return Ok(true);
                }
                // Held: take it over only if that lease has run out (its holder died).
                let Some(current) = store.get_record(ISSUER_KEYS, LOCK_KEY).await? else {
                    return Ok(false);
                };
                let expired = serde_json::from_str::<Lease>(&current).map_or(true, |l| {
                    let now_us = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
                        .unwrap_or(0);
                    l.until_us < now_us
                });
                if !expired {
                    return Ok(false);
                }
                store
                    .put_record(
                        ISSUER_KEYS,
                        LOCK_KEY,
                        Some(value),
                        RecordCondition::Equals(current),
                    )
                    .await
            })?;
            if taken {
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
            // A blocking thread, by this type's contract.
            std::thread::sleep(LOCK_POLL);
        }
    }
}

impl KeyStorage for StoreKeyStorage {
    fn load(&self) -> Result<Option<Vec<u8>>, IssuerError> {
        let text = self.run("reading the issuer keys", |store| async move {
            store.get_record(ISSUER_KEYS, FILE_KEY).await
        })?;
        Ok(text.map(String::into_bytes))
    }

    fn save(&self, content: &[u8]) -> Result<(), IssuerError> {
        let text = String::from_utf8(content.to_vec()).map_err(|_| {
            IssuerError::KeyFile("the issuer key file is not UTF-8 text (JSON)".into())
        })?;
        self.run("saving the issuer keys", move |store| async move {
            store
                .put_record(ISSUER_KEYS, FILE_KEY, Some(text), RecordCondition::Any)
                .await
                .map(|_| ())
        })
    }

    fn locked(&self, f: &mut dyn FnMut() -> Result<(), IssuerError>) -> Result<(), IssuerError> {
        let lease = self.acquire()?;
        let result = f();
        let released = self.run("releasing the key lock", move |store| async move {
            store
                .put_record(ISSUER_KEYS, LOCK_KEY, None, RecordCondition::Equals(lease))
                .await
        });
        // What `f` did stands either way; a lease not released expires by itself.
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
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::{Issuer, IssuerConfig, SigningAlg};
    use claimdb_store::SqliteStore;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

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
    #[test]
    fn nodes_share_one_key_ring_and_pick_up_each_others_rotation() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = Arc::new(StoreKeyStorage::new(store.clone(), rt.handle().clone()));
        let b = Arc::new(StoreKeyStorage::new(store.clone(), rt.handle().clone()));
        let t0 = SystemTime::now();
        rt.block_on(async {
            tokio::task::spawn_blocking(move || {
                let node_a = Issuer::open(config(), a, t0).unwrap();
                let node_b = Issuer::open(config(), b, t0 + Duration::from_secs(10)).unwrap();
                let first = active(&node_a);
                assert_eq!(active(&node_b), first, "B created a key of its own");
                assert_eq!(node_a.jwks_json().unwrap(), node_b.jwks_json().unwrap());
                let rotated = node_b.rotate(t0 + Duration::from_secs(20)).unwrap();
                assert_ne!(rotated, first);
                assert!(node_a.maintain(t0 + Duration::from_secs(30)).unwrap());
                assert_eq!(active(&node_a), rotated);
                // The old key stays published for the tokens it signed.
                assert!(node_a.jwks_json().unwrap().contains(&first));
            })
            .await
            .unwrap();
        });
        // The key file is a record; the lock was released.
        rt.block_on(async {
            assert!(
                store
                    .get_record(ISSUER_KEYS, FILE_KEY)
                    .await
                    .unwrap()
                    .is_some()
            );
            assert_eq!(store.get_record(ISSUER_KEYS, LOCK_KEY).await.unwrap(), None);
        });
    }

    /// While one holder is inside `locked`, another waits for it; a lease left by a holder
    /// that died is taken over once it has run out.
    #[test]
    fn the_lock_excludes_others_and_a_dead_holders_lease_runs_out() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let a = StoreKeyStorage::new(store.clone(), rt.handle().clone());
        let b = StoreKeyStorage::new(store.clone(), rt.handle().clone());
        let inside = Arc::new(AtomicBool::new(false));
        let (entered_tx, entered_rx) = mpsc::channel();
        let holder = {
            let inside = inside.clone();
            std::thread::spawn(move || {
                a.locked(&mut || {
                    inside.store(true, Ordering::SeqCst);
                    entered_tx.send(()).unwrap();
                    // Hold the lock long enough for B to try many times.
                    std::thread::sleep(Duration::from_millis(300));
                    inside.store(false, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
            })
        };
        entered_rx.recv().unwrap();
        let mut ran = false;
        b.locked(&mut || {
            assert!(!inside.load(Ordering::SeqCst), "both held the lock at once");
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran);
        holder.join().unwrap();

        // A lease whose holder died (expired a second ago).
        let dead = serde_json::to_string(&Lease {
            holder: "dead".into(),
            until_us: u64::try_from(
                (SystemTime::now() - Duration::from_secs(1))
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_micros(),
            )
            .unwrap(),
        })
        .unwrap();
        rt.block_on(store.put_record(ISSUER_KEYS, LOCK_KEY, Some(dead), RecordCondition::Any))
            .unwrap();
        let started = Instant::now();
        b.locked(&mut || Ok(())).unwrap();
        assert!(started.elapsed() < LOCK_WAIT, "waited out a dead lease");
        assert_eq!(
            rt.block_on(store.get_record(ISSUER_KEYS, LOCK_KEY))
                .unwrap(),
            None
        );
    }

    /// Called on the only worker of a single-threaded runtime (a misuse: the store operation
    /// cannot run while the worker waits), a call fails after its bound instead of hanging.
    #[test]
    fn a_call_on_an_async_worker_fails_instead_of_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let storage =
            StoreKeyStorage::new(store, rt.handle().clone()).with_wait(Duration::from_millis(200));
        let err = rt.block_on(async { storage.load() }).unwrap_err();
        assert!(err.to_string().contains("blocking"), "{err}");
        // From a blocking thread, the same call works.
        let storage = Arc::new(storage);
        let loaded = rt
            .block_on(async {
                let storage = storage.clone();
                tokio::task::spawn_blocking(move || storage.load()).await
            })
            .unwrap();
        assert_eq!(loaded.unwrap(), None);
    }

    /// A node's key file from disk moves into an empty store, keeping its key; a store that
    /// already has keys keeps them.
    #[test]
    fn adopting_a_local_key_file_keeps_its_keys() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let local = Arc::new(crate::DirKeyStorage::open(dir.path().join("issuer")).unwrap());
        let shared = Arc::new(StoreKeyStorage::new(store, rt.handle().clone()));
        let t0 = SystemTime::now();
        rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                // Nothing to adopt yet.
                assert!(!shared.adopt(local.as_ref()).unwrap());
                let old = active(&Issuer::open(config(), local.clone(), t0).unwrap());
                assert!(shared.adopt(local.as_ref()).unwrap());
                let node = Issuer::open(config(), shared.clone(), t0).unwrap();
                assert_eq!(active(&node), old);
                // Once the store has keys, another local file does not replace them.
                let other_dir = tempfile::tempdir().unwrap();
                let other =
                    Arc::new(crate::DirKeyStorage::open(other_dir.path().join("issuer")).unwrap());
                Issuer::open(config(), other.clone(), t0).unwrap();
                assert!(!shared.adopt(other.as_ref()).unwrap());
                let node = Issuer::open(config(), shared, t0).unwrap();
                assert_eq!(active(&node), old);
            })
            .await
            .unwrap();
        });
    }

    #[test]
    fn a_key_file_that_is_not_text_is_refused() {
        let rt = runtime();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let storage = StoreKeyStorage::new(store, rt.handle().clone());
        let err = storage.save(&[0xff, 0xfe]).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }
}
