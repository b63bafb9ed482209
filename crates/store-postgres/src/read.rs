//! Reads: point reads, multi-gets, scans, system records, and query execution following the
//! shared planner's [`Plan`]. Every read is one statement, so it sees one snapshot; a streamed
//! query that needs more rows than its first page runs again as a cursor (a portal) inside a
//! read-only REPEATABLE READ transaction, still one snapshot.

use std::collections::BTreeSet;

use claimdb_model::DocPath;
use claimdb_store::index::{self, KIND_CONTAINS, KIND_VALUE};
use claimdb_store::query::{KeyRange, Plan, PreparedQuery, Scope, doc_bounds};
use claimdb_store::{Document, Record};
use deadpool_postgres::Client;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use crate::codec::read_document;
use crate::error::Failure;
use crate::schema::Sql;

type Param = Box<dyn ToSql + Sync + Send>;

/// Rows a cursor fetches at a time once the first page did not satisfy a query.
const FIRST_CURSOR_PAGE: i32 = 256;
const MAX_CURSOR_PAGE: i32 = 4096;

pub async fn ping(c: &mut Client) -> Result<(), Failure> {
    c.simple_query("SELECT 1").await?;
    Ok(())
}

pub async fn get(c: &mut Client, sql: &Sql, key: &[u8]) -> Result<Option<Document>, Failure> {
    let stmt = c.prepare_cached(&sql.get).await?;
    match c.query_opt(&stmt, &[&key]).await? {
        Some(row) => Ok(Some(read_document(&row, 0)?)),
        None => Ok(None),
    }
}

/// The documents at `keys` (any order), in one statement.
async fn fetch_many(
    c: &Client,
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

pub async fn get_many(
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

pub async fn scan(
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

pub async fn get_record(
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

pub async fn list_records(
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

pub async fn scan_records(
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

pub async fn query(c: &mut Client, sql: &Sql, q: &PreparedQuery) -> Result<Vec<Document>, Failure> {
    match q.plan() {
        Plan::Names(names) => {
            let unique: BTreeSet<Vec<u8>> = names.iter().map(DocPath::sort_key).collect();
            let keys: Vec<Vec<u8>> = unique.into_iter().collect();
            let docs = fetch_many(c, sql, &keys).await?;
            Ok(q.finish(docs.into_iter().map(|(_, d)| d).collect()))
        }
        Plan::Lookup {
            field,
            contains,
            keys,
        } => {
            let (column, scope, under) = scope_bounds(q.scope());
            let kind = i16::from(if *contains { KIND_CONTAINS } else { KIND_VALUE });
            let mut params: Vec<Param> = vec![
                scope,
                Box::new(index::field_key(field)),
                Box::new(kind),
                Box::new(keys.clone()),
            ];
            let mut text = format!(
                "SELECT {cols} FROM {docs} WHERE key IN (SELECT doc FROM {idx}
                 WHERE {column} = $1 AND field = $2 AND kind = $3 AND key = ANY($4)",
                cols = Sql::doc_columns(&sql.docs),
                docs = sql.docs,
                idx = sql.idx,
            );
            if let Some((lo, hi)) = under {
                params.push(Box::new(lo));
                params.push(Box::new(hi));
                text.push_str(" AND doc > $5 AND doc < $6");
            }
            text.push(')');
            let stmt = c.prepare_cached(&text).await?;
            let rows = c.query(&stmt, &refs(&params)).await?;
            let docs = rows
                .iter()
                .map(|r| read_document(r, 0))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(q.finish(docs))
        }
        Plan::Range {
            field,
            lo,
            hi,
            descending,
        } => {
            let (column, scope, under) = scope_bounds(q.scope());
            let mut params: Vec<Param> = vec![
                scope,
                Box::new(index::field_key(field)),
                Box::new(lo.clone()),
                Box::new(hi.clone()),
            ];
            let mut text = format!(
                "SELECT {cols} FROM {idx} i JOIN {docs} d ON d.key = i.doc
                 WHERE i.{column} = $1 AND i.field = $2 AND i.kind = {KIND_VALUE}
                   AND i.key >= $3 AND i.key < $4",
                cols = Sql::doc_columns("d"),
                docs = sql.docs,
                idx = sql.idx,
            );
            if let Some((ulo, uhi)) = under {
                params.push(Box::new(ulo));
                params.push(Box::new(uhi));
                text.push_str(" AND i.doc > $5 AND i.doc < $6");
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

/// Feeds the documents of an ordered statement to the query's stream until it is satisfied:
/// first one statement limited to what the query wants (enough when the index serves every
/// filter), and only if that was not enough, a cursor over the unlimited statement.
async fn stream(
    c: &mut Client,
    text: &str,
    mut params: Vec<Param>,
    q: &PreparedQuery,
) -> Result<Vec<Document>, Failure> {
    let Some(wanted) = q.wanted() else {
        let stmt = c.prepare_cached(text).await?;
        let rows = c.query(&stmt, &refs(&params)).await?;
        let mut stream = q.stream();
        for row in &rows {
            if !stream.push(read_document(row, 0)?) {
                break;
            }
        }
        return Ok(stream.finish());
    };
    let limit = i64::try_from(wanted.max(1)).unwrap_or(i64::MAX);
    let limited = format!("{text} LIMIT ${}", params.len() + 1);
    params.push(Box::new(limit));
    let stmt = c.prepare_cached(&limited).await?;
    let rows = c.query(&stmt, &refs(&params)).await?;
    let mut stream = q.stream();
    let mut satisfied = false;
    for row in &rows {
        if !stream.push(read_document(row, 0)?) {
            satisfied = true;
            break;
        }
    }
    if satisfied || i64::try_from(rows.len()).unwrap_or(i64::MAX) < limit {
        return Ok(stream.finish());
    }
    // Filters the index does not serve dropped some rows: read on with a cursor.
    params.pop();
    let stmt = c.prepare_cached(text).await?;
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let portal = tx.bind(&stmt, &refs(&params)).await?;
    let mut stream = q.stream();
    let mut page = FIRST_CURSOR_PAGE;
    'fetch: loop {
        let rows = tx.query_portal(&portal, page).await?;
        let exhausted = rows.len() < usize::try_from(page).unwrap_or(usize::MAX);
        for row in &rows {
            if !stream.push(read_document(row, 0)?) {
                break 'fetch;
            }
        }
        if exhausted {
            break;
        }
        page = (page * 2).min(MAX_CURSOR_PAGE);
    }
    tx.commit().await?;
    Ok(stream.finish())
}
