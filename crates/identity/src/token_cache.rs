//! The verified-token cache: SHA-256 of the exact token bytes → the verified result, bounded in
//! entries, each entry dead at the token's `exp` (plus the provider's skew). Sharded so that
//! concurrent requests rarely meet on one lock.
//!
//! A hit is not a verdict: the verifier still checks expiry, that the signing key is still
//! published, and revocation. This file only stores and finds.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock};

use crate::verify::VerifiedToken;

const SHARDS: usize = 16;

/// A cache key: the SHA-256 of the token.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A cached verification.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub token: Arc<VerifiedToken>,
    pub provider_index: usize,
    pub kid: Option<Arc<str>>,
    /// Unix seconds after which the entry is dead (`exp` + skew).
    pub dead_at: i64,
}

/// The key is already a uniform hash; take eight of its bytes instead of hashing it again.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Arrays hash as their length (a usize write) then the bytes; keep the bytes.
        if bytes.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

type Shard = HashMap<TokenDigest, Entry, BuildHasherDefault<DigestHasher>>;

pub(crate) struct TokenCache {
    shards: Vec<RwLock<Shard>>,
    per_shard: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS);
        let shards = (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect();
        Self { shards, per_shard }
    }

    pub fn enabled(&self) -> bool {
        self.per_shard > 0
    }

    fn shard(&self, d: &TokenDigest) -> &RwLock<Shard> {
        &self.shards[usize::from(d[31]) % SHARDS]
    }

    pub fn get(&self, d: &TokenDigest) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        self.shard(d).read().ok()?.get(d).cloned()
    }

    pub fn remove(&self, d: &TokenDigest) {
        if let Ok(mut s) = self.shard(d).write() {
            s.remove(d);
        }
    }

    pub fn insert(&self, d: TokenDigest, e: Entry, now: i64) {
        if !self.enabled() {
            return;
        }
        let Ok(mut s) = self.shard(&d).write() else {
            return;
        };
        if s.len() >= self.per_shard && !s.contains_key(&d) {
            s.retain(|_, e| e.dead_at > now);
            if s.len() >= self.per_shard {
                // Still full of live tokens: drop the one expiring soonest.
                if let Some(victim) = s.iter().min_by_key(|(_, e)| e.dead_at).map(|(k, _)| *k) {
                    s.remove(&victim);
                }
            }
        }
        s.insert(d, e);
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.read().ok().map(|s| s.len()))
            .sum()
    }
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

    #[test]
    fn stays_bounded_and_evicts_the_dead_first() {
        let cache = TokenCache::new(64);
        for i in 0..10_000i64 {
            cache.insert(digest(&format!("t{i}")), entry(1_000 + i), 0);
        }
        assert!(cache.len() <= 64, "{}", cache.len());
        // Live entries survive eviction of dead ones.
        let cache = TokenCache::new(64);
        let live = digest("live");
        cache.insert(live, entry(10_000), 0);
        for i in 0..1_000i64 {
            cache.insert(digest(&format!("d{i}")), entry(5), 6);
        }
        assert!(cache.get(&live).is_some());
        assert!(TokenCache::new(0).get(&live).is_none());
    }
}
