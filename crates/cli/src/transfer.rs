//! What travels between stores beside documents, shared by `export`, `import` and `migrate`:
//! every system record — generically, whatever its namespace, so namespaces added later
//! (stored rules versions, …) come along with no change here — and the issuer's key ring.
//!
//! The key ring is carried on its own because it lives in different places: a file beside an
//! SQLite store (`<data_dir>/issuer/keys.json`, which the SQLite server reads; a record there
//! would be ignored), records of namespace `issuer_keys` in PostgreSQL. It is read from where
//! the source keeps it and written where the target's backend looks for it. The records of
//! namespace `issuer_keys` (the key ring and its lock lease) are therefore never carried as
//! records.
//!
//! Also here: paging through a store's records, and what makes a target "not empty".

use std::sync::Arc;

use anyhow::Context;
use claimdb_signin::store_keys::ISSUER_KEYS;
use claimdb_store::{Record, RecordCondition, Store};

use crate::issuer_keys::{key_file, ring_storage};
use crate::storage::Storage;

/// Records read per page.
pub(crate) const PAGE: usize = 1000;

/// Whether a record travels as a record (the key ring's records do not: see the module docs).
pub(crate) fn carried(record: &Record) -> bool {
    record.namespace != ISSUER_KEYS
}

/// The carried records of a store one by one, in (namespace, key) order, read a page at a
/// time.
pub(crate) struct Records<'a> {
    store: &'a dyn Store,
    after: Option<(String, String)>,
    page: std::vec::IntoIter<Record>,
    done: bool,
}

impl<'a> Records<'a> {
    pub(crate) fn new(store: &'a dyn Store) -> Records<'a> {
        Records {
            store,
            after: None,
            page: Vec::new().into_iter(),
            done: false,
        }
    }

    /// The next record, or `None` after the last.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Record>> {
        loop {
            if let Some(record) = self.page.by_ref().find(carried) {
                return Ok(Some(record));
            }
            if self.done {
                return Ok(None);
            }
            let at = self.after.as_ref().map(|(n, k)| (n.as_str(), k.as_str()));
            let page = self.store.scan_records(at, PAGE).await?;
            self.done = page.len() < PAGE;
            if let Some(last) = page.last() {
                self.after = Some((last.namespace.clone(), last.key.clone()));
            }
            self.page = page.into_iter();
        }
    }
}

/// Sets a record in `target` as it was in the source.
pub(crate) async fn put_record(target: &dyn Store, record: &Record) -> anyhow::Result<()> {
    target
        .put_record(
            &record.namespace,
            &record.key,
            Some(record.value.clone()),
            RecordCondition::Any,
        )
        .await
        .with_context(|| format!("writing record {}/{}", record.namespace, record.key))?;
    Ok(())
}

/// Copies every carried record of `source` into `target`; returns how many.
pub(crate) async fn copy_records(source: &dyn Store, target: &dyn Store) -> anyhow::Result<u64> {
    let mut records = Records::new(source);
    let mut copied = 0u64;
    while let Some(record) = records.next().await? {
        put_record(target, &record).await?;
        copied += 1;
    }
    Ok(copied)
}

/// How many carried records a store holds.
pub(crate) async fn count_records(store: &dyn Store) -> anyhow::Result<u64> {
    let mut records = Records::new(store);
    let mut n = 0u64;
    while records.next().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// The key ring of the store `storage` names (the key file's text), if it has one. Never
/// creates anything.
pub(crate) async fn load_key_ring(
    storage: &Storage,
    store: &Arc<dyn Store>,
) -> anyhow::Result<Option<String>> {
    if let Storage::Sqlite { dir, .. } = storage
        && !key_file(dir).exists()
    {
        return Ok(None);
    }
    let bytes = ring_storage(storage, store)?
        .load()
        .await
        .context("cannot read the issuer keys")?;
    bytes
        .map(|b| String::from_utf8(b).context("the issuer key file is not UTF-8 text"))
        .transpose()
}

/// Writes `text` as the key ring of the store `storage` names: the key file (0600, in a 0700
/// directory) beside an SQLite store, the key ring's record in PostgreSQL.
pub(crate) async fn save_key_ring(
    storage: &Storage,
    store: &Arc<dyn Store>,
    text: String,
) -> anyhow::Result<()> {
    let text = text.into_bytes();
    ring_storage(storage, store)?
        .update(&mut |_| Ok(Some(text.clone())))
        .await
        .context("cannot write the issuer keys")
}

/// Deletes the key file beside an SQLite store (a PostgreSQL key ring goes with the records).
pub(crate) fn remove_key_ring(storage: &Storage) -> anyhow::Result<()> {
    if let Storage::Sqlite { dir, .. } = storage {
        let file = key_file(dir);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot delete {}", file.display())),
        }
    }
    Ok(())
}

/// What a store already holds, in words (empty when it holds nothing): a document, a record
/// (any namespace, the key ring's included), a key file beside it.
pub(crate) async fn holdings(storage: &Storage, store: &dyn Store) -> anyhow::Result<Vec<String>> {
    let mut held = Vec::new();
    if let Some(doc) = store.scan(None, 1).await?.first() {
        held.push(format!("documents (such as {})", doc.path));
    }
    if let Some(r) = store.scan_records(None, 1).await?.first() {
        held.push(format!(
            "system records (such as {}/{})",
            r.namespace, r.key
        ));
    }
    if let Storage::Sqlite { dir, .. } = storage
        && key_file(dir).exists()
    {
        held.push(format!("a signing key ring ({})", key_file(dir).display()));
    }
    Ok(held)
}
