//! claimdb as an issuer: minted tokens verify through the same Verifier as every provider's,
//! rotation keeps old tokens valid until they expire and new ones valid at once, another
//! process's rotation is picked up, the key file survives restarts, and mint requests outside
//! the limits are refused.

use std::sync::Arc;
use std::time::Duration;

use claimdb_identity::io::{ManualClock, MemoryPersistence};
use claimdb_identity::{
    HttpFetcher, KeyCacheConfig, Provider, Verifier, VerifierDeps, validate_providers,
};
use claimdb_signin::issuer::{MAX_TOKEN_TTL, parse_ttl};
use claimdb_signin::{
    DirKeyStorage, Issuer, IssuerConfig, IssuerSettings, MemoryKeyStorage, MintRequest, SigningAlg,
};
use serde_json::{Map, Value, json};

use crate::support::*;

pub(crate) const PUBLIC_URL: &str = "https://db.example.com";

pub(crate) fn issuer_config(alg: SigningAlg) -> IssuerConfig {
    IssuerSettings {
        algorithm: Some(alg),
        rotate_after_days: Some(1),
        ..Default::default()
    }
    .validate(PUBLIC_URL)
    .unwrap()
}

/// A verifier over claimdb's own provider plus `others`, on a manual clock at [`NOW`].
pub(crate) fn verifier_with(
    issuer: &Arc<Issuer>,
    others: Vec<Provider>,
) -> (Arc<Verifier>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now()));
    let deps = VerifierDeps {
        fetcher: Arc::new(HttpFetcher::new(Duration::from_secs(5)).unwrap()),
        persistence: Arc::new(MemoryPersistence::default()),
        clock: clock.clone(),
    };
    let mut providers = others;
    providers.push(issuer.provider());
    let v = Verifier::new(providers, KeyCacheConfig::default(), deps).unwrap();
    (Arc::new(v), clock)
}

fn req(uid: &str, claims: Value) -> MintRequest {
    MintRequest {
        uid: uid.into(),
        claims: claims.as_object().cloned().unwrap_or_default(),
        ..Default::default()
    }
}

fn header(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn minted_tokens_verify_through_the_shared_verifier() {
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let issuer = Issuer::open(
            issuer_config(alg),
            Arc::new(MemoryKeyStorage::default()),
            now(),
        )
        .await
        .unwrap();
        let (verifier, _) = verifier_with(&issuer, Vec::new());
        verifier.start().await;
        let mut r = req("alice", json!({"moderator": true}));
        r.roles = vec!["editor".into()];
        r.provider = Some("auth0".into());
        let minted = issuer.mint(&r, now()).unwrap();
        let h = header(&minted.token);
        assert_eq!(h["alg"], alg.name());
        assert_eq!(h["kid"], minted.kid.as_str());
        let v = verifier.verify(&minted.token, now()).await.unwrap();
        assert_eq!(v.uid, "alice");
        assert_eq!(v.provider, "claimdb");
        assert_eq!(v.roles, vec!["editor".to_owned()]);
        assert_eq!(v.claims["moderator"], true);
        assert_eq!(v.claims["provider"], "auth0");
        assert_eq!(v.claims["iss"], PUBLIC_URL);
        assert_eq!(v.claims["aud"], PUBLIC_URL);
        assert_eq!(v.exp - v.iat.unwrap(), 3600);
        assert!(verifier.ready(now()));

        // Tampering with a claimdb token is caught like any other.
        let mut parts: Vec<String> = minted.token.split('.').map(str::to_owned).collect();
        let mut claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
                .unwrap(),
        )
        .unwrap();
        claims["sub"] = json!("mallory");
        parts[1] = b64(claims.to_string().as_bytes());
        let forged = parts.join(".");
        assert_eq!(
            verifier.verify(&forged, now()).await.unwrap_err().reason(),
            "bad-signature"
        );
        // An unsigned token naming claimdb as issuer.
        let unsigned = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            verifier
                .verify(&unsigned, now())
                .await
                .unwrap_err()
                .reason(),
            "algorithm-not-allowed"
        );
    }
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_they_expire_and_new_keys_verify_at_once() {
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        now(),
    )
    .await
    .unwrap();
    let (verifier, _) = verifier_with(&issuer, Vec::new());
    verifier.start().await;
    let old = issuer.mint(&req("alice", json!({})), now()).unwrap();
    assert!(verifier.verify(&old.token, now()).await.is_ok());

    let t1 = now() + Duration::from_secs(600);
    let new_kid = issuer.rotate(t1).await.unwrap();
    assert_ne!(new_kid, old.kid);
    let new = issuer.mint(&req("bob", json!({})), t1).unwrap();
    assert_eq!(new.kid, new_kid);
    // No refresh, no waiting: the rotated key verifies immediately, the old one still does.
    assert!(verifier.verify(&new.token, t1).await.is_ok());
    assert!(verifier.verify(&old.token, t1).await.is_ok());
    let jwks: Value = serde_json::from_str(&issuer.jwks_json().unwrap()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old.kid.as_str()) && kids.contains(&new_kid.as_str()));
    for k in jwks["keys"].as_array().unwrap() {
        assert!(
            k.get("d").is_none(),
            "the JWKS must not leak private key material"
        );
    }

    // The retired key stays until every token it may have signed is expired (1 h + skew).
    let just_before = t1 + MAX_TOKEN_TTL + Duration::from_secs(59);
    assert!(!issuer.maintain(just_before).await.unwrap());
    assert_eq!(issuer.keys().unwrap().len(), 2);
    let after = t1 + MAX_TOKEN_TTL + Duration::from_secs(61);
    assert!(issuer.maintain(after).await.unwrap());
    let keys = issuer.keys().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, new_kid);
    // A token of the pruned key no longer verifies, even from the verified-token cache.
    let err = verifier
        .verify(&old.token, now() + Duration::from_secs(1800))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "unknown-key");
}

#[tokio::test]
async fn scheduled_rotation_happens_when_the_key_is_old_enough() {
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        now(),
    )
    .await
    .unwrap();
    let first = issuer.keys().unwrap()[0].kid.clone();
    assert!(
        !issuer
            .maintain(now() + Duration::from_secs(86_399))
            .await
            .unwrap()
    );
    assert!(
        issuer
            .maintain(now() + Duration::from_secs(86_400))
            .await
            .unwrap()
    );
    let keys = issuer.keys().unwrap();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0].kid, first);
    assert!(keys[0].retired.is_none());
    assert_eq!(keys[1].kid, first);
    assert!(keys[1].retired.is_some());
}

#[tokio::test]
async fn keys_persist_in_the_directory_and_another_process_rotation_is_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("issuer");
    let storage = || Arc::new(DirKeyStorage::open(&dir).unwrap());
    let server = Issuer::open(issuer_config(SigningAlg::ES256), storage(), now())
        .await
        .unwrap();
    let (verifier, _) = verifier_with(&server, Vec::new());
    verifier.start().await;
    // A restart loads the same key.
    let again = Issuer::open(issuer_config(SigningAlg::ES256), storage(), now())
        .await
        .unwrap();
    assert_eq!(again.keys().unwrap(), server.keys().unwrap());
    // `claimdb token rotate-keys` in another process, then a token minted there.
    let cli = Issuer::open(issuer_config(SigningAlg::ES256), storage(), now())
        .await
        .unwrap();
    let kid = cli.rotate(now()).await.unwrap();
    let token = cli.mint(&req("carol", json!({})), now()).unwrap();
    assert_eq!(token.kid, kid);
    // The server's verifier sees an unknown kid, re-reads the key file once, and accepts.
    let v = verifier.verify(&token.token, now()).await.unwrap();
    assert_eq!(v.uid, "carol");
    assert_eq!(server.keys().unwrap().len(), 2);
}

#[tokio::test]
async fn mint_requests_outside_the_limits_are_refused() {
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        now(),
    )
    .await
    .unwrap();
    let mut r = req("alice", json!({}));
    r.ttl = Some(MAX_TOKEN_TTL + Duration::from_secs(1));
    assert!(
        issuer
            .mint(&r, now())
            .unwrap_err()
            .to_string()
            .contains("at most 3600")
    );
    r.ttl = Some(parse_ttl("30m").unwrap());
    let m = issuer.mint(&r, now()).unwrap();
    assert_eq!(m.exp - m.iat, 1800);
    let cases: Vec<(MintRequest, &str)> = vec![
        (req("", json!({})), "uid"),
        (req(&"u".repeat(129), json!({})), "uid"),
        (req("a", json!({"sub": "root"})), "reserved"),
        (req("a", json!({"iss": "x"})), "reserved"),
        (req("a", json!({"roles": ["admin"]})), "reserved"),
        (req("a", json!({"big": "x".repeat(1000)})), "1000"),
        (
            MintRequest {
                audience: Some("https://other.example".into()),
                ..req("a", json!({}))
            },
            "audience",
        ),
        (
            MintRequest {
                carried: json!({"exp": 1}).as_object().cloned().unwrap(),
                ..req("a", json!({}))
            },
            "reserved",
        ),
    ];
    for (r, want) in cases {
        let e = issuer.mint(&r, now()).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    let mut empty = Map::new();
    empty.insert("ok".into(), json!(1));
    assert!(
        issuer
            .mint(
                &MintRequest {
                    uid: "a".into(),
                    claims: empty,
                    ..Default::default()
                },
                now()
            )
            .is_ok()
    );
}

#[tokio::test]
async fn discovery_document_describes_the_issuer() {
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        now(),
    )
    .await
    .unwrap();
    let d = issuer.discovery_document(Some("https://db.example.com/v1/login"));
    assert_eq!(d["issuer"], PUBLIC_URL);
    assert_eq!(
        d["jwks_uri"],
        "https://db.example.com/.well-known/jwks.json"
    );
    assert_eq!(d["token_endpoint"], "https://db.example.com/v1/token");
    assert_eq!(
        d["authorization_endpoint"],
        "https://db.example.com/v1/login"
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:ietf:params:oauth:grant-type:token-exchange"))
    );
    assert!(
        issuer
            .discovery_document(None)
            .get("authorization_endpoint")
            .is_none()
    );
}

/// The JWKS claimdb publishes is usable by an independent implementation: PyJWT verifies a
/// claimdb token (ES256 and RS256) with it.
#[tokio::test]
async fn pyjwt_verifies_claimdb_tokens_with_the_published_jwks() {
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let issuer = Issuer::open(
            issuer_config(alg),
            Arc::new(MemoryKeyStorage::default()),
            std::time::SystemTime::now(),
        )
        .await
        .unwrap();
        let token = issuer
            .mint(
                &req("alice", json!({"tier": "gold"})),
                std::time::SystemTime::now(),
            )
            .unwrap();
        let script = r#"
import json, sys, jwt
req = json.load(sys.stdin)
keys = jwt.PyJWKSet.from_dict(json.loads(req["jwks"]))
kid = jwt.get_unverified_header(req["token"])["kid"]
key = next(k for k in keys.keys if k.key_id == kid)
print(json.dumps(jwt.decode(req["token"], key.key, algorithms=[req["alg"]], audience=req["aud"], issuer=req["iss"])))
"#;
        let input = json!({"jwks": issuer.jwks_json().unwrap(), "token": token.token, "alg": alg.name(), "aud": PUBLIC_URL, "iss": PUBLIC_URL});
        let out = crate::python::run_python(script, &input.to_string());
        let claims: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["tier"], "gold");
    }
}

/// The config-file path: claimdb's provider sits beside configured ones without clashing.
#[tokio::test]
async fn issuer_provider_coexists_with_configured_providers() {
    let idp = Idp::start().await;
    let key = TestKey::rsa("k1", "RS256");
    idp.publish(&[&key]);
    let others = validate_providers(&[simple_provider(&idp, &["RS256"])]).unwrap();
    let issuer = Issuer::open(
        issuer_config(SigningAlg::ES256),
        Arc::new(MemoryKeyStorage::default()),
        now(),
    )
    .await
    .unwrap();
    let (verifier, _) = verifier_with(&issuer, others);
    verifier.start().await;
    let theirs = key.token(&claims(&idp.base, "api"));
    let ours = issuer.mint(&req("alice", json!({})), now()).unwrap();
    assert_eq!(verifier.verify(&theirs, now()).await.unwrap().provider, "p");
    assert_eq!(
        verifier.verify(&ours.token, now()).await.unwrap().provider,
        "claimdb"
    );
    // claimdb's `roles` claim is trusted only for claimdb: another provider's is not.
    let mut c = claims(&idp.base, "api");
    c["roles"] = json!(["admin"]);
    assert!(
        verifier
            .verify(&key.token(&c), now())
            .await
            .unwrap()
            .roles
            .is_empty()
    );
}
