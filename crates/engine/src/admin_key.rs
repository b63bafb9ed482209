//! The generated admin key: created at a server's first start (when none is configured) or by
//! `claimdb admin-key reset`, shown once to the operator, and kept only as its SHA-256 in the
//! system record `system/admin_key_sha256` (hex), which every node reads on each admin request —
//! so a reset applies at once everywhere.
//!
//! The order that never loses access is the caller's: show the key first, then store its hash
//! ([`store_hash`]); a key whose hash was never stored is simply not valid, and the next start
//! makes another.

use base64::Engine as _;
use claimdb_store::{RecordCondition, Store};

use crate::error::EngineError;

/// The record holding the hex SHA-256 of the generated admin key.
pub const RECORD: (&str, &str) = ("system", "admin_key_sha256");

/// A new random admin key (32 bytes, base64url) and its SHA-256.
pub fn generate() -> (String, [u8; 32]) {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let hash = sha256(&key);
    (key, hash)
}

/// SHA-256 of a text (the admin key's hash; also how sign-in stores its secrets).
pub fn sha256(text: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The stored hash, if a key was generated.
pub async fn stored_hash(store: &dyn Store) -> Result<Option<[u8; 32]>, EngineError> {
    let (ns, name) = RECORD;
    match store.get_record(ns, name).await? {
        None => Ok(None),
        Some(hex) => parse_hex(&hex).map(Some),
    }
}

/// Stores `hash` as the admin key's: with `replace`, whatever was there goes (a reset);
/// without, only if no key was stored yet. Returns whether it was stored.
pub async fn store_hash(
    store: &dyn Store,
    hash: &[u8; 32],
    replace: bool,
) -> Result<bool, EngineError> {
    let (ns, name) = RECORD;
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    let condition = if replace {
        RecordCondition::Any
    } else {
        RecordCondition::Absent
    };
    Ok(store.put_record(ns, name, Some(hex), condition).await?)
}

fn parse_hex(hex: &str) -> Result<[u8; 32], EngineError> {
    let corrupt = || EngineError::internal("the stored admin key hash is corrupt");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(corrupt());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| corrupt())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_store::Records;

    #[tokio::test]
    async fn a_hash_is_stored_once_unless_replaced_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = claimdb_store::SqliteStore::open(dir.path()).unwrap();
        assert_eq!(stored_hash(&store).await.unwrap(), None);
        let (k1, h1) = generate();
        let (k2, h2) = generate();
        assert_ne!(k1, k2);
        assert!(store_hash(&store, &h1, false).await.unwrap());
        assert!(!store_hash(&store, &h2, false).await.unwrap());
        assert_eq!(stored_hash(&store).await.unwrap(), Some(h1));
        assert!(store_hash(&store, &h2, true).await.unwrap());
        assert_eq!(stored_hash(&store).await.unwrap(), Some(h2));
        let (ns, name) = RECORD;
        store
            .put_record(ns, name, Some("zz".into()), RecordCondition::Any)
            .await
            .unwrap();
        assert!(stored_hash(&store).await.is_err());
    }
}
