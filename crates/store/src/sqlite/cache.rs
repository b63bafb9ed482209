//! The system-records cache of the SQLite backend: `(namespace, key)` → the record's value or
//! its absence, so that the user-record read every authenticated request makes is a hash lookup
//! instead of a SQLite read transaction.
//!
//! Safe against the writer by a generation counter. The writer thread, after the COMMIT of a
//! group that changed records and before acknowledging any of its jobs, calls [`invalidate`]
//! for every record it changed: that bumps the generation and drops the entries. A reader that
//! misses notes the generation, reads SQLite, and [`fill`]s only if the generation is still the
//! one it noted — so a value read before a commit can never be stored after that commit's
//! invalidation. Hence every read that starts after a record write was acknowledged sees it.
//! (While a write is committed but not yet acknowledged, readers may see the old or the new
//! value, as they may for documents.)
//!
//! This relies on every record write going through this process's writer; `SqliteStore::open`
//! takes the data directory's lock so that no other process writes the database meanwhile.
//!
//! Bounded in entries and bytes; when full, an eighth of the entries is evicted at once (in the
//! hash map's randomly seeded order), so the sweep is paid once per many inserts.
//!
//! [`invalidate`]: RecordCache::invalidate
//! [`fill`]: RecordCache::fill

use std::collections::HashMap;
use std::sync::Mutex;

/// Most entries kept (present or absent records).
const MAX_ENTRIES: usize = 65_536;
/// Most bytes of namespaces, keys and values kept (about; per-entry overhead not counted).
const MAX_BYTES: usize = 8 << 20;
/// Values longer than this are not cached (user records are far smaller).
const MAX_VALUE: usize = 4096;

/// The generation a miss observed; pass it back to [`RecordCache::fill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generation(u64);

pub(super) enum Lookup {
    /// The record's value, or `None` if it is known not to exist.
    Hit(Option<String>),
    Miss(Generation),
}

#[derive(Default)]
pub(super) struct RecordCache {
    state: Mutex<State>,
}

/// One namespace's records: key → value (`None`: known absent).
type Records = HashMap<Box<str>, Option<Box<str>>>;

#[derive(Default)]
struct State {
    generation: u64,
    namespaces: HashMap<Box<str>, Records>,
    entries: usize,
    bytes: usize,
}

fn size(ns: &str, key: &str, value: Option<&str>) -> usize {
    ns.len() + key.len() + value.map_or(0, str::len)
}

impl RecordCache {
    pub(super) fn lookup(&self, ns: &str, key: &str) -> Lookup {
        let Ok(state) = self.state.lock() else {
            return Lookup::Miss(Generation(u64::MAX));
        };
        match state.namespaces.get(ns).and_then(|m| m.get(key)) {
            Some(value) => Lookup::Hit(value.as_deref().map(str::to_owned)),
            None => Lookup::Miss(Generation(state.generation)),
        }
    }

    /// Stores what a read that missed at `seen` found, unless a record changed since.
    pub(super) fn fill(&self, seen: Generation, ns: &str, key: &str, value: Option<&str>) {
        if value.is_some_and(|v| v.len() > MAX_VALUE) {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.generation != seen.0 {
            return;
        }
        let added = size(ns, key, value);
        if state.entries + 1 > MAX_ENTRIES || state.bytes + added > MAX_BYTES {
            state.evict();
        }
        let previous = state
            .namespaces
            .entry(ns.into())
            .or_default()
            .insert(key.into(), value.map(Into::into));
        match previous {
            Some(old) => state.bytes -= size(ns, key, old.as_deref()),
            None => state.entries += 1,
        }
        state.bytes += added;
    }

    /// Forgets a record that was just changed (call after its COMMIT, before acknowledging it).
    pub(super) fn invalidate(&self, ns: &str, key: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.generation += 1;
        let removed = state.namespaces.get_mut(ns).and_then(|m| m.remove(key));
        if let Some(old) = removed {
            state.entries -= 1;
            state.bytes -= size(ns, key, old.as_deref());
        }
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.entries, state.bytes)
    }
}

impl State {
    /// Drops about an eighth of the entries (at least one).
    fn evict(&mut self) {
        let mut budget = (self.entries / 8).max(1);
        let (mut entries, mut bytes) = (self.entries, self.bytes);
        for (ns, records) in &mut self.namespaces {
            records.retain(|key, value| {
                if budget == 0 {
                    return true;
                }
                budget -= 1;
                entries -= 1;
                bytes -= size(ns, key, value.as_deref());
                false
            });
        }
        self.namespaces.retain(|_, records| !records.is_empty());
        (self.entries, self.bytes) = (entries, bytes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn hit(cache: &RecordCache, ns: &str, key: &str) -> Option<Option<String>> {
        match cache.lookup(ns, key) {
            Lookup::Hit(v) => Some(v),
            Lookup::Miss(_) => None,
        }
    }

    fn miss(cache: &RecordCache, ns: &str, key: &str) -> Generation {
        match cache.lookup(ns, key) {
            Lookup::Miss(g) => g,
            Lookup::Hit(v) => panic!("expected a miss, found {v:?}"),
        }
    }

    #[test]
    fn caches_values_and_absence() {
        let cache = RecordCache::default();
        let g = miss(&cache, "users", "alice");
        cache.fill(g, "users", "alice", Some("{\"a\":1}"));
        let g = miss(&cache, "users", "bob");
        cache.fill(g, "users", "bob", None);
        assert_eq!(
            hit(&cache, "users", "alice"),
            Some(Some("{\"a\":1}".into()))
        );
        assert_eq!(hit(&cache, "users", "bob"), Some(None));
        assert!(hit(&cache, "sessions", "alice").is_none());
    }

    #[test]
    fn a_read_that_straddles_a_change_is_not_cached() {
        let cache = RecordCache::default();
        let g = miss(&cache, "users", "alice");
        // The writer commits a change and invalidates while the reader's SQLite read runs.
        cache.invalidate("users", "alice");
        cache.fill(g, "users", "alice", Some("old"));
        assert!(hit(&cache, "users", "alice").is_none());
        // A change to another record also refuses the fill (one generation for all records).
        let g = miss(&cache, "users", "alice");
        cache.invalidate("users", "bob");
        cache.fill(g, "users", "alice", Some("old"));
        assert!(hit(&cache, "users", "alice").is_none());
    }

    #[test]
    fn invalidate_drops_the_entry_and_its_accounting() {
        let cache = RecordCache::default();
        let g = miss(&cache, "users", "alice");
        cache.fill(g, "users", "alice", Some("value"));
        assert_eq!(cache.len(), (1, "users".len() + "alice".len() + 5));
        cache.invalidate("users", "alice");
        assert_eq!(cache.len(), (0, 0));
        assert!(hit(&cache, "users", "alice").is_none());
    }

    #[test]
    fn stays_within_its_bounds() {
        let cache = RecordCache::default();
        for i in 0..(MAX_ENTRIES + 1000) {
            let key = format!("user{i}");
            let g = miss(&cache, "users", &key);
            cache.fill(g, "users", &key, None);
        }
        let (entries, _) = cache.len();
        assert!(entries <= MAX_ENTRIES, "{entries}");
        assert!(entries > MAX_ENTRIES / 2, "{entries}");
        // Large values: the byte bound holds too; oversized values are not kept at all.
        let big = "x".repeat(MAX_VALUE);
        for i in 0..(MAX_BYTES / MAX_VALUE + 100) {
            let key = format!("big{i}");
            let g = miss(&cache, "users", &key);
            cache.fill(g, "users", &key, Some(&big));
        }
        let (_, bytes) = cache.len();
        assert!(bytes <= MAX_BYTES, "{bytes}");
        let g = miss(&cache, "users", "huge");
        cache.fill(g, "users", "huge", Some(&"y".repeat(MAX_VALUE + 1)));
        assert!(hit(&cache, "users", "huge").is_none());
    }
}
