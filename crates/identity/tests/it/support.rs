//! Test support: keys generated at test time (aws-lc-rs), tokens signed over arbitrary header
//! and payload JSON (so attacks can be crafted byte for byte), a real IdP on 127.0.0.1:0 serving
//! discovery, JWKS and an X.509 certificate map with switchable outages, delays and max-age,
//! counting every hit, and a verifier wired to it with a manual clock.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use claimdb_identity::io::{ManualClock, MemoryPersistence};
use claimdb_identity::{HttpFetcher, KeyCacheConfig, ProviderConfig, Verifier, VerifierDeps};
use serde_json::{Value, json};

/// A fixed "now" for tests: 2026-11-23T12:00:00Z.
pub(crate) const NOW: u64 = 1_795_435_200;

pub(crate) fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) enum Private {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key with its public JWK and PKCS#8 PEM (for PyJWT).
pub(crate) struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    pub private: Private,
    pub jwk: Value,
    pub pkcs8_pem: String,
    pkcs8_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl TestKey {
    pub(crate) fn rsa(kid: &str, alg: &'static str) -> TestKey {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let comps = PublicKeyComponents::<Vec<u8>>::from(kp.public_key());
        let jwk =
            json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&comps.n), "e": b64(&comps.e)});
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
            .unwrap()
            .as_ref()
            .to_vec();
        TestKey {
            kid: kid.into(),
            alg,
            jwk,
            pkcs8_pem: pem("PRIVATE KEY", &der),
            pkcs8_der: der,
            private: Private::Rsa(kp),
        }
    }

    pub(crate) fn ec(kid: &str, alg: &'static str) -> TestKey {
        let (sign_alg, crv, n) = match alg {
            "ES384" => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            _ => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
        };
        let kp = EcdsaKeyPair::generate(sign_alg).unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let (x, y) = point[1..].split_at(n);
        let jwk = json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(x), "y": b64(y)});
        let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
        TestKey {
            kid: kid.into(),
            alg,
            jwk,
            pkcs8_pem: pem("PRIVATE KEY", &der),
            pkcs8_der: der,
            private: Private::Ec(kp),
        }
    }

    pub(crate) fn ed(kid: &str) -> TestKey {
        let kp = Ed25519KeyPair::generate().unwrap();
        let jwk =
            json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(kp.public_key().as_ref())});
        let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
        TestKey {
            kid: kid.into(),
            alg: "EdDSA",
            jwk,
            pkcs8_pem: pem("PRIVATE KEY", &der),
            pkcs8_der: der,
            private: Private::Ed(kp),
        }
    }

    /// A self-signed X.509 certificate for this key (Firebase's publication form).
    pub(crate) fn certificate_pem(&self) -> String {
        let kp = rcgen::KeyPair::try_from(self.pkcs8_der.as_slice()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["securetoken.test".to_owned()]).unwrap();
        params.self_signed(&kp).unwrap().pem()
    }

    pub(crate) fn sign_bytes(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.private {
            Private::Rsa(kp) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, msg, &mut sig).unwrap();
                sig
            }
            Private::Ec(kp) => kp.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Private::Ed(kp) => kp.sign(msg).as_ref().to_vec(),
        }
    }

    /// Signs exactly these header and payload JSON texts.
    pub(crate) fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = self.sign_bytes(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    /// A normal header for this key.
    pub(crate) fn header(&self) -> Value {
        json!({"alg": self.alg, "typ": "JWT", "kid": self.kid})
    }

    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    pub(crate) fn token(&self, claims: &Value) -> String {
        self.sign(&self.header(), claims)
    }
}

/// Standard claims valid at [`NOW`] for an issuer and audience.
pub(crate) fn claims(iss: &str, aud: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": "alice", "iat": NOW - 10, "exp": NOW + 3600})
}

/// What the loopback IdP serves and counts.
#[derive(Default)]
pub(crate) struct IdpState {
    pub issuer: Mutex<String>,
    pub jwks: Mutex<Value>,
    pub x509: Mutex<Value>,
    pub down: AtomicBool,
    pub max_age: Mutex<Option<u64>>,
    pub delay_ms: AtomicU64,
    pub jwks_hits: AtomicUsize,
    pub x509_hits: AtomicUsize,
    pub discovery_hits: AtomicUsize,
}

pub(crate) struct Idp {
    pub base: String,
    pub state: Arc<IdpState>,
}

impl Idp {
    pub(crate) async fn start() -> Idp {
        let state = Arc::new(IdpState::default());
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/x509", get(x509))
            .route("/hop/{n}", get(hop))
            .route("/huge", get(|| async { "x".repeat(2 * 1024 * 1024) }))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *state.issuer.lock().unwrap() = base.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Idp { base, state }
    }

    pub(crate) fn publish(&self, keys: &[&TestKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.state.jwks.lock().unwrap() = json!({"keys": jwks});
    }

    pub(crate) fn publish_x509(&self, keys: &[&TestKey]) {
        let mut m = serde_json::Map::new();
        for k in keys {
            m.insert(k.kid.clone(), Value::String(k.certificate_pem()));
        }
        *self.state.x509.lock().unwrap() = Value::Object(m);
    }

    pub(crate) fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub(crate) fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub(crate) fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.base)
    }
}

fn cache_headers(s: &IdpState) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    if let Some(age) = *s.max_age.lock().unwrap() {
        h.insert(
            header::CACHE_CONTROL,
            format!("public, max-age={age}").parse().unwrap(),
        );
    }
    h
}

async fn serve_doc(s: &IdpState, doc: Value) -> axum::response::Response {
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    (cache_headers(s), doc.to_string()).into_response()
}

async fn discovery(State(s): State<Arc<IdpState>>) -> axum::response::Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let iss = s.issuer.lock().unwrap().clone();
    let doc = json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")});
    serve_doc(&s, doc).await
}

async fn jwks(State(s): State<Arc<IdpState>>) -> axum::response::Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let doc = s.jwks.lock().unwrap().clone();
    serve_doc(&s, doc).await
}

/// `/hop/N` redirects to `/hop/N-1`; `/hop/0` redirects to the JWKS.
async fn hop(axum::extract::Path(n): axum::extract::Path<u32>) -> axum::response::Response {
    let to = if n == 0 {
        "/jwks".to_owned()
    } else {
        format!("/hop/{}", n - 1)
    };
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn x509(State(s): State<Arc<IdpState>>) -> axum::response::Response {
    s.x509_hits.fetch_add(1, Ordering::SeqCst);
    let doc = s.x509.lock().unwrap().clone();
    serve_doc(&s, doc).await
}

/// A verifier over the real HTTP fetcher, with shared persistence and a manual clock.
pub(crate) struct Harness {
    pub verifier: Arc<Verifier>,
    pub clock: Arc<ManualClock>,
    pub persistence: Arc<MemoryPersistence>,
}

pub(crate) fn provider_toml(toml_text: &str) -> ProviderConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad provider TOML: {e}\n{toml_text}"))
}

pub(crate) fn harness(configs: &[ProviderConfig], cfg: KeyCacheConfig) -> Harness {
    harness_with(configs, cfg, Arc::new(MemoryPersistence::default()))
}

pub(crate) fn harness_with(
    configs: &[ProviderConfig],
    cfg: KeyCacheConfig,
    persistence: Arc<MemoryPersistence>,
) -> Harness {
    let clock = Arc::new(ManualClock::new(now()));
    let fetcher = Arc::new(HttpFetcher::new(Duration::from_secs(5)).unwrap());
    let deps = VerifierDeps {
        fetcher,
        persistence: persistence.clone(),
        clock: clock.clone(),
    };
    let verifier = Arc::new(Verifier::from_configs(configs, cfg, deps).unwrap());
    Harness {
        verifier,
        clock,
        persistence,
    }
}

/// One provider `p` with issuer = the IdP's base URL, audience `api`, keys from its JWKS.
pub(crate) fn simple_provider(idp: &Idp, algs: &[&str]) -> ProviderConfig {
    let algs: Vec<String> = algs.iter().map(|a| format!("{a:?}")).collect();
    provider_toml(&format!(
        "name = \"p\"\nissuer = \"{}\"\njwks_uri = \"{}\"\naudience = \"api\"\nalgorithms = [{}]\n",
        idp.base,
        idp.jwks_uri(),
        algs.join(", ")
    ))
}
