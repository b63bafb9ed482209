//! Every check token verification makes (signature, algorithm, claims, times, keys), as one table of tokens against one provider
//! served by a real IdP on loopback: each attack and each bad claim is refused with its own
//! reason, and the good tokens pass.

use aws_lc_rs::hmac;
use serde_json::{Value, json};

use crate::support::*;

struct Keys {
    rs: TestKey,
    es: TestKey,
    ed: TestKey,
    es_unpinned: TestKey,
    attacker: TestKey,
}

/// Builds a token for a case from the provider's keys and the IdP's issuer.
type Build = fn(&Keys, &str) -> String;

fn hs256_with_public_key(k: &Keys, iss: &str) -> String {
    // The classic key-confusion attack: HMAC keyed with the provider's *public* key.
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rs"}).to_string();
    let input = format!(
        "{}.{}",
        b64(header.as_bytes()),
        b64(claims(iss, "api").to_string().as_bytes())
    );
    let secret = k.rs.jwk.to_string();
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        input.as_bytes(),
    );
    format!("{input}.{}", b64(tag.as_ref()))
}

fn unsigned(alg: &str, iss: &str, sig: &str) -> String {
    let header = json!({"alg": alg, "typ": "JWT"}).to_string();
    format!(
        "{}.{}.{sig}",
        b64(header.as_bytes()),
        b64(claims(iss, "api").to_string().as_bytes())
    )
}

fn with_header(k: &TestKey, extra: Value, iss: &str) -> String {
    let mut h = k.header();
    for (name, v) in extra.as_object().unwrap() {
        h[name] = v.clone();
    }
    k.sign(&h, &claims(iss, "api"))
}

fn with_claims(k: &TestKey, iss: &str, change: Value) -> String {
    let mut c = claims(iss, "api");
    for (name, v) in change.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(name);
        } else {
            c[name] = v.clone();
        }
    }
    k.token(&c)
}

const CASES: &[(&str, Build, Option<&str>)] = &[
    ("RS256 good", |k, i| k.rs.token(&claims(i, "api")), None),
    ("ES256 good", |k, i| k.es.token(&claims(i, "api")), None),
    ("EdDSA good", |k, i| k.ed.token(&claims(i, "api")), None),
    (
        "alg none, empty signature",
        |_, i| unsigned("none", i, ""),
        Some("algorithm-not-allowed"),
    ),
    (
        "alg none, junk signature",
        |_, i| unsigned("none", i, "eA"),
        Some("algorithm-not-allowed"),
    ),
    (
        "alg None",
        |_, i| unsigned("None", i, "eA"),
        Some("algorithm-not-allowed"),
    ),
    (
        "alg unknown",
        |_, i| unsigned("RS1", i, "eA"),
        Some("algorithm-not-allowed"),
    ),
    (
        "HS256 signed with the public key",
        hs256_with_public_key,
        Some("algorithm-not-allowed"),
    ),
    (
        "ES384 not pinned for this provider",
        |k, i| k.es_unpinned.token(&claims(i, "api")),
        Some("algorithm-not-allowed"),
    ),
    (
        "jku injection",
        |k, i| {
            with_header(
                &k.attacker,
                json!({"jku": "http://127.0.0.1:1/evil", "kid": "rs"}),
                i,
            )
        },
        Some("forbidden-header"),
    ),
    (
        "x5u injection",
        |k, i| with_header(&k.attacker, json!({"x5u": "http://127.0.0.1:1/c"}), i),
        Some("forbidden-header"),
    ),
    (
        "embedded jwk",
        |k, i| with_header(&k.attacker, json!({"jwk": k.attacker.jwk.clone()}), i),
        Some("forbidden-header"),
    ),
    (
        "embedded x5c",
        |k, i| with_header(&k.attacker, json!({"x5c": ["MIIB"]}), i),
        Some("forbidden-header"),
    ),
    (
        "unknown crit",
        |k, i| with_header(&k.rs, json!({"crit": ["b64"], "b64": false}), i),
        Some("unsupported-critical-header"),
    ),
    (
        "kid path traversal",
        |k, i| with_header(&k.attacker, json!({"kid": "../../../../dev/null"}), i),
        Some("unknown-key"),
    ),
    (
        "kid relative to a real kid",
        |k, i| with_header(&k.attacker, json!({"kid": "rs/../rs"}), i),
        Some("unknown-key"),
    ),
    (
        "kid with NUL",
        |k, i| with_header(&k.attacker, json!({"kid": "rs\u{0}"}), i),
        Some("unknown-key"),
    ),
    (
        "kid SQL",
        |k, i| with_header(&k.attacker, json!({"kid": "' OR 1=1 --"}), i),
        Some("unknown-key"),
    ),
    (
        "RS256 header pointing at the EC key",
        |k, i| with_header(&k.rs, json!({"kid": "es"}), i),
        Some("unknown-key"),
    ),
    (
        "real kid, attacker's signature",
        |k, i| with_header(&k.attacker, json!({"kid": "rs"}), i),
        Some("bad-signature"),
    ),
    (
        "payload changed after signing",
        |k, i| {
            let t = k.rs.token(&claims(i, "api"));
            let parts: Vec<&str> = t.split('.').collect();
            let evil =
                json!({"iss": i, "aud": "api", "sub": "admin", "exp": NOW + 3600}).to_string();
            format!("{}.{}.{}", parts[0], b64(evil.as_bytes()), parts[2])
        },
        Some("bad-signature"),
    ),
    (
        "oversized token",
        |k, i| with_claims(&k.rs, i, json!({"pad": "x".repeat(17 * 1024)})),
        Some("too-large"),
    ),
    (
        "duplicate sub in payload",
        |k, i| {
            k.rs.sign_raw(
                &k.rs.header().to_string(),
                &format!(
                    r#"{{"iss":"{i}","aud":"api","sub":"alice","sub":"admin","exp":{}}}"#,
                    NOW + 3600
                ),
            )
        },
        Some("duplicate-claim"),
    ),
    (
        "duplicate alg in header",
        |k, i| {
            k.rs.sign_raw(
                r#"{"alg":"RS256","kid":"rs","alg":"none"}"#,
                &claims(i, "api").to_string(),
            )
        },
        Some("duplicate-claim"),
    ),
    (
        "two parts",
        |_, _| "eyJhbGciOiJSUzI1NiJ9.e30".into(),
        Some("malformed"),
    ),
    ("not base64", |_, _| "###.###.###".into(), Some("malformed")),
    (
        "iss with an extra trailing slash",
        |k, i| with_claims(&k.rs, i, json!({"iss": format!("{i}/")})),
        Some("unknown-issuer"),
    ),
    (
        "iss of nobody",
        |k, i| with_claims(&k.rs, i, json!({"iss": "https://evil.example"})),
        Some("unknown-issuer"),
    ),
    (
        "iss missing",
        |k, i| with_claims(&k.rs, i, json!({"iss": null})),
        Some("unknown-issuer"),
    ),
    (
        "expired",
        |k, i| with_claims(&k.rs, i, json!({"exp": NOW - 61})),
        Some("expired"),
    ),
    (
        "expired within skew",
        |k, i| with_claims(&k.rs, i, json!({"exp": NOW - 59})),
        None,
    ),
    (
        "no exp",
        |k, i| with_claims(&k.rs, i, json!({"exp": null})),
        Some("missing-expiry"),
    ),
    (
        "nbf beyond skew",
        |k, i| with_claims(&k.rs, i, json!({"nbf": NOW + 61})),
        Some("not-yet-valid"),
    ),
    (
        "nbf within skew",
        |k, i| with_claims(&k.rs, i, json!({"nbf": NOW + 59})),
        None,
    ),
    (
        "iat in the future",
        |k, i| with_claims(&k.rs, i, json!({"iat": NOW + 120})),
        Some("issued-in-future"),
    ),
    (
        "wrong aud",
        |k, i| with_claims(&k.rs, i, json!({"aud": "other-api"})),
        Some("wrong-audience"),
    ),
    (
        "aud list with ours",
        |k, i| with_claims(&k.rs, i, json!({"aud": ["x", "api"]})),
        None,
    ),
    (
        "no aud",
        |k, i| with_claims(&k.rs, i, json!({"aud": null})),
        Some("wrong-audience"),
    ),
    (
        "empty sub",
        |k, i| with_claims(&k.rs, i, json!({"sub": ""})),
        Some("bad-subject"),
    ),
    (
        "sub of 129 bytes",
        |k, i| with_claims(&k.rs, i, json!({"sub": "s".repeat(129)})),
        Some("bad-subject"),
    ),
    (
        "numeric sub",
        |k, i| with_claims(&k.rs, i, json!({"sub": 42})),
        Some("bad-subject"),
    ),
];

#[tokio::test]
async fn every_security_check_has_its_reason() {
    let keys = Keys {
        rs: TestKey::rsa("rs", "RS256"),
        es: TestKey::ec("es", "ES256"),
        ed: TestKey::ed("ed"),
        es_unpinned: TestKey::ec("es384", "ES384"),
        attacker: TestKey::rsa("attacker", "RS256"),
    };
    let idp = Idp::start().await;
    idp.publish(&[&keys.rs, &keys.es, &keys.ed, &keys.es_unpinned]);
    let h = harness(
        &[simple_provider(&idp, &["RS256", "ES256", "EdDSA"])],
        Default::default(),
    );
    h.verifier.start().await;
    assert!(h.verifier.ready(now()));

    let mut failures = Vec::new();
    for (name, build, want) in CASES {
        let token = build(&keys, &idp.base);
        let got = h.verifier.verify(&token, now()).await;
        let got_reason = got.as_ref().err().map(|e| e.reason());
        if got_reason != *want {
            failures.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        if let Err(e) = &got {
            assert!(!e.to_string().is_empty());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Forged kids asked for at most one refetch (the rate limit), however many arrived.
    assert!(
        idp.jwks_hits() <= 2,
        "JWKS fetched {} times",
        idp.jwks_hits()
    );
}

#[tokio::test]
async fn cache_hit_still_expires() {
    let k = TestKey::ec("es", "ES256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let h = harness(&[simple_provider(&idp, &["ES256"])], Default::default());
    h.verifier.start().await;
    let mut c = claims(&idp.base, "api");
    c["exp"] = json!(NOW + 100);
    let token = k.token(&c);
    assert!(h.verifier.verify(&token, now()).await.is_ok());
    assert!(
        h.verifier
            .verify(&token, now() + std::time::Duration::from_secs(159))
            .await
            .is_ok()
    );
    let err = h
        .verifier
        .verify(&token, now() + std::time::Duration::from_secs(160))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "expired");
}
