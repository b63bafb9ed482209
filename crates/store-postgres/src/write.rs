//! Writes: commits, restores and system records. A commit or restore is one READ COMMITTED
//! transaction that first updates the counter row in `meta` — taking its lock, which serializes
//! every commit of every node — then reads the documents it touches (each later statement sees
//! everything committed before the lock was granted), checks read checks and preconditions and
//! applies the writes in memory through [`apply_write`], and stores the net change per document
//! with a few array statements sent together. Records are single conditional statements.

use std::collections::{BTreeSet, HashMap};

use claimdb_model::{DocPath, Timestamp};
use claimdb_store::index::{self, IndexEntry};
use claimdb_store::{
    CommitResult, Document, ReadCheck, RecordCondition, StoreError, Write, WriteResult, apply_write,
};
use deadpool_postgres::{Client, Transaction};

use crate::codec;
use crate::error::Failure;
use crate::schema::Sql;

/// The documents a transaction touches: what each was at the start, and what it is now.
struct Touched {
    before: HashMap<Vec<u8>, Document>,
    now: HashMap<Vec<u8>, Option<Document>>,
    /// Touched paths in first-touch order, so statements are built deterministically.
    order: Vec<DocPath>,
}

impl Touched {
    async fn load(
        tx: &Transaction<'_>,
        sql: &Sql,
        paths: impl Iterator<Item = &DocPath>,
    ) -> Result<Touched, Failure> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for p in paths {
            if seen.insert(p.sort_key()) {
                order.push(p.clone());
            }
        }
        let keys: Vec<Vec<u8>> = seen.into_iter().collect();
        let stmt = tx.prepare_cached(&sql.get_many).await?;
        let rows = tx.query(&stmt, &[&keys]).await?;
        let mut before = HashMap::with_capacity(rows.len());
        for row in &rows {
            before.insert(row.try_get(0)?, codec::read_document(row, 1)?);
        }
        Ok(Touched {
            before,
            now: HashMap::new(),
            order,
        })
    }

    fn current(&self, key: &[u8]) -> Option<&Document> {
        match self.now.get(key) {
            Some(now) => now.as_ref(),
            None => self.before.get(key),
        }
    }

    /// Stores the net change of every touched document: index entries removed and added,
    /// documents upserted and deleted, as four statements sent together.
    async fn store(self, tx: &Transaction<'_>, sql: &Sql) -> Result<(), Failure> {
        let mut idx_del: [Vec<Vec<u8>>; 4] = Default::default();
        let mut idx_del_kind: Vec<i16> = Vec::new();
        let mut idx_add: [Vec<Vec<u8>>; 4] = Default::default();
        let mut idx_add_kind: Vec<i16> = Vec::new();
        let mut idx_add_grp: Vec<String> = Vec::new();
        let mut up = UpsertColumns::default();
        let mut deleted: Vec<Vec<u8>> = Vec::new();
        for path in &self.order {
            let key = path.sort_key();
            let Some(now) = self.now.get(&key) else {
                continue;
            };
            let before = self.before.get(&key);
            let old: BTreeSet<IndexEntry> =
                before.map(|d| index::entries(&d.data)).unwrap_or_default();
            let new: BTreeSet<IndexEntry> = now
                .as_ref()
                .map(|d| index::entries(&d.data))
                .unwrap_or_default();
            let parent = path.parent().sort_key();
            for (field, kind, value) in old.difference(&new) {
                idx_del[0].push(parent.clone());
                idx_del[1].push(field.clone());
                idx_del_kind.push(i16::from(*kind));
                idx_del[2].push(value.clone());
                idx_del[3].push(key.clone());
            }
            for (field, kind, value) in new.difference(&old) {
                idx_add[0].push(parent.clone());
                idx_add[1].push(field.clone());
                idx_add_kind.push(i16::from(*kind));
                idx_add[2].push(value.clone());
                idx_add[3].push(key.clone());
                idx_add_grp.push(path.collection_id().to_owned());
            }
            match now {
                Some(doc) => up.push(path, key, doc)?,
                None if before.is_some() => deleted.push(key),
                None => {}
            }
        }
        let del_idx = async {
            if idx_del_kind.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&sql.idx_delete).await?;
            tx.execute(
                &stmt,
                &[
                    &idx_del[0],
                    &idx_del[1],
                    &idx_del_kind,
                    &idx_del[2],
                    &idx_del[3],
                ],
            )
            .await
        };
        let add_idx = async {
            if idx_add_kind.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&sql.idx_insert).await?;
            tx.execute(
                &stmt,
                &[
                    &idx_add[0],
                    &idx_add[1],
                    &idx_add_kind,
                    &idx_add[2],
                    &idx_add[3],
                    &idx_add_grp,
                ],
            )
            .await
        };
        let upsert = async {
            if up.key.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&sql.doc_upsert).await?;
            tx.execute(
                &stmt,
                &[
                    &up.key,
                    &up.parent,
                    &up.grp,
                    &up.path,
                    &up.data,
                    &up.exact,
                    &up.create_us,
                    &up.update_us,
                    &up.version,
                ],
            )
            .await
        };
        let delete = async {
            if deleted.is_empty() {
                return Ok(0);
            }
            let stmt = tx.prepare_cached(&sql.doc_delete).await?;
            tx.execute(&stmt, &[&deleted]).await
        };
        // Sent back to back on the one connection (pipelined), applied in this order.
        tokio::try_join!(del_idx, add_idx, upsert, delete)?;
        Ok(())
    }
}

/// The `docs` columns of upserted documents, as arrays for one `unnest` statement.
#[derive(Default)]
struct UpsertColumns {
    key: Vec<Vec<u8>>,
    parent: Vec<Vec<u8>>,
    grp: Vec<String>,
    path: Vec<String>,
    data: Vec<serde_json::Value>,
    exact: Vec<Option<Vec<u8>>>,
    create_us: Vec<i64>,
    update_us: Vec<i64>,
    version: Vec<i64>,
}

impl UpsertColumns {
    fn push(&mut self, path: &DocPath, key: Vec<u8>, doc: &Document) -> Result<(), StoreError> {
        let (data, exact) = codec::encode(&doc.data)?;
        self.key.push(key);
        self.parent.push(path.parent().sort_key());
        self.grp.push(path.collection_id().to_owned());
        self.path.push(path.as_str().to_owned());
        self.data.push(data);
        self.exact.push(exact);
        self.create_us.push(doc.create_time.micros());
        self.update_us.push(doc.update_time.micros());
        self.version.push(stored_version(path, doc.version)?);
        Ok(())
    }
}

fn stored_version(path: &DocPath, version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| {
        StoreError::InvalidArgument(format!(
            "document {path} has version {version}, above the largest storable"
        ))
    })
}

pub async fn commit(
    c: &mut Client,
    sql: &Sql,
    checks: &[ReadCheck],
    writes: &[Write],
) -> Result<CommitResult, Failure> {
    let tx = c.transaction().await?;
    let bump = tx.prepare_cached(&sql.bump).await?;
    let row = tx.query_one(&bump, &[]).await?;
    let version: i64 = row.try_get(0)?;
    let commit_us: i64 = row.try_get(1)?;
    let version = u64::try_from(version)
        .map_err(|_| StoreError::Internal("negative version counter".into()))?;
    let now = Timestamp::from_micros(commit_us)
        .map_err(|e| StoreError::Internal(format!("commit clock: {e}")))?;
    let mut touched = Touched::load(
        &tx,
        sql,
        checks
            .iter()
            .map(|c| &c.path)
            .chain(writes.iter().map(|w| &w.path)),
    )
    .await?;
    for check in checks {
        let current = touched.current(&check.path.sort_key()).map(|d| d.version);
        if current != check.version {
            return Err(StoreError::Aborted(format!(
                "{} changed while the request was being decided",
                check.path
            ))
            .into());
        }
    }
    let mut results = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        let at = |e: StoreError| {
            if writes.len() > 1 {
                StoreError::AtWrite {
                    index: i,
                    path: write.path.to_string(),
                    source: Box::new(e),
                }
            } else {
                e
            }
        };
        let key = write.path.sort_key();
        let current = touched.current(&key).cloned();
        let new = apply_write(current.as_ref(), write, now, version).map_err(at)?;
        if let Some(doc) = &new {
            stored_version(&doc.path, doc.version).map_err(at)?;
        }
        touched.now.insert(key, new.clone());
        results.push(WriteResult {
            path: write.path.clone(),
            document: new,
            existed: current.is_some(),
        });
    }
    touched.store(&tx, sql).await?;
    tx.commit().await.map_err(Failure::maybe_applied)?;
    Ok(CommitResult {
        commit_time: now,
        version,
        results,
    })
}

pub async fn restore(c: &mut Client, sql: &Sql, documents: &[Document]) -> Result<(), Failure> {
    let mut max_version = 0i64;
    let mut max_us = 0i64;
    for doc in documents {
        max_version = max_version.max(stored_version(&doc.path, doc.version)?);
        max_us = max_us.max(doc.update_time.micros());
    }
    let tx = c.transaction().await?;
    let raise = tx.prepare_cached(&sql.raise_counters).await?;
    tx.execute(&raise, &[&max_version, &max_us]).await?;
    let mut touched = Touched::load(&tx, sql, documents.iter().map(|d| &d.path)).await?;
    for doc in documents {
        touched.now.insert(doc.path.sort_key(), Some(doc.clone()));
    }
    touched.store(&tx, sql).await?;
    tx.commit().await.map_err(Failure::maybe_applied)?;
    Ok(())
}

/// Sets or deletes a record if `condition` holds, in one statement.
pub async fn put_record(
    c: &mut Client,
    sql: &Sql,
    ns: &str,
    key: &str,
    value: Option<&str>,
    condition: &RecordCondition,
) -> Result<bool, Failure> {
    let run = async |text: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]| {
        let stmt = c.prepare_cached(text).await?;
        c.execute(&stmt, params)
            .await
            .map_err(Failure::maybe_applied)
    };
    Ok(match (condition, value) {
        (RecordCondition::Any, Some(v)) => {
            run(&sql.record_upsert, &[&ns, &key, &v]).await?;
            true
        }
        (RecordCondition::Any, None) => {
            run(&sql.record_delete, &[&ns, &key]).await?;
            true
        }
        (RecordCondition::Absent, Some(v)) => {
            run(&sql.record_insert_absent, &[&ns, &key, &v]).await? == 1
        }
        // "Delete if absent" holds exactly when there is nothing to delete.
        (RecordCondition::Absent, None) => {
            let stmt = c.prepare_cached(&sql.record_get).await?;
            c.query_opt(&stmt, &[&ns, &key]).await?.is_none()
        }
        (RecordCondition::Equals(old), Some(v)) => {
            run(&sql.record_update_equals, &[&ns, &key, &v, old]).await? == 1
        }
        (RecordCondition::Equals(old), None) => {
            run(&sql.record_delete_equals, &[&ns, &key, old]).await? == 1
        }
    })
}
