//! Where claimdb's own signing keys live: with the embedded store, in `<data_dir>/issuer` (key
//! files, owner-only); with PostgreSQL, in the database's system records, so every node signs
//! with, publishes and rotates one key ring (a key ring found in the data directory is adopted
//! into an empty database, so tokens it signed stay valid).
//!
//! [`ring_storage`] names the same places for a store specification alone (`migrate`,
//! `export`, `import` carry the key ring from one store to another).
//!
//! The key storage is asynchronous: these functions are awaited on the command's (or the
//! server's) runtime like any other store call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use claimdb_signin::signing::KEY_FILE;
use claimdb_signin::{DirKeyStorage, Issuer, IssuerConfig, KeyStorage, StoreKeyStorage};
use claimdb_store::Store;

use crate::config::Config;
use crate::storage::Storage;

/// The key file beside an SQLite store in `dir`.
pub(crate) fn key_file(dir: &Path) -> PathBuf {
    dir.join("issuer").join(KEY_FILE)
}

/// Where the key ring of `storage` lives: `<dir>/issuer/keys.json` (0600, in a 0700 directory
/// created if missing) beside an SQLite store, `store`'s records with PostgreSQL. Unlike
/// [`key_storage`], no key ring is adopted from a data directory.
pub(crate) fn ring_storage(
    storage: &Storage,
    store: &Arc<dyn Store>,
) -> anyhow::Result<Arc<dyn KeyStorage>> {
    match storage {
        Storage::Sqlite { dir, .. } => {
            let dir = dir.join("issuer");
            Ok(Arc::new(DirKeyStorage::open(&dir).with_context(|| {
                format!("cannot open the issuer key directory {}", dir.display())
            })?))
        }
        Storage::Postgres(_) => Ok(Arc::new(StoreKeyStorage::new(store.clone()))),
    }
}

/// The key storage for this configuration; `store` is used when the storage is PostgreSQL.
pub(crate) async fn key_storage(
    config: &Config,
    store: Option<&Arc<dyn Store>>,
) -> anyhow::Result<Arc<dyn KeyStorage>> {
    let dir = config.data_dir.join("issuer");
    match (&config.storage, store) {
        (Storage::Postgres(_), Some(store)) => {
            let shared = StoreKeyStorage::new(store.clone());
            if dir.join(KEY_FILE).exists() {
                let local = DirKeyStorage::open(&dir).with_context(|| {
                    format!("cannot open the issuer key directory {}", dir.display())
                })?;
                if shared
                    .adopt(&local)
                    .await
                    .context("cannot move the issuer keys into the database")?
                {
                    tracing::info!(dir = %dir.display(), "adopted the local issuer keys into the database");
                }
            }
            Ok(Arc::new(shared))
        }
        _ => Ok(Arc::new(DirKeyStorage::open(&dir).with_context(|| {
            format!("cannot open the issuer key directory {}", dir.display())
        })?)),
    }
}

/// Opens (creating keys if there are none) claimdb's issuer over [`key_storage`].
pub(crate) async fn open_issuer(
    config: &Config,
    issuer: IssuerConfig,
    store: Option<&Arc<dyn Store>>,
) -> anyhow::Result<Arc<Issuer>> {
    let storage = key_storage(config, store).await?;
    Issuer::open(issuer, storage, SystemTime::now())
        .await
        .context("cannot load or create the issuer keys")
}

/// Whether the configured key storage holds any keys yet (without creating any).
pub(crate) async fn has_keys(
    config: &Config,
    store: Option<&Arc<dyn Store>>,
) -> anyhow::Result<bool> {
    match (&config.storage, store) {
        (Storage::Postgres(_), Some(store)) => Ok(StoreKeyStorage::new(store.clone())
            .load()
            .await
            .context("cannot read the issuer keys from the database")?
            .is_some()
            || config.data_dir.join("issuer").join(KEY_FILE).exists()),
        _ => Ok(config.data_dir.join("issuer").join(KEY_FILE).exists()),
    }
}
