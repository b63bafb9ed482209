//! Reads: point reads, multi-gets, scans, system records, and query execution following the
//! shared planner's [`Plan`]. Every read is one statement, so it sees one snapshot; a streamed
//! query that needs more rows than its first fetch runs again as a cursor (a portal) inside a
//! read-only REPEATABLE READ transaction, still one snapshot. No page fetches more rows than
//! its work bound allows.
//!
//! A query at a past time (`past`) runs the same dispatch inside its snapshot transaction,
//! through [`Reader`].

use std::collections::BTreeSet;

use async_trait::async_trait;
use claimdb_model::DocPath;
use claimdb_store::children::{ChildScan, Step};
use claimdb_store::index::{self, KIND_CONTAINS, KIND_VALUE};
use claimdb_store::query::{KeyRange, Plan, PreparedQuery, QueryPage, Scope, Stream, doc_bounds};
use claimdb_store::{Document, Record};
use deadpool_postgres::{Client, GenericClient, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

use crate::codec::read_document;
use crate::error::Failure;
use crate::schema::Sql;

type Param = Box<dyn ToSql + Sync + Send>;

/// Rows a cursor fetches at a time once the first page did not satisfy a query.
const FIRST_CURSOR_PAGE: i32 = 256;
const MAX_CURSOR_PAGE: i32 = 4096;

pub(crate) async fn ping(c: &mut Client) -> Result<(), Failure> {
    c.simple_query("SELECT 1").await?;
    Ok(())
}

pub(crate) async fn get(
    c: &mut Client,
    sql: &Sql,
    key: &[u8],
) -> Result<Option<Document>, Failure> {
    let stmt = c.prepare_cached(&sql.get).await?;
    match c.query_opt(&stmt, &[&key]).await? {
        Some(row) => Ok(Some(read_document(&row, 0)?)),
        None => Ok(None),
    }
}

/// The documents at `keys` (any order), in one statement.
pub(crate) async fn fetch_many(
    c: &impl GenericClient,
    sql: &Sql,
    keys: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Document)>, Failure> {
    let stmt = c.prepare_cached(&sql.get_many).await?;
    let rows = c.query(&stmt, &[&keys]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.push((row.try_get(0)?, read_document(row, 1)?));
    }
    Ok(out)
}

pub(crate) async fn get_many(
    c: &mut Client,
    sql: &Sql,
    paths: &[DocPath],
) -> Result<Vec<Option<Document>>, Failure> {
    let keys: Vec<Vec<u8>> = paths.iter().map(DocPath::sort_key).collect();
    let mut found: std::collections::HashMap<Vec<u8>, Document> =
        fetch_many(c, sql, &keys).await?.into_iter().collect();
    // A path asked twice gets the document twice.
    Ok(keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            if keys[i + 1..].contains(k) {
                found.get(k).cloned()
            } else {
                found.remove(k)
            }
        })
        .collect())
}

pub(crate) async fn scan(
    c: &mut Client,
    sql: &Sql,
    after: &[u8],
    limit: usize,
) -> Result<Vec<Document>, Failure> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let stmt = c.prepare_cached(&sql.scan).await?;
    let rows = c.query(&stmt, &[&after, &limit]).await?;
    rows.iter()
        .map(|r| read_document(r, 0).map_err(Failure::from))
        .collect()
}

/// The children of a [`ChildScan`] after `after`, at most `limit`, in one statement (a skip
/// scan as a recursive query: each step one seek on the documents' primary key past the
/// previous child), each with the document found at the child's own key when it exists.
pub(crate) async fn children(
    c: &mut Client,
    sql: &Sql,
    scan: &ChildScan,
    after: Option<&str>,
    limit: usize,
    with_documents: bool,
) -> Result<Vec<(Step, Option<Document>)>, Failure> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let start = scan.start(after);
    let end = scan.end().to_vec();
    let prefix = i32::try_from(scan.prefix_len()).unwrap_or(i32::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // The child's key is the prefix and the next segment up to its terminator (00 01, which
    // an escaped segment never holds elsewhere); the next seek starts past it plus 0xFF × 9
    // (`key::prefix_successor`).
    let (cols, join) = if with_documents {
        (
            format!(", {}", Sql::doc_columns("d")),
            // Only a child's own key joins its document (not one found below a missing one).
            format!(
                "LEFT JOIN {} d ON d.key = w.key AND length(w.key) = $3::int4
                   + position('\\x0001'::bytea IN substring(w.key FROM $3::int4 + 1)) + 1",
                sql.docs
            ),
        )
    } else {
        (String::new(), String::new())
    };
    let text = format!(
        "WITH RECURSIVE walk (key, n) AS (
           (SELECT key, 1::int8 FROM {docs} WHERE key > $1 AND key < $2 ORDER BY key LIMIT 1)
           UNION ALL
           SELECT nxt.key, w.n + 1 FROM walk w, LATERAL (
             SELECT d.key FROM {docs} d
             WHERE d.key > substring(w.key FROM 1 FOR $3::int4
                     + position('\\x0001'::bytea IN substring(w.key FROM $3::int4 + 1)) + 1)
                   || '\\xffffffffffffffffff'::bytea
               AND d.key < $2
             ORDER BY d.key LIMIT 1) nxt
           WHERE w.n < $4::int8
         )
         SELECT w.key{cols} FROM walk w {join} ORDER BY w.key",
        docs = sql.docs,
    );
    let stmt = c.prepare_cached(&text).await?;
    let rows = c.query(&stmt, &[&start, &end, &prefix, &limit]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let found: Vec<u8> = row.try_get(0)?;
        let step = scan.step(&found)?;
        let doc = if with_documents && step.exact {
            let present: Option<String> = row.try_get(1)?;
            match present {
                Some(_) => Some(read_document(row, 1)?),
                None => None,
            }
        } else {
            None
        };
        out.push((step, doc));
    }
    Ok(out)
}

pub(crate) async fn get_record(
    c: &mut Client,
    sql: &Sql,
    ns: &str,
    key: &str,
) -> Result<Option<String>, Failure> {
    let stmt = c.prepare_cached(&sql.record_get).await?;
    Ok(match c.query_opt(&stmt, &[&ns, &key]).await? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

pub(crate) async fn list_records(
    c: &mut Client,
    sql: &Sql,
    ns: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, String)>, Failure> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let after = after.unwrap_or("");
    let stmt = c.prepare_cached(&sql.record_list).await?;
    let rows = c.query(&stmt, &[&ns, &after, &limit]).await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(crate) async fn scan_records(
    c: &mut Client,
    sql: &Sql,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<Record>, Failure> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = match after {
        None => {
            let stmt = c.prepare_cached(&sql.record_scan_all).await?;
            c.query(&stmt, &[&limit]).await?
        }
        Some((ns, key)) => {
            let stmt = c.prepare_cached(&sql.record_scan_after).await?;
            c.query(&stmt, &[&ns, &key, &limit]).await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(Record {
                namespace: r.try_get(0)?,
                key: r.try_get(1)?,
                value: r.try_get(2)?,
            })
        })
        .collect()
}

/// The scope as an `idx`/`docs` column (`parent` or `grp`) and its value, and for a group below
/// a document the exclusive key range of the documents below it.
fn scope_bounds(scope: &Scope) -> (&'static str, Param, Option<KeyRange>) {
    match scope {
        Scope::Collection(c) => ("parent", Box::new(c.sort_key()), None),
        Scope::Group { collection_id, .. } => {
            ("grp", Box::new(collection_id.clone()), scope.under_range())
        }
    }
}

fn direction(descending: bool) -> &'static str {
    if descending { "DESC" } else { "ASC" }
}

/// Where a query's statements run, and how it reads on past its first fetch.
#[async_trait]
pub(crate) trait Reader: GenericClient + Send {
    /// Feeds the rows of `stmt` after the first `skip` to `stream`, at most `left` of them, from
    /// a cursor in the same snapshot as the statements before (a new one for a pooled
    /// connection, whose statements are each their own snapshot).
    async fn read_on(
        &mut self,
        stmt: &Statement,
        params: &[Param],
        skip: usize,
        left: usize,
        stream: &mut Stream<'_>,
    ) -> Result<(), Failure>;
}

#[async_trait]
impl Reader for Client {
    async fn read_on(
        &mut self,
        stmt: &Statement,
        params: &[Param],
        skip: usize,
        left: usize,
        stream: &mut Stream<'_>,
    ) -> Result<(), Failure> {
        let tx = self
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        feed_cursor(&tx, stmt, params, skip, left, stream).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl Reader for Transaction<'_> {
    async fn read_on(
        &mut self,
        stmt: &Statement,
        params: &[Param],
        skip: usize,
        left: usize,
        stream: &mut Stream<'_>,
    ) -> Result<(), Failure> {
        feed_cursor(self, stmt, params, skip, left, stream).await
    }
}

/// One page of a query, on a pooled connection (live) or in a snapshot (at a past time).
pub(crate) async fn query<C: Reader>(
    c: &mut C,
    sql: &Sql,
    q: &PreparedQuery,
) -> Result<QueryPage, Failure> {
    let members = match q.plan() {
        plan @ Plan::Lookup { .. } => std::slice::from_ref(plan),
        Plan::Union(members) => members.as_slice(),
        plan => return run(c, sql, q, plan).await,
    };
    // The candidates of every lookup (one per disjunction of an or query), each once.
    let mut found: std::collections::BTreeMap<Vec<u8>, Document> =
        std::collections::BTreeMap::new();
    for member in members {
        let left = q.max_examined().saturating_sub(found.len());
        let docs = match member {
            Plan::Names(names) => {
                let keys: Vec<Vec<u8>> = names.iter().map(DocPath::sort_key).collect();
                let docs = fetch_many(&*c, sql, &keys).await?;
                Some(docs.into_iter().map(|(_, d)| d).collect())
            }
            Plan::Lookup {
                field,
                contains,
                keys,
            } => lookup(&*c, sql, q, field, *contains, keys, left).await?,
            _ => {
                return Err(Failure::from(claimdb_store::StoreError::Internal(
                    "a union holds names and lookups only".into(),
                )));
            }
        };
        let Some(docs) = docs else {
            // Too many candidates to sort within the work bound: scan in order instead,
            // which can stop there.
            return run(c, sql, q, q.scan_plan()).await;
        };
        found.extend(docs.into_iter().map(|d| (d.path.sort_key(), d)));
        if found.len() > q.max_examined() {
            return run(c, sql, q, q.scan_plan()).await;
        }
    }
    Ok(q.finish(found.into_values().collect()))
}

/// The candidates of an index lookup in one statement, or `None` when there are more than
/// `bound` (at most one more is read to tell).
async fn lookup(
    c: &impl GenericClient,
    sql: &Sql,
    q: &PreparedQuery,
    field: &claimdb_model::FieldPath,
    contains: bool,
    keys: &[Vec<u8>],
    bound: usize,
) -> Result<Option<Vec<Document>>, Failure> {
    let (column, scope, under) = scope_bounds(q.scope());
    let kind = i16::from(if contains { KIND_CONTAINS } else { KIND_VALUE });
    let bound = i64::try_from(bound).unwrap_or(i64::MAX);
    let mut params: Vec<Param> = vec![
        scope,
        Box::new(index::field_key(field)),
        Box::new(kind),
        Box::new(keys.to_vec()),
        Box::new(bound.saturating_add(1)),
    ];
    let mut text = format!(
        "SELECT {cols} FROM {docs} WHERE key IN (SELECT DISTINCT doc FROM {idx}
         WHERE {column} = $1 AND field = $2 AND kind = $3 AND key = ANY($4)",
        cols = Sql::doc_columns(&sql.docs),
        docs = sql.docs,
        idx = sql.idx,
    );
    if let Some((lo, hi)) = under {
        params.push(Box::new(lo));
        params.push(Box::new(hi));
        text.push_str(" AND doc > $6 AND doc < $7");
    }
    text.push_str(" LIMIT $5)");
    let stmt = c.prepare_cached(&text).await?;
    let rows = c.query(&stmt, &refs(&params)).await?;
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) > bound {
        return Ok(None);
    }
    let docs = rows
        .iter()
        .map(|r| read_document(r, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(docs))
}

async fn run<C: Reader>(
    c: &mut C,
    sql: &Sql,
    q: &PreparedQuery,
    plan: &Plan,
) -> Result<QueryPage, Failure> {
    match plan {
        Plan::Names(names) => {
            let unique: BTreeSet<Vec<u8>> = names.iter().map(DocPath::sort_key).collect();
            let keys: Vec<Vec<u8>> = unique.into_iter().collect();
            let docs = fetch_many(&*c, sql, &keys).await?;
            Ok(q.finish(docs.into_iter().map(|(_, d)| d).collect()))
        }
        Plan::Lookup { .. } | Plan::Union(_) => {
            // Never planned as a scan: a lookup's fallback is an ordered scan.
            Err(Failure::from(claimdb_store::StoreError::Internal(
                "a lookup is not an ordered scan".into(),
            )))
        }
        Plan::Range {
            field,
            lo,
            hi,
            descending,
            after,
        } => {
            let (column, scope, under) = scope_bounds(q.scope());
            let mut params: Vec<Param> = vec![scope, Box::new(index::field_key(field))];
            let bounds = match (after, descending) {
                // The seek replaces the bound on the side the scan starts from.
                (Some((key, doc)), false) => {
                    params.extend([
                        Box::new(key.clone()) as Param,
                        Box::new(doc.clone()),
                        Box::new(hi.clone()),
                    ]);
                    "(i.key, i.doc) > ($3, $4) AND i.key < $5"
                }
                (Some((key, doc)), true) => {
                    params.extend([
                        Box::new(key.clone()) as Param,
                        Box::new(doc.clone()),
                        Box::new(lo.clone()),
                    ]);
                    "(i.key, i.doc) < ($3, $4) AND i.key >= $5"
                }
                (None, _) => {
                    params.extend([Box::new(lo.clone()) as Param, Box::new(hi.clone())]);
                    "i.key >= $3 AND i.key < $4"
                }
            };
            let mut text = format!(
                "SELECT {cols} FROM {idx} i JOIN {docs} d ON d.key = i.doc
                 WHERE i.{column} = $1 AND i.field = $2 AND i.kind = {KIND_VALUE} AND {bounds}",
                cols = Sql::doc_columns("d"),
                docs = sql.docs,
                idx = sql.idx,
            );
            if let Some((ulo, uhi)) = under {
                let n = params.len();
                params.push(Box::new(ulo));
                params.push(Box::new(uhi));
                text.push_str(&format!(" AND i.doc > ${} AND i.doc < ${}", n + 1, n + 2));
            }
            let dir = direction(*descending);
            text.push_str(&format!(" ORDER BY i.key {dir}, i.doc {dir}"));
            stream(c, &text, params, q).await
        }
        Plan::LookupByName {
            field,
            contains,
            key,
            lo,
            hi,
            descending,
        } => {
            let (column, scope, under) = scope_bounds(q.scope());
            let (lo, hi) = doc_bounds(lo, hi, under);
            let kind = i16::from(if *contains { KIND_CONTAINS } else { KIND_VALUE });
            let params: Vec<Param> = vec![
                scope,
                Box::new(index::field_key(field)),
                Box::new(kind),
                Box::new(key.clone()),
                Box::new(lo),
                Box::new(hi),
            ];
            let dir = direction(*descending);
            let text = format!(
                "SELECT {cols} FROM {idx} i JOIN {docs} d ON d.key = i.doc
                 WHERE i.{column} = $1 AND i.field = $2 AND i.kind = $3 AND i.key = $4
                   AND i.doc >= $5 AND i.doc <= $6
                 ORDER BY i.doc {dir}",
                cols = Sql::doc_columns("d"),
                docs = sql.docs,
                idx = sql.idx,
            );
            stream(c, &text, params, q).await
        }
        Plan::ScanNames { lo, hi, descending } => {
            let (column, scope, under) = scope_bounds(q.scope());
            let (lo, hi) = doc_bounds(lo, hi, under);
            let params: Vec<Param> = vec![scope, Box::new(lo), Box::new(hi)];
            let dir = direction(*descending);
            let text = format!(
                "SELECT {cols} FROM {docs} d WHERE d.{column} = $1 AND d.key >= $2 AND d.key <= $3
                 ORDER BY d.key {dir}",
                cols = Sql::doc_columns("d"),
                docs = sql.docs,
            );
            stream(c, &text, params, q).await
        }
    }
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Feeds the documents of an ordered statement to the query's stream until the page is decided
/// or its work bound reached: first one statement limited to what the page wants (enough when
/// the index serves every filter), and only if that was not enough, a cursor over the unlimited
/// statement ([`Reader::read_on`]), fetching no further than the bound.
async fn stream<C: Reader>(
    c: &mut C,
    text: &str,
    mut params: Vec<Param>,
    q: &PreparedQuery,
) -> Result<QueryPage, Failure> {
    let limit = i64::try_from(q.wanted().max(1)).unwrap_or(i64::MAX);
    let limited = format!("{text} LIMIT ${}", params.len() + 1);
    params.push(Box::new(limit));
    let stmt = c.prepare_cached(&limited).await?;
    let rows = c.query(&stmt, &refs(&params)).await?;
    let mut stream = q.stream();
    let mut stopped = false;
    for row in &rows {
        if !stream.push(read_document(row, 0)?) {
            stopped = true;
            break;
        }
    }
    if stopped || i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit {
        return Ok(stream.finish()?);
    }
    // Filters the index does not serve dropped some rows: read on with a cursor over the same
    // statement, past the rows already fed, up to the work bound.
    params.pop();
    let stmt = c.prepare_cached(text).await?;
    let left = q.max_examined().saturating_sub(rows.len());
    c.read_on(&stmt, &params, rows.len(), left, &mut stream)
        .await?;
    Ok(stream.finish()?)
}

/// Feeds the rows of `stmt` after the first `to_skip`, at most `left` of them, from a cursor
/// (a portal) of `tx`, until the stream says stop.
async fn feed_cursor(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &Statement,
    params: &[Param],
    mut to_skip: usize,
    mut left: usize,
    stream: &mut Stream<'_>,
) -> Result<(), Failure> {
    let portal = tx.bind(stmt, &refs(params)).await?;
    let mut page = FIRST_CURSOR_PAGE;
    'fetch: while left > 0 {
        let ask = page.min(i32::try_from(left.saturating_add(to_skip)).unwrap_or(i32::MAX));
        let rows = tx.query_portal(&portal, ask).await?;
        let exhausted = rows.len() < usize::try_from(ask).unwrap_or(usize::MAX);
        for row in &rows {
            if to_skip > 0 {
                to_skip -= 1;
                continue;
            }
            left = left.saturating_sub(1);
            if !stream.push(read_document(row, 0)?) {
                break 'fetch;
            }
        }
        if exhausted {
            break;
        }
        page = (page * 2).min(MAX_CURSOR_PAGE);
    }
    Ok(())
}
