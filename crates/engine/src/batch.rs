//! Batches: the limits checked before a commit. (Which write failed a commit is reported by the
//! store itself, through `StoreError::write_index`.)

use claimdb_store::Write;

use crate::error::EngineError;

pub(crate) fn check_size(writes: &[Write]) -> Result<(), EngineError> {
    if writes.is_empty() {
        return Err(EngineError::invalid_argument(
            "a batch needs at least one write",
        ));
    }
    // The store's own check, run before any rule is evaluated for the batch.
    claimdb_store::check_write_count(writes.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::limits::MAX_BATCH_WRITES;
    use claimdb_model::{DocPath, Map};
    use claimdb_store::WriteOp;

    fn set(p: &str) -> Write {
        Write::new(
            DocPath::parse(p).unwrap(),
            WriteOp::Set {
                data: Map::new(),
                transforms: vec![],
            },
        )
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

    /// The limit used to be checked in four places with two messages; the engine now runs the
    /// store's own check. This fails if the two ever refuse different batches again.
    #[tokio::test]
    async fn the_engine_and_the_store_refuse_the_same_batches() {
        use claimdb_store::Documents;
        let dir = tempfile::tempdir().unwrap();
        let store = claimdb_store::SqliteStore::open(dir.path()).unwrap();
        for n in [MAX_BATCH_WRITES, MAX_BATCH_WRITES + 1] {
            let writes: Vec<Write> = (0..n).map(|i| set(&format!("a/{i}"))).collect();
            let engine = check_size(&writes).map_err(|e| e.message().to_string());
            let stored = store
                .commit(writes.into())
                .await
                .map(|_| ())
                .map_err(|e| EngineError::from(e).message().to_string());
            assert_eq!(engine, stored, "{n} writes");
        }
    }
}
