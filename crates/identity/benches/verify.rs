//! Verifications per second: new RS256 / ES256 / EdDSA tokens (every token distinct, so each
//! one pays decoding, routing, the signature, claim checks and the cache insert) and a repeated
//! token (a verified-token cache hit, which still checks expiry, key presence and revocation).
//! Keys are generated at bench time and served by an in-process fetcher, so no network is timed.
//! Compare with `openssl speed -seconds 3 rsa2048 ecdsap256 ed25519` run right after.
//!
//! Time is the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), because that is what
//! `openssl speed` divides by (user CPU time, unless given `-elapsed`): on a machine shared with
//! other work, wall time would count the time this thread waits for a core, openssl's figure
//! would not, and the ratio would measure the load instead of the code. `BENCH_CLOCK=wall` times
//! wall-clock instead (group `verify-wall`; compare with `openssl speed -elapsed`); use it under
//! valgrind too, which does not follow the vDSO clock call.

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
use claimdb_identity::io::{FetchedDocument, Fetcher, NoPersistence, SystemClock};
use claimdb_identity::{
    FetchError, KeyCacheConfig, ProviderConfig, VerifiedToken, Verifier, VerifierDeps, VerifyError,
};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
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
/// Not inlined, so a profiler can count exactly one verification per call
/// (`valgrind --tool=callgrind --toggle-collect='*verify_now*'`).
#[inline(never)]
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

/// CPU time of the calling thread, in nanoseconds (criterion runs the routine on this thread).
struct ThreadCpuTime;

fn thread_cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_now()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_secs_f64() * 1e9
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, like wall time: reuse criterion's duration formatting.
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn bench<M: Measurement>(c: &mut Criterion<M>, group_name: &str) {
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

    let mut group = c.benchmark_group(group_name);
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
    // Signature-only references on the same tokens: aws-lc-rs with a pre-parsed key (the call the
    // verifier makes), and jsonwebtoken's own verify (it re-parses the RSA key on every call).
    // These are what `openssl speed` should be compared with to see aws-lc-rs itself.
    for (alg, signer, jwk) in &keys {
        let t = token(alg, signer, 0, exp);
        let Some((input, sig)) = t.rsplit_once('.') else {
            continue;
        };
        let sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap_or_default();
        if let Some(pk) = parsed_key(alg, jwk) {
            group.bench_function(
                format!("{alg} signature only: aws-lc-rs pre-parsed key"),
                |b| b.iter(|| pk.verify_sig(input.as_bytes(), &sig_bytes).is_ok()),
            );
        }
        if *alg == "RS256"
            && let Ok(jwk) = serde_json::from_value(jwk.clone())
            && let Ok(dk) = jsonwebtoken::DecodingKey::from_jwk(&jwk)
        {
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
    }
    let repeated = token("RS256", &keys[0].1, 999_999, exp);
    let _ = verify_now(&verifier, &repeated);
    group.bench_function("repeated token (cache hit)", |b| {
        b.iter(|| verify_now(&verifier, &repeated))
    });
    group.finish();
}

/// The JWK's public key parsed by aws-lc-rs for its algorithm, outside the verifier.
fn parsed_key(alg: &str, jwk: &Value) -> Option<signature::ParsedPublicKey> {
    let field = |name: &str| {
        jwk[name]
            .as_str()
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
    };
    match alg {
        "RS256" => {
            let (n, e) = (field("n")?, field("e")?);
            let der = PublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .as_der()
            .ok()?;
            signature::ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der.as_ref())
                .ok()
        }
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            signature::ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point).ok()
        }
        "EdDSA" => signature::ParsedPublicKey::new(&signature::ED25519, &field("x")?).ok(),
        _ => None,
    }
}

fn main() {
    let config = |c: Criterion| {
        c.sample_size(30)
            .measurement_time(Duration::from_secs(4))
            .configure_from_args()
    };
    if std::env::var("BENCH_CLOCK").is_ok_and(|v| v == "wall") {
        bench(&mut config(Criterion::default()), "verify-wall");
    } else {
        bench(
            &mut config(Criterion::default()).with_measurement(ThreadCpuTime),
            "verify",
        );
    }
    Criterion::default().configure_from_args().final_summary();
}
