//! Rules kept in the database: every version set through the admin API or the CLI, numbered
//! 1, 2, 3…, never changed once written, so any of them can be listed, read and rolled back
//! to (a rollback writes a new version with the old source). The newest version is the one in
//! force; every node reads the `head` record to follow it.
//!
//! Records, namespace [`NS_RULES`]: `v<version, 20 digits>` → a [`StoredRules`] as JSON, and
//! `head` → the newest version number. Versions are taken with "create if absent", so two
//! concurrent writers never share a number; `head` only moves forward. This file stores and
//! reads; compiling, authorizing and swapping rules in are the engine's (`admin.rs`).

use claimdb_store::{RecordCondition, Store};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// The record namespace of rules versions.
pub const NS_RULES: &str = "rules";
const HEAD: &str = "head";
/// Most versions one listing returns.
pub const MAX_VERSIONS_PAGE: usize = 100;

/// One stored version of the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRules {
    pub version: u64,
    /// Unix milliseconds when it was stored.
    pub created_ms: i64,
    /// Who or what stored it: `admin API`, `claimdb rules set`, `rollback to 3`, `file …`.
    pub author: String,
    pub source: String,
}

fn key(version: u64) -> String {
    format!("v{version:020}")
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("the stored rules {what} is corrupt: {e}"))
}

/// The newest stored version, if any.
pub async fn head(store: &dyn Store) -> Result<Option<u64>, EngineError> {
    match store.get_record(NS_RULES, HEAD).await? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e| corrupt("head", e)),
    }
}

/// One version, if stored.
pub async fn get(store: &dyn Store, version: u64) -> Result<Option<StoredRules>, EngineError> {
    match store.get_record(NS_RULES, &key(version)).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| corrupt(&format!("version {version}"), e)),
    }
}

/// Up to `limit` versions older than `before` (default: all), newest first.
pub async fn list(
    store: &dyn Store,
    before: Option<u64>,
    limit: usize,
) -> Result<Vec<StoredRules>, EngineError> {
    let limit = limit.clamp(1, MAX_VERSIONS_PAGE);
    let Some(newest) = head(store).await? else {
        return Ok(Vec::new());
    };
    let top = before.map_or(newest, |b| b.saturating_sub(1).min(newest));
    if top == 0 {
        return Ok(Vec::new());
    }
    // Keys are zero-padded, so the records after `key(first - 1)` come in version order.
    let first = top.saturating_sub(limit as u64 - 1).max(1);
    let after = key(first - 1);
    let mut out = Vec::with_capacity(limit);
    for (k, text) in store.list_records(NS_RULES, Some(&after), limit).await? {
        if !k.starts_with('v') {
            continue;
        }
        let r: StoredRules = serde_json::from_str(&text).map_err(|e| corrupt(&k, e))?;
        if r.version <= top {
            out.push(r);
        }
    }
    out.reverse();
    Ok(out)
}

/// Stores `source` (already compiled by the caller) as the next version and makes it the
/// newest. Returns what was stored.
pub async fn save(
    store: &dyn Store,
    source: &str,
    author: &str,
    now_ms: i64,
) -> Result<StoredRules, EngineError> {
    let mut version = head(store).await?.unwrap_or(0) + 1;
    let stored = loop {
        let rules = StoredRules {
            version,
            created_ms: now_ms,
            author: author.to_owned(),
            source: source.to_owned(),
        };
        let text = serde_json::to_string(&rules)
            .map_err(|e| EngineError::internal(format!("encoding rules: {e}")))?;
        if store
            .put_record(NS_RULES, &key(version), Some(text), RecordCondition::Absent)
            .await?
        {
            break rules;
        }
        // Taken by a concurrent writer: the next number.
        version += 1;
    };
    // Move `head` forward to this version unless a concurrent writer already moved it further.
    for _ in 0..64 {
        let current = store.get_record(NS_RULES, HEAD).await?;
        let condition = match &current {
            None => RecordCondition::Absent,
            Some(text) => {
                let at: u64 = text.parse().map_err(|e| corrupt("head", e))?;
                if at >= version {
                    return Ok(stored);
                }
                RecordCondition::Equals(text.clone())
            }
        };
        if store
            .put_record(NS_RULES, HEAD, Some(version.to_string()), condition)
            .await?
        {
            return Ok(stored);
        }
    }
    Err(EngineError::Aborted {
        message: "the stored rules kept changing concurrently; try again".into(),
        write_index: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_store::SqliteStore;

    #[tokio::test]
    async fn versions_are_numbered_listed_newest_first_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(head(&store).await.unwrap(), None);
        assert!(list(&store, None, 10).await.unwrap().is_empty());
        for i in 1..=12 {
            let s = save(&store, &format!("src {i}"), "test", i).await.unwrap();
            assert_eq!(s.version, i as u64);
        }
        assert_eq!(head(&store).await.unwrap(), Some(12));
        let page = list(&store, None, 5).await.unwrap();
        let versions: Vec<u64> = page.iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![12, 11, 10, 9, 8]);
        let next = list(&store, Some(8), 5).await.unwrap();
        let versions: Vec<u64> = next.iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![7, 6, 5, 4, 3]);
        let last = list(&store, Some(3), 5).await.unwrap();
        let versions: Vec<u64> = last.iter().map(|r| r.version).collect();
        assert_eq!(versions, vec![2, 1]);
        assert!(list(&store, Some(1), 5).await.unwrap().is_empty());
        assert_eq!(get(&store, 4).await.unwrap().unwrap().source, "src 4");
        assert_eq!(get(&store, 13).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_saves_get_distinct_versions_and_head_is_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(SqliteStore::open(dir.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                save(&*store, &format!("src {i}"), "test", 0)
                    .await
                    .unwrap()
                    .version
            }));
        }
        let mut versions = Vec::new();
        for t in tasks {
            versions.push(t.await.unwrap());
        }
        versions.sort_unstable();
        assert_eq!(versions, (1..=8).collect::<Vec<u64>>());
        assert_eq!(head(&*store).await.unwrap(), Some(8));
    }
}
