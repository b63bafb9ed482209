//! Hostile input: arbitrary strings and every single-character change of a valid token are
//! refused with a known reason, and nothing panics. Keys come from an in-process fetcher so the
//! properties run without a network round trip per case.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimdb_identity::io::{FetchedDocument, Fetcher, NoPersistence, SystemClock};
use claimdb_identity::{FetchError, KeyCacheConfig, Verifier, VerifierDeps};
use proptest::prelude::*;
use serde_json::json;

use crate::support::*;

const ISS: &str = "https://idp.hostile.example/";

const REASONS: &[&str] = &[
    "malformed",
    "too-large",
    "duplicate-claim",
    "algorithm-not-allowed",
    "forbidden-header",
    "unsupported-critical-header",
    "unknown-issuer",
    "unknown-key",
    "keys-unavailable",
    "idp-unreachable",
    "bad-signature",
    "missing-expiry",
    "expired",
    "not-yet-valid",
    "issued-in-future",
    "wrong-audience",
    "bad-subject",
];

struct Static(Vec<u8>);

#[async_trait]
impl Fetcher for Static {
    async fn get(&self, _: &str) -> Result<FetchedDocument, FetchError> {
        Ok(FetchedDocument {
            body: self.0.clone(),
            max_age: None,
        })
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    verifier: Verifier,
    token: String,
}

fn fixture() -> Fixture {
    let k = TestKey::ec("k", "ES256");
    let jwks = json!({"keys": [k.jwk.clone()]}).to_string().into_bytes();
    let p = provider_toml(&format!(
        "name = \"p\"\nissuer = \"{ISS}\"\njwks_uri = \"https://idp.hostile.example/jwks\"\naudience = \"api\"\nalgorithms = [\"ES256\"]\n"
    ));
    let deps = VerifierDeps {
        fetcher: Arc::new(Static(jwks)),
        persistence: Arc::new(NoPersistence),
        clock: Arc::new(SystemClock),
    };
    // No token cache, so every case runs the full path.
    let cfg = KeyCacheConfig {
        token_cache_entries: 0,
        ..Default::default()
    };
    let verifier = Verifier::from_configs(&[p], cfg, deps).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(verifier.start());
    let token = k.token(&claims(ISS, "api"));
    assert!(rt.block_on(verifier.verify(&token, now())).is_ok());
    Fixture {
        rt,
        verifier,
        token,
    }
}

fn check(f: &Fixture, token: &str) -> Result<(), String> {
    match f
        .rt
        .block_on(f.verifier.verify(token, now() + Duration::from_secs(1)))
    {
        Ok(_) => Err(format!("accepted {token:?}")),
        Err(e) if REASONS.contains(&e.reason()) && !e.to_string().is_empty() => Ok(()),
        Err(e) => Err(format!("unexpected reason {} for {token:?}", e.reason())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_are_refused(s in "\\PC{0,300}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 0..6)) {
        thread_local!(static F: Fixture = fixture());
        F.with(|f| {
            check(f, &s).map_err(TestCaseError::fail)?;
            check(f, &parts.join(".")).map_err(TestCaseError::fail)
        })?;
    }

    #[test]
    fn any_single_character_change_is_refused(pos in any::<prop::sample::Index>(), c in "[A-Za-z0-9_.=+/-]") {
        thread_local!(static F: Fixture = fixture());
        F.with(|f| {
            let i = pos.index(f.token.len());
            let mut t = f.token.clone();
            if t[i..].starts_with(c.as_str()) {
                return Ok(());
            }
            t.replace_range(i..=i, &c);
            check(f, &t).map_err(TestCaseError::fail)
        })?;
    }
}

/// The verifier decodes signatures into a fixed stack buffer sized for the longest supported key
/// (RSA-8192); a longer signature must be refused as a bad signature, not overflow or panic.
#[test]
fn an_overlong_signature_is_a_bad_signature() {
    let f = fixture();
    let (input, sig) = f.token.rsplit_once('.').unwrap();
    for extra in [1usize, 700, 1_400, 4_000] {
        let long = format!("{input}.{sig}{}", "A".repeat(extra));
        let got =
            f.rt.block_on(f.verifier.verify(&long, now() + Duration::from_secs(1)));
        assert_eq!(
            got.map(|_| ()).map_err(|e| e.reason()),
            Err("bad-signature"),
            "+{extra}"
        );
    }
    assert!(
        f.rt.block_on(f.verifier.verify(&f.token, now() + Duration::from_secs(1)))
            .is_ok()
    );
}
