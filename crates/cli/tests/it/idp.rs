//! A real identity provider's key endpoint on 127.0.0.1:0 for end-to-end tests: ES256 keys
//! generated at test time, a JWKS served with `Cache-Control: max-age`, and tokens signed with
//! them (or with a key the IdP does not publish, for forgeries).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An ES256 signing key.
pub(crate) struct Key {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl Key {
    pub(crate) fn new(kid: &str) -> Key {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Key {
            kid: kid.into(),
            pair,
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        let point = self.pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(32);
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256", "x": b64(x), "y": b64(y)})
    }

    /// A token over exactly these claims.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// The IdP: serves `/jwks` from a swappable key list, on its own thread and runtime.
pub(crate) struct Idp {
    pub base: String,
    keys: Arc<Mutex<Vec<Value>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    hang: Arc<std::sync::atomic::AtomicBool>,
    _thread: std::thread::JoinHandle<()>,
}

pub(crate) const ISSUER: &str = "https://idp.claimdb.test/";
pub(crate) const AUDIENCE: &str = "claimdb-e2e";

impl Idp {
    pub(crate) fn start(keys: &[&Key]) -> Idp {
        let published = Arc::new(Mutex::new(keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()));
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = (published.clone(), down.clone(), hang.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/jwks", get(jwks))
                    .with_state(state);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Idp {
            base: format!("http://{addr}"),
            keys: published,
            down,
            hang,
            _thread: thread,
        }
    }

    /// Writes `dir/claimdb.toml`: the top-level keys `head`, `rules` naming `dir/firestore.rules`
    /// (which gets `rules`), and this IdP as the provider `idp` (ES256, [`AUDIENCE`]).
    pub(crate) fn write_config(
        &self,
        dir: &std::path::Path,
        rules: &str,
        head: &str,
    ) -> std::path::PathBuf {
        let rules_path = dir.join("firestore.rules");
        std::fs::write(&rules_path, rules).unwrap();
        let config = dir.join("claimdb.toml");
        std::fs::write(
            &config,
            format!(
                "rules = \"{rules}\"\n{head}\n\n[[providers]]\nname = \"idp\"\nissuer = \"{ISSUER}\"\njwks_uri = \"{jwks}\"\naudience = [\"{AUDIENCE}\"]\nalgorithms = [\"ES256\"]\n",
                rules = rules_path.display(),
                jwks = self.jwks_uri(),
            ),
        )
        .unwrap();
        config
    }

    pub(crate) fn publish(&self, keys: &[&Key]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    /// An outage: every request gets 503 until brought back.
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// A hanging outage: connections are accepted and requests read, but never answered.
    pub(crate) fn set_hanging(&self, hang: bool) {
        self.hang.store(hang, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.base)
    }
}

type IdpState = (
    Arc<Mutex<Vec<Value>>>,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<std::sync::atomic::AtomicBool>,
);

async fn jwks(State((keys, down, hang)): State<IdpState>) -> axum::response::Response {
    if hang.load(std::sync::atomic::Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    if down.load(std::sync::atomic::Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    let body = json!({ "keys": *keys.lock().unwrap() }).to_string();
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// Claims for `sub` valid for an hour, issued 10 s ago, plus `extra`.
/// `token` with one character of its signature changed (not the last, whose low bits may be
/// padding): a forgery that names a real key.
pub(crate) fn forged(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A `claimdb serve` trusting a test IdP (provider `idp`, key `k1`): the Firestore, listener and
/// SDK tests' common set-up. Dropped in field order, so the server stops first; whoever takes it
/// apart keeps `idp` and `dir` bound (as `_idp`, `_dir`) while the server runs.
pub(crate) struct Deployment {
    pub server: crate::util::Server,
    pub key: Key,
    pub idp: Idp,
    pub dir: tempfile::TempDir,
}

impl Deployment {
    /// Starts the server over a temporary data directory with `rules` and the top-level
    /// configuration keys `head` ([`Idp::write_config`]).
    pub(crate) fn start(rules: &str, head: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::new("k1");
        let idp = Idp::start(&[&key]);
        let config = idp.write_config(dir.path(), rules, head);
        let server = crate::util::Server::start_with(&dir.path().join("data"), Some(&config), &[]);
        Deployment {
            server,
            key,
            idp,
            dir,
        }
    }
}

pub(crate) fn claims(sub: &str, extra: Value) -> Value {
    let now = unix_now();
    let mut c = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now - 10,
        "exp": now + 3600,
    });
    if let (Some(m), Value::Object(e)) = (c.as_object_mut(), extra) {
        m.extend(e);
    }
    c
}
