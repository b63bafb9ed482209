//! `GET /v1/listen` against the real binary: server-sent events for a document and for an
//! ordered, limited query, fed by writes another client makes through `/v1/docs`; decided by the
//! rules at the start (a listener they do not allow gets the JSON error, no stream) and again
//! when the caller's custom claims change (the stream ends with `permission-denied`) or the
//! caller is revoked (`unauthenticated`); a client that reconnects with `Last-Event-ID` gets
//! only what it missed.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::idp::{Deployment, claims, unix_now};
use crate::util::{Server, request};

const ADMIN_KEY: &str = "an-admin-key-for-the-listen-tests";

const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read: if request.auth != null && request.auth.token.reader == true;
      allow write: if request.auth != null;
    }
  }
}
";

/// An open event stream: events arrive on a channel from a reading thread.
pub(crate) struct Stream {
    events: mpsc::Receiver<(String, Value)>,
    /// The `id` of the last event received.
    last_id: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Stream {
    /// Opens `/v1/listen?{query}` (with a bearer token unless `token` is empty);
    /// `Err((status, body))` when it is refused.
    pub(crate) fn open(server: &Server, query: &str, token: &str) -> Result<Stream, (u16, String)> {
        Stream::open_from(server, query, token, "")
    }

    /// Opens a stream as a client reconnecting with `Last-Event-ID: {last}` (none if empty).
    pub(crate) fn open_from(
        server: &Server,
        query: &str,
        token: &str,
        last: &str,
    ) -> Result<Stream, (u16, String)> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut get = agent.get(server.url(&format!("/v1/listen?{query}")));
        if !token.is_empty() {
            get = get.header("authorization", &format!("Bearer {token}"));
        }
        if !last.is_empty() {
            get = get.header("last-event-id", last);
        }
        let response = get.call().unwrap();
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.into_body().read_to_string().unwrap_or_default();
            return Err((status, body));
        }
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        let reader = BufReader::new(response.into_body().into_reader());
        let (tx, events) = mpsc::channel();
        let last_id = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let id = last_id.clone();
        std::thread::spawn(move || {
            let mut name = String::new();
            for line in reader.lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(n) = line.strip_prefix("id: ") {
                    *id.lock().unwrap() = n.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let data: Value = serde_json::from_str(data).unwrap();
                    if tx.send((name.clone(), data)).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Stream { events, last_id })
    }

    /// The `id` of the last event received: what a reconnecting client sends back.
    pub(crate) fn last_id(&self) -> String {
        self.last_id.lock().unwrap().clone()
    }

    /// The next event (within a few seconds).
    pub(crate) fn next(&self) -> (String, Value) {
        self.events
            .recv_timeout(Duration::from_secs(10))
            .expect("an event within 10 s")
    }

    /// Ids of the documents a `changes` event names, as `type:id@new_index`.
    pub(crate) fn changes(&self) -> Vec<String> {
        let (name, data) = self.next();
        assert_eq!(name, "changes", "{data}");
        data["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let path = c["document"]["path"].as_str().unwrap();
                let id = path.rsplit('/').next().unwrap();
                format!("{}:{id}@{}", c["type"].as_str().unwrap(), c["new_index"])
            })
            .collect()
    }
}

fn put(server: &Server, path: &str, body: Value, token: &str) {
    let auth = format!("Bearer {token}");
    let (status, text) = request(
        "PUT",
        &server.url(&format!("/v1/docs/{path}")),
        Some(&body.to_string()),
        &[("authorization", &auth)],
    )
    .unwrap();
    assert!(status == 200 || status == 201, "{status} {text}");
}

fn admin(server: &Server, method: &str, path: &str, body: Option<Value>) {
    let text = body.map(|b| b.to_string());
    let (status, answer) = request(
        method,
        &server.url(path),
        text.as_deref(),
        &[("x-claimdb-admin-key", ADMIN_KEY)],
    )
    .unwrap();
    assert!(status < 300, "{method} {path}: {status} {answer}");
}

fn encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[test]
fn listeners_follow_writes_and_end_when_the_rules_no_longer_allow_them() {
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(
        RULES,
        &format!("admin_key = \"{ADMIN_KEY}\"\nexplain_denials = true"),
    );
    // Issued a while ago, so that revoking (at the current second) covers it.
    let mut issued = claims("alice", json!({}));
    issued["iat"] = json!(unix_now() - 60);
    let alice = key.sign(&issued);
    let writer = key.sign(&claims("writer", json!({})));

    // Without the claim the rules refuse the listener: the usual JSON error, no stream.
    match Stream::open(&server, "path=notes/n1", &alice) {
        Err((status, body)) => {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("permission-denied"), "{body}");
        }
        Ok(_) => panic!("a listener the rules do not allow was opened"),
    }
    admin(
        &server,
        "PUT",
        "/v1/admin/users/alice/claims",
        Some(json!({"reader": true})),
    );

    // A document: absent, then written, changed and deleted by another client.
    let doc = Stream::open(&server, "path=notes/n1", &alice).unwrap();
    let (name, data) = doc.next();
    assert_eq!(
        (name.as_str(), &data),
        ("snapshot", &json!({"documents": []}))
    );
    put(&server, "notes/n1", json!({"n": 1}), &writer);
    assert_eq!(doc.changes(), ["added:n1@0"]);
    put(&server, "notes/n2", json!({"n": 9}), &writer);
    put(&server, "notes/n1", json!({"n": 2}), &writer);
    // Only the watched document's change arrives.
    let (name, data) = doc.next();
    assert_eq!(name, "changes");
    assert_eq!(data["changes"][0]["type"], "modified");
    assert_eq!(data["changes"][0]["document"]["data"], json!({"n": 2}));

    // A query: the two highest `n`, in order.
    let query = encoded(r#"{"collection": "notes", "order_by": [["n", "desc"]], "limit": 2}"#);
    let top = Stream::open(&server, &format!("query={query}"), &alice).unwrap();
    let (name, data) = top.next();
    assert_eq!(name, "snapshot");
    let ids: Vec<&str> = data["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["notes/n2", "notes/n1"]);
    put(&server, "notes/n3", json!({"n": 5}), &writer);
    assert_eq!(top.changes(), ["removed:n1@null", "added:n3@1"]);
    put(&server, "notes/n1", json!({"n": 10}), &writer);
    assert_eq!(top.changes(), ["removed:n3@null", "added:n1@0"]);
    assert_eq!(doc.changes(), ["modified:n1@0"]);
    // A write outside the result changes nothing visible: no event for it.
    put(&server, "notes/n4", json!({"n": 0}), &writer);
    put(&server, "notes/n2", json!({"n": 11}), &writer);
    assert_eq!(top.changes(), ["modified:n2@0"]);

    // The claim the rules need is removed: both listeners end with permission-denied.
    admin(&server, "DELETE", "/v1/admin/users/alice/claims", None);
    for stream in [&doc, &top] {
        let (name, data) = stream.next();
        assert_eq!(name, "error", "{data}");
        assert_eq!(data["error"]["code"], "permission-denied", "{data}");
    }

    // A revoked caller's listener ends with unauthenticated.
    admin(
        &server,
        "PUT",
        "/v1/admin/users/alice/claims",
        Some(json!({"reader": true})),
    );
    let again = Stream::open(&server, "path=notes/n1", &alice).unwrap();
    assert_eq!(again.next().0, "snapshot");
    admin(&server, "POST", "/v1/admin/users/alice/revoke", None);
    let (name, data) = again.next();
    assert_eq!(name, "error", "{data}");
    assert_eq!(data["error"]["code"], "unauthenticated", "{data}");
}

/// A client that reconnects with the id of the last event it received gets, first, only the
/// changes it missed — from that event's result, even when later events were sent and lost —
/// and a whole snapshot when the id is not one it can resume from (unknown, or another
/// caller's).
#[test]
fn a_reconnecting_client_gets_only_what_it_missed() {
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(RULES, &format!("admin_key = \"{ADMIN_KEY}\""));
    for user in ["alice", "bob"] {
        admin(
            &server,
            "PUT",
            &format!("/v1/admin/users/{user}/claims"),
            Some(json!({"reader": true})),
        );
    }
    let alice = key.sign(&claims("alice", json!({})));
    let bob = key.sign(&claims("bob", json!({})));
    let query = format!(
        "query={}",
        encoded(r#"{"collection": "notes", "order_by": [["n", "asc"]]}"#)
    );
    put(&server, "notes/a", json!({"n": 1}), &alice);

    let first = Stream::open(&server, &query, &alice).unwrap();
    assert_eq!(first.next().0, "snapshot");
    let at_snapshot = first.last_id();
    put(&server, "notes/b", json!({"n": 2}), &alice);
    assert_eq!(first.changes(), ["added:b@1"]);
    let at_b = first.last_id();
    assert_ne!(at_snapshot, at_b);
    drop(first);

    // Missed while away: a changes and moves after b, c arrives.
    put(&server, "notes/a", json!({"n": 3}), &alice);
    put(&server, "notes/c", json!({"n": 0}), &alice);

    let resumed = Stream::open_from(&server, &query, &alice, &at_b).unwrap();
    // (c enters first, so b, in place, counts as moved: applied in order, the changes give
    // exactly the new result.)
    assert_eq!(
        resumed.changes(),
        ["added:c@0", "modified:b@1", "modified:a@2"]
    );
    // And it goes on from there.
    put(&server, "notes/d", json!({"n": 9}), &alice);
    assert_eq!(resumed.changes(), ["added:d@3"]);

    // From the snapshot's id (the events after it lost): what changed since the snapshot.
    let earlier = Stream::open_from(&server, &query, &alice, &at_snapshot).unwrap();
    assert_eq!(
        earlier.changes(),
        ["added:c@0", "added:b@1", "modified:a@2", "added:d@3"]
    );

    // Nothing missed: an empty `changes` event, with a new id to go on from.
    let current = Stream::open_from(&server, &query, &alice, &resumed.last_id()).unwrap();
    assert_eq!(current.changes(), Vec::<String>::new());
    assert!(!current.last_id().is_empty());

    // Not resumable: a made-up id, or alice's id presented by bob — a whole snapshot.
    for (token, last) in [
        (&alice, "0123456789abcdef.1"),
        (&alice, "nonsense"),
        (&bob, &at_b),
    ] {
        let stream = Stream::open_from(&server, &query, token, last).unwrap();
        let (name, data) = stream.next();
        assert_eq!(name, "snapshot", "{last}: {data}");
        assert_eq!(data["documents"].as_array().unwrap().len(), 4, "{data}");
    }
}
