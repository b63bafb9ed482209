//! Several providers at once: routing by exact `iss` with no provider ever tried against another
//! provider's keys, Entra multi-tenant issuers whose tenant must agree with `tid`, Firebase ID
//! tokens verified with X.509 certificates, discovery, and role mappings.

use claimdb_identity::KeyCacheConfig;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn tokens_route_by_exact_issuer_and_never_touch_other_keys() {
    let ka = TestKey::rsa("shared-kid", "RS256");
    let kb = TestKey::rsa("shared-kid", "RS256"); // same kid, different key, other IdP
    let a = Idp::start().await;
    let b = Idp::start().await;
    a.publish(&[&ka]);
    b.publish(&[&kb]);
    let pa = provider_toml(&format!(
        "name = \"a\"\nissuer = \"{}\"\njwks_uri = \"{}\"\naudience = \"api\"\n",
        a.base,
        a.jwks_uri()
    ));
    let pb = provider_toml(&format!(
        "name = \"b\"\nissuer = \"{}/\"\njwks_uri = \"{}\"\naudience = [\"api\", \"other\"]\n",
        b.base,
        b.jwks_uri()
    ));
    let h = harness(&[pa, pb], KeyCacheConfig::default());
    h.verifier.start().await;
    let b_iss = format!("{}/", b.base);

    let ok_a = h
        .verifier
        .verify(&ka.token(&claims(&a.base, "api")), now())
        .await
        .unwrap();
    assert_eq!(ok_a.provider, "a");
    let ok_b = h
        .verifier
        .verify(&kb.token(&claims(&b_iss, "other")), now())
        .await
        .unwrap();
    assert_eq!(ok_b.provider, "b");

    let hits_b = b.jwks_hits();
    // B's key, A's issuer: only A's keys are tried, and they refuse it.
    let cross = kb.token(&claims(&a.base, "api"));
    assert_eq!(
        h.verifier.verify(&cross, now()).await.unwrap_err().reason(),
        "bad-signature"
    );
    // A's issuer without B's trailing slash is A; with it, B. Exactly.
    let a_with_slash = ka.token(&claims(&format!("{}/", a.base), "api"));
    assert_eq!(
        h.verifier
            .verify(&a_with_slash, now())
            .await
            .unwrap_err()
            .reason(),
        "unknown-issuer"
    );
    assert_eq!(
        b.jwks_hits(),
        hits_b,
        "B's IdP was contacted for a token routed to A"
    );
}

#[tokio::test]
async fn additional_issuers_route_to_the_same_provider() {
    let k = TestKey::rsa("g", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let p = provider_toml(&format!(
        "name = \"google\"\npreset = \"google\"\njwks_uri = \"{}\"\naudience = \"client\"\n",
        idp.jwks_uri()
    ));
    let h = harness(&[p], KeyCacheConfig::default());
    h.verifier.start().await;
    for iss in ["https://accounts.google.com", "accounts.google.com"] {
        let got = h
            .verifier
            .verify(&k.token(&claims(iss, "client")), now())
            .await;
        let got = got.map(|t| t.provider.clone()).map_err(|e| e.reason());
        assert_eq!(got, Ok("google".to_owned()), "{iss}");
    }
    let other = k.token(&claims("http://accounts.google.com", "client"));
    assert_eq!(
        h.verifier.verify(&other, now()).await.unwrap_err().reason(),
        "unknown-issuer"
    );
}

#[tokio::test]
async fn entra_multi_tenant_issuer_must_agree_with_tid() {
    let k = TestKey::rsa("entra", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let p = provider_toml(&format!(
        "name = \"entra\"\npreset = \"entra\"\ntenant = \"organizations\"\njwks_uri = \"{}\"\naudience = \"app-id\"\n",
        idp.jwks_uri()
    ));
    let h = harness(&[p], KeyCacheConfig::default());
    h.verifier.start().await;
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let iss = format!("https://login.microsoftonline.com/{tenant}/v2.0");
    let token = |iss: &str, tid: Option<&str>| {
        let mut c = claims(iss, "app-id");
        if let Some(t) = tid {
            c["tid"] = json!(t);
        }
        k.token(&c)
    };
    let cases: &[(String, Option<&str>, Option<&str>)] = &[
        (iss.clone(), Some(tenant), None),
        (
            iss.clone(),
            Some("00000000-0000-0000-0000-000000000000"),
            Some("tenant-mismatch"),
        ),
        (iss.clone(), None, Some("tenant-mismatch")),
        (
            "https://login.microsoftonline.com/a/b/v2.0".into(),
            Some("a/b"),
            Some("unknown-issuer"),
        ),
        (
            "https://login.microsoftonline.com//v2.0".into(),
            Some(""),
            Some("unknown-issuer"),
        ),
        (
            "https://login.microsoftonline.com/x/v2.0/".into(),
            Some("x"),
            Some("unknown-issuer"),
        ),
    ];
    for (iss, tid, want) in cases {
        let got = h.verifier.verify(&token(iss, *tid), now()).await;
        assert_eq!(
            got.as_ref().err().map(|e| e.reason()),
            *want,
            "{iss} tid={tid:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_tenant_allow_list_restricts_multi_tenant_issuers() {
    let k = TestKey::rsa("entra", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let p = provider_toml(&format!(
        "name = \"entra\"\npreset = \"entra\"\ntenant = \"common\"\ntenants = [\"t-ours\"]\n\
         jwks_uri = \"{}\"\naudience = \"app-id\"\n",
        idp.jwks_uri()
    ));
    let h = harness(&[p], KeyCacheConfig::default());
    h.verifier.start().await;
    for (tenant, want) in [("t-ours", None), ("t-other", Some("tenant-not-allowed"))] {
        let mut c = claims(
            &format!("https://login.microsoftonline.com/{tenant}/v2.0"),
            "app-id",
        );
        c["tid"] = json!(tenant);
        let got = h.verifier.verify(&k.token(&c), now()).await;
        assert_eq!(
            got.as_ref().err().map(|e| e.reason()),
            want,
            "{tenant}: {got:?}"
        );
    }
}

#[tokio::test]
async fn firebase_id_tokens_verify_with_x509_certificates() {
    let k = TestKey::rsa("fb-kid-1", "RS256");
    let idp = Idp::start().await;
    idp.publish_x509(&[&k]);
    *idp.state.max_age.lock().unwrap() = Some(19_000);
    let p = provider_toml(&format!(
        "name = \"firebase\"\npreset = \"firebase\"\nproject_id = \"demo-proj\"\nx509_uri = \"{}/x509\"\n",
        idp.base
    ));
    let h = harness(&[p], KeyCacheConfig::default());
    h.verifier.start().await;
    assert!(h.verifier.ready(now()));
    let mut c = claims("https://securetoken.google.com/demo-proj", "demo-proj");
    c["firebase"] = json!({"sign_in_provider": "password"});
    let ok = h.verifier.verify(&k.token(&c), now()).await.unwrap();
    assert_eq!(
        (ok.uid.as_str(), ok.provider.as_str()),
        ("alice", "firebase")
    );
    c["aud"] = json!("other-proj");
    assert_eq!(
        h.verifier
            .verify(&k.token(&c), now())
            .await
            .unwrap_err()
            .reason(),
        "wrong-audience"
    );
    assert_eq!(
        idp.state
            .x509_hits
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_its_issuer() {
    let k = TestKey::ec("k", "ES256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let p = provider_toml(&format!(
        "name = \"oidc\"\nissuer = \"{0}\"\ndiscovery = \"{0}/.well-known/openid-configuration\"\naudience = \"api\"\nalgorithms = [\"ES256\"]\n",
        idp.base
    ));
    let h = harness(std::slice::from_ref(&p), KeyCacheConfig::default());
    h.verifier.start().await;
    assert!(
        h.verifier
            .verify(&k.token(&claims(&idp.base, "api")), now())
            .await
            .is_ok()
    );

    // A discovery document naming another issuer is refused: no keys, not ready.
    *idp.state.issuer.lock().unwrap() = "https://impostor.example".into();
    let h2 = harness(&[p], KeyCacheConfig::default());
    h2.verifier.start().await;
    assert!(!h2.verifier.ready(now()));
    let m = &h2.verifier.metrics(now())[0];
    assert!(
        m.last_error
            .as_deref()
            .unwrap_or("")
            .contains("differs from the configured issuer"),
        "{m:?}"
    );
}

#[tokio::test]
async fn roles_come_from_claim_predicates() {
    let k = TestKey::rsa("k", "RS256");
    let idp = Idp::start().await;
    idp.publish(&[&k]);
    let p = provider_toml(&format!(
        r#"name = "auth0"
issuer = "{0}"
jwks_uri = "{1}"
audience = "api"
[[roles]]
role = "admin"
claim = "https://app.example/roles"
contains = "admin"
[[roles]]
role = "gold"
claim = ["app_metadata", "plan"]
equals = "gold"
[[roles]]
role = "nobody"
claim = "missing"
equals = true
"#,
        idp.base,
        idp.jwks_uri()
    ));
    let deps = harness(&[p], KeyCacheConfig::default());
    deps.verifier.start().await;
    let mut c = claims(&idp.base, "api");
    c["https://app.example/roles"] = json!(["admin", "editor"]);
    c["app_metadata"] = json!({"plan": "gold"});
    let ok = deps.verifier.verify(&k.token(&c), now()).await.unwrap();
    assert_eq!(ok.roles, vec!["admin".to_owned(), "gold".to_owned()]);
    assert_eq!(
        ok.claims["https://app.example/roles"],
        json!(["admin", "editor"])
    );
}
