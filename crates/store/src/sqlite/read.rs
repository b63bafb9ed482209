//! Reads of the SQLite backend on a read connection: point reads, snapshot multi-gets, scans, and
//! query execution following the shared planner's [`Plan`] (index lookups, ordered index scans,
//! ordered document-key scans). Each call runs in one read transaction, so it sees one snapshot.
//! Reads at a past time are `history`'s.

use std::collections::BTreeSet;

use claimdb_model::{CollectionPath, DocPath, key};
use rusqlite::Connection;
use rusqlite::types::Value as Sql;

use super::schema::{DOC_COLUMNS, GET_DOCUMENT, get_document, internal, read_document};
use crate::children::{Child, ChildScan, Step};
use crate::index::{self, KIND_CONTAINS, KIND_VALUE};
use crate::query::{KeyRange, Plan, PreparedQuery, QueryPage, Scope, doc_bounds};
use crate::{Document, Record, StoreError};

/// Several documents from one snapshot (the caller's read transaction).
pub(super) fn get_many(
    conn: &Connection,
    paths: &[DocPath],
) -> Result<Vec<Option<Document>>, StoreError> {
    paths.iter().map(|p| get_document(conn, p)).collect()
}

pub(super) fn scan(
    conn: &Connection,
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

/// The children of a [`ChildScan`] after `after`, at most `limit`, each with the key found for
/// it (the child's own key when it is exact), by one seek each in the caller's read
/// transaction.
pub(super) fn children(
    conn: &Connection,
    scan: &ChildScan,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(Step, Vec<u8>)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT key FROM docs WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT 1")
        .map_err(internal)?;
    let mut bound = scan.start(after);
    let mut out = Vec::new();
    while out.len() < limit {
        let mut rows = stmt
            .query(rusqlite::params![bound, scan.end()])
            .map_err(internal)?;
        let Some(row) = rows.next().map_err(internal)? else {
            break;
        };
        let found: Vec<u8> = row.get(0).map_err(internal)?;
        let step = scan.step(&found)?;
        bound = step.next.clone();
        out.push((step, found));
    }
    Ok(out)
}

/// A collection's documents and missing documents after `after`, at most `limit`.
pub(super) fn list_with_missing(
    conn: &Connection,
    collection: &CollectionPath,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Child>, StoreError> {
    let steps = children(conn, &ChildScan::documents(collection), after, limit)?;
    let mut fetch = conn.prepare_cached(GET_DOCUMENT).map_err(internal)?;
    let mut out = Vec::with_capacity(steps.len());
    for (step, key) in steps {
        if step.exact {
            let mut rows = fetch.query([key]).map_err(internal)?;
            if let Some(row) = rows.next().map_err(internal)? {
                out.push(Child::Document(read_document(row)?));
                continue;
            }
        }
        out.push(Child::Missing(collection.doc(&step.id)?));
    }
    Ok(out)
}

pub(super) fn journal(
    conn: &Connection,
    after: u64,
    limit: usize,
) -> Result<Vec<(u64, String)>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached("SELECT seq, line FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(internal)?;
    let rows = stmt
        .query_map(rusqlite::params![after, limit], |r| {
            Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
        })
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

pub(super) fn list_records(
    conn: &Connection,
    ns: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT key, value FROM records WHERE ns = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(rusqlite::params![ns, after.unwrap_or(""), limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

pub(super) fn scan_records(
    conn: &Connection,
    after: Option<(&str, &str)>,
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (ns, key) = after.unwrap_or(("", ""));
    // A missing `after` must include the record ("", ""), which no namespace uses.
    let mut stmt = conn
        .prepare_cached(
            "SELECT ns, key, value FROM records WHERE (ns, key) > (?1, ?2) OR ?3 \
             ORDER BY ns, key LIMIT ?4",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(rusqlite::params![ns, key, after.is_none(), limit], |r| {
            Ok(Record {
                namespace: r.get(0)?,
                key: r.get(1)?,
                value: r.get(2)?,
            })
        })
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}

/// The scope as the column to range over (`parent` or `grp`), its value, and for a group below
/// a document the (exclusive) key range of the documents below it.
fn scope_bounds(scope: &Scope) -> (&'static str, Sql, Option<KeyRange>) {
    match scope {
        Scope::Collection(c) => ("parent", Sql::Blob(c.sort_key()), None),
        Scope::Group { collection_id, .. } => {
            ("grp", Sql::Text(collection_id.clone()), scope.under_range())
        }
    }
}

/// The scope as an SQL condition on the `idx` columns `parent`/`grp`/`doc`, with its parameters.
fn scope_sql(scope: &Scope, params: &mut Vec<Sql>) -> String {
    match scope {
        Scope::Collection(c) => {
            params.push(Sql::Blob(c.sort_key()));
            format!("parent = ?{}", params.len())
        }
        Scope::Group {
            collection_id,
            under,
        } => {
            params.push(Sql::Text(collection_id.clone()));
            let mut sql = format!("grp = ?{}", params.len());
            if let Some(under) = under {
                let k = under.sort_key();
                params.push(Sql::Blob(key::prefix_successor(&k)));
                params.push(Sql::Blob(k));
                sql.push_str(&format!(
                    " AND doc > ?{} AND doc < ?{}",
                    params.len(),
                    params.len() - 1
                ));
            }
            sql
        }
    }
}

/// Runs one page of a query in the caller's read transaction (one snapshot).
pub(super) fn query(conn: &Connection, q: &PreparedQuery) -> Result<QueryPage, StoreError> {
    run(conn, q, q.plan())
}

fn run(conn: &Connection, q: &PreparedQuery, plan: &Plan) -> Result<QueryPage, StoreError> {
    match plan {
        Plan::Names(names) => {
            let unique: BTreeSet<&DocPath> = names.iter().collect();
            let mut docs = Vec::with_capacity(unique.len());
            for name in unique {
                if let Some(doc) = get_document(conn, name)? {
                    docs.push(doc);
                }
            }
            Ok(q.finish(docs))
        }
        Plan::Lookup { .. } | Plan::Union(_) => {
            let mut doc_keys = BTreeSet::new();
            if !candidates(conn, q, plan, &mut doc_keys)? {
                // Too many to sort within the work bound: scan in order instead, which can
                // stop there.
                return run(conn, q, q.scan_plan());
            }
            let mut fetch = conn.prepare_cached(GET_DOCUMENT).map_err(internal)?;
            let mut docs = Vec::with_capacity(doc_keys.len());
            for k in doc_keys {
                let mut rows = fetch.query([k]).map_err(internal)?;
                if let Some(row) = rows.next().map_err(internal)? {
                    docs.push(read_document(row)?);
                }
            }
            Ok(q.finish(docs))
        }
        Plan::Range {
            field,
            lo,
            hi,
            descending,
            after,
        } => {
            let (scope_column, scope_value, under) = scope_bounds(q.scope());
            let mut params = vec![scope_value, Sql::Blob(index::field_key(field))];
            match after {
                // The seek replaces the bound on the side the scan starts from.
                Some((key, doc)) => params.extend([
                    Sql::Blob(key.clone()),
                    Sql::Blob(doc.clone()),
                    Sql::Blob(if *descending { lo.clone() } else { hi.clone() }),
                ]),
                None => params.extend([Sql::Blob(lo.clone()), Sql::Blob(hi.clone())]),
            }
            if let Some((ulo, uhi)) = &under {
                params.push(Sql::Blob(ulo.clone()));
                params.push(Sql::Blob(uhi.clone()));
            }
            let sql = match after {
                Some(_) => range_after_sql(scope_column, *descending, under.is_some()),
                None => range_sql(scope_column, *descending, under.is_some()),
            };
            stream_doc_keys(conn, &sql, &params, q)
        }
        Plan::LookupByName {
            field,
            contains,
            key,
            lo,
            hi,
            descending,
        } => {
            let (scope_column, scope_value, under) = scope_bounds(q.scope());
            let (lo, hi) = doc_bounds(lo, hi, under);
            let kind = if *contains { KIND_CONTAINS } else { KIND_VALUE };
            let params = [
                scope_value,
                Sql::Blob(index::field_key(field)),
                Sql::Integer(i64::from(kind)),
                Sql::Blob(key.clone()),
                Sql::Blob(lo),
                Sql::Blob(hi),
            ];
            let sql = key_by_name_sql(scope_column, *descending);
            stream_doc_keys(conn, &sql, &params, q)
        }
        Plan::ScanNames { lo, hi, descending } => {
            let (scope_column, scope_value, under) = scope_bounds(q.scope());
            let (lo, hi) = doc_bounds(lo, hi, under);
            let sql = names_sql(scope_column, *descending);
            stream_rows(conn, &sql, &[scope_value, Sql::Blob(lo), Sql::Blob(hi)], q)
        }
    }
}

/// Adds the document keys an unordered plan ([`Plan::Names`], [`Plan::Lookup`],
/// [`Plan::Union`] of them) reaches to `doc_keys`; false once they are more than the work
/// bound.
fn candidates(
    conn: &Connection,
    q: &PreparedQuery,
    plan: &Plan,
    doc_keys: &mut BTreeSet<Vec<u8>>,
) -> Result<bool, StoreError> {
    match plan {
        Plan::Names(names) => {
            // Keys of absent documents are harmless: fetching them finds nothing.
            doc_keys.extend(names.iter().map(DocPath::sort_key));
            Ok(doc_keys.len() <= q.max_examined())
        }
        Plan::Union(members) => {
            for member in members {
                if !candidates(conn, q, member, doc_keys)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Plan::Lookup {
            field,
            contains,
            keys,
        } => {
            let mut params = Vec::new();
            let scope = scope_sql(q.scope(), &mut params);
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
            let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
            for k in keys {
                params.push(Sql::Blob(k.clone()));
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(internal)?;
                while let Some(row) = rows.next().map_err(internal)? {
                    doc_keys.insert(row.get::<_, Vec<u8>>(0).map_err(internal)?);
                    if doc_keys.len() > q.max_examined() {
                        return Ok(false);
                    }
                }
                params.pop();
            }
            Ok(true)
        }
        Plan::Range { .. } | Plan::LookupByName { .. } | Plan::ScanNames { .. } => Err(
            StoreError::Internal("an ordered scan has no candidate set".into()),
        ),
    }
}

/// An ordered scan of one field's value entries. Row-value bounds instead of
/// `parent = ? … ORDER BY key`: SQLite re-prepares a statement whose ORDER BY meets an equality
/// on a bound parameter, on every run (see the test below).
fn range_sql(scope_column: &str, descending: bool, under: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let under = if under {
        " AND doc > ?5 AND doc < ?6"
    } else {
        ""
    };
    format!(
        "SELECT doc FROM idx
         WHERE ({scope_column}, field, kind, key) >= (?1, ?2, {KIND_VALUE}, ?3)
           AND ({scope_column}, field, kind, key) < (?1, ?2, {KIND_VALUE}, ?4){under}
         ORDER BY {scope_column} {dir}, field {dir}, kind {dir}, key {dir}, doc {dir}"
    )
}

/// [`range_sql`] continuing strictly after the entry (`?3` value key, `?4` document key) in
/// the scan's direction, up to `?5` (exclusive `hi` ascending, inclusive `lo` descending).
fn range_after_sql(scope_column: &str, descending: bool, under: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let under = if under {
        " AND doc > ?6 AND doc < ?7"
    } else {
        ""
    };
    let (from, to) = if descending {
        (
            format!("({scope_column}, field, kind, key, doc) < (?1, ?2, {KIND_VALUE}, ?3, ?4)"),
            format!("({scope_column}, field, kind, key) >= (?1, ?2, {KIND_VALUE}, ?5)"),
        )
    } else {
        (
            format!("({scope_column}, field, kind, key, doc) > (?1, ?2, {KIND_VALUE}, ?3, ?4)"),
            format!("({scope_column}, field, kind, key) < (?1, ?2, {KIND_VALUE}, ?5)"),
        )
    };
    format!(
        "SELECT doc FROM idx
         WHERE {from}
           AND {to}{under}
         ORDER BY {scope_column} {dir}, field {dir}, kind {dir}, key {dir}, doc {dir}"
    )
}

/// The entries of one exact key of one field's index, in document-key order within inclusive
/// bounds.
fn key_by_name_sql(scope_column: &str, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    format!(
        "SELECT doc FROM idx
         WHERE ({scope_column}, field, kind, key, doc) >= (?1, ?2, ?3, ?4, ?5)
           AND ({scope_column}, field, kind, key, doc) <= (?1, ?2, ?3, ?4, ?6)
         ORDER BY {scope_column} {dir}, field {dir}, kind {dir}, key {dir}, doc {dir}"
    )
}

/// Feeds the documents named by the rows (document keys) of an ordered statement to the
/// query's stream until it is satisfied.
fn stream_doc_keys(
    conn: &Connection,
    sql: &str,
    params: &[Sql],
    q: &PreparedQuery,
) -> Result<QueryPage, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(internal)?;
    let mut fetch = conn.prepare_cached(GET_DOCUMENT).map_err(internal)?;
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

/// An ordered scan of the scope's documents by key, within inclusive bounds.
fn names_sql(scope_column: &str, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    format!(
        "SELECT {DOC_COLUMNS} FROM docs
         WHERE ({scope_column}, key) >= (?1, ?2) AND ({scope_column}, key) <= (?1, ?3)
         ORDER BY {scope_column} {dir}, key {dir}"
    )
}

/// Feeds the rows of an ordered statement to the query's stream until it is satisfied.
fn stream_rows(
    conn: &Connection,
    sql: &str,
    params: &[Sql],
    q: &PreparedQuery,
) -> Result<QueryPage, StoreError> {
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
    stream.finish()
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// Ordered scans once re-prepared (re-parsed and re-planned) on every run, a third of a
    /// query's time, because their ORDER BY met an equality on a bound parameter.
    #[test]
    fn ordered_scans_are_not_re_prepared_per_run() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open_writer(dir.path()).unwrap();
        let blob = |b: u8| Sql::Blob(vec![b]);
        for descending in [false, true] {
            for (column, value) in [("parent", blob(1)), ("grp", Sql::Text("g".into()))] {
                for under in [false, true] {
                    let sql = range_sql(column, descending, under);
                    let mut params = vec![value.clone(), blob(2), blob(3), blob(4)];
                    if under {
                        params.extend([blob(5), blob(6)]);
                    }
                    let mut stmt = conn.prepare_cached(&sql).unwrap();
                    for round in 0..3u8 {
                        params[2] = blob(round);
                        let mut rows = stmt
                            .query(rusqlite::params_from_iter(params.iter()))
                            .unwrap();
                        while rows.next().unwrap().is_some() {}
                    }
                    assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
                    let sql = range_after_sql(column, descending, under);
                    let mut params = vec![value.clone(), blob(2), blob(3), blob(4), blob(5)];
                    if under {
                        params.extend([blob(6), blob(7)]);
                    }
                    let mut stmt = conn.prepare_cached(&sql).unwrap();
                    for round in 0..3u8 {
                        params[3] = blob(round);
                        let mut rows = stmt
                            .query(rusqlite::params_from_iter(params.iter()))
                            .unwrap();
                        while rows.next().unwrap().is_some() {}
                    }
                    assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
                }
                let sql = key_by_name_sql(column, descending);
                let mut stmt = conn.prepare_cached(&sql).unwrap();
                for round in 0..3u8 {
                    let params = [
                        value.clone(),
                        blob(1),
                        Sql::Integer(0),
                        blob(round),
                        blob(0),
                        blob(9),
                    ];
                    let mut rows = stmt
                        .query(rusqlite::params_from_iter(params.iter()))
                        .unwrap();
                    while rows.next().unwrap().is_some() {}
                }
                assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
                let sql = names_sql(column, descending);
                let mut stmt = conn.prepare_cached(&sql).unwrap();
                for round in 0..3u8 {
                    let mut rows = stmt
                        .query(rusqlite::params_from_iter(
                            [value.clone(), blob(round), blob(9)].iter(),
                        ))
                        .unwrap();
                    while rows.next().unwrap().is_some() {}
                }
                assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "{sql}");
            }
        }
    }
}
