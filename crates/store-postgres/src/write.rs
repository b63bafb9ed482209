//! Writes: the pieces of a commit, restores and system records. A transaction that writes
//! documents first updates the counter row in `meta` — taking its lock, which serializes every
//! commit of every node — then reads the documents it touches (each later statement of a READ
//! COMMITTED transaction sees everything committed before the lock was granted), applies commits
//! in memory ([`apply_commit`]: read checks, preconditions, [`apply_write`]) and stores the net
//! change per document with a few array statements sent together ([`NetChange`]). The group
//! committer (`group`) runs many commits in one such transaction; [`commit`] runs one alone.
//! Either stores each commit's change feed row in the same transaction (see `feed`), and, when
//! the node keeps history, every version a commit replaced or deleted that existed before it
//! (copied from `docs` when it is the stored row, else encoded: a version an earlier commit of
//! the same group made). Records are single conditional statements.

use std::collections::{BTreeSet, HashMap, HashSet};

use claimdb_model::{DocPath, Timestamp};
use claimdb_store::index::{self, IndexEntry};
use claimdb_store::{
    CommitResult, Document, ReadCheck, RecordCondition, StoreError, Write, WriteResult, apply_write,
};
use deadpool_postgres::{Client, GenericClient};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::codec;
use crate::error::Failure;
use crate::feed::FeedRows;
use crate::schema::Sql;

/// The documents a transaction touches: what each was at the start, and what it is now.
#[derive(Default)]
pub(crate) struct Touched {
    /// Whether the versions commits replace are kept (`history`).
    keep_history: bool,
    /// The versions commits replaced, each with the replacing commit's time (µs).
    replaced: Vec<(Document, i64)>,
    /// The keys read from the database so far (whether or not a document was there).
    loaded: HashSet<Vec<u8>>,
    before: HashMap<Vec<u8>, Document>,
    now: HashMap<Vec<u8>, Option<Document>>,
    /// Changed paths in first-change order, so statements are built deterministically.
    order: Vec<DocPath>,
}

impl Touched {
    /// Nothing touched yet; `keep_history` says whether replaced versions are kept.
    pub(crate) fn new(keep_history: bool) -> Self {
        Touched {
            keep_history,
            ..Touched::default()
        }
    }

    /// The keys among `paths` not loaded yet, each once.
    pub(crate) fn missing<'a>(&self, paths: impl Iterator<Item = &'a DocPath>) -> Vec<Vec<u8>> {
        let mut keys = BTreeSet::new();
        for p in paths {
            let key = p.sort_key();
            if !self.loaded.contains(&key) {
                keys.insert(key);
            }
        }
        keys.into_iter().collect()
    }

    /// Records what the database held at `keys`: `rows` are `get_many`'s answer for them.
    pub(crate) fn loaded(&mut self, keys: Vec<Vec<u8>>, rows: &[Row]) -> Result<(), Failure> {
        for row in rows {
            self.before
                .insert(row.try_get(0)?, codec::read_document(row, 1)?);
        }
        self.loaded.extend(keys);
        Ok(())
    }

    /// Loads the documents at `paths` that are not loaded yet, in one statement.
    async fn load<'a>(
        &mut self,
        c: &impl GenericClient,
        sql: &Sql,
        paths: impl Iterator<Item = &'a DocPath>,
    ) -> Result<(), Failure> {
        let keys = self.missing(paths);
        if keys.is_empty() {
            return Ok(());
        }
        let stmt = c.prepare_cached(&sql.get_many).await?;
        let rows = c.query(&stmt, &[&keys]).await?;
        self.loaded(keys, &rows)
    }

    fn current(&self, key: &[u8]) -> Option<&Document> {
        match self.now.get(key) {
            Some(now) => now.as_ref(),
            None => self.before.get(key),
        }
    }

    /// Sets what the document at `path` is now.
    fn set(&mut self, path: &DocPath, key: Vec<u8>, doc: Option<Document>) {
        if self.now.insert(key, doc).is_none() {
            self.order.push(path.clone());
        }
    }

    /// The net change of every touched document as statement parameters: index entries removed
    /// and added, documents upserted and deleted.
    pub(crate) fn net_change(&self) -> Result<NetChange, StoreError> {
        let mut change = NetChange::default();
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
                change.idx_del[0].push(parent.clone());
                change.idx_del[1].push(field.clone());
                change.idx_del_kind.push(i16::from(*kind));
                change.idx_del[2].push(value.clone());
                change.idx_del[3].push(key.clone());
            }
            for (field, kind, value) in new.difference(&old) {
                change.idx_add[0].push(parent.clone());
                change.idx_add[1].push(field.clone());
                change.idx_add_kind.push(i16::from(*kind));
                change.idx_add[2].push(value.clone());
                change.idx_add[3].push(key.clone());
                change.idx_add_grp.push(path.collection_id().to_owned());
            }
            match now {
                Some(doc) => change.up.push(path, key, doc)?,
                None if before.is_some() => change.deleted.push(key),
                None => {}
            }
        }
        for (old, valid_to) in &self.replaced {
            let key = old.path.sort_key();
            // The stored row is copied by the server; a version made in this transaction is
            // not in `docs`, so it is sent.
            if self
                .before
                .get(&key)
                .is_some_and(|b| b.version == old.version)
            {
                change.copied.0.push(key);
                change.copied.1.push(*valid_to);
            } else {
                change.kept.push(&old.path, key, old)?;
                change.kept_valid_to.push(*valid_to);
            }
        }
        Ok(change)
    }
}

/// The net change of a transaction, as the parameters of at most four array statements.
#[derive(Default)]
pub(crate) struct NetChange {
    idx_del: [Vec<Vec<u8>>; 4],
    idx_del_kind: Vec<i16>,
    idx_add: [Vec<Vec<u8>>; 4],
    idx_add_kind: Vec<i16>,
    idx_add_grp: Vec<String>,
    up: UpsertColumns,
    deleted: Vec<Vec<u8>>,
    /// Replaced versions stored in `docs`, to copy into `history`: keys and replacing times.
    copied: (Vec<Vec<u8>>, Vec<i64>),
    /// Replaced versions that never reached `docs`, and their replacing times.
    kept: UpsertColumns,
    kept_valid_to: Vec<i64>,
}

/// The prepared statements a [`NetChange`] needs (only those it needs).
pub(crate) struct ChangeStatements {
    idx_delete: Option<Statement>,
    idx_insert: Option<Statement>,
    history_copy: Option<Statement>,
    history_insert: Option<Statement>,
    doc_upsert: Option<Statement>,
    doc_delete: Option<Statement>,
}

impl NetChange {
    /// Prepares (or finds in the connection's cache) the statements [`NetChange::send`] runs.
    /// Done before sending anything, so that `send`'s statements go out back to back, in order,
    /// with nothing waited for in between.
    pub(crate) async fn prepare(
        &self,
        c: &impl GenericClient,
        sql: &Sql,
    ) -> Result<ChangeStatements, tokio_postgres::Error> {
        let prepare = async |needed: bool, text: &str| -> Result<Option<Statement>, _> {
            if needed {
                c.prepare_cached(text).await.map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(ChangeStatements {
            idx_delete: prepare(!self.idx_del_kind.is_empty(), &sql.idx_delete).await?,
            idx_insert: prepare(!self.idx_add_kind.is_empty(), &sql.idx_insert).await?,
            history_copy: prepare(!self.copied.0.is_empty(), &sql.history_copy).await?,
            history_insert: prepare(!self.kept.key.is_empty(), &sql.history_insert).await?,
            doc_upsert: prepare(!self.up.key.is_empty(), &sql.doc_upsert).await?,
            doc_delete: prepare(!self.deleted.is_empty(), &sql.doc_delete).await?,
        })
    }

    /// Runs the statements, sent back to back on the one connection (pipelined) and applied in
    /// this order (replaced rows copied to `history` before `docs` changes); the first error if
    /// any failed.
    pub(crate) async fn send(
        &self,
        c: &impl GenericClient,
        stmts: &ChangeStatements,
    ) -> Result<(), tokio_postgres::Error> {
        let run = async |stmt: &Option<Statement>,
                         params: &[&(dyn ToSql + Sync)]|
               -> Result<u64, tokio_postgres::Error> {
            match stmt {
                Some(stmt) => c.execute(stmt, params).await,
                None => Ok(0),
            }
        };
        let idx_del: [&(dyn ToSql + Sync); 5] = [
            &self.idx_del[0],
            &self.idx_del[1],
            &self.idx_del_kind,
            &self.idx_del[2],
            &self.idx_del[3],
        ];
        let idx_add: [&(dyn ToSql + Sync); 6] = [
            &self.idx_add[0],
            &self.idx_add[1],
            &self.idx_add_kind,
            &self.idx_add[2],
            &self.idx_add[3],
            &self.idx_add_grp,
        ];
        let up: [&(dyn ToSql + Sync); 9] = [
            &self.up.key,
            &self.up.parent,
            &self.up.grp,
            &self.up.path,
            &self.up.data,
            &self.up.exact,
            &self.up.create_us,
            &self.up.update_us,
            &self.up.version,
        ];
        let deleted: [&(dyn ToSql + Sync); 1] = [&self.deleted];
        let copied: [&(dyn ToSql + Sync); 2] = [&self.copied.0, &self.copied.1];
        let k = &self.kept;
        let kept: [&(dyn ToSql + Sync); 10] = [
            &k.key,
            &self.kept_valid_to,
            &k.update_us,
            &k.parent,
            &k.grp,
            &k.path,
            &k.data,
            &k.exact,
            &k.create_us,
            &k.version,
        ];
        let (a, b, hc, hi, u, d) = tokio::join!(
            biased;
            run(&stmts.idx_delete, &idx_del),
            run(&stmts.idx_insert, &idx_add),
            run(&stmts.history_copy, &copied),
            run(&stmts.history_insert, &kept),
            run(&stmts.doc_upsert, &up),
            run(&stmts.doc_delete, &deleted),
        );
        a.and(b).and(hc).and(hi).and(u).and(d).map(|_| ())
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

/// What a commit stamps on the documents it writes: its version and commit time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub version: u64,
    pub time: Timestamp,
}

impl Stamp {
    /// The stamp in a row of the counter statements (`version`, `commit_us`).
    pub(crate) fn from_row(row: &Row) -> Result<Stamp, Failure> {
        let version: i64 = row.try_get(0)?;
        let commit_us: i64 = row.try_get(1)?;
        Ok(Stamp {
            version: u64::try_from(version)
                .map_err(|_| StoreError::Internal("negative version counter".into()))?,
            time: Timestamp::from_micros(commit_us)
                .map_err(|e| StoreError::Internal(format!("commit clock: {e}")))?,
        })
    }
}

/// Applies one commit to `touched` in memory, every document it names being loaded: checks its
/// read checks, then applies its writes in order. All or nothing: on an error `touched` is as
/// before.
pub(crate) fn apply_commit(
    touched: &mut Touched,
    checks: &[ReadCheck],
    writes: &[Write],
    stamp: Stamp,
) -> Result<CommitResult, StoreError> {
    for check in checks {
        let current = touched.current(&check.path.sort_key()).map(|d| d.version);
        if current != check.version {
            return Err(StoreError::Aborted(format!(
                "{} changed while the request was being decided",
                check.path
            )));
        }
    }
    // This commit's changes, kept apart until every write has applied.
    let mut mine: HashMap<Vec<u8>, Option<Document>> = HashMap::new();
    let mut results = Vec::with_capacity(writes.len());
    for (i, write) in writes.iter().enumerate() {
        let at = |e: StoreError| e.at_write(writes.len(), i, &write.path);
        let key = write.path.sort_key();
        let current = match mine.get(&key) {
            Some(doc) => doc.clone(),
            None => touched.current(&key).cloned(),
        };
        let new = apply_write(current.as_ref(), write, stamp.time, stamp.version).map_err(at)?;
        if let Some(doc) = &new {
            stored_version(&doc.path, doc.version).map_err(at)?;
        }
        mine.insert(key, new.clone());
        results.push(WriteResult {
            path: write.path.clone(),
            document: new,
            existed: current.is_some(),
        });
    }
    for write in writes {
        let key = write.path.sort_key();
        if let Some(doc) = mine.remove(&key) {
            if touched.keep_history
                && let Some(old) = touched.current(&key)
            {
                touched.replaced.push((old.clone(), stamp.time.micros()));
            }
            touched.set(&write.path, key, doc);
        }
    }
    Ok(CommitResult {
        commit_time: stamp.time,
        version: stamp.version,
        results,
    })
}

/// Applies one commit in a transaction of its own (the group committer's fallback, see
/// `group`): takes the counter row, loads, checks and applies in memory, stores.
pub(crate) async fn commit(
    c: &mut Client,
    sql: &Sql,
    checks: &[ReadCheck],
    writes: &[Write],
    keep_history: bool,
) -> Result<CommitResult, Failure> {
    let tx = c.transaction().await?;
    let bump = tx.prepare_cached(&sql.bump).await?;
    let stamp = Stamp::from_row(&tx.query_one(&bump, &[&keep_history]).await?)?;
    let mut touched = Touched::new(keep_history);
    touched
        .load(
            &tx,
            sql,
            checks
                .iter()
                .map(|c| &c.path)
                .chain(writes.iter().map(|w| &w.path)),
        )
        .await?;
    let result = apply_commit(&mut touched, checks, writes, stamp)?;
    let change = touched.net_change()?;
    let stmts = change.prepare(&tx, sql).await?;
    change.send(&tx, &stmts).await?;
    let mut feed = FeedRows::default();
    feed.push(&result)?;
    let feed_insert = tx.prepare_cached(&sql.feed_insert).await?;
    tx.execute(&feed_insert, &feed.params()).await?;
    tx.commit().await.map_err(Failure::maybe_applied)?;
    Ok(result)
}

pub(crate) async fn restore(
    c: &mut Client,
    sql: &Sql,
    documents: &[Document],
) -> Result<(), Failure> {
    let mut max_version = 0i64;
    let mut max_us = 0i64;
    for doc in documents {
        max_version = max_version.max(stored_version(&doc.path, doc.version)?);
        max_us = max_us.max(doc.update_time.micros());
    }
    let tx = c.transaction().await?;
    let raise = tx.prepare_cached(&sql.raise_counters).await?;
    tx.execute(&raise, &[&max_version, &max_us]).await?;
    // Restored documents carry their own times and replace without history: reads at a time
    // before the restore would be wrong, so they are refused from now on.
    let restored = tx.prepare_cached(&sql.history_restored).await?;
    tx.execute(&restored, &[&max_us]).await?;
    let mut touched = Touched::default();
    touched
        .load(&tx, sql, documents.iter().map(|d| &d.path))
        .await?;
    for doc in documents {
        touched.set(&doc.path, doc.path.sort_key(), Some(doc.clone()));
    }
    let change = touched.net_change()?;
    let stmts = change.prepare(&tx, sql).await?;
    change.send(&tx, &stmts).await?;
    tx.commit().await.map_err(Failure::maybe_applied)?;
    Ok(())
}

/// Sets or deletes a record if `condition` holds, in one statement.
pub(crate) async fn put_record(
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
