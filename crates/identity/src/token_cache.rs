//! The verified-token cache: the exact token bytes → the verified result, bounded in entries,
//! each entry dead at the token's `exp` (plus the provider's skew). Sharded so that concurrent
//! requests rarely meet on one lock.
//!
//! Keying: a token is found by a fast keyed hash (foldhash, seeded from aws-lc's CSPRNG once per
//! process and per cache) and a hit requires **byte-for-byte equality with the stored token**.
//! That is strictly stronger than the earlier design (SHA-256 of the token as the key, equal
//! digests taken as equal tokens) and much cheaper: SHA-256 over a ~1 KB token was most of a
//! hit's cost, the hash here is a few dozen nanoseconds. The hash only picks a shard and a
//! bucket, so its quality bounds speed, never correctness. Flooding is not a concern either:
//! only tokens that verified are ever stored, so an attacker cannot choose the stored bytes to
//! make buckets collide, and a lookup with a forged token costs one hash and one probe. The
//! price is memory: each entry keeps its token (at most 16 KiB, typically ~1 KB, about the
//! size of its decoded claims).
//!
//! A hit is not a verdict: the verifier still checks expiry, that the signing key is still
//! published, and revocation. This file only stores and finds.

use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock, RwLock};

use foldhash::SharedSeed;
use foldhash::quality::SeedableRandomState;
use hashbrown::HashTable;

use crate::verify::VerifiedToken;

const SHARDS: usize = 16;

/// When a shard is full of live tokens, evict this fraction of it at once (the ones expiring
/// soonest), so that the linear sweep is paid once per `per_shard / EVICT_DIVISOR` inserts
/// instead of on every insert.
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

struct Slot {
    hash: u64,
    /// The exact token this entry was verified from; a hit must equal it byte for byte.
    token: Box<str>,
    entry: Entry,
}

type Shard = HashTable<Slot>;

/// Where a token lives in the cache: its keyed hash, computed once per verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(u64);

pub(crate) struct TokenCache {
    hasher: SeedableRandomState,
    shards: Box<[RwLock<Shard>]>,
    per_shard: usize,
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
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::new())).collect();
        Self {
            hasher: SeedableRandomState::with_seed(random_u64(), shared_seed()),
            shards,
            per_shard,
        }
    }

    pub fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    pub fn key(&self, token: &str) -> Key {
        Key(self.hasher.hash_one(token))
    }

    fn shard(&self, k: Key) -> &RwLock<Shard> {
        // The table uses the low bits and the top 7; pick the shard from bits in between.
        #[allow(clippy::cast_possible_truncation)]
        let i = (k.0 >> 32) as usize % SHARDS;
        &self.shards[i]
    }

    /// The entry stored for exactly this token.
    pub fn get(&self, token: &str, k: Key) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        let shard = self.shard(k).read().ok()?;
        shard
            .find(k.0, |s| s.hash == k.0 && *s.token == *token)
            .map(|s| s.entry.clone())
    }

    pub fn remove(&self, token: &str, k: Key) {
        if let Ok(mut s) = self.shard(k).write()
            && let Ok(found) = s.find_entry(k.0, |s| s.hash == k.0 && *s.token == *token)
        {
            found.remove();
        }
    }

    pub fn insert(&self, token: &str, k: Key, e: Entry, now: i64) {
        if !self.enabled() {
            return;
        }
        let Ok(mut s) = self.shard(k).write() else {
            return;
        };
        if let Ok(mut found) = s.find_entry(k.0, |s| s.hash == k.0 && *s.token == *token) {
            found.get_mut().entry = e;
            return;
        }
        if s.len() >= self.per_shard {
            evict(&mut s, self.per_shard, now);
        }
        s.insert_unique(
            k.0,
            Slot {
                hash: k.0,
                token: token.into(),
                entry: e,
            },
            |slot| slot.hash,
        );
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.read().ok().map(|s| s.len()))
            .sum()
    }
}

/// Makes room in a full shard: drops the dead, and if that is not enough, the eighth of the
/// live entries that expire soonest.
fn evict(s: &mut Shard, per_shard: usize, now: i64) {
    s.retain(|slot| slot.entry.dead_at > now);
    if s.len() < per_shard {
        return;
    }
    let drop = (per_shard / EVICT_DIVISOR).max(1);
    let mut dead_at: Vec<i64> = s.iter().map(|slot| slot.entry.dead_at).collect();
    let (_, &mut cutoff, _) = dead_at.select_nth_unstable(drop - 1);
    // Entries expiring before the cutoff all go; of those at the cutoff, only as many as needed.
    let mut at_cutoff = drop - dead_at.iter().filter(|&&d| d < cutoff).count();
    s.retain(|slot| {
        let d = slot.entry.dead_at;
        if d < cutoff {
            return false;
        }
        if d == cutoff && at_cutoff > 0 {
            at_cutoff -= 1;
            return false;
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dead_at: i64) -> Entry {
        let token = VerifiedToken {
            uid: "u".into(),
            claims: serde_json::Map::new(),
            provider: "p".into(),
            roles: Vec::new(),
            iat: None,
            exp: dead_at,
        };
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
        let cache = TokenCache::new(64);
        for i in 0..10_000i64 {
            put(&cache, &format!("t{i}"), 1_000 + i, 0);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        // The most recent, longest-lived tokens are the ones kept.
        assert!(has(&cache, "t9999"));
        assert!(!has(&cache, "t0"));
        // Live entries survive eviction of dead ones.
        let cache = TokenCache::new(64);
        put(&cache, "live", 10_000, 0);
        for i in 0..1_000i64 {
            put(&cache, &format!("d{i}"), 5, 6);
        }
        assert!(has(&cache, "live"));
        assert!(!TokenCache::new(0).enabled());
        assert!(!has(&TokenCache::new(0), "live"));
    }

    /// A hit needs the exact bytes: a lookup under the right hash with different bytes (as a
    /// hash collision would present it) must miss.
    #[test]
    fn a_hash_collision_is_not_a_hit() {
        let cache = TokenCache::new(64);
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
        let cache = TokenCache::new(16 * 16);
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
    fn insert_of_a_present_token_replaces_it() {
        let cache = TokenCache::new(64);
        put(&cache, "t", 10, 0);
        put(&cache, "t", 20, 0);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("t", cache.key("t")).map(|e| e.dead_at), Some(20));
    }
}
