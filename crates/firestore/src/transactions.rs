//! Firestore transactions, optimistic: `beginTransaction` (or `newTransaction` on a first read)
//! opens one; each document a read in it returns is remembered at the version read (or as
//! missing); `commit` applies the writes only if every remembered document is still as read —
//! checked by the store in the same transaction as the writes ([`Engine::batch_pinned`]) — and
//! fails with ABORTED otherwise, which the SDKs answer by running the transaction again.
//! `rollback` forgets it.
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
use claimdb_model::DocPath;
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
    pub fn begin(&self, read_only: bool) -> Result<String, Status> {
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
                read_only,
                reads: HashMap::new(),
                used: Instant::now(),
            },
        );
        Ok(STANDARD.encode(id))
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

/// `TransactionOptions` of `beginTransaction` / `newTransaction`: read-only or read-write
/// (the default). A read-only transaction at a past `readTime` needs snapshot reads claimdb does
/// not keep.
pub fn read_only(options: Option<&Json>) -> Result<bool, Status> {
    let Some(Json::Object(options)) = options else {
        return match options {
            None | Some(Json::Null) => Ok(false),
            Some(_) => Err(Status::invalid(
                "options must be a TransactionOptions object",
            )),
        };
    };
    if let Some(ro) = options.get("readOnly").filter(|v| !v.is_null()) {
        if ro.get("readTime").is_some_and(|t| !t.is_null()) {
            return Err(Status::new(
                Code::Unimplemented,
                "read-only transactions at a past readTime are not supported: claimdb keeps no \
                 snapshots of past versions",
            ));
        }
        return Ok(true);
    }
    Ok(false)
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
        let id = txs.begin(false).unwrap();
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
    fn options_say_read_only_and_refuse_past_read_times() {
        assert!(!read_only(None).unwrap());
        assert!(read_only(Some(&serde_json::json!({"readOnly": {}}))).unwrap());
        assert!(!read_only(Some(&serde_json::json!({"readWrite": {}}))).unwrap());
        let past = serde_json::json!({"readOnly": {"readTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(
            read_only(Some(&past)).unwrap_err().code,
            Code::Unimplemented
        );
    }
}
