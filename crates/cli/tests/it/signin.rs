//! End to end: claimdb as an issuer and login broker, through the real binary.
//!
//! - tokens minted by `claimdb token mint` and by the admin API read documents under rules;
//! - the JWKS and discovery documents are served, and a claimdb token verifies against them
//!   with PyJWT (an independent implementation), also after `claimdb token rotate-keys`;
//! - `POST /v1/token`: exchange of an IdP token (mapped roles, custom claims), refresh rotation
//!   and reuse detection, revocation, OAuth error shapes;
//! - a Firebase-format custom token made by PyPI `firebase-admin` is exchanged;
//! - the OIDC login against npm `oidc-provider` on loopback ends with the session cookie
//!   authorizing reads and writes; cookie writes from foreign origins are refused (CSRF);
//!   logout and revocation end the session; open redirects are refused at `/v1/login`.
//!
//! claimdb's `public_url` is `https://db.example.com` (as behind a TLS proxy): the test's
//! browser maps that origin to the server's loopback address, so cookies carry `Secure`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::idp::{AUDIENCE, ISSUER, Idp, Key, claims};
use crate::util::{BIN, Server};

const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";
const PUBLIC_URL: &str = "https://db.example.com";
const APP: &str = "https://app.example.com/";
const APP_ORIGIN: &str = "https://app.example.com";
/// An app origin allowed cross-origin for bearer tokens only (`cors_origins`).
const BEARER_ORIGIN: &str = "https://bearer-app.example.com";
pub(crate) const CLIENT_SECRET: &str = "a-long-client-secret-for-the-e2e-test";
pub(crate) const SIGNER: &str = "svc@demo-claimdb.iam.gserviceaccount.com";
pub(crate) const OIDC_PROVIDER_VERSION: &str = "9.13.3";
const FIREBASE_ADMIN_VERSION: &str = "7.7.0";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /movies/{id} {
      allow read: if request.auth != null;
      allow write: if request.auth.token.moderator == true;
    }
    match /notes/{uid} {
      allow read, write: if request.auth != null && request.auth.uid == uid;
    }
    match /staff/{id} {
      allow read, write: if 'moderator' in request.auth.roles && request.auth.provider == 'idp';
    }
    match /premium/{id} {
      allow read: if request.auth.token.premium == true;
    }
  }
}
"#;

// ---------------------------------------------------------------------------------------------
// HTTP: no redirects followed, all headers kept.

pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) text: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `Set-Cookie` value for cookie `name`, if one was set.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    #[track_caller]
    pub(crate) fn error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json()["error"]["code"], code, "{}", self.text);
        self
    }

    #[track_caller]
    pub(crate) fn reason(&self, reason: &str) {
        assert_eq!(
            self.json()["error"]["details"]["reason"],
            reason,
            "{}",
            self.text
        );
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<(&str, String)>) -> Resp {
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let response = match body {
        Some((content_type, text)) => agent()
            .run(b.header("content-type", content_type).body(text).unwrap())
            .unwrap(),
        None => agent().run(b.body(()).unwrap()).unwrap(),
    };
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let text = response.into_body().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        text,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(crate) fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The world: an ES256 IdP, optionally oidc-provider, optionally a custom-token signer key, and
// claimdb configured for all of them.

pub(crate) struct World {
    pub(crate) server: Server,
    pub(crate) key: Key,
    pub(crate) config: PathBuf,
    _idp: Idp,
    _op: Option<Op>,
    _dir: tempfile::TempDir,
}

pub(crate) struct Options {
    pub(crate) op: bool,
    /// A PEM public key file of the custom-token signer.
    pub(crate) signer_pem: Option<PathBuf>,
}

pub(crate) fn world(opts: Options, dir: tempfile::TempDir) -> World {
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let op = opts.op.then(Op::start);
    let rules = dir.path().join("firestore.rules");
    std::fs::write(&rules, RULES).unwrap();
    let mut text = format!(
        r#"rules = "{rules}"
admin_key = "{ADMIN_KEY}"
explain_denials = true
public_url = "{PUBLIC_URL}"
app_redirects = ["{APP}"]
cors_origins = ["{BEARER_ORIGIN}"]

[[providers]]
name = "idp"
issuer = "{ISSUER}"
jwks_uri = "{jwks}"
audience = ["{AUDIENCE}"]
algorithms = ["ES256"]

[[providers.roles]]
role = "moderator"
claim = "https://app.example/roles"
contains = "moderator"
"#,
        rules = rules.display(),
        jwks = idp.jwks_uri(),
    );
    if let Some(op) = &op {
        text.push_str(&format!(
            "\n[[providers]]\nname = \"op\"\nissuer = \"{0}\"\ndiscovery = \"{0}/.well-known/openid-configuration\"\n\
             audience = \"claimdb\"\nalgorithms = [\"RS256\"]\nclient_id = \"claimdb\"\n\
             scopes = [\"openid\", \"email\"]\n",
            op.issuer
        ));
    }
    if let Some(pem) = &opts.signer_pem {
        text.push_str(&format!(
            "\n[[custom_token_signers]]\nissuer = \"{SIGNER}\"\npublic_key_file = \"{}\"\n",
            pem.display()
        ));
    }
    let config = dir.path().join("claimdb.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        Some(&config),
        // The client secret comes from the environment, as an operator would pass it.
        &[("CLAIMDB_PROVIDER_OP_CLIENT_SECRET", CLIENT_SECRET)],
    );
    World {
        server,
        key,
        config,
        _idp: idp,
        _op: op,
        _dir: dir,
    }
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Resp {
        send(
            method,
            &self.url(path),
            headers,
            body.map(|b| ("application/json", b.to_string())),
        )
    }

    pub(crate) fn as_user(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let auth = format!("Bearer {token}");
        self.call(method, path, &[("authorization", &auth)], body)
    }

    pub(crate) fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, &[("x-claimdb-admin-key", ADMIN_KEY)], body)
    }

    fn token_endpoint(&self, pairs: &[(&str, &str)]) -> Resp {
        send(
            "POST",
            &self.url("/v1/token"),
            &[],
            Some(("application/x-www-form-urlencoded", form(pairs))),
        )
    }

    pub(crate) fn exchange(&self, subject_token: &str) -> Resp {
        self.token_endpoint(&[
            ("grant_type", EXCHANGE),
            ("subject_token", subject_token),
            ("subject_token_type", JWT_TYPE),
        ])
    }

    pub(crate) fn refresh(&self, refresh_token: &str) -> Resp {
        self.token_endpoint(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
    }

    /// Runs `claimdb token <args>` against this world's config and data directory.
    fn cli_token(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .arg("token")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(&self.server.data_dir)
            .env_remove("CLAIMDB_CONFIG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "claimdb token {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[track_caller]
pub(crate) fn oauth_error(r: &Resp, error: &str, reason: Option<&str>) {
    assert_eq!(r.status, 400, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"], error, "{}", r.text);
    assert!(v["error_description"].is_string(), "{}", r.text);
    if let Some(reason) = reason {
        assert_eq!(v["reason"], reason, "{}", r.text);
    }
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

// ---------------------------------------------------------------------------------------------
// Python (PyJWT and firebase-admin from PyPI, installed once under the target directory).

fn python() -> Command {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let dir = format!(
            "{}/pydeps/firebase-admin-{FIREBASE_ADMIN_VERSION}",
            env!("CARGO_TARGET_TMPDIR")
        );
        let probe = |p: &str| {
            Command::new("python3")
                .args(["-c", "import firebase_admin.auth, jwt, cryptography"])
                .env("PYTHONPATH", p)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !probe(&dir) {
            let tmp = format!("{dir}.tmp{}", std::process::id());
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args([
                    "--target",
                    &tmp,
                    &format!("firebase-admin=={FIREBASE_ADMIN_VERSION}"),
                ])
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "firebase-admin (with PyJWT) is required and could not be installed: run \
                 `python3 -m pip install firebase-admin=={FIREBASE_ADMIN_VERSION}` ({status:?})"
            );
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            assert!(probe(&dir), "firebase-admin did not install into {dir}");
        }
        dir
    });
    let mut c = Command::new("python3");
    c.env("PYTHONPATH", path);
    c
}

pub(crate) fn run_python(script: &str, input: &Value) -> String {
    let mut child = python()
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PYJWT_VERIFY: &str = r#"
import json, sys, jwt
req = json.load(sys.stdin)
jwks = jwt.PyJWKSet.from_dict(req["jwks"])
for token in req["tokens"]:
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    try:
        claims = jwt.decode(token, key.key, algorithms=["ES256", "RS256"],
                            audience=req["iss"], issuer=req["iss"])
        print("ok " + claims["sub"])
    except jwt.InvalidTokenError as e:
        print("refused " + type(e).__name__)
"#;

/// PyJWT's verdict on each token against `jwks`: `ok <sub>` or `refused <error>`.
fn pyjwt_verify(jwks: &Value, tokens: &[&str]) -> Vec<String> {
    run_python(
        PYJWT_VERIFY,
        &json!({"jwks": jwks, "tokens": tokens, "iss": PUBLIC_URL}),
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

pub(crate) const FIREBASE_MINT: &str = r#"
import json, sys, firebase_admin
from firebase_admin import credentials, auth
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
req = json.load(sys.stdin)
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
with open(req["public_key_file"], "w") as f:
    f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode())
pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
sa = {"type": "service_account", "project_id": "demo-claimdb", "private_key_id": "sa-key-1",
      "private_key": pem, "client_email": req["email"], "client_id": "1",
      "token_uri": "https://oauth2.googleapis.com/token"}
app = firebase_admin.initialize_app(credentials.Certificate(sa), name="claimdb-e2e")
for t in req["tokens"]:
    print(auth.create_custom_token(t["uid"], t["claims"], app=app).decode())
"#;

// ---------------------------------------------------------------------------------------------
// oidc-provider (npm, pinned), installed once under the target directory.

const OP_JS: &str = r#"
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const redirectUri = process.argv[2];
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'claimdb',
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'op-key', use: 'sig', alg: 'RS256' }] },
    pkce: { required: () => true },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    // The profile claims go into the ID token (claimdb reads no userinfo endpoint).
    conformIdTokenClaims: false,
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
    }),
  });
  server.on('request', provider.callback());
  console.log(JSON.stringify({ issuer }));
});
"#;

fn op_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            crate::external::npm_install(&[&format!("oidc-provider@{OIDC_PROVIDER_VERSION}")])
                .unwrap_or_else(|why| panic!("{why} (the login tests need it)"));
        // Written through a rename: other test processes may be starting the same script.
        let script = format!("{dir}/claimdb-e2e-op.mjs");
        let tmp = format!("{script}.{}", std::process::id());
        std::fs::write(&tmp, OP_JS).unwrap();
        std::fs::rename(&tmp, &script).unwrap();
        dir
    })
}

/// A running oidc-provider; killed when dropped.
pub(crate) struct Op {
    pub(crate) issuer: String,
    child: Child,
}

impl Op {
    fn start() -> Op {
        Op::start_for(&format!("{PUBLIC_URL}/v1/login/op/callback"))
    }

    /// An oidc-provider whose client `claimdb` (secret [`CLIENT_SECRET`]) may send browsers
    /// back to `callback`; it signs in any user name with any password, `<name>@example.com`.
    pub(crate) fn start_for(callback: &str) -> Op {
        let dir = op_dir();
        let mut child = Command::new("node")
            .arg(format!("{dir}/claimdb-e2e-op.mjs"))
            .arg(callback)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("oidc-provider exited before it started")
            .unwrap();
        // Keep draining stdout: a closed pipe would kill the IdP (EPIPE).
        std::thread::spawn(move || for _ in lines {});
        let v: Value = serde_json::from_str(&first).unwrap();
        Op {
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            child,
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser: one cookie jar, redirects followed by hand, the IdP's forms submitted. URLs under
/// claimdb's public URL are sent to the server's loopback address.
struct Browser<'a> {
    world: &'a World,
    jar: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    fn new(world: &'a World) -> Self {
        Browser {
            world,
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends a request with the jar's cookies and stores the cookies the answer sets.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Resp {
        let target = match url.strip_prefix(PUBLIC_URL) {
            Some(path) => self.world.url(path),
            None => url.to_owned(),
        };
        let cookies = self.cookie_header();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookies.is_empty() {
            all.push(("cookie", &cookies));
        }
        let r = send(method, &target, &all, body);
        for c in r.set_cookies() {
            let pair = c.split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.jar.remove(k);
                } else {
                    self.jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        r
    }

    /// Starts a login at claimdb and signs in at the IdP as `user`; returns the callback URL
    /// the IdP sent the browser to (not yet visited).
    fn sign_in(&mut self, user: &str, redirect: &str) -> url::Url {
        let start = self.send(
            "GET",
            &format!(
                "{PUBLIC_URL}/v1/login/op?{}",
                form(&[("redirect", redirect)])
            ),
            &[],
            None,
        );
        assert_eq!(start.status, 302, "{}", start.text);
        let mut url = url::Url::parse(start.header("location").unwrap()).unwrap();
        let mut method = "GET";
        let mut body: Option<(&str, String)> = None;
        for _ in 0..20 {
            let r = self.send(method, url.as_str(), &[], body.take());
            if let Some(loc) = r.header("location") {
                url = url.join(loc).unwrap();
                if url.as_str().starts_with(PUBLIC_URL) {
                    return url;
                }
                method = "GET";
                continue;
            }
            assert_eq!(
                r.status, 200,
                "unexpected answer from the IdP at {url}: {}",
                r.text
            );
            let (action, mut fields) = parse_form(&r.text);
            if fields.iter().any(|(k, _)| k == "login") {
                fields.retain(|(k, _)| k != "login" && k != "password");
                fields.push(("login".into(), user.into()));
                fields.push(("password".into(), "any".into()));
            }
            let pairs: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            url = url.join(&action).unwrap();
            method = "POST";
            body = Some(("application/x-www-form-urlencoded", form(&pairs)));
        }
        panic!("the login did not reach the callback in 20 steps");
    }

    /// A whole login: sign in, visit the callback; returns the callback's answer.
    fn login(&mut self, user: &str) -> Resp {
        let callback = self.sign_in(user, APP);
        self.send("GET", callback.as_str(), &[], None)
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&").replace("&#x2F;", "/"))
}

/// The first form's action and its inputs (name, value).
fn parse_form(html: &str) -> (String, Vec<(String, String)>) {
    let form_at = html.find("<form").expect("the IdP page has no form");
    let form = &html[form_at..];
    let tag_end = form.find('>').unwrap();
    let action = attr(&form[..tag_end], "action").unwrap();
    let body = &form[..form.find("</form>").unwrap_or(form.len())];
    let fields = body
        .split("<input")
        .skip(1)
        .filter_map(|t| {
            let tag = &t[..t.find('>').unwrap_or(t.len())];
            Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()))
        })
        .collect();
    (action, fields)
}

pub(crate) fn plain_world() -> World {
    world(
        Options {
            op: false,
            signer_pem: None,
        },
        tempfile::tempdir().unwrap(),
    )
}

mod login;
mod tokens;
