//! Verifications per second: new RS256 / ES256 / EdDSA tokens (every token distinct, so each
//! one pays decoding, routing, the signature, claim checks and the cache insert) and a repeated
//! token (a verified-token cache hit, which still checks expiry, key presence and revocation).
//! Keys are generated at bench time and served by an in-process fetcher, so no network is timed.
//! Compare with `openssl speed -seconds 3 rsa2048 ecdsap256 ed25519` run right after.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_identity::io::{FetchedDocument, Fetcher, NoPersistence, NoRevocation, SystemClock};
use claimdb_identity::{
    FetchError, KeyCacheConfig, ProviderConfig, VerifiedToken, Verifier, VerifierDeps, VerifyError,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const ISS: &str = "https://idp.bench.example/";
/// Distinct tokens per algorithm: more than the cache holds, so every verification misses.
const TOKENS: usize = 1024;

struct StaticJwks(Vec<u8>);

#[async_trait]
impl Fetcher for StaticJwks {
    async fn get(&self, _: &str) -> Result<FetchedDocument, FetchError> {
        Ok(FetchedDocument {
            body: self.0.clone(),
            max_age: Some(Duration::from_secs(86_400)),
        })
    }
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Signer {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map(|_| sig)
                    .unwrap_or_default()
            }
            Signer::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .unwrap_or_default(),
            Signer::Ed(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

fn keys() -> Option<Vec<(&'static str, Signer, Value)>> {
    let rsa = RsaKeyPair::generate(KeySize::Rsa2048).ok()?;
    let c = PublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let rsa_jwk = json!({"kty": "RSA", "kid": "RS256", "n": b64(&c.n), "e": b64(&c.e)});
    let ec = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).ok()?;
    let p = ec.public_key().as_ref().to_vec();
    let ec_jwk = json!({"kty": "EC", "kid": "ES256", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..])});
    let ed = Ed25519KeyPair::generate().ok()?;
    let ed_jwk =
        json!({"kty": "OKP", "kid": "EdDSA", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())});
    Some(vec![
        ("RS256", Signer::Rsa(rsa), rsa_jwk),
        ("ES256", Signer::Ec(ec), ec_jwk),
        ("EdDSA", Signer::Ed(ed), ed_jwk),
    ])
}

fn token(alg: &str, signer: &Signer, i: usize, exp: u64) -> String {
    let header = json!({"alg": alg, "typ": "JWT", "kid": alg}).to_string();
    // A realistic payload (~450 bytes, like an Auth0 access token with a namespaced claim).
    let claims = json!({
        "iss": ISS, "sub": format!("auth0|{i:024}"), "aud": ["https://api.example.com", "https://idp.bench.example/userinfo"],
        "iat": exp - 3600, "exp": exp, "azp": "Xy7ab0cdEfGhIjKlMnOpQrStUvWxYz12", "scope": "openid profile email read:docs",
        "https://app.example/roles": ["editor"], "gty": "password", "permissions": ["read:docs", "write:docs"],
    })
    .to_string();
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// Polls once with a no-op waker: with in-memory keys and revocation, verification never waits.
fn verify_now(v: &Verifier, t: &str) -> Result<Arc<VerifiedToken>, VerifyError> {
    let now = std::time::SystemTime::now();
    let mut fut = std::pin::pin!(v.verify(t, now));
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(VerifyError::Malformed(
            "verification waited; the bench expects none".into(),
        )),
    }
}

fn bench(c: &mut Criterion) {
    let Some(keys) = keys() else {
        eprintln!("key generation failed");
        return;
    };
    let jwks = json!({"keys": keys.iter().map(|k| k.2.clone()).collect::<Vec<_>>()}).to_string();
    let provider = ProviderConfig {
        name: "bench".into(),
        issuer: Some(ISS.into()),
        jwks_uri: Some("https://idp.bench.example/jwks".into()),
        audience: Some(claimdb_identity::config::OneOrMany::One(
            "https://api.example.com".into(),
        )),
        algorithms: Some(vec![
            claimdb_identity::Alg::RS256,
            claimdb_identity::Alg::ES256,
            claimdb_identity::Alg::EdDSA,
        ]),
        ..Default::default()
    };
    let deps = VerifierDeps {
        fetcher: Arc::new(StaticJwks(jwks.into_bytes())),
        persistence: Arc::new(NoPersistence),
        revocation: Arc::new(NoRevocation),
        clock: Arc::new(SystemClock),
    };
    // A small cache: distinct tokens always miss and pay the insert (and an eviction).
    let cfg = KeyCacheConfig {
        token_cache_entries: 64,
        ..Default::default()
    };
    let Ok(verifier) = Verifier::from_configs(&[provider], cfg, deps) else {
        return;
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    rt.block_on(verifier.start());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for (alg, signer, _) in &keys {
        let tokens: Vec<String> = (0..TOKENS).map(|i| token(alg, signer, i, exp)).collect();
        if let Err(e) = verify_now(&verifier, &tokens[0]) {
            eprintln!("{alg} token does not verify: {e}");
            return;
        }
        let mut i = 0;
        group.bench_function(format!("new {alg} token"), |b| {
            b.iter(|| {
                i = (i + 1) % TOKENS;
                verify_now(&verifier, &tokens[i])
            })
        });
    }
    // References for the same RS256 token: jsonwebtoken's own verify (it re-parses the key on
    // every call) and aws-lc-rs with a pre-parsed key (what the verifier does), signature only.
    let t = token("RS256", &keys[0].1, 0, exp);
    if let (Some((input, sig)), Ok(jwk)) = (
        t.rsplit_once('.'),
        serde_json::from_value(keys[0].2.clone()),
    ) {
        if let Ok(dk) = jsonwebtoken::DecodingKey::from_jwk(&jwk) {
            group.bench_function("RS256 signature only: jsonwebtoken::crypto::verify", |b| {
                b.iter(|| {
                    jsonwebtoken::crypto::verify(
                        sig,
                        input.as_bytes(),
                        &dk,
                        jsonwebtoken::Algorithm::RS256,
                    )
                })
            });
        }
        let n = URL_SAFE_NO_PAD
            .decode(keys[0].2["n"].as_str().unwrap_or(""))
            .unwrap_or_default();
        let e = URL_SAFE_NO_PAD
            .decode(keys[0].2["e"].as_str().unwrap_or(""))
            .unwrap_or_default();
        let comps = PublicKeyComponents {
            n: n.as_slice(),
            e: e.as_slice(),
        };
        let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        if let Ok(der) = comps.as_der()
            && let Ok(pk) = signature::ParsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                der.as_ref(),
            )
        {
            group.bench_function("RS256 signature only: aws-lc-rs pre-parsed key", |b| {
                b.iter(|| pk.verify_sig(input.as_bytes(), &sig_bytes).is_ok())
            });
        }
    }
    let repeated = token("RS256", &keys[0].1, 999_999, exp);
    let _ = verify_now(&verifier, &repeated);
    group.bench_function("repeated token (cache hit)", |b| {
        b.iter(|| verify_now(&verifier, &repeated))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
