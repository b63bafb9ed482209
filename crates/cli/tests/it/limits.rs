//! Black box: what one request may ask of the server — query limits, pages and the work bound
//! of `POST /v1/query` — and the strict reading of every JSON body (integer literals within
//! 64 bits, no repeated names). Each test is a finding of an attack round against the binary.

use serde_json::{Value, json};

use crate::util::{Server, json, request};

const ADMIN_KEY: &str = "limits-admin-key-0123456789abcdef";

struct Api {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start(env: &[(&str, &str)]) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let mut all = vec![("CLAIMDB_ADMIN_KEY", ADMIN_KEY)];
        all.extend_from_slice(env);
        let server = Server::start_env(&dir.path().join("data"), &all);
        Api { server, _dir: dir }
    }

    /// Sends `body` as raw text (so it may hold what `serde_json` cannot build).
    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let headers = [("x-claimdb-admin-key", ADMIN_KEY)];
        let (status, text) = request(method, &self.server.url(path), Some(body), &headers).unwrap();
        (status, json(&text))
    }

    fn query(&self, body: &Value) -> (u16, Value) {
        self.send("POST", "/v1/query", &body.to_string())
    }

    /// Asserts a 400 `invalid-argument` whose message holds `needle`.
    #[track_caller]
    fn refused(&self, (status, body): (u16, Value), needle: &str) {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid-argument", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

/// `{"collection": "bulk"}` once returned all 100k documents in one response, and 1,000
/// identical `where` filters on them took 7.8 s of CPU. Now: Firestore's limits on filters
/// and operands (400 naming the limit), pages of at most 1,000 documents (100 by default) that
/// continue through `next_page_token`, and a bound on the documents one page examines — a
/// query that tests many documents without matching ends its page early, with a token, instead
/// of scanning on.
#[test]
fn queries_are_limited_paged_and_bounded_in_work() {
    let api = Api::start(&[("CLAIMDB_QUERY_MAX_EXAMINED", "500")]);
    for batch in 0..6 {
        let writes: Vec<Value> = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                json!({"op": "set", "path": format!("bulk/d{n:05}"), "data": {"n": n, "tag": "x"}})
            })
            .collect();
        let (status, body) = api.send("POST", "/v1/batch", &json!({"writes": writes}).to_string());
        assert_eq!(status, 200, "{body}");
    }

    // No limit: a page of the default size, and a token that continues it.
    let (status, first) = api.query(&json!({"collection": "bulk"}));
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first).len(), 100);
    let mut token = first["next_page_token"].as_str().unwrap().to_string();
    let mut all = ids(&first);
    loop {
        let (status, page) =
            api.query(&json!({"collection": "bulk", "page_size": 1000, "page_token": token}));
        assert_eq!(status, 200, "{page}");
        all.extend(ids(&page));
        match page["next_page_token"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..3000).map(|n| format!("bulk/d{n:05}")).collect();
    assert_eq!(all, expected);

    // 100 filters that no index serves and no document passes: each page examines at most the
    // bound (500 of 3,000 documents) and ends there, empty, with a token.
    let filters = vec![json!(["tag", "!=", "x"]); 100];
    let query = json!({"collection": "bulk", "where": filters});
    let (status, page) = api.query(&query);
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), Vec::<String>::new());
    let mut token = page["next_page_token"]
        .as_str()
        .expect("a page cut short by the work bound carries a token")
        .to_string();
    let mut pages = 1;
    loop {
        let mut next = query.clone();
        next["page_token"] = json!(token);
        let (status, page) = api.query(&next);
        assert_eq!(status, 200, "{page}");
        assert!(ids(&page).is_empty());
        pages += 1;
        match page["next_page_token"].as_str() {
            Some(t) => token = t.to_string(),
            None => break,
        }
        assert!(pages < 20, "the pages do not advance");
    }
    assert!(pages >= 3000 / 500, "{pages} pages");
    // The token belongs to its query.
    let mut other = json!({"collection": "bulk", "where": [["tag", "!=", "y"]]});
    other["page_token"] = page["next_page_token"].clone();
    api.refused(api.query(&other), "different query");
    api.refused(
        api.query(&json!({"collection": "bulk", "page_token": "not-a-token"})),
        "page_token is not valid",
    );

    // Firestore's limits, each named.
    let thousand = vec![json!(["tag", "==", "x"]); 1000];
    api.refused(
        api.query(&json!({"collection": "bulk", "where": thousand})),
        "over the limit of 100 filters",
    );
    let values: Vec<i64> = (0..31).collect();
    api.refused(
        api.query(&json!({"collection": "bulk", "where": [["n", "in", values]]})),
        "(the in limit)",
    );
    api.refused(
        api.query(&json!({"collection": "bulk", "where": [["n", "not-in", &values[..11]]]})),
        "(the not-in limit)",
    );
    let inequalities: Vec<Value> = (0..11).map(|i| json!([format!("f{i}"), ">", 0])).collect();
    api.refused(
        api.query(&json!({"collection": "bulk", "where": inequalities})),
        "over the limit of 10",
    );
    api.refused(
        api.query(&json!({"collection": "bulk", "page_size": 1001})),
        "page_size 1001",
    );
}

/// `{"a": 18446744073709551617}` was stored as a double while 2^63…2^64−1 were refused: an
/// integer literal outside the signed 64-bit range is refused wherever a body is read, naming
/// where it is; a double literal of any size stays a double.
#[test]
fn integer_literals_outside_int64_are_refused_everywhere() {
    let api = Api::start(&[]);
    for (method, path, body, at) in [
        (
            "PUT",
            "/v1/docs/n/a",
            r#"{"a": 18446744073709551617}"#,
            "at a ",
        ),
        (
            "PUT",
            "/v1/docs/n/a",
            r#"{"a": 9223372036854775808}"#,
            "at a ",
        ),
        (
            "POST",
            "/v1/docs/n",
            r#"{"m": {"k": [-9223372036854775809]}}"#,
            "at m.k[0] ",
        ),
        (
            "PATCH",
            "/v1/docs/n/a",
            r#"{"a.b": 99999999999999999999}"#,
            "at `a.b` ",
        ),
        (
            "POST",
            "/v1/batch",
            r#"{"writes": [{"op": "set", "path": "n/b", "data": {"c": 18446744073709551617}}]}"#,
            "at writes[0].data.c ",
        ),
        (
            "POST",
            "/v1/query",
            r#"{"collection": "n", "where": [["a", "==", 18446744073709551617]]}"#,
            "at where[0][2] ",
        ),
    ] {
        api.refused(api.send(method, path, body), at);
    }
    let (status, body) = api.send("GET", "/v1/docs/n/a", "");
    assert_eq!(status, 404, "nothing was written: {body}");
    let (status, body) = api.send(
        "PUT",
        "/v1/docs/n/a",
        r#"{"a": 18446744073709551617.0, "b": 1e20, "c": 9223372036854775807}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["a"], json!(18_446_744_073_709_551_617.0));
    assert_eq!(body["data"]["b"], json!(1e20));
    assert_eq!(body["data"]["c"], json!(i64::MAX));
}

/// The admin claims body took the last of two `"moderator"` keys while a token with repeated
/// names is refused. Every JSON body is now read by the token parser's strict function: a name
/// repeated in any object is a 400 naming it, and nothing changes.
#[test]
fn repeated_names_are_refused_in_every_body() {
    let api = Api::start(&[]);
    api.refused(
        api.send(
            "PUT",
            "/v1/admin/users/alice/claims",
            r#"{"moderator": false, "moderator": true}"#,
        ),
        "duplicate key \"moderator\"",
    );
    let (status, body) = api.send("GET", "/v1/admin/users/alice/claims", "");
    assert!(
        status == 404 || body["claims"] == json!({}) || body["claims"].is_null(),
        "{body}"
    );
    for (method, path, body) in [
        ("PUT", "/v1/docs/d/a", r#"{"x": 1, "y": {"z": 1, "z": 2}}"#),
        ("PATCH", "/v1/docs/d/a", r#"{"x": 1, "x": 2}"#),
        (
            "POST",
            "/v1/batch",
            r#"{"writes": [{"op": "set", "op": "delete", "path": "d/a", "data": {}}]}"#,
        ),
        (
            "POST",
            "/v1/query",
            r#"{"collection": "d", "collection": "e"}"#,
        ),
        (
            "POST",
            "/v1/admin/users/alice/tokens",
            r#"{"claims": {"tier": "free", "tier": "pro"}}"#,
        ),
        (
            "POST",
            "/v1/rules/explain",
            r#"{"method": "get", "path": "d/a", "method": "delete"}"#,
        ),
    ] {
        api.refused(api.send(method, path, body), "duplicate key");
    }
    let (status, _) = api.send("GET", "/v1/docs/d/a", "");
    assert_eq!(status, 404);
}
