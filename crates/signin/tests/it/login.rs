//! The login client's checks one by one, against an in-process fake IdP (discovery, JWKS and a
//! token endpoint whose answers the test writes): PKCE and client authentication on the code
//! exchange, `at_hash`, `aud`/`azp`, nonce, RFC 9207 `iss`, provider errors, token-endpoint
//! failures, a state used at another provider's callback, an ID token of another provider.
//! The end-to-end flows against a real IdP are in `oidc.rs`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lc_rs::digest;
use claimdb_identity::io::{
    FetchedDocument, Fetcher, FormPoster, ManualClock, MemoryPersistence, PostResponse,
};
use claimdb_identity::{FetchError, KeyCacheConfig, Verifier, VerifierDeps};
use claimdb_signin::{CallbackParams, LoginClient, LoginDeps};
use serde_json::{Value, json};

use crate::support::*;

type Posted = (String, Vec<(String, String)>, Option<(String, String)>);

/// Two fake IdPs behind one fetcher/poster: `https://a.idp.test` and `https://b.idp.test`.
struct Fake {
    keys: [TestKey; 2],
    post_methods: Mutex<Value>,
    answer: Mutex<(u16, Value)>,
    posted: Mutex<Vec<Posted>>,
}

#[async_trait]
impl Fetcher for Fake {
    async fn get(&self, url: &str) -> Result<FetchedDocument, FetchError> {
        let doc = |i: usize| {
            let iss = ["https://a.idp.test", "https://b.idp.test"][i];
            if url.ends_with("/.well-known/openid-configuration") {
                Some(json!({
                    "issuer": iss,
                    "authorization_endpoint": format!("{iss}/authorize"),
                    "token_endpoint": format!("{iss}/token"),
                    "jwks_uri": format!("{iss}/jwks"),
                    "token_endpoint_auth_methods_supported": self.post_methods.lock().unwrap().clone(),
                }))
            } else if url.ends_with("/jwks") {
                Some(json!({"keys": [self.keys[i].jwk.clone()]}))
            } else {
                None
            }
        };
        let i = usize::from(url.starts_with("https://b."));
        match doc(i) {
            Some(d) => Ok(FetchedDocument {
                body: d.to_string().into_bytes(),
                max_age: None,
            }),
            None => Err(FetchError::Status {
                url: url.into(),
                status: 404,
            }),
        }
    }
}

#[async_trait]
impl FormPoster for Fake {
    async fn post_form(
        &self,
        url: &str,
        form: &[(String, String)],
        basic: Option<(&str, &str)>,
    ) -> Result<PostResponse, FetchError> {
        self.posted.lock().unwrap().push((
            url.into(),
            form.to_vec(),
            basic.map(|(u, p)| (u.into(), p.into())),
        ));
        let (status, body) = self.answer.lock().unwrap().clone();
        Ok(PostResponse {
            status,
            body: body.to_string().into_bytes(),
        })
    }
}

struct Env {
    fake: Arc<Fake>,
    login: LoginClient,
    _store_dir: tempfile::TempDir,
}

fn provider(name: &str, host: &str) -> claimdb_identity::ProviderConfig {
    provider_toml(&format!(
        "name = \"{name}\"\nissuer = \"https://{host}\"\naudience = \"client-{name}\"\n\
         discovery = \"https://{host}/.well-known/openid-configuration\"\n\
         client_id = \"client-{name}\"\nclient_secret = \"s3cret:&{name}\"\n"
    ))
}

fn env() -> Env {
    let fake = Arc::new(Fake {
        keys: [TestKey::rsa("ka", "RS256"), TestKey::rsa("kb", "RS256")],
        post_methods: Mutex::new(json!(["client_secret_basic", "client_secret_post"])),
        answer: Mutex::new((500, json!({}))),
        posted: Mutex::new(Vec::new()),
    });
    let providers = [provider("a", "a.idp.test"), provider("b", "b.idp.test")];
    let verifier = Arc::new(
        Verifier::from_configs(
            &providers,
            KeyCacheConfig::default(),
            VerifierDeps {
                fetcher: fake.clone(),
                persistence: Arc::new(MemoryPersistence::default()),
                clock: Arc::new(ManualClock::new(now())),
            },
        )
        .unwrap(),
    );
    let (records, store_dir) = crate::store::temp_store();
    let login = LoginClient::new(
        "https://db.example.com",
        &["https://app.example.com/".to_owned()],
        &providers,
        LoginDeps {
            verifier,
            records,
            fetcher: fake.clone(),
            poster: fake.clone(),
        },
    )
    .unwrap();
    Env {
        fake,
        login,
        _store_dir: store_dir,
    }
}

struct Started {
    state: String,
    nonce: String,
    challenge: String,
    binding: String,
}

impl Env {
    async fn start(&self, provider: &str) -> Started {
        let s = self.login.start(provider, None, now()).await.unwrap();
        let url = reqwest::Url::parse(&s.authorization_url).unwrap();
        let q = |n: &str| {
            url.query_pairs()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        Started {
            state: q("state"),
            nonce: q("nonce"),
            challenge: q("code_challenge"),
            binding: s.browser_binding,
        }
    }

    fn answer(&self, status: u16, body: Value) {
        *self.fake.answer.lock().unwrap() = (status, body);
    }

    async fn callback(
        &self,
        provider: &str,
        s: &Started,
        extra: &[(&str, &str)],
    ) -> Result<String, String> {
        let mut pairs = vec![
            ("state".to_owned(), s.state.clone()),
            ("code".to_owned(), "the-code".to_owned()),
        ];
        pairs.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.login
            .callback(
                provider,
                &CallbackParams::from_pairs(&pairs),
                Some(&s.binding),
                now(),
            )
            .await
            .map(|o| o.token.uid.clone())
            .map_err(|e| e.reason().to_owned())
    }
}

fn at_hash(access_token: &str) -> String {
    let d = digest::digest(&digest::SHA256, access_token.as_bytes());
    b64(&d.as_ref()[..16])
}

fn id_claims(iss: &str, aud: &str, nonce: &str) -> Value {
    json!({"iss": iss, "aud": aud, "sub": "alice", "nonce": nonce, "iat": NOW - 5, "exp": NOW + 600})
}

#[tokio::test]
async fn the_code_exchange_carries_pkce_and_client_authentication() {
    let e = env();
    let s = e.start("a").await;
    let mut c = id_claims("https://a.idp.test", "client-a", &s.nonce);
    c["at_hash"] = json!(at_hash("the-access-token"));
    e.answer(200, json!({"id_token": e.fake.keys[0].token(&c), "access_token": "the-access-token", "token_type": "Bearer"}));
    assert_eq!(
        e.callback("a", &s, &[("iss", "https://a.idp.test")]).await,
        Ok("alice".into())
    );
    let posted = e.fake.posted.lock().unwrap().clone();
    let (url, form, basic) = &posted[0];
    assert_eq!(url, "https://a.idp.test/token");
    let get = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(get("grant_type"), Some("authorization_code"));
    assert_eq!(get("code"), Some("the-code"));
    assert_eq!(
        get("redirect_uri"),
        Some("https://db.example.com/v1/login/a/callback")
    );
    let verifier = get("code_verifier").unwrap();
    let d = digest::digest(&digest::SHA256, verifier.as_bytes());
    assert_eq!(
        b64(d.as_ref()),
        s.challenge,
        "code_challenge = S256(code_verifier)"
    );
    assert_eq!(
        get("client_secret"),
        None,
        "the secret goes in Basic, not the body"
    );
    assert_eq!(
        basic.clone(),
        Some(("client-a".to_owned(), "s3cret:&a".to_owned()))
    );

    // An IdP that only takes client_secret_post gets the secret in the body.
    let e2 = env();
    *e2.fake.post_methods.lock().unwrap() = json!(["client_secret_post"]);
    let s = e2.start("a").await;
    e2.answer(200, json!({"id_token": e2.fake.keys[0].token(&id_claims("https://a.idp.test", "client-a", &s.nonce))}));
    assert_eq!(e2.callback("a", &s, &[]).await, Ok("alice".into()));
    let posted = e2.fake.posted.lock().unwrap().clone();
    let (_, form, basic) = posted.last().unwrap();
    assert!(basic.is_none());
    assert!(form.contains(&("client_secret".to_owned(), "s3cret:&a".to_owned())));
}

#[tokio::test]
async fn each_id_token_check_refuses_its_attack() {
    let e = env();
    let a = "https://a.idp.test";
    type Make = Box<dyn Fn(&Env, &str) -> (u16, Value)>;
    let ok = |_: &Env, n: &str| id_claims(a, "client-a", n);
    type Case<'a> = (&'a str, Make, &'a [(&'a str, &'a str)]);
    let cases: Vec<Case> = vec![
        (
            "at-hash-mismatch",
            Box::new(move |e, n| {
                let mut c = ok(e, n);
                c["at_hash"] = json!(at_hash("another-access-token"));
                (
                    200,
                    json!({"id_token": e.fake.keys[0].token(&c), "access_token": "the-access-token"}),
                )
            }),
            &[],
        ),
        (
            "wrong-client",
            Box::new(move |e, n| {
                let mut c = ok(e, n);
                c["aud"] = json!(["client-a", "client-other"]);
                (200, json!({"id_token": e.fake.keys[0].token(&c)}))
            }),
            &[],
        ),
        (
            "wrong-client",
            Box::new(move |e, n| {
                let mut c = ok(e, n);
                c["azp"] = json!("client-other");
                (200, json!({"id_token": e.fake.keys[0].token(&c)}))
            }),
            &[],
        ),
        (
            "wrong-audience",
            Box::new(move |e, n| {
                (
                    200,
                    json!({"id_token": e.fake.keys[0].token(&id_claims(a, "client-b", n))}),
                )
            }),
            &[],
        ),
        (
            "nonce-mismatch",
            Box::new(move |e, _| {
                (
                    200,
                    json!({"id_token": e.fake.keys[0].token(&id_claims(a, "client-a", "other-nonce"))}),
                )
            }),
            &[],
        ),
        (
            "nonce-mismatch",
            Box::new(move |e, n| {
                let mut c = ok(e, n);
                c.as_object_mut().unwrap().remove("nonce");
                (200, json!({"id_token": e.fake.keys[0].token(&c)}))
            }),
            &[],
        ),
        (
            "bad-signature",
            Box::new(move |e, n| {
                (
                    200,
                    json!({"id_token": e.fake.keys[1].sign(&json!({"alg": "RS256", "kid": "ka"}), &ok(e, n))}),
                )
            }),
            &[],
        ),
        // An ID token of provider b (valid there) delivered at a's callback.
        (
            "wrong-provider",
            Box::new(move |e, n| {
                (
                    200,
                    json!({"id_token": e.fake.keys[1].token(&id_claims("https://b.idp.test", "client-b", n))}),
                )
            }),
            &[],
        ),
        (
            "issuer-mismatch",
            Box::new(move |e, n| (200, json!({"id_token": e.fake.keys[0].token(&ok(e, n))}))),
            &[("iss", "https://b.idp.test")],
        ),
        (
            "provider-denied",
            Box::new(move |e, n| (200, json!({"id_token": e.fake.keys[0].token(&ok(e, n))}))),
            &[("error", "access_denied")],
        ),
        (
            "token-endpoint",
            Box::new(|_, _| (400, json!({"error": "invalid_grant"}))),
            &[],
        ),
        (
            "token-endpoint",
            Box::new(|_, _| (200, json!({"access_token": "x"}))),
            &[],
        ),
    ];
    for (want, make, extra) in cases {
        let s = e.start("a").await;
        let (status, body) = make(&e, &s.nonce);
        e.answer(status, body);
        assert_eq!(
            e.callback("a", &s, extra).await,
            Err(want.to_owned()),
            "{want}"
        );
        // Whatever failed, the state is used up.
        let (status, body) = (
            200,
            json!({"id_token": e.fake.keys[0].token(&ok(&e, &s.nonce))}),
        );
        e.answer(status, body);
        assert_eq!(
            e.callback("a", &s, &[]).await,
            Err("unknown-state".to_owned()),
            "{want}: replay"
        );
    }
    // A state started for provider a, presented at b's callback.
    let s = e.start("a").await;
    assert_eq!(
        e.callback("b", &s, &[]).await,
        Err("state-mismatch".to_owned())
    );
    // The callback without a code.
    let s = e.start("a").await;
    let p = CallbackParams {
        state: Some(s.state.clone()),
        ..Default::default()
    };
    let err = e
        .login
        .callback("a", &p, Some(&s.binding), now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "missing-code");
}

#[tokio::test]
async fn login_configuration_is_checked() {
    let fake_providers = [provider_toml(
        "name = \"a\"\nissuer = \"https://a.idp.test\"\naudience = \"api\"\n\
         jwks_uri = \"https://a.idp.test/jwks\"\nclient_id = \"client-a\"\nclient_secret = \"x\"\n",
    )];
    let e = env();
    let (records, _store_dir) = crate::store::temp_store();
    let deps = || LoginDeps {
        verifier: Arc::new(
            Verifier::from_configs(
                &fake_providers,
                KeyCacheConfig::default(),
                VerifierDeps {
                    fetcher: e.fake.clone(),
                    persistence: Arc::new(MemoryPersistence::default()),
                    clock: Arc::new(ManualClock::new(now())),
                },
            )
            .unwrap(),
        ),
        records: records.clone(),
        fetcher: e.fake.clone(),
        poster: e.fake.clone(),
    };
    let app = ["https://app.example.com/".to_owned()];
    let err = LoginClient::new("https://db.example.com", &app, &fake_providers, deps())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("audience must include client_id"),
        "{err}"
    );
    let mut no_secret = provider("a", "a.idp.test");
    no_secret.client_secret = None;
    let err = LoginClient::new("https://db.example.com", &app, &[no_secret], deps())
        .err()
        .unwrap();
    assert!(err.to_string().contains("client_secret"), "{err}");
    let err = LoginClient::new(
        "https://db.example.com",
        &["//evil".to_owned()],
        &[],
        deps(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("app_redirects"), "{err}");
    let err = LoginClient::new("http://db.example.com", &app, &[], deps())
        .err()
        .unwrap();
    assert!(err.to_string().contains("public_url"), "{err}");
}
