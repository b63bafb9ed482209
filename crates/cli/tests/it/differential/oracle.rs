//! The oracle: a hidane 0.6 process (a Firestore emulator whose rules behaviour was recorded
//! from the official emulator) driven over its REST API. Rules load through
//! `PUT /emulator/v1/projects/{p}:securityRules`, documents are written with the rules-bypassing
//! `Bearer owner`, and requests carry unsigned mock ID tokens (`alg: none`), as the Firebase
//! test SDK sends them.
//!
//! A write the rules allow is undone with `Bearer owner`, so every request of a suite sees the
//! suite's documents.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::generator::{Case, Query};
use super::{Http, Verdict};

const PROJECT: &str = "claimdb-diff";

/// Where the hidane binary is: `CLAIMDB_TEST_HIDANE_BIN`, the CI cache
/// (`$HOME/.cache/claimdb-ci/hidane/bin/hidane`, where `.ci/run` installs it), or `PATH`.
pub(super) fn find() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CLAIMDB_TEST_HIDANE_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Ok(home) = std::env::var("HOME") {
        let p = Path::new(&home).join(".cache/claimdb-ci/hidane/bin/hidane");
        if p.is_file() {
            return Some(p);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("hidane"))
            .find(|p| p.is_file())
    })
}

pub(super) struct Hidane {
    child: Child,
    base: String,
    http: Http,
}

impl Drop for Hidane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Hidane {
    pub(super) fn start(bin: &Path) -> Hidane {
        let port = free_port();
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--project_id", PROJECT])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let h = Hidane {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: Http::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while h
            .http
            .call("GET", &format!("{}/", h.base), None, None)
            .is_err()
        {
            assert!(Instant::now() < deadline, "hidane did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }

    fn docs_url(&self) -> String {
        format!(
            "{}/v1/projects/{PROJECT}/databases/(default)/documents",
            self.base
        )
    }

    /// Loads rules: whether they compile.
    pub(super) fn put_rules(&self, src: &str) -> bool {
        let body = json!({"rules": {"files": [{"name": "firestore.rules", "content": src}]}});
        let (status, _) = self
            .http
            .call(
                "PUT",
                &format!("{}/emulator/v1/projects/{PROJECT}:securityRules", self.base),
                Some(&body.to_string()),
                None,
            )
            .unwrap();
        status == 200
    }

    /// Deletes every document, then writes `docs`.
    pub(super) fn reset(&self, docs: &[(String, Value)]) {
        let (status, body) = self
            .http
            .call(
                "DELETE",
                &format!(
                    "{}/emulator/v1/projects/{PROJECT}/databases/(default)/documents",
                    self.base
                ),
                None,
                None,
            )
            .unwrap();
        assert_eq!(status, 200, "{body}");
        for (path, doc) in docs {
            self.write(path, doc);
        }
    }

    fn write(&self, path: &str, doc: &Value) {
        let (status, body) = self
            .http
            .call(
                "PATCH",
                &format!("{}/{path}", self.docs_url()),
                Some(&fields(doc).to_string()),
                Some("owner"),
            )
            .unwrap();
        assert_eq!(status, 200, "seeding {path}: {body}");
    }

    fn undo(&self, path: &str, docs: &[(String, Value)]) {
        match docs.iter().find(|(p, _)| p == path) {
            Some((_, doc)) => self.write(path, doc),
            None => {
                let _ = self.http.call(
                    "DELETE",
                    &format!("{}/{path}", self.docs_url()),
                    None,
                    Some("owner"),
                );
            }
        }
    }

    /// Sends one request; documents a write changed are put back.
    pub(super) fn run(&self, case: &Case, docs: &[(String, Value)]) -> Verdict {
        let token = case
            .auth
            .as_ref()
            .map(|(uid, claims)| mock_token(uid, claims));
        let token = token.as_deref();
        let url = self.docs_url();
        let data = case.data.as_ref().map(|d| fields(d).to_string());
        let (status, body) = match case.method {
            "get" => self
                .http
                .call("GET", &format!("{url}/{}", case.path), None, token),
            "create" => {
                let (coll, id) = case.path.rsplit_once('/').unwrap();
                self.http.call(
                    "POST",
                    &format!("{url}/{coll}?documentId={id}"),
                    data.as_deref(),
                    token,
                )
            }
            "update" => self.http.call(
                "PATCH",
                &format!("{url}/{}?currentDocument.exists=true", case.path),
                data.as_deref(),
                token,
            ),
            "delete" => self.http.call(
                "DELETE",
                &format!("{url}/{}?currentDocument.exists=true", case.path),
                None,
                token,
            ),
            "list" => {
                let q = case.query.clone().unwrap_or_default();
                let (parent, coll) = match case.path.rsplit_once('/') {
                    Some((p, c)) => (format!("{url}/{p}"), c.to_string()),
                    None => (url.clone(), case.path.clone()),
                };
                self.http.call(
                    "POST",
                    &format!("{parent}:runQuery"),
                    Some(&json!({"structuredQuery": structured(&coll, &q)}).to_string()),
                    token,
                )
            }
            other => panic!("unknown method {other}"),
        }
        .unwrap();
        let verdict = Verdict::of(status, &body);
        if verdict == Verdict::Allow && matches!(case.method, "create" | "update" | "delete") {
            self.undo(&case.path, docs);
        }
        verdict
    }
}

/// An unsigned ID token as `@firebase/rules-unit-testing` makes one.
fn mock_token(uid: &str, claims: &Value) -> String {
    let mut payload = json!({
        "iss": format!("https://securetoken.google.com/{PROJECT}"),
        "aud": PROJECT,
        "iat": 0,
        "exp": 4_102_444_800i64,
        "auth_time": 0,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
    });
    if let (Some(p), Value::Object(extra)) = (payload.as_object_mut(), claims) {
        p.extend(extra.clone());
    }
    let b = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b(&json!({"alg": "none", "typ": "JWT"})),
        b(&payload)
    )
}

/// claimdb's `$`-tagged JSON value as a Firestore REST `Value`.
fn value(v: &Value) -> Value {
    match v {
        Value::Null => json!({"nullValue": null}),
        Value::Bool(b) => json!({"booleanValue": b}),
        Value::Number(n) if n.is_i64() => json!({"integerValue": n.to_string()}),
        Value::Number(n) => json!({"doubleValue": n.as_f64()}),
        Value::String(s) => json!({"stringValue": s}),
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.iter().map(value).collect::<Vec<_>>()}})
        }
        Value::Object(m) => {
            if m.len() == 1 {
                let (k, x) = m.iter().next().unwrap();
                match k.as_str() {
                    "$timestamp" => return json!({"timestampValue": x}),
                    "$bytes" => {
                        let standard = x.as_str().unwrap().replace('-', "+").replace('_', "/");
                        return json!({"bytesValue": standard});
                    }
                    "$ref" => {
                        return json!({"referenceValue": format!("projects/{PROJECT}/databases/(default)/documents/{}", x.as_str().unwrap())});
                    }
                    "$geo" => {
                        return json!({"geoPointValue": {"latitude": x[0], "longitude": x[1]}});
                    }
                    _ => {}
                }
            }
            json!({"mapValue": {"fields": m.iter().map(|(k, x)| (k.clone(), value(x))).collect::<serde_json::Map<_, _>>()}})
        }
    }
}

fn fields(doc: &Value) -> Value {
    let m = doc.as_object().unwrap();
    json!({"fields": m.iter().map(|(k, x)| (k.clone(), value(x))).collect::<serde_json::Map<_, _>>()})
}

/// The `StructuredQuery` a Firebase SDK sends for the query (`== null`, `== NaN` and their
/// negations as unary filters).
fn structured(collection: &str, q: &Query) -> Value {
    let mut filters: Vec<Value> = q.filters.iter().map(field_filter).collect();
    if !q.or.is_empty() {
        let branches: Vec<Value> =
            q.or.iter()
                .map(|b| {
                    let all: Vec<Value> = b.iter().map(field_filter).collect();
                    json!({"compositeFilter": {"op": "AND", "filters": all}})
                })
                .collect();
        filters.push(json!({"compositeFilter": {"op": "OR", "filters": branches}}));
    }
    let mut sq = json!({"from": [{"collectionId": collection, "allDescendants": q.group}]});
    match filters.len() {
        0 => {}
        1 => sq["where"] = filters[0].clone(),
        _ => sq["where"] = json!({"compositeFilter": {"op": "AND", "filters": filters}}),
    }
    if !q.order_by.is_empty() {
        sq["orderBy"] = q
            .order_by
            .iter()
            .map(|(f, desc)| json!({"field": {"fieldPath": f}, "direction": if *desc { "DESCENDING" } else { "ASCENDING" }}))
            .collect();
    }
    if let Some(l) = q.limit {
        sq["limit"] = json!(l);
    }
    if let Some(o) = q.offset {
        sq["offset"] = json!(o);
    }
    sq
}

/// One filter as the SDK sends it.
fn field_filter((field, op, v): &(String, &'static str, Value)) -> Value {
    let nan = v.as_f64().is_some_and(f64::is_nan);
    if matches!(*op, "==" | "!=") && (v.is_null() || nan) {
        let unary = match (*op, v.is_null()) {
            ("==", true) => "IS_NULL",
            ("!=", true) => "IS_NOT_NULL",
            ("==", false) => "IS_NAN",
            _ => "IS_NOT_NAN",
        };
        return json!({"unaryFilter": {"op": unary, "field": {"fieldPath": field}}});
    }
    let op = match *op {
        "==" => "EQUAL",
        "!=" => "NOT_EQUAL",
        "<" => "LESS_THAN",
        "<=" => "LESS_THAN_OR_EQUAL",
        ">" => "GREATER_THAN",
        ">=" => "GREATER_THAN_OR_EQUAL",
        "in" => "IN",
        "not-in" => "NOT_IN",
        "array-contains" => "ARRAY_CONTAINS",
        _ => "ARRAY_CONTAINS_ANY",
    };
    json!({"fieldFilter": {"field": {"fieldPath": field}, "op": op, "value": value(v)}})
}
