//! The login flow against a real, certified OpenID provider on loopback: npm `oidc-provider`
//! (pinned), installed by the test setup under `$CARGO_TARGET_TMPDIR` and started per test with
//! a small config (one confidential client, PKCE required, dev interactions). The test's HTTP
//! client plays the browser: it follows redirects, keeps cookies and submits the IdP's login
//! and consent forms, and stops at claimdb's callback URL.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use claimdb_identity::io::{FormPoster, ManualClock, MemoryPersistence, PostResponse};
use claimdb_identity::{FetchError, HttpFetcher, KeyCacheConfig, Verifier, VerifierDeps};
use claimdb_signin::records::NS_LOGIN;
use claimdb_signin::{
    CallbackParams, LoginClient, LoginDeps, LoginError, SessionIdentity, Sessions,
};
use claimdb_store::{RecordCondition, Store};
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;

use crate::support::provider_toml;

const OIDC_PROVIDER_VERSION: &str = "9.13.3";
const PUBLIC_URL: &str = "https://db.example.com";
const APP: &str = "https://app.example.com/";
const CLIENT_SECRET: &str = "a-long-client-secret-for-the-test";

const SERVER_JS: &str = r#"
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const redirectUri = process.argv[2];
let issuer;
let generation = 0;
let handler;

function signingKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

// A new provider instance with a new key: the IdP rotating its keys (same issuer).
function make() {
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
    jwks: { keys: [signingKey(`key-${generation}`)] },
    pkce: { required: () => true },
    cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.com`, email_verified: true }),
    }),
  });
  return provider.callback();
}

const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__rotate') {
    generation += 1;
    handler = make();
    res.end(`key-${generation}`);
    return;
  }
  handler(req, res);
});
server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  handler = make();
  console.log(JSON.stringify({ issuer }));
});
"#;

/// The directory holding `node_modules/oidc-provider` at the pinned version; installed once
/// (npm into a temporary directory, then renamed, so parallel test processes never see a
/// half-installed copy).
fn install_dir() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = format!(
            "{}/oidc-provider-{OIDC_PROVIDER_VERSION}",
            env!("CARGO_TARGET_TMPDIR")
        );
        let marker = format!("{dir}/node_modules/oidc-provider/package.json");
        if !std::path::Path::new(&marker).exists() {
            let tmp = format!("{dir}.tmp{}", std::process::id());
            std::fs::create_dir_all(&tmp).unwrap();
            std::fs::write(
                format!("{tmp}/package.json"),
                r#"{"private":true,"type":"module"}"#,
            )
            .unwrap();
            let status = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .arg(format!("oidc-provider@{OIDC_PROVIDER_VERSION}"))
                .current_dir(&tmp)
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "npm could not install oidc-provider@{OIDC_PROVIDER_VERSION} (Node 20 + npm are \
                 required for the login tests): {status:?}"
            );
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            assert!(std::path::Path::new(&marker).exists());
        }
        std::fs::write(format!("{dir}/server.mjs"), SERVER_JS).unwrap();
        dir
    })
}

/// A running oidc-provider; killed when dropped.
struct Op {
    issuer: String,
    _child: tokio::process::Child,
}

impl Op {
    async fn start() -> Op {
        let dir = install_dir();
        let mut child = tokio::process::Command::new("node")
            .arg(format!("{dir}/server.mjs"))
            .arg(format!("{PUBLIC_URL}/v1/login/op/callback"))
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("oidc-provider did not start within 30 s")
            .unwrap()
            .expect("oidc-provider exited");
        // Keep draining stdout: the IdP logs there, and a closed pipe would kill it (EPIPE).
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let v: Value = serde_json::from_str(&first).unwrap();
        Op {
            issuer: v["issuer"].as_str().unwrap().to_owned(),
            _child: child,
        }
    }

    async fn rotate(&self) -> String {
        reqwest::Client::new()
            .post(format!("{}/__rotate", self.issuer))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// A browser: cookies by name, redirects followed by hand, forms submitted.
struct Browser {
    client: reqwest::Client,
    jar: HashMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: HashMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
        let cookie: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let resp = req
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.jar.remove(k);
                } else {
                    self.jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        (status, location, resp.text().await.unwrap())
    }

    /// Follows the login from the authorization URL, signing in as `user`, until the IdP
    /// redirects to claimdb's callback; returns that callback URL.
    async fn sign_in(&mut self, authorization_url: &str, user: &str) -> reqwest::Url {
        let mut url = reqwest::Url::parse(authorization_url).unwrap();
        let mut next = self.client.get(url.clone());
        for _ in 0..20 {
            let (status, location, body) = self.send(next).await;
            if let Some(loc) = location {
                url = url.join(&loc).unwrap();
                if url.as_str().starts_with(PUBLIC_URL) {
                    return url;
                }
                next = self.client.get(url.clone());
                continue;
            }
            assert_eq!(
                status, 200,
                "unexpected answer from the IdP at {url}: {body}"
            );
            let (action, mut fields) = parse_form(&body);
            if fields.iter().any(|(k, _)| k == "login") {
                fields.retain(|(k, _)| k != "login" && k != "password");
                fields.push(("login".into(), user.into()));
                fields.push(("password".into(), "any".into()));
            }
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .finish();
            url = url.join(&action).unwrap();
            next = self
                .client
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        panic!("the login did not reach the callback in 20 steps");
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

/// A token-endpoint client that can alter the ID token on its way back (a tampering test).
struct Poster {
    inner: HttpFetcher,
    tamper: bool,
}

#[async_trait]
impl FormPoster for Poster {
    async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        basic: Option<(&str, &str)>,
    ) -> Result<PostResponse, FetchError> {
        let mut r = self.inner.post_form(url, form, basic).await?;
        if self.tamper {
            let mut v: Value = serde_json::from_slice(&r.body).unwrap();
            let token = v["id_token"].as_str().unwrap().to_owned();
            let parts: Vec<&str> = token.split('.').collect();
            let mut claims: Value = serde_json::from_slice(
                &base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    parts[1],
                )
                .unwrap(),
            )
            .unwrap();
            claims["sub"] = "mallory".into();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                crate::support::b64(claims.to_string().as_bytes()),
                parts[2]
            );
            v["id_token"] = forged.into();
            r.body = v.to_string().into_bytes();
        }
        Ok(r)
    }
}

struct Env {
    op: Op,
    login: LoginClient,
    verifier: Arc<Verifier>,
    records: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _store_dir: tempfile::TempDir,
}

async fn env(tamper: bool) -> Env {
    let op = Op::start().await;
    let provider = provider_toml(&format!(
        "name = \"op\"\nissuer = \"{0}\"\ndiscovery = \"{0}/.well-known/openid-configuration\"\n\
         audience = \"claimdb\"\nalgorithms = [\"RS256\"]\nclient_id = \"claimdb\"\n\
         client_secret = \"{CLIENT_SECRET}\"\nscopes = [\"openid\", \"email\"]\n",
        op.issuer
    ));
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let fetcher = Arc::new(HttpFetcher::new(Duration::from_secs(10)).unwrap());
    let verifier = Arc::new(
        Verifier::from_configs(
            std::slice::from_ref(&provider),
            KeyCacheConfig::default(),
            VerifierDeps {
                fetcher: fetcher.clone(),
                persistence: Arc::new(MemoryPersistence::default()),
                clock: clock.clone(),
            },
        )
        .unwrap(),
    );
    verifier.start().await;
    let (records, store_dir) = crate::store::temp_store();
    let login = LoginClient::new(
        PUBLIC_URL,
        &[APP.to_owned()],
        &[provider],
        LoginDeps {
            verifier: verifier.clone(),
            records: records.clone(),
            fetcher: fetcher.clone(),
            poster: Arc::new(Poster {
                inner: (*fetcher).clone(),
                tamper,
            }),
        },
    )
    .unwrap();
    Env {
        op,
        login,
        verifier,
        records,
        clock,
        _store_dir: store_dir,
    }
}

fn params(url: &reqwest::Url) -> CallbackParams {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    CallbackParams::from_pairs(&pairs)
}

impl Env {
    /// Starts a login and signs in at the IdP; returns (callback URL, browser binding).
    async fn sign_in(&self, user: &str, redirect: Option<&str>) -> (reqwest::Url, String) {
        let start = self
            .login
            .start("op", redirect, self.clock.now())
            .await
            .unwrap();
        let url = Browser::new().sign_in(&start.authorization_url, user).await;
        (url, start.browser_binding)
    }

    async fn finish(
        &self,
        url: &reqwest::Url,
        binding: &str,
    ) -> Result<claimdb_signin::LoginOutcome, LoginError> {
        self.login
            .callback("op", &params(url), Some(binding), self.clock.now())
            .await
    }
}

use claimdb_identity::io::Clock as _;

#[tokio::test]
async fn login_happy_path_yields_a_verified_identity_and_a_session() {
    let e = env(false).await;
    let start = e
        .login
        .start(
            "op",
            Some("https://app.example.com/after?tab=1"),
            e.clock.now(),
        )
        .await
        .unwrap();
    let auth = reqwest::Url::parse(&start.authorization_url).unwrap();
    let q: HashMap<String, String> = auth
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        "https://db.example.com/v1/login/op/callback"
    );
    assert_eq!(q["scope"], "openid email");
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43 && q["code_challenge"].len() == 43);
    let url = Browser::new()
        .sign_in(&start.authorization_url, "alice")
        .await;
    // Nothing but the code, the state and the issuer travels in the callback URL.
    for (k, _) in url.query_pairs() {
        assert!(
            ["code", "state", "iss"].contains(&k.as_ref()),
            "unexpected {k} in the callback URL"
        );
    }
    let out = e.finish(&url, &start.browser_binding).await.unwrap();
    assert_eq!(out.provider, "op");
    assert_eq!(out.token.uid, "alice");
    assert_eq!(out.token.claims["aud"], "claimdb");
    assert_eq!(out.token.claims["iss"], e.op.issuer.as_str());
    assert_eq!(out.redirect, "https://app.example.com/after?tab=1");
    assert!(
        e.records
            .list_records(NS_LOGIN, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "the state is single use"
    );

    let sessions = Sessions::new(e.records.clone(), Duration::from_secs(3600));
    let s = sessions
        .create(
            &SessionIdentity {
                uid: out.token.uid.clone(),
                provider: out.provider.clone(),
                roles: out.token.roles.clone(),
                claims: out.token.claims.clone(),
            },
            e.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(
        sessions
            .get(&s.id, e.clock.now())
            .await
            .unwrap()
            .unwrap()
            .identity
            .uid,
        "alice"
    );
    assert!(sessions.end(&s.id).await.unwrap());
    assert!(sessions.get(&s.id, e.clock.now()).await.unwrap().is_none());
}

#[tokio::test]
async fn state_mismatch_and_another_browser_are_refused() {
    let e = env(false).await;
    let (url, binding) = e.sign_in("alice", None).await;
    let mut p = params(&url);
    p.state = Some(format!("{}x", p.state.unwrap()));
    let err = e
        .login
        .callback("op", &p, Some(&binding), e.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown-state");
    let p = CallbackParams {
        state: None,
        ..params(&url)
    };
    let err = e
        .login
        .callback("op", &p, Some(&binding), e.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "missing-state");
    // The right state from another browser (the attacker's login finished in the victim's).
    let err = e.finish(&url, "not-the-login-cookie").await.unwrap_err();
    assert_eq!(err.reason(), "browser-mismatch");
    let err = e
        .login
        .callback("op", &params(&url), None, e.clock.now())
        .await
        .unwrap_err();
    assert_eq!(
        err.reason(),
        "unknown-state",
        "the state was used up by the refused attempt"
    );
    // Unknown providers and open redirects are refused at the start.
    assert_eq!(
        e.login
            .start("nope", None, e.clock.now())
            .await
            .unwrap_err()
            .reason(),
        "unknown-provider"
    );
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "https://app.example.com.evil.example/",
    ] {
        let err = e
            .login
            .start("op", Some(evil), e.clock.now())
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "redirect-refused", "{evil}");
    }
}

#[tokio::test]
async fn a_replayed_callback_and_a_reused_code_are_refused() {
    let e = env(false).await;
    let (url, binding) = e.sign_in("alice", None).await;
    assert!(e.finish(&url, &binding).await.is_ok());
    let err = e.finish(&url, &binding).await.unwrap_err();
    assert_eq!(err.reason(), "unknown-state");
    // The same code under a fresh, valid state: the IdP refuses the second redemption.
    let start = e.login.start("op", None, e.clock.now()).await.unwrap();
    let fresh = reqwest::Url::parse(&start.authorization_url).unwrap();
    let state = fresh
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let p = CallbackParams {
        state: Some(state),
        ..params(&url)
    };
    let err = e
        .login
        .callback("op", &p, Some(&start.browser_binding), e.clock.now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "token-endpoint", "{err}");
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let e = env(false).await;
    let (url, binding) = e.sign_in("alice", None).await;
    // The stored nonce differs from the one in the ID token: as if the token came from
    // another login (an injected or replayed ID token).
    let stored = e.records.list_records(NS_LOGIN, None, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    let (key, value) = &stored[0];
    let mut v: Value = serde_json::from_str(value).unwrap();
    v["nonce"] = "another-nonce".into();
    e.records
        .put_record(NS_LOGIN, key, Some(v.to_string()), RecordCondition::Any)
        .await
        .unwrap();
    let err = e.finish(&url, &binding).await.unwrap_err();
    assert_eq!(err.reason(), "nonce-mismatch", "{err}");
}

#[tokio::test]
async fn a_tampered_id_token_is_refused() {
    let e = env(true).await;
    let (url, binding) = e.sign_in("alice", None).await;
    let err = e.finish(&url, &binding).await.unwrap_err();
    assert_eq!(err.reason(), "bad-signature", "{err}");
}

#[tokio::test]
async fn an_expired_login_attempt_is_refused() {
    let e = env(false).await;
    let (url, binding) = e.sign_in("alice", None).await;
    e.clock.advance(Duration::from_secs(601));
    let err = e.finish(&url, &binding).await.unwrap_err();
    assert_eq!(err.reason(), "login-expired", "{err}");
}

#[tokio::test]
async fn logins_keep_working_when_the_idp_rotates_its_keys() {
    let e = env(false).await;
    let (url, binding) = e.sign_in("alice", None).await;
    let first = e.finish(&url, &binding).await.unwrap();
    let new_kid = e.op.rotate().await;
    assert_eq!(new_kid, "key-1");
    let (url, binding) = e.sign_in("bob", None).await;
    let second = e.finish(&url, &binding).await.unwrap();
    assert_eq!(
        (first.token.uid.as_str(), second.token.uid.as_str()),
        ("alice", "bob")
    );
    let m = &e.verifier.metrics(e.clock.now())[0];
    assert_eq!(
        m.on_demand_fetches, 1,
        "the unknown kid caused exactly one refetch"
    );
    assert_eq!(m.keys, 1);
}
