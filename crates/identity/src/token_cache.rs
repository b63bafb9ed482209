//! The verified-token cache: the exact token bytes → the verified result, bounded in bytes
//! (and in entries), each entry dead at the token's `exp` (plus the provider's skew). Sharded so
//! that concurrent requests rarely meet on one lock.
//!
//! Keying: a token is found by a fast keyed hash (foldhash, seeded from aws-lc's CSPRNG once per
//! process and per cache) and a hit requires **byte-for-byte equality with the stored token**.
//! That is strictly stronger than the earlier design (SHA-256 of the token as the key, equal
//! digests taken as equal tokens) and much cheaper: SHA-256 over a ~1 KB token was most of a
//! hit's cost, the hash here is a few dozen nanoseconds. The hash only picks a shard and a
//! bucket, so its quality bounds speed, never correctness. Flooding is not a concern either:
//! only tokens that verified are ever stored, so an attacker cannot choose the stored bytes to
//! make buckets collide, and a lookup with a forged token costs one hash and one probe.
//!
//! Size: each entry keeps its token (up to 16 KiB) and its decoded claims, so a bound on the
//! number of entries is no bound on memory (40,000 tokens of 16 KiB once took 1.2 GB). Every
//! entry is charged what it holds on the heap — the token's bytes, every string, array and map
//! node of its claims, its uid, provider, roles and key id, its table slot, and the allocator's
//! bookkeeping per block ([`entry_cost`]) — when it is inserted, outside any lock, and a shard
//! evicts (the dead first, then the soonest to expire) to stay within its share of the budget.
//! The hit path is unchanged by the accounting: one hash, one read lock, one probe.
//!
//! A hit is not a verdict: the verifier still checks expiry and that the signing key is still
//! published. This file only stores and finds.

use std::hash::BuildHasher;
use std::mem::size_of;
use std::sync::{Arc, OnceLock, RwLock};

use foldhash::SharedSeed;
use foldhash::quality::SeedableRandomState;
use hashbrown::HashTable;
use serde_json::{Map, Value};

use crate::claims::VerifiedToken;

const SHARDS: usize = 16;

/// When a shard is full, evict until this fraction of its budget (in bytes and in entries) is
/// free, so that the sort behind an eviction is paid once per many inserts, not on every one.
const EVICT_DIVISOR: usize = 8;

/// A cached verification.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub token: Arc<VerifiedToken>,
    pub provider_index: usize,
    pub kid: Option<Arc<str>>,
    /// Unix seconds after which the entry is dead (`exp` + skew).
    pub dead_at: i64,
}

/// 64 bytes: one cache line per slot. The token's hash is not kept (the table's control bytes
/// hold 7 of its bits for probing); a table that grows hashes its tokens again.
struct Slot {
    /// The exact token this entry was verified from; a hit must equal it byte for byte.
    token: Box<str>,
    entry: Entry,
    /// Heap bytes this entry holds ([`entry_cost`]).
    cost: usize,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Slot>,
    /// The sum of the slots' costs.
    bytes: usize,
}

/// Where a token lives in the cache: its keyed hash, computed once per verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u64);

pub(crate) struct TokenCache {
    hasher: SeedableRandomState,
    shards: Box<[RwLock<Shard>]>,
    per_shard_bytes: usize,
    per_shard_entries: usize,
}

/// A random 64-bit value from aws-lc's CSPRNG; falls back to foldhash's own per-instance
/// randomness if the CSPRNG fails (the seed is defence in depth, see the file comment).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    match aws_lc_rs::rand::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => foldhash::quality::RandomState::default().hash_one(0u8),
    }
}

fn shared_seed() -> &'static SharedSeed {
    static SEED: OnceLock<SharedSeed> = OnceLock::new();
    SEED.get_or_init(|| SharedSeed::from_u64(random_u64()))
}

impl TokenCache {
    /// A cache of at most `max_bytes` (as [`entry_cost`] counts them) and `max_entries`
    /// entries; either at 0 disables it.
    pub(crate) fn new(max_bytes: usize, max_entries: usize) -> Self {
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        Self {
            hasher: SeedableRandomState::with_seed(random_u64(), shared_seed()),
            shards,
            per_shard_bytes: max_bytes / SHARDS,
            per_shard_entries: max_entries.div_ceil(SHARDS),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.per_shard_bytes > 0 && self.per_shard_entries > 0
    }

    pub(crate) fn key(&self, token: &str) -> Key {
        Key(self.hasher.hash_one(token))
    }

    fn shard(&self, k: Key) -> &RwLock<Shard> {
        // The table uses the low bits and the top 7; pick the shard from bits in between.
        #[allow(clippy::cast_possible_truncation)]
        let i = (k.0 >> 32) as usize % SHARDS;
        &self.shards[i]
    }

    /// The entry stored for exactly this token.
    pub(crate) fn get(&self, token: &str, k: Key) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        let shard = self.shard(k).read().ok()?;
        shard
            .table
            .find(k.0, |s| *s.token == *token)
            .map(|s| s.entry.clone())
    }

    pub(crate) fn remove(&self, token: &str, k: Key) {
        if let Ok(mut s) = self.shard(k).write()
            && let Ok(found) = s.table.find_entry(k.0, |s| *s.token == *token)
        {
            let (slot, _) = found.remove();
            s.bytes -= slot.cost;
        }
    }

    pub(crate) fn insert(&self, token: &str, k: Key, e: Entry, now: i64) {
        if !self.enabled() {
            return;
        }
        let cost = entry_cost(token, &e);
        if cost > self.per_shard_bytes {
            // Larger than a shard's whole share: never cached.
            return;
        }
        let Ok(mut s) = self.shard(k).write() else {
            return;
        };
        let s = &mut *s;
        if let Ok(mut found) = s.table.find_entry(k.0, |s| *s.token == *token) {
            let slot = found.get_mut();
            s.bytes = s.bytes - slot.cost + cost;
            slot.entry = e;
            slot.cost = cost;
            return;
        }
        if s.bytes + cost > self.per_shard_bytes || s.table.len() >= self.per_shard_entries {
            evict(
                s,
                self.per_shard_bytes
                    .saturating_sub(self.per_shard_bytes / EVICT_DIVISOR)
                    .saturating_sub(cost),
                self.per_shard_entries
                    .saturating_sub(self.per_shard_entries / EVICT_DIVISOR)
                    .min(self.per_shard_entries - 1),
                now,
            );
        }
        s.bytes += cost;
        let hasher = &self.hasher;
        s.table.insert_unique(
            k.0,
            Slot {
                token: token.into(),
                entry: e,
                cost,
            },
            |slot| hasher.hash_one(&*slot.token),
        );
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.read().ok().map(|s| s.table.len()))
            .sum()
    }

    /// The bytes the entries hold, as [`entry_cost`] counts them.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.read().ok().map(|s| s.bytes))
            .sum()
    }
}

/// Makes room in a full shard: drops the dead, then the live entries that expire soonest until
/// it holds at most `bytes` and `entries`.
fn evict(s: &mut Shard, bytes: usize, entries: usize, now: i64) {
    let mut freed = 0;
    s.table.retain(|slot| {
        let live = slot.entry.dead_at > now;
        if !live {
            freed += slot.cost;
        }
        live
    });
    s.bytes -= freed;
    if s.bytes <= bytes && s.table.len() <= entries {
        return;
    }
    let mut by_expiry: Vec<(i64, usize)> = s
        .table
        .iter()
        .map(|slot| (slot.entry.dead_at, slot.cost))
        .collect();
    by_expiry.sort_unstable();
    // The soonest-expiring entries go until both bounds hold: all of those before the cutoff,
    // and of those at the cutoff, only as many as needed.
    let (mut left_bytes, mut left) = (s.bytes, s.table.len());
    let mut cutoff = i64::MIN;
    let mut at_cutoff = 0;
    for (dead_at, cost) in by_expiry {
        if left_bytes <= bytes && left <= entries {
            break;
        }
        if dead_at != cutoff {
            cutoff = dead_at;
            at_cutoff = 0;
        }
        at_cutoff += 1;
        left_bytes -= cost;
        left -= 1;
    }
    let mut freed = 0;
    s.table.retain(|slot| {
        let d = slot.entry.dead_at;
        let drop = d < cutoff || (d == cutoff && at_cutoff > 0);
        if drop {
            if d == cutoff {
                at_cutoff -= 1;
            }
            freed += slot.cost;
        }
        !drop
    });
    s.bytes -= freed;
}

/// What an allocator keeps per heap block beyond the bytes asked for (glibc malloc: an 8-byte
/// header and 16-byte rounding), charged once per allocation.
const BLOCK: usize = 16;

/// The heap bytes one cache entry holds: its table slot (with the table's control byte and
/// spare capacity at hashbrown's 7/8 load), the token's bytes, the shared verified token (its
/// `Arc` block with both counters, uid, provider, roles) and its claims, and the key id.
pub(crate) fn entry_cost(token: &str, e: &Entry) -> usize {
    let slot = (size_of::<Slot>() + 1) * 8 / 7;
    let t = &e.token;
    let verified = 2 * size_of::<usize>()
        + size_of::<VerifiedToken>()
        + BLOCK
        + string_cost(&t.uid)
        + string_cost(&t.provider)
        + t.roles.capacity() * size_of::<String>()
        + t.roles.iter().map(string_cost).sum::<usize>()
        + BLOCK
        + map_cost(&t.claims)
        // The rules' view (`rules_auth`) holds the claims' keys and values again.
        + BLOCK
        + map_cost(&t.claims);
    let kid = e
        .kid
        .as_ref()
        .map_or(0, |k| 2 * size_of::<usize>() + k.len() + BLOCK);
    slot + token.len() + BLOCK + verified + kid
}

fn string_cost(s: &String) -> usize {
    if s.capacity() == 0 {
        0
    } else {
        s.capacity() + BLOCK
    }
}

/// A `serde_json` object is a B-tree (no `preserve_order`): each entry is a key and a value in
/// a node of up to 11, nodes about two-thirds full on average, each node a block.
fn map_cost(m: &Map<String, Value>) -> usize {
    const PER_ENTRY: usize = (size_of::<String>() + size_of::<Value>()) * 3 / 2 + BLOCK / 4;
    m.iter()
        .map(|(k, v)| PER_ENTRY + string_cost(k) + value_cost(v))
        .sum()
}

fn value_cost(v: &Value) -> usize {
    match v {
        Value::String(s) => string_cost(s),
        Value::Array(items) => {
            items.capacity() * size_of::<Value>()
                + BLOCK
                + items.iter().map(value_cost).sum::<usize>()
        }
        Value::Object(m) => map_cost(m),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dead_at: i64) -> Entry {
        let token = VerifiedToken::new(
            "u".into(),
            serde_json::Map::new(),
            "p".into(),
            Vec::new(),
            None,
            dead_at,
        );
        Entry {
            token: Arc::new(token),
            provider_index: 0,
            kid: None,
            dead_at,
        }
    }

    fn put(cache: &TokenCache, token: &str, dead_at: i64, now: i64) {
        cache.insert(token, cache.key(token), entry(dead_at), now);
    }

    fn has(cache: &TokenCache, token: &str) -> bool {
        cache.get(token, cache.key(token)).is_some()
    }

    #[test]
    fn stays_bounded_and_evicts_the_dead_first() {
        let cache = TokenCache::new(usize::MAX, 64);
        for i in 0..10_000i64 {
            put(&cache, &format!("t{i}"), 1_000 + i, 0);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        // The most recent, longest-lived tokens are the ones kept.
        assert!(has(&cache, "t9999"));
        assert!(!has(&cache, "t0"));
        // Live entries survive eviction of dead ones.
        let cache = TokenCache::new(usize::MAX, 64);
        put(&cache, "live", 10_000, 0);
        for i in 0..1_000i64 {
            put(&cache, &format!("d{i}"), 5, 6);
        }
        assert!(has(&cache, "live"));
        assert!(!TokenCache::new(usize::MAX, 0).enabled());
        assert!(!has(&TokenCache::new(usize::MAX, 0), "live"));
    }

    /// A hit needs the exact bytes: a lookup under the right hash with different bytes (as a
    /// hash collision would present it) must miss.
    #[test]
    fn a_hash_collision_is_not_a_hit() {
        let cache = TokenCache::new(usize::MAX, 64);
        put(&cache, "token-a", 10_000, 0);
        let k = cache.key("token-a");
        assert!(cache.get("token-a", k).is_some());
        assert!(cache.get("token-b", k).is_none());
        assert!(cache.get("token-a ", k).is_none());
        assert!(cache.get("token-", k).is_none());
        cache.remove("token-b", k);
        assert!(
            cache.get("token-a", k).is_some(),
            "remove needs the exact bytes too"
        );
        cache.remove("token-a", k);
        assert!(cache.get("token-a", k).is_none());
    }

    #[test]
    fn eviction_drops_the_soonest_expiring_live_entries() {
        let cache = TokenCache::new(usize::MAX, 16 * 16);
        // Fill well past capacity with live tokens; each shard evicts its soonest-expiring.
        for i in 0..2_000i64 {
            put(&cache, &format!("t{i}"), 1_000_000 - i, 0);
        }
        assert!(cache.len() <= 16 * 16, "{}", cache.len());
        assert!(cache.len() >= 16 * 14, "{}", cache.len());
        // Later tokens expire sooner here: the first ones inserted must have survived, and one
        // from the middle was dropped by a later eviction in its shard.
        assert!(has(&cache, "t0"));
        assert!(!has(&cache, "t1000"));
    }

    #[test]
    fn a_slot_is_one_cache_line() {
        assert_eq!(size_of::<Slot>(), 64);
    }

    /// A table that grows hashes its tokens again: every token stays findable.
    #[test]
    fn tokens_stay_findable_as_the_table_grows() {
        let cache = TokenCache::new(usize::MAX, 100_000);
        for i in 0..5_000 {
            put(&cache, &format!("t{i}"), 10, 0);
        }
        assert!((0..5_000).all(|i| has(&cache, &format!("t{i}"))));
    }

    #[test]
    fn insert_of_a_present_token_replaces_it() {
        let cache = TokenCache::new(usize::MAX, 64);
        put(&cache, "t", 10, 0);
        put(&cache, "t", 20, 0);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("t", cache.key("t")).map(|e| e.dead_at), Some(20));
    }

    /// A token with `claims_bytes` of claims in a string claim and a few ordinary ones, like
    /// the ~16 KiB tokens of the finding.
    fn large(i: usize, claims_bytes: usize, dead_at: i64) -> (String, Entry) {
        let claims = serde_json::json!({
            "sub": format!("user-{i}"),
            "iss": "https://idp.example/",
            "aud": ["api", "other"],
            "exp": dead_at,
            "groups": (0..20).map(|g| format!("group-{g}")).collect::<Vec<_>>(),
            "blob": "x".repeat(claims_bytes),
        });
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        let token = format!("{}.{i}", "t".repeat(claims_bytes * 4 / 3 + 400));
        let entry = Entry {
            token: Arc::new(VerifiedToken::new(
                format!("user-{i}"),
                claims,
                "idp".into(),
                vec!["reader".into()],
                None,
                dead_at,
            )),
            provider_index: 0,
            kid: Some(Arc::from("key-1")),
            dead_at,
        };
        (token, entry)
    }

    /// Every part of an entry is charged: at least its token's and its claims' bytes, plus
    /// the structure around them — roughly what one entry of the finding took (≈29.5 KB for a
    /// 16 KiB token).
    #[test]
    fn an_entry_is_charged_its_token_claims_and_structure() {
        let (token, entry) = large(0, 11_000, 100);
        let cost = entry_cost(&token, &entry);
        let claims_json = serde_json::to_string(&entry.token.claims).unwrap().len();
        assert!(token.len() > 15_000, "{}", token.len());
        assert!(cost > token.len() + claims_json, "{cost}");
        assert!(cost < 2 * (token.len() + claims_json), "{cost}");
        // Structure counts too: many small claims cost more than their JSON text.
        let (small_token, mut small) = large(1, 0, 100);
        let mut claims = Map::new();
        for i in 0..200 {
            claims.insert(format!("c{i}"), Value::Bool(true));
        }
        let text = serde_json::to_string(&claims).unwrap().len();
        Arc::get_mut(&mut small.token).unwrap().claims = claims;
        assert!(entry_cost(&small_token, &small) > small_token.len() + 200 * 56 + text);
    }

    /// 40,000 distinct valid ~16 KiB tokens took the server from 32 MB to 1.2 GB: the cache
    /// was bounded by its number of entries only. Now the bytes its entries hold stay within
    /// the budget however many large tokens arrive, and the newest stay cached.
    #[test]
    fn large_tokens_stay_within_the_byte_budget() {
        let budget = 4 << 20;
        let cache = TokenCache::new(budget, 100_000);
        let mut last = String::new();
        for i in 0..2_000 {
            let (token, entry) = large(i, 11_000, 1_000 + i as i64);
            cache.insert(&token, cache.key(&token), entry, 0);
            assert!(cache.bytes() <= budget, "{} after {i}", cache.bytes());
            last = token;
        }
        let (one, entry) = large(0, 11_000, 0);
        let per_entry = entry_cost(&one, &entry);
        assert!(cache.len() <= budget / per_entry, "{}", cache.len());
        assert!(
            cache.len() >= budget / per_entry / 2,
            "the budget is used: {}",
            cache.len()
        );
        assert!(has(&cache, &last));
        // The accounting follows removals and replacements exactly.
        cache.remove(&last, cache.key(&last));
        let sum: usize = cache
            .shards
            .iter()
            .map(|s| {
                let s = s.read().unwrap();
                s.table.iter().map(|slot| slot.cost).sum::<usize>()
            })
            .sum();
        assert_eq!(sum, cache.bytes());
        // An entry larger than a shard's share is never cached; a zero budget disables.
        let tiny = TokenCache::new(16 * 1_000, 100);
        let (token, entry) = large(7, 11_000, 100);
        tiny.insert(&token, tiny.key(&token), entry, 0);
        assert_eq!(tiny.len(), 0);
        assert!(!TokenCache::new(0, 100).enabled());
    }
}
