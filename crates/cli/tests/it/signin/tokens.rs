//! claimdb as an issuer: minted tokens under rules, JWKS and discovery checked with PyJWT,
//! the `/v1/token` exchange and refresh, and a firebase-admin custom token.

use super::*;

#[test]
fn tokens_minted_by_the_cli_and_the_admin_api_read_under_rules() {
    let w = plain_world();
    let cli = w.cli_token(&[
        "mint",
        "--uid",
        "mod",
        "--claims",
        r#"{"moderator":true}"#,
        "--ttl",
        "30m",
    ]);
    let cli = cli.trim();
    let p = payload(cli);
    assert_eq!(p["iss"], PUBLIC_URL);
    assert_eq!(
        p["exp"].as_i64().unwrap() - p["iat"].as_i64().unwrap(),
        1800
    );
    let r = w.as_user(
        cli,
        "PUT",
        "/v1/docs/movies/m1",
        Some(json!({"title": "Up"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = w.as_user(cli, "GET", "/v1/me", None);
    assert_eq!(r.json()["provider"], "claimdb", "{}", r.text);
    assert_eq!(r.json()["uid"], "mod");

    // The admin API mints for a user; claims and ttl are optional.
    let r = w.admin(
        "POST",
        "/v1/admin/users/bob/tokens",
        Some(json!({"ttl": "10m"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_i64()),
        (Some("Bearer"), Some(600))
    );
    let bob = v["id_token"].as_str().unwrap().to_owned();
    let r = w.as_user(&bob, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"]["title"], "Up");
    w.as_user(
        &bob,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    )
    .error(403, "permission-denied");
    let r = w.admin(
        "POST",
        "/v1/admin/users/bob/tokens",
        Some(json!({"claims": {"moderator": true}, "ttl": 60})),
    );
    let bob_mod = r.json()["id_token"].as_str().unwrap().to_owned();
    let r = w.as_user(
        &bob_mod,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    // Minting is admin-only, bounded, and refuses reserved claims.
    w.call("POST", "/v1/admin/users/bob/tokens", &[], Some(json!({})))
        .error(401, "unauthenticated");
    w.as_user(&bob, "POST", "/v1/admin/users/bob/tokens", Some(json!({})))
        .error(403, "permission-denied");
    let r = w.admin(
        "POST",
        "/v1/admin/users/bob/tokens",
        Some(json!({"ttl": "2h"})),
    );
    assert!(
        r.error(400, "invalid-argument")
            .text
            .contains("at most 3600"),
        "{}",
        r.text
    );
    w.admin(
        "POST",
        "/v1/admin/users/bob/tokens",
        Some(json!({"claims": {"sub": "alice"}})),
    )
    .error(400, "invalid-argument");
    w.admin(
        "POST",
        "/v1/admin/users/bob/tokens",
        Some(json!({"bogus": 1})),
    )
    .error(400, "invalid-argument");
}

#[test]
fn jwks_and_discovery_are_served_and_verify_claimdb_tokens_with_pyjwt() {
    let w = plain_world();
    let r = w.call("GET", "/.well-known/openid-configuration", &[], None);
    assert_eq!(r.status, 200, "{}", r.text);
    let d = r.json();
    assert_eq!(d["issuer"], PUBLIC_URL);
    assert_eq!(d["jwks_uri"], format!("{PUBLIC_URL}/.well-known/jwks.json"));
    assert_eq!(d["token_endpoint"], format!("{PUBLIC_URL}/v1/token"));
    let r = w.call("GET", "/.well-known/jwks.json", &[], None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("cache-control").unwrap().contains("max-age="),
        "{:?}",
        r.headers
    );
    let jwks = r.json();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private key material is published"
    );

    let minted = w.admin("POST", "/v1/admin/users/alice/tokens", Some(json!({})));
    let token = minted.json()["id_token"].as_str().unwrap().to_owned();
    // A token signed by another key under the same kid must fail: the check can fail.
    let mut parts: Vec<&str> = token.split('.').collect();
    let forged_body = URL_SAFE_NO_PAD.encode(
        json!({"iss": PUBLIC_URL, "aud": PUBLIC_URL, "sub": "mallory", "iat": 1, "exp": 4_000_000_000u64})
            .to_string(),
    );
    parts[1] = &forged_body;
    let forged = parts.join(".");
    assert_eq!(
        pyjwt_verify(&jwks, &[&token, &forged]),
        vec![
            "ok alice".to_owned(),
            "refused InvalidSignatureError".to_owned()
        ]
    );

    // A rotation by the CLI while the server runs: the served JWKS gains the new key (keeping
    // the old one), and tokens of both keys verify with PyJWT and at the server.
    let out = w.cli_token(&["rotate-keys"]);
    let new_kid = out
        .lines()
        .next()
        .unwrap()
        .strip_prefix("new signing key: ")
        .unwrap()
        .to_owned();
    let after = w.cli_token(&["mint", "--uid", "carol"]);
    let after = after.trim();
    let deadline = Instant::now() + Duration::from_secs(10);
    let jwks = loop {
        let jwks = w.call("GET", "/.well-known/jwks.json", &[], None).json();
        if jwks["keys"].as_array().unwrap().len() == 2 {
            break jwks;
        }
        assert!(
            Instant::now() < deadline,
            "the rotated key was not published: {jwks}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == new_kid.as_str())
    );
    assert_eq!(
        pyjwt_verify(&jwks, &[&token, after]),
        vec!["ok alice".to_owned(), "ok carol".to_owned()]
    );
    let r = w.as_user(after, "GET", "/v1/me", None);
    assert_eq!(r.json()["uid"], "carol", "{}", r.text);
    let r = w.as_user(&token, "GET", "/v1/me", None);
    assert_eq!(r.json()["uid"], "alice", "{}", r.text);
}

#[test]
fn exchanged_tokens_carry_mapped_roles_and_custom_claims_and_refresh_rotates() {
    let w = plain_world();
    let r = w.admin(
        "PUT",
        "/v1/admin/users/carol/claims",
        Some(json!({"moderator": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let idp_token = w.key.sign(&claims(
        "carol",
        json!({"https://app.example/roles": ["moderator"], "email": "carol@example.com"}),
    ));
    let r = w.exchange(&idp_token);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(
        v["issued_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    let id_token = v["id_token"].as_str().unwrap().to_owned();
    let refresh1 = v["refresh_token"].as_str().unwrap().to_owned();
    let p = payload(&id_token);
    assert_eq!(p["iss"], PUBLIC_URL);
    assert_eq!(p["sub"], "carol");
    assert_eq!(p["roles"], json!(["moderator"]), "mapped roles are carried");
    assert_eq!(p["moderator"], true, "stored custom claims are carried");
    assert_eq!(p["provider"], "idp");
    assert_eq!(p["email"], "carol@example.com");
    // Rules see the sign-in provider and the roles.
    let r = w.as_user(&id_token, "PUT", "/v1/docs/staff/s1", Some(json!({"n": 1})));
    assert_eq!(r.status, 201, "{}", r.text);
    let me = w.as_user(&id_token, "GET", "/v1/me", None).json();
    assert_eq!(
        (me["provider"].as_str(), &me["roles"]),
        (Some("idp"), &json!(["moderator"]))
    );
    // The user record is created at the exchange.
    let u = w.admin("GET", "/v1/admin/users/carol", None).json();
    assert_eq!(
        (u["provider"].as_str(), u["email"].as_str()),
        (Some("idp"), Some("carol@example.com"))
    );

    // Refresh: a new refresh token each time; the old one, presented again, kills the family.
    let r = w.refresh(&refresh1);
    assert_eq!(r.status, 200, "{}", r.text);
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh1, refresh2);
    let p = payload(r.json()["id_token"].as_str().unwrap());
    assert_eq!(
        (p["sub"].as_str(), p["provider"].as_str()),
        (Some("carol"), Some("idp"))
    );
    oauth_error(
        &w.refresh(&refresh1),
        "invalid_grant",
        Some("refresh-token-reused"),
    );
    oauth_error(&w.refresh(&refresh2), "invalid_grant", Some("revoked"));
    oauth_error(
        &w.refresh("not-a-token"),
        "invalid_grant",
        Some("unknown-refresh-token"),
    );

    // Revoking the user revokes the refresh tokens issued so far.
    let r = w.exchange(&idp_token);
    let refresh3 = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let r = w.admin("POST", "/v1/admin/users/carol/revoke", None);
    assert_eq!(r.status, 200, "{}", r.text);
    oauth_error(&w.refresh(&refresh3), "invalid_grant", Some("revoked"));

    // Refusals keep the OAuth shape.
    oauth_error(&w.exchange(&id_token), "invalid_grant", Some("own-token"));
    let forged = Key::new("k1").sign(&claims("carol", json!({})));
    oauth_error(&w.exchange(&forged), "invalid_grant", None);
    oauth_error(
        &w.token_endpoint(&[("grant_type", "password")]),
        "unsupported_grant_type",
        None,
    );
    oauth_error(
        &w.token_endpoint(&[("grant_type", EXCHANGE), ("subject_token", &idp_token)]),
        "invalid_request",
        None,
    );
    let r = send(
        "POST",
        &w.url("/v1/token"),
        &[],
        Some(("application/json", "{}".into())),
    );
    oauth_error(&r, "invalid_request", None);
    let huge = "a".repeat(70 * 1024);
    let r = w.token_endpoint(&[("grant_type", EXCHANGE), ("subject_token", &huge)]);
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[test]
fn a_firebase_admin_custom_token_is_exchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("svc.pem");
    let tokens = run_python(
        FIREBASE_MINT,
        &json!({
            "public_key_file": pem.to_str().unwrap(),
            "email": SIGNER,
            "tokens": [{"uid": "dave", "claims": {"premium": true}}],
        }),
    );
    let custom = tokens.trim().to_owned();
    let w = world(
        Options {
            op: false,
            signer_pem: Some(pem),
        },
        dir,
    );
    // A custom token is not a credential for data.
    w.as_user(&custom, "GET", "/v1/me", None)
        .error(401, "unauthenticated")
        .reason("unknown-issuer");
    let r = w.exchange(&custom);
    assert_eq!(r.status, 200, "{}", r.text);
    let id_token = r.json()["id_token"].as_str().unwrap().to_owned();
    let refresh = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let me = w.as_user(&id_token, "GET", "/v1/me", None).json();
    assert_eq!(me["uid"], "dave");
    assert_eq!(me["provider"], SIGNER);
    assert_eq!(
        me["claims"]["premium"], true,
        "developer claims are carried"
    );
    // Allowed by a rule on the developer claim (the document does not exist).
    w.as_user(&id_token, "GET", "/v1/docs/premium/p1", None)
        .error(404, "not-found");
    // The refresh grant mints the developer claims again.
    let r = w.refresh(&refresh);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        payload(r.json()["id_token"].as_str().unwrap())["premium"],
        true
    );
    // The same custom token with one byte of its signature changed is refused.
    let mut forged = custom.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    oauth_error(&w.exchange(&forged), "invalid_grant", None);
}
