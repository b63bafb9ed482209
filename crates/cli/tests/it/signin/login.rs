//! The OIDC login against oidc-provider and its session cookie, the dev instance's mint
//! command, and CORS for app origins and untrusted ones.

use super::*;

#[test]
fn login_with_oidc_provider_sets_a_session_cookie_that_authorizes_until_logout() {
    let w = world(
        Options {
            op: true,
            signer_pem: None,
        },
        tempfile::tempdir().unwrap(),
    );
    // Open redirects are refused before anything else happens.
    for evil in [
        "https://evil.example/",
        "//evil.example/",
        "https://app.example.com.evil.example/",
        "https://app.example.com@evil.example/",
        "javascript:alert(1)",
    ] {
        let r = w.call(
            "GET",
            &format!("/v1/login/op?{}", form(&[("redirect", evil)])),
            &[],
            None,
        );
        r.error(400, "invalid-argument");
        assert!(
            r.header("location").is_none() && r.set_cookies().is_empty(),
            "{evil}"
        );
    }
    w.call("GET", "/v1/login/nope", &[], None)
        .error(404, "not-found");

    // The start: a 302 to the IdP with PKCE, and the login binding cookie.
    let r = w.call(
        "GET",
        &format!(
            "/v1/login/op?{}",
            form(&[("redirect", "https://app.example.com/after")])
        ),
        &[],
        None,
    );
    assert_eq!(r.status, 302, "{}", r.text);
    let location = url::Url::parse(r.header("location").unwrap()).unwrap();
    let q: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert!(
        location
            .as_str()
            .starts_with(&w._op.as_ref().unwrap().issuer)
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["redirect_uri"],
        format!("{PUBLIC_URL}/v1/login/op/callback")
    );
    let binding = r.set_cookie("claimdb_login").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Max-Age=600"] {
        assert!(binding.contains(attr), "{binding}");
    }

    // The happy path: callback → session cookie → 302 to the app URL, no token in any URL.
    let mut b = Browser::new(&w);
    let callback = b.sign_in("alice", "https://app.example.com/after?tab=1");
    let r = b.send("GET", callback.as_str(), &[], None);
    assert_eq!(r.status, 302, "{}", r.text);
    let app_url = r.header("location").unwrap().to_owned();
    assert_eq!(app_url, "https://app.example.com/after?tab=1");
    let session = r.set_cookie("claimdb_session").unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    let session_id = b.jar["claimdb_session"].clone();
    assert!(!app_url.contains(&session_id) && !callback.as_str().contains(&session_id));
    assert!(
        r.set_cookie("claimdb_login").unwrap().contains("Max-Age=0"),
        "the login cookie is cleared"
    );
    // The callback cannot be replayed.
    b.send("GET", callback.as_str(), &[], None)
        .error(401, "unauthenticated")
        .reason("unknown-state");

    // The cookie is the credential: reads by GET need no Origin.
    let me = b.send("GET", &format!("{PUBLIC_URL}/v1/me"), &[], None);
    assert_eq!(me.status, 200, "{}", me.text);
    let me = me.json();
    assert_eq!(
        (me["uid"].as_str(), me["provider"].as_str()),
        (Some("alice"), Some("op"))
    );
    assert_eq!(me["claims"]["email"], "alice@example.com");
    b.send(
        "GET",
        &format!("{PUBLIC_URL}/v1/docs/notes/alice"),
        &[],
        None,
    )
    .error(404, "not-found");
    b.send("GET", &format!("{PUBLIC_URL}/v1/docs/notes/bob"), &[], None)
        .error(403, "permission-denied");
    // Writes by cookie must come from a trusted origin (CSRF).
    let put = |b: &mut Browser, headers: &[(&str, &str)]| {
        b.send(
            "PUT",
            &format!("{PUBLIC_URL}/v1/docs/notes/alice"),
            headers,
            Some(("application/json", json!({"text": "hi"}).to_string())),
        )
    };
    put(&mut b, &[])
        .error(403, "permission-denied")
        .reason("cross-origin-request");
    put(&mut b, &[("origin", "https://evil.example")])
        .error(403, "permission-denied")
        .reason("cross-origin-request");
    put(&mut b, &[("origin", "null")]).error(403, "permission-denied");
    // An origin of `cors_origins` may read answers to bearer-token requests, but the cookie is
    // not a credential it may use for writes: the CSRF check trusts only the login's origins.
    put(&mut b, &[("origin", BEARER_ORIGIN)])
        .error(403, "permission-denied")
        .reason("cross-origin-request");
    put(
        &mut b,
        &[("referer", "https://bearer-app.example.com/page")],
    )
    .error(403, "permission-denied")
    .reason("cross-origin-request");
    put(
        &mut b,
        &[("referer", "https://evil.example/app.example.com")],
    )
    .error(403, "permission-denied");
    let r = put(&mut b, &[("origin", APP_ORIGIN)]);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = put(&mut b, &[("referer", "https://app.example.com/notes")]);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b.send(
        "GET",
        &format!("{PUBLIC_URL}/v1/docs/notes/alice"),
        &[],
        None,
    );
    assert_eq!(r.json()["data"]["text"], "hi", "{}", r.text);
    // The user record was created at the login.
    let u = w.admin("GET", "/v1/admin/users/alice", None).json();
    assert_eq!(
        (u["provider"].as_str(), u["email"].as_str()),
        (Some("op"), Some("alice@example.com"))
    );

    // A callback from another browser (without the login cookie) is refused.
    let mut other = Browser::new(&w);
    let cb = other.sign_in("alice", APP);
    other.jar.remove("claimdb_login");
    other
        .send("GET", cb.as_str(), &[], None)
        .error(401, "unauthenticated")
        .reason("browser-mismatch");

    // Logout: cross-origin refused; from the app it ends the session and clears the cookie.
    b.send(
        "POST",
        &format!("{PUBLIC_URL}/v1/logout"),
        &[("origin", "https://evil.example")],
        None,
    )
    .error(403, "permission-denied");
    let stale = format!("claimdb_session={session_id}");
    let r = b.send(
        "POST",
        &format!("{PUBLIC_URL}/v1/logout"),
        &[("origin", APP_ORIGIN)],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(
        r.set_cookie("claimdb_session")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(!b.jar.contains_key("claimdb_session"));
    w.call("GET", "/v1/me", &[("cookie", &stale)], None)
        .error(401, "unauthenticated")
        .reason("unknown-session");

    // Revocation ends sessions too.
    let mut c = Browser::new(&w);
    let r = c.login("alice");
    assert_eq!(r.status, 302, "{}", r.text);
    let me = c.send("GET", &format!("{PUBLIC_URL}/v1/me"), &[], None);
    assert_eq!(me.status, 200, "{}", me.text);
    let r = w.admin("POST", "/v1/admin/users/alice/revoke", None);
    assert_eq!(r.status, 200, "{}", r.text);
    c.send("GET", &format!("{PUBLIC_URL}/v1/me"), &[], None)
        .error(401, "unauthenticated")
        .reason("revoked");
}

/// The dev instance (no config file) prints one line telling how to mint a dev token; that
/// command, run as printed, gives a token the instance accepts.
#[test]
fn the_dev_instance_prints_a_working_mint_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("claimdb-data");
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_RULES")
        .env_remove("CLAIMDB_ADMIN_KEY")
        .env_remove("CLAIMDB_PUBLIC_URL")
        .env("CLAIMDB_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _child = Kill(child);
    let first = lines.next().unwrap().unwrap();
    let base = first
        .strip_prefix("claimdb listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let hint = lines
        .by_ref()
        .take(5)
        .map(Result::unwrap)
        .find(|l| l.starts_with("dev token: "))
        .expect("no dev token line");
    std::thread::spawn(move || for _ in lines {});
    // `TOKEN=$(CLAIMDB_PUBLIC_URL=<url> claimdb token mint --uid alice --data-dir <dir>); curl …`
    let inner = hint
        .strip_prefix("dev token: TOKEN=$(")
        .and_then(|r| r.split_once(");"))
        .map(|(cmd, _)| cmd)
        .unwrap_or_else(|| panic!("unexpected hint: {hint}"));
    assert!(hint.contains(&format!("{base}/v1/me")), "{hint}");
    let mut words = inner.split_whitespace().peekable();
    let mut command = Command::new(BIN);
    command.env_remove("CLAIMDB_CONFIG");
    while let Some((k, v)) = words.peek().and_then(|w| w.split_once('=')) {
        command.env(k, v);
        words.next();
    }
    // The binary as the operator would run it again: this one, by its path.
    let bin = words.next().unwrap();
    assert_eq!(
        std::fs::canonicalize(bin).unwrap(),
        std::fs::canonicalize(BIN).unwrap(),
        "{hint}"
    );
    let out = command.args(words).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let r = send(
        "GET",
        &format!("{base}/v1/me"),
        &[("authorization", &format!("Bearer {}", token.trim()))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["uid"], "alice");
}

/// Regression (issue 12): an untrusted origin got no `Access-Control-Allow-Origin` but still
/// `Access-Control-Allow-Credentials`, `Access-Control-Expose-Headers` and, on preflights,
/// `Allow-Methods`/`Allow-Headers`/`Max-Age`. It must get no CORS header at all — on simple
/// requests, on preflights and with no `Origin` — while the app's origin keeps them.
#[test]
fn untrusted_origins_get_no_cors_headers_at_all() {
    let w = plain_world();
    let cors_headers = |r: &Resp| -> Vec<String> {
        r.headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("access-control-"))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect()
    };
    let preflight = |origin: &str| {
        w.call(
            "OPTIONS",
            "/v1/docs/notes/alice",
            &[
                ("origin", origin),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type,if-match"),
            ],
            None,
        )
    };
    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
    ] {
        let r = preflight(origin);
        assert_eq!(
            cors_headers(&r),
            Vec::<String>::new(),
            "preflight from {origin}"
        );
        for (method, body) in [("GET", None), ("PUT", Some(json!({"text": "x"})))] {
            let r = w.call(method, "/v1/docs/notes/alice", &[("origin", origin)], body);
            assert_eq!(
                cors_headers(&r),
                Vec::<String>::new(),
                "{method} from {origin}"
            );
            assert!(r.header("vary").is_some_and(|v| v.contains("origin")));
        }
    }
    let r = w.call("GET", "/healthz", &[], None);
    assert_eq!(cors_headers(&r), Vec::<String>::new(), "no Origin");
    let r = preflight(APP_ORIGIN);
    let trusted = cors_headers(&r).join("\n").to_ascii_lowercase();
    for want in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
    ] {
        assert!(trusted.contains(want), "{want} missing: {trusted}");
    }
    let r = w.call("GET", "/healthz", &[("origin", APP_ORIGIN)], None);
    let trusted = cors_headers(&r).join("\n").to_ascii_lowercase();
    assert!(
        trusted.contains("access-control-allow-credentials: true"),
        "{trusted}"
    );
    assert!(
        trusted.contains("access-control-expose-headers"),
        "{trusted}"
    );
}

/// The app origins (`app_redirects`) get CORS with credentials, so a browser app there can
/// call claimdb with its session cookie; other origins get no CORS headers at all.
#[test]
fn app_origins_get_cors_with_credentials_and_others_none() {
    let w = plain_world();
    let preflight = |origin: &str| {
        w.call(
            "OPTIONS",
            "/v1/docs/notes/alice",
            &[
                ("origin", origin),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type,if-match"),
            ],
            None,
        )
    };
    let r = preflight(APP_ORIGIN);
    assert!(r.status < 300, "{} {:?}", r.status, r.headers);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PUT")
    );
    let r = preflight("https://evil.example");
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "{:?}",
        r.headers
    );
    // A real request from the app exposes the headers an app needs.
    let minted = w.admin("POST", "/v1/admin/users/alice/tokens", Some(json!({})));
    let token = minted.json()["id_token"].as_str().unwrap().to_owned();
    let auth = format!("Bearer {token}");
    let r = w.call(
        "PUT",
        "/v1/docs/notes/alice",
        &[("origin", APP_ORIGIN), ("authorization", &auth)],
        Some(json!({"text": "hi"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(APP_ORIGIN));
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .to_ascii_lowercase()
            .contains("etag")
    );
    let r = w.call(
        "GET",
        "/v1/docs/notes/alice",
        &[("origin", "https://evil.example"), ("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // A `cors_origins` origin gets CORS without credentials: its page can read what it asked
    // with a bearer token, while a browser refuses to send it cookies it would read answers to.
    let r = preflight(BEARER_ORIGIN);
    assert!(r.status < 300, "{} {:?}", r.status, r.headers);
    assert_eq!(r.header("access-control-allow-origin"), Some(BEARER_ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    let r = w.call(
        "GET",
        "/v1/docs/notes/alice",
        &[("origin", BEARER_ORIGIN), ("authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some(BEARER_ORIGIN));
    assert_eq!(r.header("access-control-allow-credentials"), None);
    // The admin key is never allowed cross-origin: the preflight is refused.
    let r = w.call(
        "OPTIONS",
        "/v1/admin/users",
        &[
            ("origin", BEARER_ORIGIN),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-claimdb-admin-key"),
        ],
        None,
    );
    r.error(403, "permission-denied")
        .reason("cors-header-not-allowed");
    assert_eq!(r.header("access-control-allow-origin"), None);
}
