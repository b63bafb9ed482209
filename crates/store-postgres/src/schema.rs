//! The PostgreSQL schema, its versioned migrations, and every SQL statement of the backend with
//! the schema's name filled in.
//!
//! All tables live in one PostgreSQL schema (by default the connection's `current_schema()`,
//! usually `public`), so several claimdb databases can share one PostgreSQL database:
//!
//! - `docs`: one row per document, keyed by [`claimdb_model::DocPath::sort_key`] as `bytea`
//!   (PostgreSQL compares `bytea` bytewise, so key order is path order, as in SQLite), with its
//!   parent collection's key, its collection id (`COLLATE "C"`), the path text, the data as
//!   `jsonb` in the `$`-tagged JSON form of `claimdb_model::json`, and create/update times in
//!   µs and the version. `jsonb` cannot hold U+0000 and keeps numbers as `numeric` (so `1e16`
//!   comes back as an integer and `-0.0` as `0.0`); for the rare document where that would lose
//!   anything, `data_exact` also holds the exact JSON text, which reads prefer (see `codec`).
//!   Secondary B-trees on (parent, key) and (grp, key) serve listing and `__name__` scans.
//! - `idx`: the single-field index of [`claimdb_store::index`], laid out as in SQLite:
//!   (parent, field, kind, key, doc) as the primary key for collection queries and a B-tree on
//!   (grp, field, kind, key, doc) for collection-group queries. One row per entry rather than a
//!   GIN index over `jsonb`: a GIN index answers containment but not ordered ranges in the
//!   total order of values, which `<`, `orderBy` and cursors need.
//! - `records`: claimdb's system records, keyed by (ns, key), both `COLLATE "C"` so key order is
//!   byte order.
//! - `meta`: one row holding the last version and commit time. Every commit updates it first,
//!   which serializes commits across all nodes (the row lock is held until COMMIT): versions and
//!   commit times are strictly increasing in commit order, and preconditions and read checks
//!   see every earlier commit. The cost is one transaction at a time per database, each holding
//!   the lock for two round trips plus its WAL flush; each node's group committer puts every
//!   commit queued at that moment into one transaction, so the lock and the flush are paid per
//!   group, not per commit.
//! - `changes`: the change feed's log, one row per commit (its version, commit time and what it
//!   changed as JSON text, see `feed`), written in the commit's transaction, which also sends a
//!   NOTIFY on [`FEED_CHANNEL`] with the version. Rows are kept for [`FEED_RETENTION_US`] so a
//!   node that missed notifications (a reconnect) catches up from the table.
//! - `history`: the versions commits replaced or deleted, for reads at a past time
//!   ([`claimdb_store::history`]), keyed by (key, `valid_to` — the replacing commit's time),
//!   with `valid_from` (the version's update time) and the `docs` columns a read returns;
//!   B-trees on (parent, valid_to) and (grp, valid_to) find the versions of a query's scope
//!   replaced since a time, one on `valid_to` serves pruning. A group copies the rows it
//!   replaces from `docs` (and encodes the versions it made and replaced itself), in its
//!   transaction. `meta.history_from` is the earliest time the history is complete from: every
//!   counter update (so every commit) keeps it when the node keeps history — setting it when
//!   unset — and clears it when the node keeps none, so nodes configured differently make reads
//!   at a past time fail, never answer wrongly; pruning raises it past what it deletes.
//! - `claimdb_migrations`: which migrations have run. Migrations run at start under a
//!   transaction-scoped advisory lock, so nodes starting together apply each exactly once.

use tokio_postgres::Client;

use crate::error::Failure;

/// The migrations, in order; each runs once per schema, in its own transaction.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "documents, single-field index, records, counters",
        "
CREATE TABLE {s}.docs (
    key bytea PRIMARY KEY,
    parent bytea NOT NULL,
    grp text COLLATE \"C\" NOT NULL,
    path text NOT NULL,
    data jsonb NOT NULL,
    data_exact bytea,
    create_us bigint NOT NULL,
    update_us bigint NOT NULL,
    version bigint NOT NULL
);
CREATE INDEX docs_parent ON {s}.docs (parent, key);
CREATE INDEX docs_group ON {s}.docs (grp, key);
CREATE TABLE {s}.idx (
    parent bytea NOT NULL,
    field bytea NOT NULL,
    kind smallint NOT NULL,
    key bytea NOT NULL,
    doc bytea NOT NULL,
    grp text COLLATE \"C\" NOT NULL,
    PRIMARY KEY (parent, field, kind, key, doc)
);
CREATE INDEX idx_group ON {s}.idx (grp, field, kind, key, doc);
CREATE TABLE {s}.records (
    ns text COLLATE \"C\" NOT NULL,
    key text COLLATE \"C\" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (ns, key)
);
CREATE TABLE {s}.meta (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL,
    commit_us bigint NOT NULL
);
INSERT INTO {s}.meta (id, version, commit_us) VALUES (true, 0, 0);
",
    ),
    (
        2,
        "the change feed's log",
        "
CREATE TABLE {s}.changes (
    version bigint PRIMARY KEY,
    commit_us bigint NOT NULL,
    body text NOT NULL
);
",
    ),
    (
        3,
        "the history of replaced versions, for reads at a past time",
        "
CREATE TABLE {s}.history (
    key bytea NOT NULL,
    valid_to bigint NOT NULL,
    valid_from bigint NOT NULL,
    parent bytea NOT NULL,
    grp text COLLATE \"C\" NOT NULL,
    path text NOT NULL,
    data jsonb NOT NULL,
    data_exact bytea,
    create_us bigint NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (key, valid_to)
);
CREATE INDEX history_parent ON {s}.history (parent, valid_to);
CREATE INDEX history_group ON {s}.history (grp, valid_to);
CREATE INDEX history_age ON {s}.history (valid_to);
ALTER TABLE {s}.meta ADD COLUMN history_from bigint;
",
    ),
];

/// The latest schema version this build knows.
pub const SCHEMA_VERSION: i32 = 3;

/// The NOTIFY channel of the change feed. One for every schema of a database (a channel name
/// cannot hold a 63-byte schema name and a prefix): a node woken by another schema's commit
/// finds no new row in its own table, which costs one small query.
pub(crate) const FEED_CHANNEL: &str = "claimdb_feed";

/// How long the change feed's rows are kept, in µs of commit time.
pub(crate) const FEED_RETENTION_US: i64 = 5 * 60 * 1_000_000;

/// A name as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the schema if needed and applies every migration it lacks, holding an advisory lock
/// (keyed by the schema name) so concurrent starts apply each migration once. Refuses a schema
/// migrated by a newer claimdb.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), Failure> {
    let s = quote_ident(schema);
    let tx = client.transaction().await?;
    // 0x636c_6d64 is "clmd": claimdb's advisory-lock class, so other applications' locks on the
    // same hash cannot collide with ours.
    tx.execute(
        "SELECT pg_advisory_xact_lock(1668050276, hashtext($1))",
        &[&schema],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.claimdb_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let current: i32 = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {s}.claimdb_migrations"),
            &[],
        )
        .await?
        .try_get(0)?;
    if current > SCHEMA_VERSION {
        return Err(claimdb_store::StoreError::Internal(format!(
            "PostgreSQL schema {schema} is at version {current}, newer than this claimdb \
             understands ({SCHEMA_VERSION}); upgrade claimdb"
        ))
        .into());
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(&sql.replace("{s}", &s)).await?;
        tx.execute(
            &format!("INSERT INTO {s}.claimdb_migrations (version, name) VALUES ($1, $2)"),
            &[version, name],
        )
        .await?;
        tracing::info!(schema, version, name, "applied PostgreSQL migration");
    }
    tx.commit().await?;
    Ok(())
}

/// The columns every document read selects, in `codec::read_document`'s order.
const DOC_COLUMNS: &str = "path, data, data_exact, create_us, update_us, version";
/// The same columns of a `history` row: the version's update time is its `valid_from`.
const HISTORY_COLUMNS: &str = "path, data, data_exact, create_us, valid_from, version";

/// The database server's clock in µs, as commits read it.
const CLOCK_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

/// Every statement, with the schema filled in.
#[derive(Debug)]
pub(crate) struct Sql {
    pub schema: String,
    pub get: String,
    pub get_many: String,
    pub bump: String,
    pub raise_counters: String,
    pub set_counters: String,
    pub idx_delete: String,
    pub idx_insert: String,
    pub doc_upsert: String,
    pub doc_delete: String,
    pub scan: String,
    pub record_get: String,
    pub record_list: String,
    pub record_scan_all: String,
    pub record_scan_after: String,
    pub record_upsert: String,
    pub record_delete: String,
    pub record_insert_absent: String,
    pub record_update_equals: String,
    pub record_delete_equals: String,
    /// Stores a group's feed rows and notifies the other nodes.
    pub feed_insert: String,
    pub feed_last: String,
    pub feed_after: String,
    pub feed_trim: String,
    /// `docs` with the schema, for the query statements built per shape.
    pub docs: String,
    pub idx: String,
    /// Copies the rows of `docs` a group replaces into `history` (keys, replacing times).
    pub history_copy: String,
    /// Stores versions a group made and replaced itself in `history`.
    pub history_insert: String,
    /// `history_from` kept or cleared by a node as it connects (`$1`: whether it keeps history).
    pub history_start: String,
    /// Raises `history_from` past a restore (`$1`: the restore's latest time).
    pub history_restored: String,
    /// What a read at a past time checks: `history_from`, the last commit time, the clock.
    pub history_check: String,
    /// The history version of each key valid just after `$2` (the first replaced later).
    pub history_get: String,
    /// The history rows of one collection (`_parent`) or group (`_group`) replaced after `$2`,
    /// at most `$3`.
    pub history_parent: String,
    pub history_group: String,
    /// Prunes one bounded batch (`$1` retention µs, `$2` batch) and raises `history_from`.
    pub history_prune: String,
    /// The first key in (`$1`, `$2`) that held a document at `$3`.
    pub seek_at: String,
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Sql {
        let s = quote_ident(schema);
        let docs = format!("{s}.docs");
        let idx = format!("{s}.idx");
        let records = format!("{s}.records");
        let meta = format!("{s}.meta");
        Sql {
            schema: schema.to_owned(),
            get: format!("SELECT {DOC_COLUMNS} FROM {docs} WHERE key = $1"),
            get_many: format!("SELECT key, {DOC_COLUMNS} FROM {docs} WHERE key = ANY($1)"),
            // The server's clock, so every node stamps commits from one clock; never backwards.
            // `$1`: whether this node keeps history; its commits keep `history_from` (setting it
            // past the last commit, which may have replaced versions without keeping them) or
            // clear it.
            bump: format!(
                "UPDATE {meta} SET version = version + 1,
                    commit_us = greatest(commit_us + 1, {CLOCK_US}),
                    history_from = CASE WHEN $1 THEN coalesce(history_from, commit_us + 1) END
                 RETURNING version, commit_us"
            ),
            // Only ever run by the holder of the counter row's lock (the group committer), so
            // the values it sets are above every earlier commit's.
            set_counters: format!("UPDATE {meta} SET version = $1, commit_us = $2"),
            raise_counters: format!(
                "UPDATE {meta} SET version = greatest(version, $1),
                    commit_us = greatest(commit_us, $2)"
            ),
            history_restored: format!(
                "UPDATE {meta} SET history_from = greatest(history_from, commit_us, $1, {CLOCK_US})
                 WHERE history_from IS NOT NULL"
            ),
            history_start: format!(
                "UPDATE {meta} SET history_from =
                    CASE WHEN $1 THEN coalesce(history_from, greatest(commit_us, {CLOCK_US})) END"
            ),
            history_check: format!("SELECT history_from, commit_us, {CLOCK_US} FROM {meta}"),
            history_copy: format!(
                "INSERT INTO {s}.history
                   (key, valid_to, valid_from, parent, grp, path, data, data_exact, create_us, version)
                 SELECT d.key, u.valid_to, d.update_us, d.parent, d.grp, d.path, d.data,
                        d.data_exact, d.create_us, d.version
                 FROM unnest($1::bytea[], $2::int8[]) AS u (key, valid_to)
                 JOIN {docs} d ON d.key = u.key
                 ON CONFLICT DO NOTHING"
            ),
            history_insert: format!(
                "INSERT INTO {s}.history
                   (key, valid_to, valid_from, parent, grp, path, data, data_exact, create_us, version)
                 SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::bytea[], $5::text[],
                                      $6::text[], $7::jsonb[], $8::bytea[], $9::int8[], $10::int8[])
                 ON CONFLICT DO NOTHING"
            ),
            history_get: format!(
                "SELECT DISTINCT ON (key) key, {HISTORY_COLUMNS} FROM {s}.history
                 WHERE key = ANY($1) AND valid_to > $2 ORDER BY key, valid_to"
            ),
            history_parent: format!(
                "SELECT {HISTORY_COLUMNS} FROM {s}.history
                 WHERE parent = $1 AND valid_to > $2 LIMIT $3"
            ),
            history_group: format!(
                "SELECT {HISTORY_COLUMNS} FROM {s}.history
                 WHERE grp = $1 AND valid_to > $2 LIMIT $3"
            ),
            history_prune: format!(
                "WITH upto AS (
                   SELECT max(valid_to) AS t FROM (
                     SELECT valid_to FROM {s}.history WHERE valid_to <= {CLOCK_US} - $1
                     ORDER BY valid_to LIMIT $2) oldest),
                 gone AS (
                   DELETE FROM {s}.history WHERE valid_to <= (SELECT t FROM upto) RETURNING 1),
                 raised AS (
                   UPDATE {meta} SET history_from = greatest(history_from, (SELECT t FROM upto))
                   WHERE history_from IS NOT NULL AND (SELECT t FROM upto) IS NOT NULL
                   RETURNING 1)
                 SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM raised)"
            ),
            seek_at: format!(
                "SELECT k FROM (
                   (SELECT key AS k FROM {docs} WHERE key > $1 AND key < $2 AND update_us <= $3
                    ORDER BY key LIMIT 1)
                   UNION ALL
                   (SELECT key FROM {s}.history
                    WHERE key > $1 AND key < $2 AND valid_to > $3 AND valid_from <= $3
                    ORDER BY key LIMIT 1)) found
                 ORDER BY k LIMIT 1"
            ),
            idx_delete: format!(
                "DELETE FROM {idx} WHERE (parent, field, kind, key, doc) IN
                 (SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int2[], $4::bytea[], $5::bytea[]))"
            ),
            idx_insert: format!(
                "INSERT INTO {idx} (parent, field, kind, key, doc, grp)
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::int2[], $4::bytea[], $5::bytea[], $6::text[])
                 ON CONFLICT DO NOTHING"
            ),
            doc_upsert: format!(
                "INSERT INTO {docs} (key, parent, grp, path, data, data_exact, create_us, update_us, version)
                 SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::text[], $4::text[], $5::jsonb[],
                                      $6::bytea[], $7::int8[], $8::int8[], $9::int8[])
                 ON CONFLICT (key) DO UPDATE SET data = excluded.data, data_exact = excluded.data_exact,
                    create_us = excluded.create_us, update_us = excluded.update_us,
                    version = excluded.version"
            ),
            doc_delete: format!("DELETE FROM {docs} WHERE key = ANY($1)"),
            scan: format!(
                "SELECT {DOC_COLUMNS} FROM {docs} WHERE key > $1 ORDER BY key LIMIT $2"
            ),
            record_get: format!("SELECT value FROM {records} WHERE ns = $1 AND key = $2"),
            record_list: format!(
                "SELECT key, value FROM {records} WHERE ns = $1 AND key > $2 ORDER BY key LIMIT $3"
            ),
            record_scan_all: format!(
                "SELECT ns, key, value FROM {records} ORDER BY ns, key LIMIT $1"
            ),
            record_scan_after: format!(
                "SELECT ns, key, value FROM {records} WHERE (ns, key) > ($1, $2)
                 ORDER BY ns, key LIMIT $3"
            ),
            record_upsert: format!(
                "INSERT INTO {records} (ns, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value"
            ),
            record_delete: format!("DELETE FROM {records} WHERE ns = $1 AND key = $2"),
            record_insert_absent: format!(
                "INSERT INTO {records} (ns, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (ns, key) DO NOTHING"
            ),
            record_update_equals: format!(
                "UPDATE {records} SET value = $3 WHERE ns = $1 AND key = $2 AND value = $4"
            ),
            record_delete_equals: format!(
                "DELETE FROM {records} WHERE ns = $1 AND key = $2 AND value = $3"
            ),
            feed_insert: format!(
                "WITH rows AS (INSERT INTO {s}.changes (version, commit_us, body)
                    SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[]))
                 SELECT pg_notify('{FEED_CHANNEL}', $4)"
            ),
            feed_last: format!("SELECT coalesce(max(version), 0) FROM {s}.changes"),
            feed_after: format!(
                "SELECT version, commit_us, body FROM {s}.changes WHERE version > $1
                 ORDER BY version LIMIT $2"
            ),
            feed_trim: format!(
                "DELETE FROM {s}.changes
                 WHERE commit_us < (SELECT commit_us FROM {meta}) - {FEED_RETENTION_US}"
            ),
            docs,
            idx,
        }
    }

    /// The document columns, qualified by `alias`.
    pub(crate) fn doc_columns(alias: &str) -> String {
        DOC_COLUMNS
            .split(", ")
            .map(|c| format!("{alias}.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert!(Sql::new("x y").get.contains("\"x y\".docs"));
    }
}
