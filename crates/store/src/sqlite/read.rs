//! Reads of the SQLite backend on a read connection: point reads, snapshot multi-gets, scans, and
//! query execution following the shared planner's [`Plan`] (index lookups, ordered index scans,
//! ordered document-key scans). Each call runs in one read transaction, so it sees one snapshot.

use std::collections::BTreeSet;

use claimdb_model::{DocPath, key};
use rusqlite::Connection;
use rusqlite::types::Value as Sql;

use super::schema::{DOC_COLUMNS, get_document, internal, read_document};
use crate::index::{self, KIND_CONTAINS, KIND_VALUE};
use crate::query::{Plan, PreparedQuery, Scope};
use crate::{Document, StoreError};

pub fn get_many(
    conn: &mut Connection,
    paths: &[DocPath],
) -> Result<Vec<Option<Document>>, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let docs = paths
        .iter()
        .map(|p| get_document(&tx, p))
        .collect::<Result<Vec<_>, _>>()?;
    tx.finish().map_err(internal)?;
    Ok(docs)
}

pub fn scan(
    conn: &mut Connection,
    after: Option<&DocPath>,
    limit: usize,
) -> Result<Vec<Document>, StoreError> {
    let after = after.map(DocPath::sort_key).unwrap_or_default();
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DOC_COLUMNS} FROM docs WHERE key > ?1 ORDER BY key LIMIT ?2"
        ))
        .map_err(internal)?;
    let mut rows = stmt
        .query(rusqlite::params![after, limit])
        .map_err(internal)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        out.push(read_document(row)?);
    }
    Ok(out)
}

/// The scope as SQL: a condition on the columns `parent`/`grp` of the table aliased `table`
/// (empty for none) and its document key column `doc`, with its parameters.
fn scope_sql(scope: &Scope, table: &str, doc: &str, params: &mut Vec<Sql>) -> String {
    match scope {
        Scope::Collection(c) => {
            params.push(Sql::Blob(c.sort_key()));
            format!("{table}parent = ?{}", params.len())
        }
        Scope::Group {
            collection_id,
            under,
        } => {
            params.push(Sql::Text(collection_id.clone()));
            let mut sql = format!("{table}grp = ?{}", params.len());
            if let Some(under) = under {
                let k = under.sort_key();
                params.push(Sql::Blob(key::prefix_successor(&k)));
                params.push(Sql::Blob(k));
                sql.push_str(&format!(
                    " AND {table}{doc} > ?{} AND {table}{doc} < ?{}",
                    params.len(),
                    params.len() - 1
                ));
            }
            sql
        }
    }
}

pub fn query(conn: &mut Connection, q: &PreparedQuery) -> Result<Vec<Document>, StoreError> {
    let tx = conn.transaction().map_err(internal)?;
    let result = match q.plan() {
        Plan::Names(names) => {
            let unique: BTreeSet<&DocPath> = names.iter().collect();
            let mut docs = Vec::with_capacity(unique.len());
            for name in unique {
                if let Some(doc) = get_document(&tx, name)? {
                    docs.push(doc);
                }
            }
            q.finish(docs)
        }
        Plan::Lookup {
            field,
            contains,
            keys,
        } => {
            let mut params = Vec::new();
            let scope = scope_sql(q.scope(), "", "doc", &mut params);
            params.push(Sql::Blob(index::field_key(field)));
            params.push(Sql::Integer(i64::from(if *contains {
                KIND_CONTAINS
            } else {
                KIND_VALUE
            })));
            let n = params.len();
            // Two statements rather than a join: SQLite re-prepares this join on every run.
            let sql = format!(
                "SELECT doc FROM idx WHERE {scope} AND field = ?{} AND kind = ?{} AND key = ?{}",
                n - 1,
                n,
                n + 1
            );
            let mut stmt = tx.prepare_cached(&sql).map_err(internal)?;
            let mut doc_keys = BTreeSet::new();
            for k in keys {
                params.push(Sql::Blob(k.clone()));
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(internal)?;
                while let Some(row) = rows.next().map_err(internal)? {
                    doc_keys.insert(row.get::<_, Vec<u8>>(0).map_err(internal)?);
                }
                params.pop();
            }
            let mut fetch = tx
                .prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM docs WHERE key = ?1"))
                .map_err(internal)?;
            let mut docs = Vec::with_capacity(doc_keys.len());
            for k in doc_keys {
                let mut rows = fetch.query([k]).map_err(internal)?;
                if let Some(row) = rows.next().map_err(internal)? {
                    docs.push(read_document(row)?);
                }
            }
            q.finish(docs)
        }
        Plan::Range {
            field,
            lo,
            hi,
            descending,
        } => {
            let mut params = Vec::new();
            let scope = scope_sql(q.scope(), "", "doc", &mut params);
            params.push(Sql::Blob(index::field_key(field)));
            params.push(Sql::Blob(lo.clone()));
            params.push(Sql::Blob(hi.clone()));
            let n = params.len();
            let dir = if *descending { "DESC" } else { "ASC" };
            let sql = format!(
                "SELECT doc FROM idx
                 WHERE {scope} AND field = ?{} AND kind = {KIND_VALUE} AND key >= ?{} AND key < ?{}
                 ORDER BY key {dir}, doc {dir}",
                n - 2,
                n - 1,
                n
            );
            let mut stmt = tx.prepare_cached(&sql).map_err(internal)?;
            let mut fetch = tx
                .prepare_cached(&format!("SELECT {DOC_COLUMNS} FROM docs WHERE key = ?1"))
                .map_err(internal)?;
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(internal)?;
            let mut stream = q.stream();
            while let Some(row) = rows.next().map_err(internal)? {
                let k: Vec<u8> = row.get(0).map_err(internal)?;
                let mut found = fetch.query([k]).map_err(internal)?;
                if let Some(doc) = found.next().map_err(internal)?
                    && !stream.push(read_document(doc)?)
                {
                    break;
                }
            }
            stream.finish()
        }
        Plan::ScanNames { lo, hi, descending } => {
            let mut params = Vec::new();
            let scope = scope_sql(q.scope(), "", "key", &mut params);
            let mut sql = format!("SELECT {DOC_COLUMNS} FROM docs WHERE {scope}");
            if let Some(lo) = lo {
                params.push(Sql::Blob(lo.clone()));
                sql.push_str(&format!(" AND key >= ?{}", params.len()));
            }
            if let Some(hi) = hi {
                params.push(Sql::Blob(hi.clone()));
                sql.push_str(&format!(" AND key <= ?{}", params.len()));
            }
            sql.push_str(if *descending {
                " ORDER BY key DESC"
            } else {
                " ORDER BY key ASC"
            });
            stream_rows(&tx, &sql, &params, q)?
        }
    };
    tx.finish().map_err(internal)?;
    Ok(result)
}

/// Feeds the rows of an ordered statement to the query's stream until it is satisfied.
fn stream_rows(
    conn: &Connection,
    sql: &str,
    params: &[Sql],
    q: &PreparedQuery,
) -> Result<Vec<Document>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(internal)?;
    let mut stream = q.stream();
    while let Some(row) = rows.next().map_err(internal)? {
        if !stream.push(read_document(row)?) {
            break;
        }
    }
    Ok(stream.finish())
}
