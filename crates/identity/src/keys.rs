//! A provider's verification keys: parsing a JWKS (`{"keys": [...]}`) or an X.509 certificate
//! map (`{kid: PEM}`, Firebase's form) into a [`KeySet`] looked up by `kid`, with each key bound
//! to the algorithms its type allows (and to its `alg` when the JWK names one).
//!
//! Symmetric (`oct`) keys and encryption keys (`use: enc`) are skipped: a public key must never
//! become an HMAC secret. Keys of unknown types are skipped, not fatal, so an IdP that adds a new
//! key type does not lock anyone out. No signature math happens here.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::DecodingKeyKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use serde_json::Value;

use crate::alg::Alg;

/// One usable public key, pre-parsed for each algorithm it may verify.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    pub algs: Vec<Alg>,
    parsed: Vec<(Alg, ParsedPublicKey)>,
}

impl VerifyKey {
    fn new(kid: Option<String>, algs: Vec<Alg>, key: &DecodingKey) -> Option<VerifyKey> {
        let parsed: Vec<(Alg, ParsedPublicKey)> = algs
            .iter()
            .filter_map(|&a| parse_for(key, a).map(|p| (a, p)))
            .collect();
        if parsed.is_empty() {
            return None;
        }
        let algs = parsed.iter().map(|(a, _)| *a).collect();
        Some(VerifyKey { kid, algs, parsed })
    }

    /// Checks `signature` (raw bytes, JWS form: r‖s for ECDSA) over `message` with `alg`.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.parsed
            .iter()
            .find(|(a, _)| *a == alg)
            .is_some_and(|(_, k)| k.verify_sig(message, signature).is_ok())
    }
}

fn verification_algorithm(alg: Alg) -> &'static dyn VerificationAlgorithm {
    match alg {
        Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Alg::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Alg::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
        Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Alg::EdDSA => &signature::ED25519,
    }
}

/// The key bytes jsonwebtoken decoded (PKCS#1 DER, an EC point, raw Ed25519, or RSA n/e turned
/// into SubjectPublicKeyInfo DER) parsed by aws-lc-rs for one algorithm.
fn parse_for(key: &DecodingKey, alg: Alg) -> Option<ParsedPublicKey> {
    let v = verification_algorithm(alg);
    match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => ParsedPublicKey::new(v, bytes).ok(),
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            let comps = aws_lc_rs::rsa::PublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            };
            let der = comps.as_der().ok()?;
            ParsedPublicKey::new(v, der.as_ref()).ok()
        }
    }
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .finish()
    }
}

/// The keys of one provider at one moment.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    without_kid: Vec<Arc<VerifyKey>>,
    /// Entries that were present but not usable (skipped), for metrics and inspect.
    pub skipped: usize,
    /// A pinned key (configured, not published): it answers whatever `kid` a token names.
    pinned: bool,
}

impl KeySet {
    pub fn len(&self) -> usize {
        self.by_kid.len() + self.without_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn kids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_kid.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.pinned || self.by_kid.contains_key(kid)
    }

    /// The key for this `kid` usable with `alg`. A token without `kid` is matched only when the
    /// provider publishes exactly one key usable with `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Alg) -> Option<&Arc<VerifyKey>> {
        match kid {
            Some(_) if self.pinned => self.find(None, alg),
            Some(kid) => self.by_kid.get(kid).filter(|k| k.algs.contains(&alg)),
            None => {
                let mut usable = self
                    .by_kid
                    .values()
                    .chain(self.without_kid.iter())
                    .filter(|k| k.algs.contains(&alg));
                let first = usable.next()?;
                usable.next().is_none().then_some(first)
            }
        }
    }

    fn insert(&mut self, key: VerifyKey) {
        match key.kid.clone() {
            Some(kid) => {
                // A repeated kid is ambiguous; keep the first (IdPs do not repeat kids).
                self.by_kid.entry(kid).or_insert_with(|| Arc::new(key));
            }
            None => self.without_kid.push(Arc::new(key)),
        }
    }

    /// Parses a JWKS document.
    pub fn from_jwks(body: &[u8]) -> Result<KeySet, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "not a JWKS: no \"keys\" array".to_owned())?;
        let mut set = KeySet::default();
        for k in keys {
            match serde_json::from_value::<Jwk>(k.clone())
                .ok()
                .and_then(|j| from_jwk(&j))
            {
                Some(key) => set.insert(key),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }

    /// One configured public key (PEM: a SubjectPublicKeyInfo or PKCS#1 public key, or a
    /// certificate), pinned by the configuration: it is used whatever `kid` a token names.
    pub fn from_pinned_pem(pem: &[u8]) -> Result<KeySet, String> {
        let (key, algs) = from_pem(pem)
            .ok_or_else(|| "not a PEM RSA, EC or Ed25519 public key or certificate".to_owned())?;
        let key = VerifyKey::new(None, algs, &key)
            .ok_or_else(|| "the key cannot be used for signatures".to_owned())?;
        let mut set = KeySet {
            pinned: true,
            ..KeySet::default()
        };
        set.insert(key);
        Ok(set)
    }

    /// Parses a `{kid: PEM certificate}` map.
    pub fn from_x509_map(body: &[u8]) -> Result<KeySet, String> {
        let doc: HashMap<String, String> = serde_json::from_slice(body)
            .map_err(|e| format!("not a JSON map of kid to PEM: {e}"))?;
        let mut set = KeySet::default();
        for (kid, pem) in doc {
            let key = from_pem(pem.as_bytes())
                .and_then(|(key, algs)| VerifyKey::new(Some(kid), algs, &key));
            match key {
                Some(key) => set.insert(key),
                None => set.skipped += 1,
            }
        }
        Ok(set)
    }
}

fn from_jwk(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption) | Some(PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let by_type: Vec<Alg> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            vec![
                Alg::RS256,
                Alg::RS384,
                Alg::RS512,
                Alg::PS256,
                Alg::PS384,
                Alg::PS512,
            ]
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Alg::ES256],
            EllipticCurve::P384 => vec![Alg::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Alg::EdDSA]
        }
        _ => return None,
    };
    let algs = match jwk.common.key_algorithm {
        None => by_type,
        Some(ka) => {
            let a = key_alg(ka)?;
            if !by_type.contains(&a) {
                return None;
            }
            vec![a]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    VerifyKey::new(jwk.common.key_id.clone(), algs, &key)
}

fn key_alg(ka: KeyAlgorithm) -> Option<Alg> {
    Some(match ka {
        KeyAlgorithm::RS256 => Alg::RS256,
        KeyAlgorithm::RS384 => Alg::RS384,
        KeyAlgorithm::RS512 => Alg::RS512,
        KeyAlgorithm::PS256 => Alg::PS256,
        KeyAlgorithm::PS384 => Alg::PS384,
        KeyAlgorithm::PS512 => Alg::PS512,
        KeyAlgorithm::ES256 => Alg::ES256,
        KeyAlgorithm::ES384 => Alg::ES384,
        KeyAlgorithm::EdDSA => Alg::EdDSA,
        _ => return None,
    })
}

fn from_pem(pem: &[u8]) -> Option<(DecodingKey, Vec<Alg>)> {
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        let algs = vec![
            Alg::RS256,
            Alg::RS384,
            Alg::RS512,
            Alg::PS256,
            Alg::PS384,
            Alg::PS512,
        ];
        return Some((k, algs));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        return Some((k, vec![Alg::ES256, Alg::ES384]));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Some((k, vec![Alg::EdDSA]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_skips_what_must_not_verify() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "sig", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "weird", "kid": "w"},
        ]});
        let set = KeySet::from_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids(), vec!["sig".to_owned()]);
        assert_eq!(set.skipped, 3);
        assert!(set.find(Some("sig"), Alg::ES256).is_some());
        assert!(set.find(Some("sig"), Alg::RS256).is_none());
        assert!(set.find(Some("hmac"), Alg::RS256).is_none());
        assert!(set.find(None, Alg::ES256).is_some());
        assert!(KeySet::from_jwks(b"{}").is_err());
    }
}
