//! Batches: the limits checked before a commit, and — because a store reports *that* a commit
//! failed but not *which* write failed it — working out the failing write by replaying the batch
//! on a snapshot, so a client can be told `write_index`.

use std::collections::HashMap;

use claimdb_model::limits::MAX_BATCH_WRITES;
use claimdb_model::{DocPath, Timestamp};
use claimdb_store::{Document, Write, apply_write};

use crate::error::EngineError;

pub(crate) fn check_size(writes: &[Write]) -> Result<(), EngineError> {
    if writes.is_empty() {
        return Err(EngineError::invalid_argument(
            "a batch needs at least one write",
        ));
    }
    if writes.len() > MAX_BATCH_WRITES {
        return Err(EngineError::invalid_argument(format!(
            "a batch has {} writes; the limit is {MAX_BATCH_WRITES}",
            writes.len()
        )));
    }
    Ok(())
}

/// Replays the batch against `before` (each path's document before the commit) with the same
/// per-write logic the stores use, and returns the index of the first write that fails.
pub(crate) fn first_failing_write(
    writes: &[Write],
    before: &HashMap<DocPath, Option<Document>>,
) -> Option<usize> {
    let mut state: HashMap<&DocPath, Option<Document>> = HashMap::new();
    let now = Timestamp::now();
    for (i, write) in writes.iter().enumerate() {
        let current = state
            .entry(&write.path)
            .or_insert_with(|| before.get(&write.path).cloned().flatten());
        // A version no precondition can name: written earlier in this batch.
        match apply_write(current.as_ref(), write, now, u64::MAX) {
            Ok(after) => *current = after,
            Err(_) => return Some(i),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::Map;
    use claimdb_store::{Precondition, WriteOp};

    fn path(p: &str) -> DocPath {
        DocPath::parse(p).unwrap()
    }

    fn doc(p: &str, version: u64) -> Document {
        let t = Timestamp::from_micros(0).unwrap();
        Document {
            path: path(p),
            data: Map::new(),
            create_time: t,
            update_time: t,
            version,
        }
    }

    fn set(p: &str) -> Write {
        Write::new(
            path(p),
            WriteOp::Set {
                data: Map::new(),
                transforms: vec![],
            },
        )
    }

    fn create(p: &str) -> Write {
        Write::new(
            path(p),
            WriteOp::Create {
                data: Map::new(),
                transforms: vec![],
            },
        )
    }

    fn update(p: &str) -> Write {
        Write::new(
            path(p),
            WriteOp::Update {
                fields: vec![],
                transforms: vec![],
            },
        )
    }

    #[test]
    fn finds_the_write_that_breaks_the_batch() {
        let before: HashMap<DocPath, Option<Document>> =
            [(path("a/1"), Some(doc("a/1", 5))), (path("a/2"), None)]
                .into_iter()
                .collect();
        // All fine: set, update existing, create missing, then update what was just created.
        let ok = vec![set("a/9"), update("a/1"), create("a/2"), update("a/2")];
        assert_eq!(first_failing_write(&ok, &before), None);
        // Creating an existing document.
        assert_eq!(
            first_failing_write(&[set("a/2"), create("a/1")], &before),
            Some(1)
        );
        // Updating a missing one, and one deleted earlier in the batch.
        assert_eq!(first_failing_write(&[update("a/2")], &before), Some(0));
        let deleted = vec![Write::new(path("a/1"), WriteOp::Delete), update("a/1")];
        assert_eq!(first_failing_write(&deleted, &before), Some(1));
        // A stale version, and a version that only held before an earlier write of the batch.
        let stale = vec![
            set("a/9"),
            set("a/1").with_precondition(Precondition::Version(4)),
        ];
        assert_eq!(first_failing_write(&stale, &before), Some(1));
        let rewritten = vec![
            set("a/1"),
            set("a/1").with_precondition(Precondition::Version(5)),
        ];
        assert_eq!(first_failing_write(&rewritten, &before), Some(1));
        let missing = vec![set("a/1").with_precondition(Precondition::Missing)];
        assert_eq!(first_failing_write(&missing, &before), Some(0));
        let exists = vec![set("a/2").with_precondition(Precondition::Exists)];
        assert_eq!(first_failing_write(&exists, &before), Some(0));
        // Data the store would refuse: a document over 1 MiB.
        let mut big = Map::new();
        big.insert(
            "s".into(),
            claimdb_model::Value::String("x".repeat(1_100_000)),
        );
        let too_big = vec![
            set("a/9"),
            Write::new(
                path("a/8"),
                WriteOp::Set {
                    data: big,
                    transforms: vec![],
                },
            ),
        ];
        assert_eq!(first_failing_write(&too_big, &before), Some(1));
    }

    #[test]
    fn batch_size_is_bounded() {
        assert!(
            check_size(&[])
                .unwrap_err()
                .message()
                .contains("at least one")
        );
        let many: Vec<Write> = (0..=MAX_BATCH_WRITES)
            .map(|i| set(&format!("a/{i}")))
            .collect();
        assert!(
            check_size(&many)
                .unwrap_err()
                .message()
                .contains("limit is 500")
        );
        assert!(check_size(&many[..MAX_BATCH_WRITES]).is_ok());
    }
}
