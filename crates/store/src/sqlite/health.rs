//! Whether the SQLite database is known to be damaged. The first statement that meets a corrupt
//! page (`SQLITE_CORRUPT`, `SQLITE_NOTADB`) or a stored document that no longer decodes marks the
//! store damaged for the rest of the process: `ping` (hence `/readyz`) fails with the reason,
//! every write is refused before it reaches SQLite, and the writer neither checkpoints nor marks
//! the shutdown clean — nothing more is written into a damaged file, and the next start checks
//! it. Reads go on as far as they can, so what is intact can still be read (or exported).
//!
//! Not here: finding damage proactively (`PRAGMA quick_check` at an unclean start, `claimdb
//! check` on demand — see the module root).

use std::sync::OnceLock;

use crate::StoreError;

#[derive(Default)]
pub(super) struct Health {
    /// The first damage seen, as it will be reported.
    damaged: OnceLock<String>,
}

impl Health {
    /// Marks the store damaged if `result` failed with [`StoreError::DataLoss`].
    pub(super) fn note<T>(&self, result: &Result<T, StoreError>) {
        if let Err(e) = result
            && let StoreError::DataLoss(message) = e.root()
        {
            self.mark(message);
        }
    }

    fn mark(&self, message: &str) {
        if self.damaged.set(message.to_owned()).is_ok() {
            tracing::error!(
                "{message} — from now on this process refuses writes, reports not ready on \
                 /readyz, and writes nothing more into the database file"
            );
        }
    }

    /// `Err(DataLoss)` once the store is known to be damaged.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match self.damaged.get() {
            Some(message) => Err(StoreError::DataLoss(message.clone())),
            None => Ok(()),
        }
    }

    pub(super) fn is_damaged(&self) -> bool {
        self.damaged.get().is_some()
    }
}

/// The error for a damaged database, with what the operator should do.
pub(super) fn damaged(what: impl std::fmt::Display) -> StoreError {
    StoreError::DataLoss(format!(
        "the database is damaged ({what}); claimdb writes nothing more into it: run `claimdb \
         check` on its data directory and restore the directory from a backup"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_damage_sticks_and_other_errors_do_not_count() {
        let health = Health::default();
        health.note::<()>(&Err(StoreError::Internal("a bug".into())));
        health.note::<()>(&Err(StoreError::Unavailable("busy".into())));
        assert!(health.check().is_ok());
        health.note::<()>(&Err(StoreError::AtWrite {
            index: 2,
            path: "a/b".into(),
            source: Box::new(damaged("page 7")),
        }));
        health.note::<()>(&Err(damaged("page 9")));
        let Err(StoreError::DataLoss(message)) = health.check() else {
            panic!("not damaged")
        };
        assert!(message.contains("page 7") && message.contains("claimdb check"));
        assert!(health.is_damaged());
    }
}
