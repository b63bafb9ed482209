//! The backend-independent conformance suite, unchanged, against PostgreSQL: one fresh schema
//! per test, dropped afterwards.

use crate::support;

async fn make() -> Option<(claimdb_store_postgres::PostgresStore, support::SchemaGuard)> {
    support::store(support::options()).await
}

claimdb_store::conformance_tests!(skippable make);
