//! Maps PostgreSQL and pool failures onto [`StoreError`], and says which failures may be retried
//! on a fresh connection. The mapping is what clients see: `unavailable` while the server is down
//! or restarting (retrying later works), `resource-exhausted` when every pooled connection stays
//! busy past the acquire timeout or the server is out of connections or disk, `invalid-argument`
//! for input PostgreSQL cannot store that SQLite can (an index entry over the B-tree row limit).

use std::time::Duration;

use claimdb_store::StoreError;
use deadpool_postgres::{PoolError, TimeoutType};
use tokio_postgres::error::SqlState;

/// A failure of one attempt, with whether the whole operation may be run again.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: StoreError,
    /// The attempt certainly changed nothing and a new attempt may succeed (a connection that
    /// died before COMMIT was sent, a serialization failure or deadlock).
    pub retry: bool,
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure {
            error,
            retry: false,
        }
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        let retry = is_connection_error(&e)
            || e.code().is_some_and(|c| {
                *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
            });
        Failure {
            error: map(&e),
            retry,
        }
    }
}

impl Failure {
    /// A failure of a statement that may have taken effect before the connection failed (a
    /// COMMIT, an autocommitted write): running it again could apply it twice, so only a
    /// server-side abort (which certainly rolled back) is retried.
    pub(crate) fn maybe_applied(e: tokio_postgres::Error) -> Failure {
        let retry = e.code().is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        });
        let error = if is_connection_error(&e) {
            StoreError::Unavailable(format!(
                "the PostgreSQL connection failed while a write was being committed; it may or                  may not have been applied: {}",
                describe(&e)
            ))
        } else {
            map(&e)
        };
        Failure { error, retry }
    }
}

/// Whether the connection itself failed (closed, refused, reset, the server shutting down).
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        // No server error: an IO error or a protocol failure on the socket.
        None => e.as_db_error().is_none(),
    }
}

/// The store error for a PostgreSQL error.
pub(crate) fn map(e: &tokio_postgres::Error) -> StoreError {
    if is_connection_error(e) {
        return StoreError::Unavailable(format!("PostgreSQL cannot be reached: {}", describe(e)));
    }
    let Some(code) = e.code() else {
        return StoreError::Internal(format!("postgres: {}", describe(e)));
    };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
        StoreError::Unavailable(format!(
            "PostgreSQL kept aborting the transaction under contention: {}",
            describe(e)
        ))
    } else if *code == SqlState::TOO_MANY_CONNECTIONS
        || *code == SqlState::DISK_FULL
        || *code == SqlState::OUT_OF_MEMORY
        || *code == SqlState::INSUFFICIENT_RESOURCES
    {
        StoreError::ResourceExhausted(format!("PostgreSQL is out of resources: {}", describe(e)))
    } else if *code == SqlState::PROGRAM_LIMIT_EXCEEDED {
        StoreError::InvalidArgument(format!(
            "the document cannot be indexed in PostgreSQL (a field path, document path and \
             indexed value together exceed its index row limit): {}",
            describe(e)
        ))
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        StoreError::Unavailable(format!(
            "the PostgreSQL server is read-only (a standby?): {}",
            describe(e)
        ))
    } else {
        StoreError::Internal(format!("postgres: {}", describe(e)))
    }
}

/// The server's message when there is one (tokio-postgres' Display says only "db error").
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

/// The store error for a failure to get a pooled connection.
pub(crate) fn pool(e: PoolError, size: usize, wait: Duration) -> Failure {
    match e {
        PoolError::Timeout(TimeoutType::Wait) => StoreError::ResourceExhausted(format!(
            "all {size} PostgreSQL connections stayed busy for {} ms; retry later, or raise \
             postgres_pool_size",
            wait.as_millis()
        ))
        .into(),
        PoolError::Timeout(_) => Failure {
            error: StoreError::Unavailable("connecting to PostgreSQL timed out".into()),
            retry: false,
        },
        PoolError::Backend(e) => Failure {
            error: map(&e),
            retry: false,
        },
        PoolError::Closed => StoreError::Unavailable("the store is closed".into()).into(),
        other => StoreError::Internal(format!("connection pool: {other}")).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_pool_is_resource_exhausted_with_the_fix_named() {
        let f = pool(
            PoolError::Timeout(TimeoutType::Wait),
            4,
            Duration::from_millis(250),
        );
        match f.error {
            StoreError::ResourceExhausted(m) => {
                assert!(m.contains("all 4") && m.contains("250 ms") && m.contains("pool_size"))
            }
            other => panic!("{other:?}"),
        }
        assert!(!f.retry);
        assert!(matches!(
            pool(PoolError::Closed, 4, Duration::ZERO).error,
            StoreError::Unavailable(_)
        ));
    }
}
