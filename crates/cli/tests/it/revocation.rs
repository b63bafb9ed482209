//! End to end: revocation and custom claims hold on every way to turn a credential into
//! access — bearer tokens of a provider, claimdb's own tokens (exchanged, refreshed, minted by
//! the admin API or the CLI), Firebase custom tokens, `claimdb token inspect` — through the
//! real binary. (Session cookies are covered by the login test in `signin.rs`.)

use std::process::Command;

use serde_json::{Value, json};

use crate::idp::{claims, unix_now};
use crate::signin::{
    FIREBASE_MINT, Options, SIGNER, World, oauth_error, payload, plain_world, run_python, world,
};
use crate::util::BIN;

/// `claimdb token inspect TOKEN` with the world's config and data directory: (exit code,
/// output).
fn inspect(w: &World, token: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["token", "inspect", token, "--config"])
        .arg(&w.config)
        .arg("--data-dir")
        .arg(&w.server.data_dir)
        .env_remove("CLAIMDB_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn token_of(r: &crate::signin::Resp, field: &str) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()[field].as_str().unwrap().to_owned()
}

/// Regression (HIGH): after `POST /v1/admin/users/U/revoke`, U's still-unexpired IdP token was
/// refused on `/v1/me` but exchanged at `/v1/token` for a fresh claimdb token and refresh token,
/// both working for days. Every credential issued before the revocation returned is refused
/// everywhere — including one issued in the same second as the call — and every credential
/// issued after it works.
#[test]
fn a_revoked_user_gets_nothing_through_any_credential_and_new_sign_ins_work() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("svc.pem");
    let custom = run_python(
        FIREBASE_MINT,
        &json!({
            "public_key_file": pem.to_str().unwrap(),
            "email": SIGNER,
            "tokens": [{"uid": "alice", "claims": {}}],
        }),
    );
    let custom = custom.trim().to_owned();
    let w = world(
        Options {
            op: false,
            signer_pem: Some(pem),
        },
        dir,
    );

    // Credentials alice holds before the revocation.
    let idp_token = w.key.sign(&claims("alice", json!({})));
    let signed_in = w.exchange(&idp_token);
    let exchanged = token_of(&signed_in, "id_token");
    let refresh = token_of(&signed_in, "refresh_token");
    let admin_minted = token_of(
        &w.admin("POST", "/v1/admin/users/alice/tokens", Some(json!({}))),
        "id_token",
    );
    for t in [&idp_token, &exchanged, &admin_minted] {
        let r = w.as_user(t, "GET", "/v1/me", None);
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(inspect(&w, &idp_token).0, 0);

    let r = w.admin("POST", "/v1/admin/users/alice/revoke", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let valid_after = r.json()["tokens_valid_after"]
        .as_i64()
        .unwrap_or_else(|| panic!("tokens_valid_after in {}", r.text));
    assert!(
        unix_now() >= valid_after,
        "the revocation returned before its boundary second began"
    );

    // Everything from before is refused, on every path.
    for t in [&idp_token, &exchanged, &admin_minted] {
        w.as_user(t, "GET", "/v1/me", None)
            .error(401, "unauthenticated")
            .reason("revoked");
    }
    oauth_error(&w.exchange(&idp_token), "invalid_grant", Some("revoked"));
    oauth_error(&w.exchange(&custom), "invalid_grant", Some("revoked"));
    oauth_error(&w.refresh(&refresh), "invalid_grant", Some("revoked"));
    let (code, out) = inspect(&w, &idp_token);
    assert_eq!(code, 1, "token inspect must agree with the server: {out}");
    assert!(out.contains("revoked"), "{out}");

    // The boundary: a token issued in the revocation's own second is refused, one issued in
    // the next second (the earliest after the call returned) works.
    let at = |iat: i64| {
        let mut c = claims("alice", json!({}));
        c["iat"] = json!(iat);
        w.key.sign(&c)
    };
    w.as_user(&at(valid_after - 1), "GET", "/v1/me", None)
        .error(401, "unauthenticated")
        .reason("revoked");
    oauth_error(
        &w.exchange(&at(valid_after - 1)),
        "invalid_grant",
        Some("revoked"),
    );

    // New sign-ins after the call returned work, on every path.
    let fresh = at(valid_after);
    let r = w.as_user(&fresh, "GET", "/v1/me", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(inspect(&w, &fresh).0, 0);
    let signed_in = w.exchange(&fresh);
    let exchanged = token_of(&signed_in, "id_token");
    let r = w.as_user(&exchanged, "GET", "/v1/me", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let refreshed = token_of(
        &w.refresh(&token_of(&signed_in, "refresh_token")),
        "id_token",
    );
    let r = w.as_user(&refreshed, "GET", "/v1/me", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let minted = token_of(
        &w.admin("POST", "/v1/admin/users/alice/tokens", Some(json!({}))),
        "id_token",
    );
    let r = w.as_user(&minted, "GET", "/v1/me", None);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A token claimdb mints in the same second as a revocation, after the revocation returned,
/// works: repeated so that a mint landing in the boundary second is exercised.
#[test]
fn tokens_minted_right_after_a_revocation_work() {
    let w = plain_world();
    for _ in 0..3 {
        let r = w.admin("POST", "/v1/admin/users/bob/revoke", None);
        assert_eq!(r.status, 200, "{}", r.text);
        let minted = token_of(
            &w.admin("POST", "/v1/admin/users/bob/tokens", Some(json!({}))),
            "id_token",
        );
        let r = w.as_user(&minted, "GET", "/v1/me", None);
        assert_eq!(
            r.status, 200,
            "minted right after the revocation: {}",
            r.text
        );
    }
}

/// Regression (MEDIUM): a custom claim deleted through the admin API kept working for up to
/// an hour in claimdb tokens exchanged while it was set (the IdP token itself was correctly
/// denied at once). Custom claims apply on the next request for claimdb's own tokens too.
#[test]
fn a_deleted_custom_claim_stops_working_in_exchanged_tokens_at_once() {
    let w = plain_world();
    let r = w.admin(
        "PUT",
        "/v1/admin/users/carol/claims",
        Some(json!({"moderator": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let signed_in = w.exchange(&w.key.sign(&claims("carol", json!({}))));
    let exchanged = token_of(&signed_in, "id_token");
    // The token still carries the claim for clients that read it.
    assert_eq!(payload(&exchanged)["moderator"], true);
    let write = |token: &str, id: &str| {
        w.as_user(
            token,
            "PUT",
            &format!("/v1/docs/movies/{id}"),
            Some(json!({"title": id})),
        )
    };
    assert_eq!(write(&exchanged, "m1").status, 201);

    let r = w.admin("DELETE", "/v1/admin/users/carol/claims", None);
    assert!(r.status < 300, "{}", r.text);
    write(&exchanged, "m2").error(403, "permission-denied");
    let me: Value = w.as_user(&exchanged, "GET", "/v1/me", None).json();
    assert!(me["claims"].get("moderator").is_none(), "{me}");
    assert!(me["claims"].get("claimdb_custom").is_none(), "{me}");

    // Set again (to another value), it applies at once too, and a refresh mints the new one.
    let r = w.admin(
        "PUT",
        "/v1/admin/users/carol/claims",
        Some(json!({"moderator": true})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(write(&exchanged, "m3").status, 201);
    let r = w.admin(
        "PUT",
        "/v1/admin/users/carol/claims",
        Some(json!({"moderator": "no"})),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    write(&exchanged, "m4").error(403, "permission-denied");
    let refreshed = token_of(
        &w.refresh(&token_of(&signed_in, "refresh_token")),
        "id_token",
    );
    assert_eq!(payload(&refreshed)["moderator"], "no");
    write(&refreshed, "m5").error(403, "permission-denied");

    // The claim naming stored custom claims is reserved.
    w.admin(
        "PUT",
        "/v1/admin/users/carol/claims",
        Some(json!({"claimdb_custom": ["x"]})),
    )
    .error(400, "invalid-argument");
}
