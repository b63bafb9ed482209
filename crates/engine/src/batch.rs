//! Batches: the limits checked before a commit. (Which write failed a commit is reported by the
//! store itself, through `StoreError::write_index`.)

use claimdb_model::limits::MAX_BATCH_WRITES;

use claimdb_store::Write;

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
