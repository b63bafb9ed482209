//! The token target: hostile tokens through the whole `Verifier::verify` path (size, strict
//! JOSE decoding, header policy, routing by `iss` including a tenant template, `alg` pinning, key
//! lookup with an unknown-`kid` refetch, signature, times, audience, tenant, uid,
//! roles, the verified-token cache), plus `jose::decode`/`check_header` and `inspect`.
//!
//! The first input byte picks how the rest becomes a token, so the fuzzer can work on the JSON
//! itself rather than on its base64: raw text; `header NUL payload NUL signature` encoded as
//! given; the same with a real ES256 signature over whatever header and payload it made (so the
//! claim checks are reached); or a payload under a fixed valid header, signed with ES256 or
//! Ed25519. Keys are generated at start; the IdP is an in-process fetcher serving their JWKS.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_identity::io::{FetchedDocument, Fetcher, NoPersistence};
use claimdb_identity::{FetchError, KeyCacheConfig, ProviderConfig, Verifier, VerifierDeps};
use serde_json::json;

/// The fixed "now" of every verification: 2026-11-23T12:00:00Z.
pub(crate) const NOW: u64 = 1_795_435_200;
/// The exact issuer of the main provider.
pub(crate) const ISSUER: &str = "https://idp.fuzz.example/";

struct Harness {
    rt: tokio::runtime::Runtime,
    verifier: Verifier,
    es: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

/// The JWKS every provider fetches.
struct StaticJwks(Vec<u8>);

#[async_trait]
impl Fetcher for StaticJwks {
    async fn get(&self, _: &str) -> Result<FetchedDocument, FetchError> {
        Ok(FetchedDocument {
            body: self.0.clone(),
            max_age: None,
        })
    }
}

struct FixedClock;

impl claimdb_identity::io::Clock for FixedClock {
    fn now(&self) -> SystemTime {
        now()
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(build)
}

/// Setup is not under test: a failure here is a broken harness, reported loudly.
#[allow(clippy::expect_used, reason = "harness setup, not input handling")]
fn build() -> Harness {
    let es = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
        .expect("generate P-256");
    let point = es.public_key().as_ref().to_vec();
    let (x, y) = point[1..].split_at(32);
    let ed = Ed25519KeyPair::generate().expect("generate Ed25519");
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).expect("generate RSA");
    let comps = PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let jwks = json!({"keys": [
        {"kty": "EC", "kid": "es", "crv": "P-256", "x": b64(x), "y": b64(y), "use": "sig"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(ed.public_key().as_ref()), "alg": "EdDSA"},
        {"kty": "RSA", "kid": "rsa", "n": b64(&comps.n), "e": b64(&comps.e)},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "EC", "kid": "enc", "use": "enc", "crv": "P-256", "x": b64(x), "y": b64(y)},
    ]});
    let providers: Vec<ProviderConfig> = [
        json!({
            "name": "main", "issuer": ISSUER, "additional_issuers": ["https://alt.fuzz.example"],
            "jwks_uri": "https://idp.fuzz.example/jwks", "audience": ["api", "other"],
            "algorithms": ["ES256", "EdDSA", "RS256", "PS256"],
            "roles": [
                {"role": "admin", "claim": "groups", "contains": "admins"},
                {"role": "reader", "claim": "scope", "contains": "read"},
                {"role": "mod", "claim": ["app", "role"], "equals": "moderator"},
            ],
        }),
        json!({
            "name": "entra", "issuer": "https://login.fuzz.example/{tenantid}/v2.0",
            "tenants": ["t1", "t2"], "jwks_uri": "https://idp.fuzz.example/jwks",
            "audience": "api", "algorithms": ["ES256"], "uid_claim": "oid",
        }),
    ]
    .into_iter()
    .map(|p| serde_json::from_value(p).expect("provider config"))
    .collect();
    let deps = VerifierDeps {
        fetcher: Arc::new(StaticJwks(jwks.to_string().into_bytes())),
        persistence: Arc::new(NoPersistence),
        clock: Arc::new(FixedClock),
    };
    // A small verified-token cache, so hits and evictions happen within a run.
    let cfg = KeyCacheConfig {
        token_cache_entries: 64,
        ..KeyCacheConfig::default()
    };
    let verifier = Verifier::from_configs(&providers, cfg, deps).expect("verifier");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(verifier.start());
    assert!(
        verifier.ready(now()),
        "the in-process IdP's keys did not load"
    );
    Harness {
        rt,
        verifier,
        es,
        ed,
    }
}

/// How the bytes after the mode byte became a token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Made {
    /// Nothing we signed: it must never verify.
    Unsigned,
    /// Signed by a key the IdP publishes: may verify if its claims hold.
    Signed,
}

/// Verifies one hostile token (see the module comment for the input format).
pub fn token_verify(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let (token, made) = match mode % 5 {
        0 => (String::from_utf8_lossy(rest).into_owned(), Made::Unsigned),
        1 => {
            let mut parts = rest.splitn(3, |&b| b == 0);
            let header = parts.next().unwrap_or_default();
            let payload = parts.next().unwrap_or_default();
            let sig = parts.next().unwrap_or_default();
            (
                format!("{}.{}.{}", b64(header), b64(payload), b64(sig)),
                Made::Unsigned,
            )
        }
        2 => {
            let mut parts = rest.splitn(2, |&b| b == 0);
            let header = parts.next().unwrap_or_default();
            let payload = parts.next().unwrap_or_default();
            (sign_es(h, header, payload), Made::Signed)
        }
        3 => (
            sign_es(h, br#"{"alg":"ES256","kid":"es","typ":"JWT"}"#, rest),
            Made::Signed,
        ),
        _ => {
            let input = format!("{}.{}", b64(br#"{"alg":"EdDSA","kid":"ed"}"#), b64(rest));
            let sig = h.ed.sign(input.as_bytes());
            (format!("{input}.{}", b64(sig.as_ref())), Made::Signed)
        }
    };
    check(h, &token, made);
}

fn sign_es(h: &Harness, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    match h.es.sign(&SystemRandom::new(), input.as_bytes()) {
        Ok(sig) => format!("{input}.{}", b64(sig.as_ref())),
        Err(_) => input,
    }
}

fn check(h: &Harness, token: &str, made: Made) {
    let at = now();
    // The strict decoder as the tools use it.
    if let Ok(decoded) = claimdb_identity::jose::decode(token) {
        let _ = claimdb_identity::jose::check_header(&decoded.header);
    }
    let first = h.rt.block_on(h.verifier.verify(token, at));
    match &first {
        Ok(v) => {
            assert!(
                made == Made::Signed,
                "a token we did not sign verified: {token:?}"
            );
            assert!(!v.uid.is_empty() && v.uid.len() <= claimdb_identity::MAX_UID_BYTES);
            assert!(v.provider == "main" || v.provider == "entra");
        }
        Err(e) => {
            assert!(!e.reason().is_empty() && !e.to_string().is_empty());
            assert!(
                !e.is_operational(),
                "the in-process IdP never fails, yet: {e}"
            );
        }
    }
    // A repeat goes through the verified-token cache and must answer the same.
    let second = h.rt.block_on(h.verifier.verify(token, at));
    assert_eq!(
        first.as_ref().map_err(|e| e.reason()),
        second.as_ref().map_err(|e| e.reason()),
        "verifying the same token twice disagreed"
    );
    // The explanation behind `claimdb token inspect`, which also reads hostile tokens.
    let inspection =
        h.rt.block_on(claimdb_identity::inspect(token, Some(&h.verifier), at));
    let _ = inspection;
}
