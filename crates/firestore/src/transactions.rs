//! Firestore transactions, optimistic: `beginTransaction` (or `newTransaction` on a first read)
//! opens one; each document a read in it returns is remembered at the version read (or as
//! missing); `commit` applies the writes only if every remembered document is still as read —
//! checked by the store in the same transaction as the writes ([`Engine::batch_pinned`]) — and
//! fails with ABORTED otherwise, which the SDKs answer by running the transaction again.
//! `rollback` forgets it. A read-only transaction may read at a past `readTime` (given when it
//! begins): every read in it happens at that time, and it remembers no reads, since that state
//! no longer changes.
//!
//! Open transactions live in this process (a client keeps its transaction on one connection);
//! at most [`MAX_OPEN`] at once and [`MAX_TOTAL_READS`] reads remembered across them, each
//! forgotten after [`IDLE_LIMIT`] without use, as Firestore expires idle ones. A query in a transaction pins the documents it returned, not the absence
//! of others (no predicate locks).
//!
//! [`Engine::batch_pinned`]: claimdb_engine::Engine::batch_pinned

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimdb_engine::{Document, ReadCheck};
use claimdb_model::{DocPath, Timestamp};
use rand::RngCore as _;
use serde_json::Value as Json;

use crate::status::{Code, Status};

/// Most transactions open at once.
pub const MAX_OPEN: usize = 10_000;
/// A transaction unused this long is forgotten (Firestore's is 270 s).
pub const IDLE_LIMIT: Duration = Duration::from_secs(270);
/// Most documents one transaction may read.
pub const MAX_READS: usize = 10_000;
/// Most reads remembered across all open transactions (about 100 bytes each): the bound on
/// the memory transactions hold, whatever clients do.
pub const MAX_TOTAL_READS: usize = 1_000_000;

#[derive(Debug)]
struct Tx {
    read_only: bool,
    /// The past time every read of a read-only transaction happens at, if it was given one.
    read_time: Option<Timestamp>,
    /// The version each document was read at (`None`: read as missing); the first read wins.
    reads: HashMap<DocPath, Option<u64>>,
    used: Instant,
}

/// The open transactions of this process.
#[derive(Debug, Default)]
pub struct Transactions {
    state: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    by_id: HashMap<Vec<u8>, Tx>,
    /// The reads all of them remember.
    reads: usize,
}

impl Open {
    fn remove(&mut self, id: &[u8]) -> Option<Tx> {
        let tx = self.by_id.remove(id)?;
        self.reads -= tx.reads.len();
        Some(tx)
    }

    fn sweep(&mut self, now: Instant) {
        let stale: Vec<Vec<u8>> = self
            .by_id
            .iter()
            .filter(|(_, tx)| now.duration_since(tx.used) >= IDLE_LIMIT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.remove(&id);
        }
    }
}

/// What a commit needs of a transaction it ends.
#[derive(Debug)]
pub struct Ended {
    pub read_only: bool,
    pub reads: Vec<ReadCheck>,
}

fn expired() -> Status {
    Status::invalid("the transaction has expired or is not valid; begin a new one")
}

impl Transactions {
    /// Opens a transaction; its id as the JSON (base64) string clients send back.
    pub fn begin(&self, options: TxOptions) -> Result<String, Status> {
        let mut id = vec![0_u8; 16];
        rand::rng().fill_bytes(&mut id);
        let mut open = self.state.lock().map_err(|_| poisoned())?;
        if open.by_id.len() >= MAX_OPEN {
            open.sweep(Instant::now());
        }
        if open.by_id.len() >= MAX_OPEN {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!("{MAX_OPEN} transactions are open; commit or roll back some first"),
            ));
        }
        open.by_id.insert(
            id.clone(),
            Tx {
                read_only: options.read_only,
                read_time: options.read_time,
                reads: HashMap::new(),
                used: Instant::now(),
            },
        );
        Ok(STANDARD.encode(id))
    }

    /// The past time transaction `id` reads at, if it has one; refuses an unknown or expired
    /// transaction (and counts as a use of it).
    pub fn read_time(&self, id: &str) -> Result<Option<Timestamp>, Status> {
        let key = decode_id(id)?;
        let mut open = self.state.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match open.by_id.get_mut(&key) {
            Some(tx) if now.duration_since(tx.used) < IDLE_LIMIT => {
                tx.used = now;
                Ok(tx.read_time)
            }
            _ => {
                open.remove(&key);
                Err(expired())
            }
        }
    }

    /// Remembers what a read in transaction `id` returned: `found` documents at their version,
    /// `missing` paths as absent.
    pub fn record(
        &self,
        id: &str,
        found: &[&Document],
        missing: &[&DocPath],
    ) -> Result<(), Status> {
        let key = decode_id(id)?;
        let mut open = self.state.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let fresh = open
            .by_id
            .get(&key)
            .is_some_and(|tx| now.duration_since(tx.used) < IDLE_LIMIT);
        if !fresh {
            open.remove(&key);
            return Err(expired());
        }
        if open.reads + found.len() + missing.len() > MAX_TOTAL_READS {
            open.sweep(now);
            if open.reads + found.len() + missing.len() > MAX_TOTAL_READS {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    "open transactions hold too many reads; commit or roll back some first",
                ));
            }
        }
        let Some(tx) = open.by_id.get_mut(&key) else {
            return Err(expired());
        };
        tx.used = now;
        if tx.read_time.is_some() {
            // Reads at a past time: nothing they saw can change before the commit.
            return Ok(());
        }
        let before = tx.reads.len();
        for doc in found {
            tx.reads
                .entry(doc.path.clone())
                .or_insert(Some(doc.version));
        }
        for path in missing {
            tx.reads.entry((*path).clone()).or_insert(None);
        }
        let added = tx.reads.len() - before;
        let too_many = tx.reads.len() > MAX_READS;
        open.reads += added;
        if too_many {
            open.remove(&key);
            return Err(Status::invalid(format!(
                "a transaction may read at most {MAX_READS} documents"
            )));
        }
        Ok(())
    }

    /// Ends transaction `id` (commit or rollback), returning what it read.
    pub fn end(&self, id: &str) -> Result<Ended, Status> {
        let key = decode_id(id)?;
        let tx = self
            .state
            .lock()
            .map_err(|_| poisoned())?
            .remove(&key)
            .ok_or_else(expired)?;
        if Instant::now().duration_since(tx.used) >= IDLE_LIMIT {
            return Err(expired());
        }
        Ok(Ended {
            read_only: tx.read_only,
            reads: tx
                .reads
                .into_iter()
                .map(|(path, version)| ReadCheck { path, version })
                .collect(),
        })
    }

    /// How many are open (for tests and metrics).
    pub fn open_count(&self) -> usize {
        self.state.lock().map_or(0, |open| open.by_id.len())
    }
}

fn decode_id(id: &str) -> Result<Vec<u8>, Status> {
    STANDARD
        .decode(id)
        .ok()
        .filter(|bytes| bytes.len() == 16)
        .ok_or_else(expired)
}

fn poisoned() -> Status {
    Status::new(Code::Internal, "internal error")
}

/// What a transaction is, from its `TransactionOptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxOptions {
    pub read_only: bool,
    /// `readOnly.readTime`: every read of the transaction happens at this past time.
    pub read_time: Option<Timestamp>,
}

/// `TransactionOptions` of `beginTransaction` / `newTransaction`: read-only (optionally at a
/// past `readTime`) or read-write (the default).
pub fn options(options: Option<&Json>) -> Result<TxOptions, Status> {
    let Some(Json::Object(options)) = options else {
        return match options {
            None | Some(Json::Null) => Ok(TxOptions::default()),
            Some(_) => Err(Status::invalid(
                "options must be a TransactionOptions object",
            )),
        };
    };
    let Some(ro) = options.get("readOnly").filter(|v| !v.is_null()) else {
        return Ok(TxOptions::default());
    };
    let read_time = match ro.get("readTime") {
        None | Some(Json::Null) => None,
        time => Some(crate::consistency::read_time(time)?),
    };
    Ok(TxOptions {
        read_only: true,
        read_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::Timestamp;

    fn doc(path: &str, version: u64) -> Document {
        Document {
            path: DocPath::parse(path).unwrap(),
            data: Default::default(),
            create_time: Timestamp::from_micros(0).unwrap(),
            update_time: Timestamp::from_micros(0).unwrap(),
            version,
        }
    }

    #[test]
    fn remembers_the_first_version_read_and_ends_once() {
        let txs = Transactions::default();
        let id = txs.begin(TxOptions::default()).unwrap();
        let missing = DocPath::parse("c/missing").unwrap();
        txs.record(&id, &[&doc("c/a", 3)], &[&missing]).unwrap();
        txs.record(&id, &[&doc("c/a", 4)], &[]).unwrap();
        let mut ended = txs.end(&id).unwrap();
        ended.reads.sort_by_key(|r| r.path.to_string());
        assert_eq!(ended.reads.len(), 2);
        assert_eq!(ended.reads[0].version, Some(3));
        assert_eq!(ended.reads[1].version, None);
        assert!(!ended.read_only);
        assert_eq!(txs.end(&id).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(
            txs.record("bm90LWFuLWlk", &[], &[]).unwrap_err().code,
            Code::InvalidArgument
        );
        assert_eq!(txs.open_count(), 0);
        assert_eq!(txs.state.lock().unwrap().reads, 0);
    }

    #[test]
    fn options_say_read_only_and_when_it_reads() {
        assert_eq!(options(None).unwrap(), TxOptions::default());
        let ro = options(Some(&serde_json::json!({"readOnly": {}}))).unwrap();
        assert_eq!((ro.read_only, ro.read_time), (true, None));
        assert!(
            !options(Some(&serde_json::json!({"readWrite": {}})))
                .unwrap()
                .read_only
        );
        let past = serde_json::json!({"readOnly": {"readTime": "2026-01-01T00:00:00Z"}});
        let past = options(Some(&past)).unwrap();
        assert_eq!(
            past.read_time,
            Some(Timestamp::parse("2026-01-01T00:00:00Z").unwrap())
        );
        let bad = serde_json::json!({"readOnly": {"readTime": 12}});
        assert_eq!(options(Some(&bad)).unwrap_err().code, Code::InvalidArgument);
        assert_eq!(
            options(Some(&serde_json::json!([]))).unwrap_err().code,
            Code::InvalidArgument
        );
    }

    /// A transaction at a past time reads at it and remembers no reads (nothing it read can
    /// change before its commit); one without keeps pinning what it read.
    #[test]
    fn transactions_at_a_past_time_remember_it_and_pin_nothing() {
        let txs = Transactions::default();
        let time = Timestamp::from_micros(1_000).unwrap();
        let id = txs
            .begin(TxOptions {
                read_only: true,
                read_time: Some(time),
            })
            .unwrap();
        assert_eq!(txs.read_time(&id).unwrap(), Some(time));
        txs.record(&id, &[&doc("c/a", 3)], &[]).unwrap();
        let ended = txs.end(&id).unwrap();
        assert!(ended.read_only && ended.reads.is_empty());
        assert_eq!(txs.read_time(&id).unwrap_err().code, Code::InvalidArgument);
        let live = txs.begin(TxOptions::default()).unwrap();
        assert_eq!(txs.read_time(&live).unwrap(), None);
    }
}
