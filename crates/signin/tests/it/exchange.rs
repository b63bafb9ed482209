//! RFC 8693 token exchange and the refresh grant end to end: a provider's token and a
//! Firebase-format custom token (minted by PyPI `firebase-admin`, an independent
//! implementation, offline) become claimdb ID tokens + refresh tokens; refresh rotation and
//! reuse detection; every refused subject token gets an OAuth error.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use claimdb_identity::io::{ManualClock, MemoryPersistence};
use claimdb_identity::{HttpFetcher, KeyCacheConfig, Verifier, VerifierDeps, validate_providers};
use claimdb_signin::custom_token::FIREBASE_CUSTOM_TOKEN_AUDIENCE;
use claimdb_signin::exchange::{OAuthErrorCode, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT};
use claimdb_signin::{
    CustomTokenSignerConfig, CustomTokens, Grant, Issuer, MemoryKeyStorage, MintRequest,
    OAuthError, RefreshTokens, SigningAlg, TokenResponse, TokenService, UserState, Users,
};
use serde_json::{Value, json};

use crate::issuer::{PUBLIC_URL, issuer_config};
use crate::support::*;

const SIGNER: &str = "svc@demo-claimdb.iam.gserviceaccount.com";
const X509_SIGNER: &str = "other@demo-claimdb.iam.gserviceaccount.com";

#[derive(Default)]
struct Claims(Mutex<HashMap<String, UserState>>);

impl Claims {
    fn set(&self, uid: &str, v: Value) {
        self.0
            .lock()
            .unwrap()
            .entry(uid.into())
            .or_default()
            .custom_claims = v.as_object().cloned().unwrap();
    }

    fn revoke(&self, uid: &str, valid_after: i64) {
        self.0
            .lock()
            .unwrap()
            .entry(uid.into())
            .or_default()
            .tokens_valid_after = Some(valid_after);
    }
}

#[async_trait]
impl Users for Claims {
    async fn state(&self, uid: &str) -> Result<UserState, String> {
        Ok(self.0.lock().unwrap().get(uid).cloned().unwrap_or_default())
    }
}

struct Env {
    idp: Idp,
    key: TestKey,
    signer_key: TestKey,
    x509_key: TestKey,
    service: TokenService,
    verifier: Arc<Verifier>,
    issuer: Arc<Issuer>,
    claims: Claims,
    _dir: tempfile::TempDir,
    _store_dir: tempfile::TempDir,
}

async fn env(at: SystemTime) -> Env {
    let idp = Idp::start().await;
    let key = TestKey::rsa("k1", "RS256");
    let signer_key = TestKey::rsa("sa-key-1", "RS256");
    let x509_key = TestKey::rsa("sa-key-2", "RS256");
    idp.publish(&[&key]);
    idp.publish_x509(&[&x509_key]);
    let provider = provider_toml(&format!(
        "name = \"p\"\nissuer = \"{}\"\njwks_uri = \"{}\"\naudience = \"api\"\n\
         [[roles]]\nrole = \"editor\"\nclaim = \"groups\"\ncontains = \"editors\"\n",
        idp.base,
        idp.jwks_uri()
    ));
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        at,
    )
    .await
    .unwrap();
    let deps = || VerifierDeps {
        fetcher: Arc::new(HttpFetcher::new(Duration::from_secs(5)).unwrap()),
        persistence: Arc::new(MemoryPersistence::default()),
        clock: Arc::new(ManualClock::new(at)),
    };
    let mut providers = validate_providers(&[provider]).unwrap();
    providers.push(issuer.provider());
    let verifier = Arc::new(Verifier::new(providers, KeyCacheConfig::default(), deps()).unwrap());
    verifier.start().await;
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("svc.pem");
    std::fs::write(&pem, signer_key.certificate_pem()).unwrap();
    let signers = [
        CustomTokenSignerConfig {
            issuer: SIGNER.into(),
            public_key_file: Some(pem),
            ..Default::default()
        },
        CustomTokenSignerConfig {
            issuer: X509_SIGNER.into(),
            x509_uri: Some(format!("{}/x509", idp.base)),
            ..Default::default()
        },
    ];
    let custom = Arc::new(CustomTokens::new(&signers, KeyCacheConfig::default(), deps()).unwrap());
    custom.start().await;
    let (store, store_dir) = crate::store::temp_store();
    let refresh = RefreshTokens::new(store, Duration::from_secs(30 * 86_400));
    let service = TokenService::new(issuer.clone(), verifier.clone(), Some(custom), refresh);
    Env {
        idp,
        key,
        signer_key,
        x509_key,
        service,
        verifier,
        issuer,
        claims: Claims::default(),
        _dir: dir,
        _store_dir: store_dir,
    }
}

fn exchange(token: &str, ty: &str) -> Grant {
    Grant::TokenExchange {
        subject_token: token.to_owned(),
        subject_token_type: ty.to_owned(),
    }
}

fn refresh(token: &str) -> Grant {
    Grant::RefreshToken {
        refresh_token: token.to_owned(),
    }
}

impl Env {
    async fn run(&self, g: &Grant, at: SystemTime) -> Result<TokenResponse, OAuthError> {
        self.service.grant(g, &self.claims, at).await
    }
}

#[tokio::test]
async fn a_provider_token_is_exchanged_for_claimdb_tokens() {
    let e = env(now()).await;
    e.claims.set("alice", json!({"moderator": true}));
    let mut c = claims(&e.idp.base, "api");
    c["groups"] = json!(["editors"]);
    c["email"] = json!("alice@example.com");
    let subject = e.key.token(&c);
    let r = e
        .run(&exchange(&subject, TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    assert_eq!(r.token_type, "Bearer");
    assert_eq!(r.issued_token_type, TOKEN_TYPE_ID_TOKEN);
    assert_eq!(r.expires_in, 3600);
    assert_eq!(r.access_token, r.id_token);
    assert!(r.refresh_token.len() >= 43);
    let wire = serde_json::to_value(&r).unwrap();
    for f in [
        "access_token",
        "issued_token_type",
        "token_type",
        "expires_in",
        "refresh_token",
        "id_token",
    ] {
        assert!(wire.get(f).is_some(), "{f}");
    }
    let v = e.verifier.verify(&r.id_token, now()).await.unwrap();
    assert_eq!(v.uid, "alice");
    assert_eq!(v.provider, "claimdb");
    assert_eq!(v.roles, vec!["editor".to_owned()]);
    assert_eq!(v.claims["provider"], "p");
    assert_eq!(v.claims["moderator"], true);
    assert_eq!(v.claims["email"], "alice@example.com");
    assert_eq!(v.claims["iss"], PUBLIC_URL);
    // The id_token subject type is accepted too.
    assert!(
        e.run(&exchange(&subject, TOKEN_TYPE_ID_TOKEN), now())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn refresh_rotates_picks_up_new_claims_and_reuse_revokes_the_family() {
    let e = env(now()).await;
    let subject = e.key.token(&claims(&e.idp.base, "api"));
    let first = e
        .run(&exchange(&subject, TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    // Custom claims set after sign-in apply at the next refresh.
    e.claims.set("alice", json!({"tier": "gold"}));
    let t1 = now() + Duration::from_secs(3000);
    let second = e.run(&refresh(&first.refresh_token), t1).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    let v = e.verifier.verify(&second.id_token, t1).await.unwrap();
    assert_eq!(v.claims["tier"], "gold");
    assert_eq!(v.claims["provider"], "p");
    // Replaying the first refresh token: refused, and the family dies.
    let err = e.run(&refresh(&first.refresh_token), t1).await.unwrap_err();
    assert_eq!(
        (err.error, err.reason),
        (OAuthErrorCode::InvalidGrant, Some("refresh-token-reused"))
    );
    let err = e
        .run(&refresh(&second.refresh_token), t1)
        .await
        .unwrap_err();
    assert_eq!(
        (err.error, err.reason),
        (OAuthErrorCode::InvalidGrant, Some("revoked"))
    );
    // Per-user revocation.
    let third = e
        .run(&exchange(&subject, TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    e.service
        .refresh_tokens()
        .revoke_user("alice", t1)
        .await
        .unwrap();
    let err = e.run(&refresh(&third.refresh_token), t1).await.unwrap_err();
    assert_eq!(err.reason, Some("revoked"));
    let err = e.run(&refresh("not-a-token"), t1).await.unwrap_err();
    // A client error (answered 400), not a server one.
    assert_eq!(err.error, OAuthErrorCode::InvalidGrant);
}

/// Regression: a revoked user's still-unexpired provider token was exchanged for fresh claimdb
/// tokens (and a refresh token) after the revocation. A subject token issued before the
/// user's `tokens_valid_after` is refused; one issued at or after it is exchanged.
#[tokio::test]
async fn a_revoked_users_token_is_not_exchanged_and_their_refresh_tokens_die() {
    let e = env(now()).await;
    let old = e.key.token(&claims(&e.idp.base, "api")); // iat = NOW - 10
    let before = e.run(&exchange(&old, TOKEN_TYPE_JWT), now()).await.unwrap();
    let valid_after = i64::try_from(NOW).unwrap() - 5;
    e.claims.revoke("alice", valid_after);
    let err = e
        .run(&exchange(&old, TOKEN_TYPE_JWT), now())
        .await
        .unwrap_err();
    assert_eq!(
        (err.error, err.reason),
        (OAuthErrorCode::InvalidGrant, Some("revoked"))
    );
    // The sign-in from before the revocation cannot be refreshed, and its family is dead
    // (refused again even if the revocation were lifted).
    let err = e
        .run(&refresh(&before.refresh_token), now())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Some("revoked"));
    // A token issued at the boundary second is a new sign-in and works, refresh included.
    let mut fresh = claims(&e.idp.base, "api");
    fresh["iat"] = json!(valid_after);
    let r = e
        .run(&exchange(&e.key.token(&fresh), TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    assert!(e.run(&refresh(&r.refresh_token), now()).await.is_ok());
}

/// A revocation that lands while a grant runs (after its first check, before it answers) must
/// not be outlived by what the grant minted: the grant fails and its refresh family dies.
#[tokio::test]
async fn a_revocation_during_a_grant_refuses_what_it_minted() {
    struct RevokedMidway {
        calls: std::sync::atomic::AtomicUsize,
        valid_after: i64,
    }
    #[async_trait]
    impl Users for RevokedMidway {
        async fn state(&self, _: &str) -> Result<UserState, String> {
            // The first lookup sees no revocation, every later one sees it.
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(UserState {
                tokens_valid_after: (n > 0).then_some(self.valid_after),
                ..UserState::default()
            })
        }
    }
    let e = env(now()).await;
    let subject = e.key.token(&claims(&e.idp.base, "api"));
    let users = RevokedMidway {
        calls: Default::default(),
        valid_after: i64::try_from(NOW).unwrap(),
    };
    let err = e
        .service
        .grant(&exchange(&subject, TOKEN_TYPE_JWT), &users, now())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Some("revoked"));
    // Refresh: first lookup before minting sees nothing, the one after sees the revocation.
    let signed_in = e
        .run(&exchange(&subject, TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    users.calls.store(0, std::sync::atomic::Ordering::SeqCst);
    let err = e
        .service
        .grant(&refresh(&signed_in.refresh_token), &users, now())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Some("revoked"));
}

/// Claims claimdb mints from the user's stored custom claims are named in `claimdb_custom`,
/// so that whoever authenticates the token can replace them with the current ones.
#[tokio::test]
async fn minted_tokens_name_the_stored_custom_claims() {
    let e = env(now()).await;
    e.claims
        .set("alice", json!({"moderator": true, "tier": "gold"}));
    let mut c = claims(&e.idp.base, "api");
    c["email"] = json!("alice@example.com");
    let r = e
        .run(&exchange(&e.key.token(&c), TOKEN_TYPE_JWT), now())
        .await
        .unwrap();
    let v = e.verifier.verify(&r.id_token, now()).await.unwrap();
    assert_eq!(v.claims["claimdb_custom"], json!(["moderator", "tier"]));
    // Without stored claims there is nothing to name.
    let r = e
        .run(
            &exchange(
                &e.key
                    .token(&json!({"iss": e.idp.base, "aud": "api", "sub": "bob",
                    "iat": NOW - 10, "exp": NOW + 3600})),
                TOKEN_TYPE_JWT,
            ),
            now(),
        )
        .await
        .unwrap();
    let v = e.verifier.verify(&r.id_token, now()).await.unwrap();
    assert!(v.claims.get("claimdb_custom").is_none());
}

#[tokio::test]
async fn refused_subject_tokens_get_oauth_errors() {
    let e = env(now()).await;
    let own = e
        .issuer
        .mint(
            &MintRequest {
                uid: "alice".into(),
                ..Default::default()
            },
            now(),
        )
        .unwrap();
    let mut expired = claims(&e.idp.base, "api");
    expired["exp"] = json!(NOW - 3600);
    let stranger = TestKey::rsa("k1", "RS256");
    let cases: Vec<(String, &str)> = vec![
        (own.token, "own-token"),
        (
            e.key.token(&claims("https://unknown.example", "api")),
            "unknown-issuer",
        ),
        (e.key.token(&expired), "expired"),
        (
            e.key.token(&claims(&e.idp.base, "other-api")),
            "wrong-audience",
        ),
        (stranger.token(&claims(&e.idp.base, "api")), "bad-signature"),
        ("garbage".into(), "malformed"),
    ];
    for (token, reason) in cases {
        let err = e
            .run(&exchange(&token, TOKEN_TYPE_JWT), now())
            .await
            .unwrap_err();
        assert_eq!(err.error, OAuthErrorCode::InvalidGrant, "{reason}: {err}");
        assert_eq!(err.reason, Some(reason), "{err}");
    }
}

/// `python3` with `firebase-admin` importable: installed once from PyPI into
/// `$CARGO_TARGET_TMPDIR/pydeps/firebase-admin-<version>` (through a temporary directory and a
/// rename, so parallel test processes never see a half-installed copy).
fn firebase_python() -> Command {
    const VERSION: &str = "7.7.0";
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        let dir = format!(
            "{}/pydeps/firebase-admin-{VERSION}",
            env!("CARGO_TARGET_TMPDIR")
        );
        let probe = |p: &str| {
            Command::new("python3")
                .args(["-c", "import firebase_admin.auth"])
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
                .args(["--target", &tmp, &format!("firebase-admin=={VERSION}")])
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()),
                "firebase-admin is required for the custom-token interop test and could not be \
                 installed: run `python3 -m pip install firebase-admin=={VERSION}` ({status:?})"
            );
            if std::fs::rename(&tmp, &dir).is_err() {
                // Another process won the race; use its copy.
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

const FIREBASE_MINT: &str = r#"
import json, sys, firebase_admin
from firebase_admin import credentials, auth
req = json.load(sys.stdin)
app = firebase_admin.initialize_app(credentials.Certificate(req["service_account"]), name=req["name"])
for t in req["tokens"]:
    print(auth.create_custom_token(t["uid"], t["claims"], app=app).decode())
"#;

/// Custom tokens from `firebase_admin.auth.create_custom_token` with a service-account key.
fn firebase_custom_tokens(email: &str, key: &TestKey, tokens: &[(&str, Value)]) -> Vec<String> {
    let sa = json!({
        "type": "service_account",
        "project_id": "demo-claimdb",
        "private_key_id": key.kid,
        "private_key": key.pkcs8_pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let reqs: Vec<Value> = tokens
        .iter()
        .map(|(uid, claims)| json!({"uid": uid, "claims": claims}))
        .collect();
    let input = json!({"service_account": sa, "name": email, "tokens": reqs});
    let mut child = firebase_python()
        .args(["-c", FIREBASE_MINT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        input.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "firebase-admin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), tokens.len());
    lines
}

#[tokio::test]
async fn firebase_admin_custom_tokens_are_exchanged() {
    let real_now = SystemTime::now();
    let e = env(real_now).await;
    e.claims.set("alice", json!({"moderator": true}));
    let from_file = firebase_custom_tokens(
        SIGNER,
        &e.signer_key,
        &[("alice", json!({"premium": true})), ("bob", Value::Null)],
    );
    let from_x509 = firebase_custom_tokens(
        X509_SIGNER,
        &e.x509_key,
        &[("carol", json!({"plan": "pro"}))],
    );
    let r = e
        .run(&exchange(&from_file[0], TOKEN_TYPE_JWT), real_now)
        .await
        .unwrap();
    let v = e.verifier.verify(&r.id_token, real_now).await.unwrap();
    assert_eq!(v.uid, "alice");
    assert_eq!(v.claims["premium"], true, "developer claims are carried");
    assert_eq!(
        v.claims["moderator"], true,
        "stored custom claims are added"
    );
    assert_eq!(v.claims["provider"], SIGNER);
    let r = e
        .run(&exchange(&from_file[1], TOKEN_TYPE_JWT), real_now)
        .await
        .unwrap();
    assert_eq!(
        e.verifier.verify(&r.id_token, real_now).await.unwrap().uid,
        "bob"
    );
    let r = e
        .run(&exchange(&from_x509[0], TOKEN_TYPE_ID_TOKEN), real_now)
        .await
        .unwrap();
    let v = e.verifier.verify(&r.id_token, real_now).await.unwrap();
    assert_eq!(
        (v.uid.as_str(), &v.claims["plan"]),
        ("carol", &json!("pro"))
    );
    // Developer claims survive a refresh.
    let r2 = e.run(&refresh(&r.refresh_token), real_now).await.unwrap();
    assert_eq!(
        e.verifier
            .verify(&r2.id_token, real_now)
            .await
            .unwrap()
            .claims["plan"],
        "pro"
    );
    // A custom token is not a bearer credential for data: the main verifier does not know it.
    assert_eq!(
        e.verifier
            .verify(&from_file[0], real_now)
            .await
            .unwrap_err()
            .reason(),
        "unknown-issuer"
    );
    // Signed with the other signer's key but claiming to be SIGNER: refused.
    let wrong = firebase_custom_tokens(SIGNER, &e.x509_key, &[("alice", Value::Null)]);
    let err = e
        .run(&exchange(&wrong[0], TOKEN_TYPE_JWT), real_now)
        .await
        .unwrap_err();
    assert_eq!(err.reason, Some("bad-signature"));
}

#[tokio::test]
async fn crafted_custom_tokens_are_refused() {
    let e = env(now()).await;
    let base = json!({
        "iss": SIGNER, "sub": SIGNER, "aud": FIREBASE_CUSTOM_TOKEN_AUDIENCE,
        "uid": "alice", "iat": NOW - 10, "exp": NOW + 3000,
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    let k = &e.signer_key;
    let ok = k.token(&base);
    assert!(e.run(&exchange(&ok, TOKEN_TYPE_JWT), now()).await.is_ok());
    // A custom token minted before the user's revocation is refused like any credential;
    // one minted at the boundary second works.
    e.claims.revoke("alice", i64::try_from(NOW).unwrap() - 5);
    let err = e
        .run(&exchange(&ok, TOKEN_TYPE_JWT), now())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Some("revoked"));
    let after = k.token(&with(&|c| c["iat"] = json!(NOW - 5)));
    assert!(
        e.run(&exchange(&after, TOKEN_TYPE_JWT), now())
            .await
            .is_ok()
    );
    let hs = format!(
        "{}.{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(base.to_string().as_bytes()),
        b64(b"sig")
    );
    let ps = TestKey::rsa("ps", "PS256");
    let cases: Vec<(String, &str)> = vec![
        (
            k.token(&with(&|c| c["sub"] = json!("someone@else"))),
            "malformed",
        ),
        (
            k.token(&with(&|c| c["exp"] = json!(NOW - 10 + 3601))),
            "malformed",
        ),
        (
            k.token(&with(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            })),
            "malformed",
        ),
        (
            k.token(&with(&|c| {
                c["aud"] = json!("https://securetoken.google.com/x")
            })),
            "wrong-audience",
        ),
        (k.token(&with(&|c| c["exp"] = json!(NOW - 61))), "expired"),
        (
            k.token(&with(&|c| c["iat"] = json!(NOW + 120))),
            "issued-in-future",
        ),
        (
            k.token(&with(&|c| c["uid"] = json!("u".repeat(129)))),
            "bad-subject",
        ),
        (k.token(&with(&|c| c["uid"] = json!(""))), "bad-subject"),
        (
            k.token(&with(&|c| {
                c.as_object_mut().unwrap().remove("uid");
            })),
            "bad-subject",
        ),
        (
            k.token(&with(&|c| c["claims"] = json!({"sub": "root"}))),
            "malformed",
        ),
        (
            k.token(&with(&|c| c["claims"] = json!({"big": "x".repeat(1000)}))),
            "malformed",
        ),
        (
            k.token(&with(&|c| c["claims"] = json!(["not", "an", "object"]))),
            "malformed",
        ),
        (hs, "algorithm-not-allowed"),
        (
            ps.sign(&json!({"alg": "PS256", "kid": "sa-key-1"}), &base),
            "algorithm-not-allowed",
        ),
    ];
    for (token, reason) in cases {
        let err = e
            .run(&exchange(&token, TOKEN_TYPE_JWT), now())
            .await
            .unwrap_err();
        assert_eq!(err.reason, Some(reason), "{err}");
        assert_eq!(err.error, OAuthErrorCode::InvalidGrant);
    }
}
