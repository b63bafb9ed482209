//! Firestore REST reads at a past `readTime` against the real binary, with an IdP's tokens and
//! real rules: get and list (`?readTime=`, also ordered and with `showMissing`), `:batchGet`,
//! `:runQuery`, `:runAggregationQuery` and `:listCollectionIds` see the documents as they were,
//! decided by the rules on the versions then (a note visible then and hidden now is readable at
//! that time only), and answer that `readTime`; read-only
//! transactions begun at a `readTime` (`beginTransaction`, `newTransaction`) read at it in every
//! read and commit although the documents changed since; bad times are refused as Firestore
//! does (future and malformed: 400 INVALID_ARGUMENT; older than the history: 400
//! FAILED_PRECONDITION naming the retention), and a server keeping no history refuses them all.

use serde_json::{Value, json};

use crate::idp::{Deployment, Key, claims};
use crate::util::{Server, request};

const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow get: if request.auth != null && (resource == null || resource.data.visible == true);
      allow list: if request.auth != null;
      allow write: if request.auth != null;
    }
    match /notes/{id}/sub/{x} {
      allow read, write: if request.auth != null;
    }
  }
}
"#;

const DOCS: &str = "/v1/projects/demo-app/databases/(default)/documents";
const ADMIN_KEY: &str = "an-admin-key-for-the-tests-0123456789";
const NAME: &str = "projects/demo-app/databases/(default)/documents";

struct Setup {
    server: Server,
    key: Key,
    _rest: (crate::idp::Idp, tempfile::TempDir),
}

struct Resp {
    status: u16,
    json: Value,
}

impl Setup {
    fn start(head: &str) -> Setup {
        let d = Deployment::start(
            RULES,
            &format!("project_id = \"demo-app\"\nadmin_key = \"{ADMIN_KEY}\"\n{head}"),
        );
        Setup {
            server: d.server,
            key: d.key,
            _rest: (d.idp, d.dir),
        }
    }

    fn call(&self, admin: bool, method: &str, path: &str, body: Option<Value>) -> Resp {
        let token = format!("Bearer {}", self.key.sign(&claims("u1", json!({}))));
        let mut headers = vec![("authorization", token.as_str())];
        if admin {
            headers.push(("x-claimdb-admin-key", ADMIN_KEY));
        }
        let text = body.map(|b| b.to_string());
        let (status, body) =
            request(method, &self.server.url(path), text.as_deref(), &headers).unwrap();
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {body}"));
        Resp { status, json }
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.call(false, method, path, body);
        assert_eq!(r.status, 200, "{method} {path}: {}", r.json);
        r.json
    }

    /// Writes a note and returns its update time as the server wrote it.
    fn put(&self, id: &str, visible: bool, n: i64) -> String {
        // Commit times are microseconds apart at least; keep the instants distinct.
        std::thread::sleep(std::time::Duration::from_millis(3));
        let doc = self.ok(
            "PATCH",
            &format!("{DOCS}/notes/{id}"),
            Some(json!({"fields": {"visible": {"booleanValue": visible}, "n": {"integerValue": n.to_string()}}})),
        );
        doc["updateTime"].as_str().unwrap().to_string()
    }

    fn rpc(&self, admin: bool, rpc: &str, body: Value) -> Resp {
        self.call(admin, "POST", &format!("{DOCS}:{rpc}"), Some(body))
    }
}

fn assert_error(r: &Resp, status: &str, needle: &str) {
    assert_eq!(r.status, 400, "{}", r.json);
    assert_eq!(r.json["error"]["status"], status, "{}", r.json);
    let message = r.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{needle:?} not in {message:?}");
}

/// The ids and `n` of documents in a list or query answer.
fn notes(docs: impl IntoIterator<Item = Value>) -> Vec<(String, String)> {
    docs.into_iter()
        .map(|d| {
            let id = d["name"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            let n = d["fields"]["n"]["integerValue"]
                .as_str()
                .unwrap_or("-")
                .to_string();
            (id, n)
        })
        .collect()
}

fn query(n_at_least: i64) -> Value {
    json!({
        "from": [{"collectionId": "notes"}],
        "where": {"fieldFilter": {"field": {"fieldPath": "n"}, "op": "GREATER_THAN_OR_EQUAL",
                  "value": {"integerValue": n_at_least.to_string()}}},
        "orderBy": [{"field": {"fieldPath": "n"}, "direction": "ASCENDING"}]
    })
}

fn sum_n(read_time: Option<&str>) -> Value {
    let mut body = json!({"structuredAggregationQuery": {
        "structuredQuery": {"from": [{"collectionId": "notes"}]},
        "aggregations": [{"alias": "total", "sum": {"field": {"fieldPath": "n"}}}]
    }});
    if let Some(t) = read_time {
        body["readTime"] = json!(t);
    }
    body
}

#[test]
fn firestore_rest_reads_at_a_past_read_time() {
    let s = Setup::start("");
    s.put("a", true, 1);
    s.ok(
        "PATCH",
        &format!("{DOCS}/notes/m/sub/y"),
        Some(json!({"fields": {}})),
    );
    let t2 = s.put("b", true, 2);
    // After t2: a is hidden and changed, b deleted, c created, m's only child deleted, a gains
    // a subcollection.
    s.put("a", false, 3);
    s.ok("DELETE", &format!("{DOCS}/notes/b"), None);
    s.put("c", true, 4);
    s.ok("DELETE", &format!("{DOCS}/notes/m/sub/y"), None);
    s.ok(
        "PATCH",
        &format!("{DOCS}/notes/a/sub/x"),
        Some(json!({"fields": {}})),
    );
    let at = format!("readTime={t2}");

    // get: decided on the version then (visible then, hidden now), and a deleted document.
    let a = s.ok("GET", &format!("{DOCS}/notes/a?{at}"), None);
    assert_eq!(a["fields"]["n"]["integerValue"], "1");
    assert_eq!(
        s.call(false, "GET", &format!("{DOCS}/notes/a"), None)
            .status,
        403
    );
    let b = s.ok("GET", &format!("{DOCS}/notes/b?{at}"), None);
    assert_eq!(b["fields"]["n"]["integerValue"], "2");
    assert_eq!(
        s.call(false, "GET", &format!("{DOCS}/notes/b"), None)
            .status,
        404
    );
    let c = s.call(false, "GET", &format!("{DOCS}/notes/c?{at}"), None);
    assert_eq!(c.status, 404, "c did not exist then: {}", c.json);

    // list, by id, by a field, with page tokens, and with missing documents (administrators).
    let list = s.ok("GET", &format!("{DOCS}/notes?{at}"), None);
    let then = vec![("a".to_string(), "1".to_string()), ("b".into(), "2".into())];
    assert_eq!(notes(list["documents"].as_array().unwrap().clone()), then);
    let now = s.ok("GET", &format!("{DOCS}/notes"), None);
    assert_eq!(
        notes(now["documents"].as_array().unwrap().clone()),
        [("a".to_string(), "3".to_string()), ("c".into(), "4".into())]
    );
    let desc = s.ok("GET", &format!("{DOCS}/notes?{at}&orderBy=n%20desc"), None);
    assert_eq!(
        notes(desc["documents"].as_array().unwrap().clone()),
        [("b".to_string(), "2".to_string()), ("a".into(), "1".into())]
    );
    let first = s.ok("GET", &format!("{DOCS}/notes?{at}&pageSize=1"), None);
    let token = first["nextPageToken"].as_str().unwrap();
    let second = s.ok(
        "GET",
        &format!("{DOCS}/notes?{at}&pageSize=1&pageToken={token}"),
        None,
    );
    assert_eq!(
        notes(second["documents"].as_array().unwrap().clone()),
        then[1..]
    );
    let missing = s.call(
        true,
        "GET",
        &format!("{DOCS}/notes?{at}&showMissing=true"),
        None,
    );
    assert_eq!(missing.status, 200, "{}", missing.json);
    let names: Vec<&str> = missing.json["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{NAME}/notes/a"),
            format!("{NAME}/notes/b"),
            format!("{NAME}/notes/m")
        ]
    );

    // batchGet: found then, missing then, each with the read time.
    let r = s.rpc(
        false,
        "batchGet",
        json!({"documents": [format!("{NAME}/notes/a"), format!("{NAME}/notes/b"), format!("{NAME}/notes/c")],
               "readTime": t2}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let answers = r.json.as_array().unwrap();
    assert_eq!(answers[0]["found"]["fields"]["n"]["integerValue"], "1");
    assert_eq!(answers[1]["found"]["fields"]["n"]["integerValue"], "2");
    assert_eq!(answers[2]["missing"], format!("{NAME}/notes/c"));
    assert!(
        answers.iter().all(|a| a["readTime"] == t2.as_str()),
        "{}",
        r.json
    );

    // runQuery and runAggregationQuery: the documents then.
    let r = s.rpc(
        false,
        "runQuery",
        json!({"structuredQuery": query(2), "readTime": t2}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let rows = r.json.as_array().unwrap();
    assert!(
        rows.iter().all(|row| row["readTime"] == t2.as_str()),
        "{}",
        r.json
    );
    assert_eq!(
        notes(rows.iter().map(|row| row["document"].clone())),
        [("b".to_string(), "2".to_string())]
    );
    let now = s.rpc(false, "runQuery", json!({"structuredQuery": query(2)}));
    assert_eq!(now.json.as_array().unwrap().len(), 2, "{}", now.json);
    let r = s.rpc(false, "runAggregationQuery", sum_n(Some(&t2)));
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json[0]["result"]["aggregateFields"]["total"]["integerValue"],
        "3"
    );
    assert_eq!(r.json[0]["readTime"], t2.as_str());
    let r = s.rpc(false, "runAggregationQuery", sum_n(None));
    assert_eq!(
        r.json[0]["result"]["aggregateFields"]["total"]["integerValue"],
        "7"
    );

    // listCollectionIds: a had no subcollection then.
    let ids = |body: Value| {
        let r = s.call(
            true,
            "POST",
            &format!("{DOCS}/notes/a:listCollectionIds"),
            Some(body),
        );
        assert_eq!(r.status, 200, "{}", r.json);
        r.json["collectionIds"].clone()
    };
    assert_eq!(ids(json!({"readTime": t2})), json!([]));
    assert_eq!(ids(json!({})), json!(["sub"]));

    // Times that cannot be read at.
    let future = "2999-01-01T00:00:00Z";
    let old = "2001-01-01T00:00:00Z";
    for (time, status, needle) in [
        (future, "INVALID_ARGUMENT", "in the future"),
        (old, "FAILED_PRECONDITION", "history_retention_secs = 3600"),
        ("yesterday", "INVALID_ARGUMENT", "readTime"),
    ] {
        let get = s.call(
            false,
            "GET",
            &format!("{DOCS}/notes/a?readTime={time}"),
            None,
        );
        assert_error(&get, status, needle);
        let list = s.call(false, "GET", &format!("{DOCS}/notes?readTime={time}"), None);
        assert_error(&list, status, needle);
        for (rpc, body) in [
            (
                "batchGet",
                json!({"documents": [format!("{NAME}/notes/a")], "readTime": time}),
            ),
            (
                "runQuery",
                json!({"structuredQuery": query(0), "readTime": time}),
            ),
            ("runAggregationQuery", sum_n(Some(time))),
            ("listCollectionIds", json!({"readTime": time})),
        ] {
            assert_error(&s.rpc(true, rpc, body), status, needle);
        }
    }
    let both = s.rpc(
        false,
        "runQuery",
        json!({"structuredQuery": query(0), "readTime": t2, "newTransaction": {}}),
    );
    assert_error(&both, "INVALID_ARGUMENT", "at most one");
}

#[test]
fn firestore_rest_read_only_transactions_at_a_past_time() {
    let s = Setup::start("");
    s.put("a", true, 1);
    let t1 = s.put("b", true, 2);
    s.put("a", true, 3);
    s.ok("DELETE", &format!("{DOCS}/notes/b"), None);
    let names = json!([format!("{NAME}/notes/a"), format!("{NAME}/notes/b")]);

    let begun = s.rpc(
        false,
        "beginTransaction",
        json!({"options": {"readOnly": {"readTime": t1}}}),
    );
    assert_eq!(begun.status, 200, "{}", begun.json);
    let tx = begun.json["transaction"].as_str().unwrap().to_string();
    // Every read of the transaction is at t1.
    let r = s.rpc(
        false,
        "batchGet",
        json!({"documents": names, "transaction": tx}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json[0]["found"]["fields"]["n"]["integerValue"], "1");
    assert_eq!(r.json[1]["found"]["fields"]["n"]["integerValue"], "2");
    assert_eq!(r.json[0]["readTime"], t1.as_str());
    let r = s.rpc(
        false,
        "runQuery",
        json!({"structuredQuery": query(0), "transaction": tx}),
    );
    assert_eq!(
        notes(
            r.json
                .as_array()
                .unwrap()
                .iter()
                .map(|row| row["document"].clone())
        ),
        [("a".to_string(), "1".to_string()), ("b".into(), "2".into())]
    );
    let mut sum = sum_n(None);
    sum["transaction"] = json!(tx);
    let r = s.rpc(false, "runAggregationQuery", sum);
    assert_eq!(
        r.json[0]["result"]["aggregateFields"]["total"]["integerValue"], "3",
        "{}",
        r.json
    );
    // The documents changed since: the commit still succeeds (nothing read at a past time can
    // change), and a write is refused.
    let write = json!({"update": {"name": format!("{NAME}/notes/z"), "fields": {}}});
    let refused = s.rpc(
        false,
        "commit",
        json!({"transaction": tx, "writes": [write]}),
    );
    assert_error(&refused, "INVALID_ARGUMENT", "read-only");
    let begun = s.rpc(
        false,
        "beginTransaction",
        json!({"options": {"readOnly": {"readTime": t1}}}),
    );
    let tx = begun.json["transaction"].as_str().unwrap().to_string();
    s.rpc(
        false,
        "batchGet",
        json!({"documents": names, "transaction": tx}),
    );
    let done = s.rpc(false, "commit", json!({"transaction": tx}));
    assert_eq!(done.status, 200, "{}", done.json);

    // A transaction begun by its first read, at t1: its id first, then the documents then.
    let r = s.rpc(
        false,
        "runQuery",
        json!({"structuredQuery": query(0), "newTransaction": {"readOnly": {"readTime": t1}}}),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let rows = r.json.as_array().unwrap();
    let tx = rows[0]["transaction"].as_str().unwrap().to_string();
    assert_eq!(rows[0]["readTime"], t1.as_str());
    assert_eq!(
        notes(rows[1..].iter().map(|row| row["document"].clone())).len(),
        2
    );
    let r = s.rpc(
        false,
        "batchGet",
        json!({"documents": names, "transaction": tx}),
    );
    assert_eq!(
        r.json[1]["found"]["fields"]["n"]["integerValue"], "2",
        "{}",
        r.json
    );
    // A read-only transaction without a time reads the latest, as before.
    let r = s.rpc(
        false,
        "batchGet",
        json!({"documents": names, "newTransaction": {"readOnly": {}}}),
    );
    assert!(r.json[0]["transaction"].is_string(), "{}", r.json);
    assert_eq!(r.json[1]["found"]["fields"]["n"]["integerValue"], "3");
    assert_eq!(r.json[2]["missing"], format!("{NAME}/notes/b"));
    // A time the history does not reach is refused when the transaction begins.
    let old = s.rpc(
        false,
        "beginTransaction",
        json!({"options": {"readOnly": {"readTime": "2001-01-01T00:00:00Z"}}}),
    );
    assert_error(&old, "FAILED_PRECONDITION", "history_retention_secs");
    let bad = s.rpc(
        false,
        "beginTransaction",
        json!({"options": {"readOnly": {"readTime": "soon"}}}),
    );
    assert_error(&bad, "INVALID_ARGUMENT", "readTime");
}

/// With `history_retention_secs = 0` no past versions are kept: every past read is refused,
/// saying so, and plain reads are unchanged.
#[test]
fn firestore_rest_without_history_refuses_past_reads() {
    let s = Setup::start("history_retention_secs = 0");
    let t1 = s.put("a", true, 1);
    s.put("a", true, 2);
    let past = s.call(false, "GET", &format!("{DOCS}/notes/a?readTime={t1}"), None);
    assert_error(&past, "FAILED_PRECONDITION", "history_retention_secs = 0");
    let begun = s.rpc(
        false,
        "beginTransaction",
        json!({"options": {"readOnly": {"readTime": t1}}}),
    );
    assert_error(&begun, "FAILED_PRECONDITION", "history_retention_secs = 0");
    let now = s.ok("GET", &format!("{DOCS}/notes/a"), None);
    assert_eq!(now["fields"]["n"]["integerValue"], "2");
}
