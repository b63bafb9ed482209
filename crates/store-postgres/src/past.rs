//! Reads at a past time ([`claimdb_store::history`]): each runs wholly in one read-only
//! REPEATABLE READ transaction — it checks the time against the snapshot's `history_from`,
//! then takes the versions valid then from `history` —, so the check and the data come from
//! one snapshot. A query runs its live plan in the same transaction (the live dispatch,
//! `read::query`, through its `Reader`) and lets the shared evaluator merge the versions in
//! ([`PreparedQuery::at`]); the structural listings seek document keys past a bound among the
//! live rows not changed since and the history rows valid then.

use std::collections::HashMap;
use std::time::Duration;

use claimdb_model::{CollectionPath, DocPath, Timestamp};
use claimdb_store::children::{Child, ChildScan, Step};
use claimdb_store::query::{PreparedQuery, QueryPage, Scope};
use claimdb_store::{Document, StoreError};
use deadpool_postgres::{Client, GenericClient, Transaction};
use tokio_postgres::IsolationLevel;

use crate::codec::read_document;
use crate::error::Failure;
use crate::read::{fetch_many, query};
use crate::schema::Sql;

/// A read-only REPEATABLE READ transaction: one snapshot for a read at a past time.
async fn snapshot(c: &mut Client) -> Result<Transaction<'_>, Failure> {
    Ok(c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// Checks that the snapshot can answer a read at `time` (see
/// [`claimdb_store::history::check_read_time`]): the database's time is the later of its clock
/// and the last commit's.
async fn check_time(
    tx: &Transaction<'_>,
    sql: &Sql,
    time: Timestamp,
    retention: Duration,
) -> Result<(), Failure> {
    let stmt = tx.prepare_cached(&sql.history_check).await?;
    let row = tx.query_one(&stmt, &[]).await?;
    let from: Option<i64> = row.try_get(0)?;
    let (last, clock): (i64, i64) = (row.try_get(1)?, row.try_get(2)?);
    let stamp = |us: i64| {
        Timestamp::from_micros(us)
            .map_err(|e| StoreError::Internal(format!("a stored time does not decode: {e}")))
    };
    let now = stamp(last.max(clock))?;
    let from = from.map(stamp).transpose()?;
    claimdb_store::history::check_read_time(time, now, retention, from)?;
    Ok(())
}

/// The documents at `keys` as they were at `time` (already checked), in the order of `keys`.
async fn fetch_at(
    tx: &Transaction<'_>,
    sql: &Sql,
    keys: &[Vec<u8>],
    time: Timestamp,
) -> Result<Vec<Option<Document>>, Failure> {
    let mut found: HashMap<Vec<u8>, Document> = HashMap::new();
    for (key, doc) in fetch_many(tx, sql, keys).await? {
        if doc.update_time <= time {
            found.insert(key, doc);
        }
    }
    // The rest changed since (or were deleted): the first version replaced after `time`,
    // valid then unless it was made after it.
    let rest: Vec<&Vec<u8>> = keys.iter().filter(|k| !found.contains_key(*k)).collect();
    if !rest.is_empty() {
        let stmt = tx.prepare_cached(&sql.history_get).await?;
        let rows = tx.query(&stmt, &[&rest, &time.micros()]).await?;
        for row in &rows {
            let doc = read_document(row, 1)?;
            if doc.update_time <= time {
                found.insert(row.try_get(0)?, doc);
            }
        }
    }
    Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
}

/// The documents at `paths` as they were at `time`, in the order asked.
pub(crate) async fn get_at(
    c: &mut Client,
    sql: &Sql,
    paths: &[DocPath],
    time: Timestamp,
    retention: Duration,
) -> Result<Vec<Option<Document>>, Failure> {
    let tx = snapshot(c).await?;
    check_time(&tx, sql, time, retention).await?;
    let keys: Vec<Vec<u8>> = paths.iter().map(DocPath::sort_key).collect();
    let docs = fetch_at(&tx, sql, &keys, time).await?;
    tx.commit().await?;
    Ok(docs)
}

/// The versions valid at `time` of the documents of `scope`'s collection (or collection
/// group) replaced since, reading at most `bound` history rows (`ResourceExhausted` beyond).
/// A group's `under` is left to the evaluator.
async fn history_in_scope(
    tx: &Transaction<'_>,
    sql: &Sql,
    scope: &Scope,
    time: Timestamp,
    bound: usize,
) -> Result<Vec<Document>, Failure> {
    let limit = i64::try_from(bound.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = match scope {
        Scope::Collection(c) => {
            let stmt = tx.prepare_cached(&sql.history_parent).await?;
            tx.query(&stmt, &[&c.sort_key(), &time.micros(), &limit])
                .await?
        }
        Scope::Group { collection_id, .. } => {
            let stmt = tx.prepare_cached(&sql.history_group).await?;
            tx.query(&stmt, &[collection_id, &time.micros(), &limit])
                .await?
        }
    };
    if rows.len() > bound {
        return Err(StoreError::ResourceExhausted(format!(
            "a query at {time} reads every version replaced since then in its collection, and \
             there are more than its work bound of {bound} (query_max_examined); query at a \
             later time or a collection that changed less"
        ))
        .into());
    }
    let mut out = Vec::new();
    for row in &rows {
        // Column 4 is `valid_from`: only versions made by then are decoded.
        let valid_from: i64 = row.try_get(4)?;
        if valid_from <= time.micros() {
            out.push(read_document(row, 0)?);
        }
    }
    Ok(out)
}

/// One page of `q` over the documents as they were at `time`.
pub(crate) async fn query_at(
    c: &mut Client,
    sql: &Sql,
    q: &PreparedQuery,
    time: Timestamp,
    retention: Duration,
) -> Result<QueryPage, Failure> {
    let mut tx = snapshot(c).await?;
    check_time(&tx, sql, time, retention).await?;
    let history = history_in_scope(&tx, sql, q.scope(), time, q.max_examined()).await?;
    let mut q = q.clone();
    q.at(time, history);
    let page = query(&mut tx, sql, &q).await?;
    tx.commit().await?;
    Ok(page)
}

/// The children of a [`ChildScan`] as the documents were at `time`, one seek each, in the
/// transaction's snapshot (already checked).
async fn children_at(
    tx: &Transaction<'_>,
    sql: &Sql,
    scan: &ChildScan,
    after: Option<&str>,
    limit: usize,
    time: Timestamp,
) -> Result<Vec<Step>, Failure> {
    let stmt = tx.prepare_cached(&sql.seek_at).await?;
    let end = scan.end().to_vec();
    let mut bound = scan.start(after);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(row) = tx.query_opt(&stmt, &[&bound, &end, &time.micros()]).await? else {
            break;
        };
        let found: Vec<u8> = row.try_get(0)?;
        let step = scan.step(&found)?;
        bound = step.next.clone();
        out.push(step);
    }
    Ok(out)
}

/// The collection ids below `parent` as they were at `time`.
pub(crate) async fn collection_ids_at(
    c: &mut Client,
    sql: &Sql,
    parent: Option<&DocPath>,
    after: Option<&str>,
    limit: usize,
    (time, retention): (Timestamp, Duration),
) -> Result<Vec<String>, Failure> {
    let tx = snapshot(c).await?;
    check_time(&tx, sql, time, retention).await?;
    let scan = ChildScan::collections(parent);
    let steps = children_at(&tx, sql, &scan, after, limit, time).await?;
    tx.commit().await?;
    Ok(steps.into_iter().map(|step| step.id).collect())
}

/// A collection's documents and missing ones as they were at `time`.
pub(crate) async fn list_with_missing_at(
    c: &mut Client,
    sql: &Sql,
    collection: &CollectionPath,
    after: Option<&str>,
    limit: usize,
    (time, retention): (Timestamp, Duration),
) -> Result<Vec<Child>, Failure> {
    let tx = snapshot(c).await?;
    check_time(&tx, sql, time, retention).await?;
    let scan = ChildScan::documents(collection);
    let steps = children_at(&tx, sql, &scan, after, limit, time).await?;
    let exact: Vec<Vec<u8>> = steps
        .iter()
        .filter(|s| s.exact)
        .map(|s| collection.doc(&s.id).map(|p| p.sort_key()))
        .collect::<Result<_, _>>()
        .map_err(StoreError::from)?;
    let mut docs = fetch_at(&tx, sql, &exact, time).await?.into_iter();
    tx.commit().await?;
    let mut out = Vec::with_capacity(steps.len());
    for step in steps {
        let doc = if step.exact {
            docs.next().flatten()
        } else {
            None
        };
        out.push(match doc {
            Some(doc) => Child::Document(doc),
            None => Child::Missing(collection.doc(&step.id).map_err(StoreError::from)?),
        });
    }
    Ok(out)
}
