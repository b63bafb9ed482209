//! Firestore REST v1's document bindings against the real binary, with an IdP's tokens and real
//! rules: createDocument, get (with a mask), list with page tokens, patch with and without an
//! update mask and with `currentDocument` preconditions (`updateTime` as the concurrency token),
//! delete; every value type round-trips exactly; a document written through `/v1/docs` reads
//! through REST and back; errors are `google.rpc.Status` with the HTTP status the SDKs map.
//! OR queries through `:runQuery` under rules (each disjunction must be allowed),
//! `:listCollectionIds` and lists with `showMissing` (both for administrators).

use serde_json::{Value, json};

use crate::idp::{Deployment, Idp, Key, claims, forged};
use crate::util::{Server, request};

const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read: if request.auth != null && resource.data.owner == request.auth.uid;
      allow create: if request.auth != null && request.resource.data.owner == request.auth.uid;
      allow update, delete: if request.auth != null && resource.data.owner == request.auth.uid;
      allow list: if request.auth != null;
    }
    match /open/{id} {
      allow read, write: if request.auth != null;
    }
    match /posts/{id} {
      allow read: if request.auth != null
        && (resource.data.owner == request.auth.uid || resource.data.public == true);
      allow write: if request.auth != null;
    }
    match /{top}/{id}/{rest=**} {
      allow write: if request.auth != null && top in ['posts', 'open'];
    }
  }
}
"#;

const DOCS: &str = "/v1/projects/demo-app/databases/(default)/documents";
const ADMIN_KEY: &str = "an-admin-key-for-the-tests-0123456789";

struct Setup {
    server: Server,
    key: Key,
    _idp: Idp,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    json: Value,
}

impl Setup {
    fn start() -> Setup {
        let Deployment {
            server,
            key,
            idp,
            dir,
        } = Deployment::start(
            RULES,
            &format!(
                "project_id = \"demo-app\"\nexplain_denials = true\nadmin_key = \"{ADMIN_KEY}\""
            ),
        );
        Setup {
            server,
            key,
            _idp: idp,
            _dir: dir,
        }
    }

    fn token(&self, uid: &str) -> String {
        self.key.sign(&claims(uid, json!({})))
    }

    fn call(&self, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call_as(token, false, method, path, body)
    }

    /// [`Setup::call`], with the admin key when `admin`.
    fn call_as(
        &self,
        token: Option<&str>,
        admin: bool,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
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
}

/// A Firestore error answer: the HTTP status and `error.status` agree.
fn assert_error(r: &Resp, http: u16, status: &str) {
    assert_eq!(r.status, http, "{}", r.json);
    assert_eq!(r.json["error"]["code"], http, "{}", r.json);
    assert_eq!(r.json["error"]["status"], status, "{}", r.json);
    assert!(
        r.json["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

fn every_type(owner: &str) -> Value {
    json!({
        "owner": {"stringValue": owner},
        "n": {"integerValue": "9007199254740993"},
        "d": {"doubleValue": 1.5},
        "nan": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "-Infinity"},
        "ts": {"timestampValue": "2026-12-07T10:00:00.123456Z"},
        "b": {"bytesValue": "AAEC/w=="},
        "ref": {"referenceValue": "projects/demo-app/databases/(default)/documents/notes/other"},
        "geo": {"geoPointValue": {"latitude": 52.5, "longitude": 13.4}},
        "list": {"arrayValue": {"values": [{"integerValue": "1"}, {"stringValue": "two"}, {"nullValue": null}]}},
        "empty": {"arrayValue": {}},
        "map": {"mapValue": {"fields": {"inner": {"booleanValue": true}}}},
        "none": {"nullValue": null}
    })
}

#[test]
fn firestore_rest_documents_round_trip_under_the_rules() {
    let s = Setup::start();
    let alice = s.token("alice");
    let bob = s.token("bob");

    // createDocument with every value type; the answer carries them exactly.
    let created = s.call(
        Some(&alice),
        "POST",
        &format!("{DOCS}/notes?documentId=n1"),
        Some(json!({ "fields": every_type("alice") })),
    );
    assert_eq!(created.status, 200, "{}", created.json);
    assert_eq!(
        created.json["name"],
        "projects/demo-app/databases/(default)/documents/notes/n1"
    );
    assert_eq!(created.json["fields"], every_type("alice"));
    let first_update = created.json["updateTime"].as_str().unwrap().to_string();
    assert_eq!(created.json["createTime"], first_update.as_str());

    // Read back through REST and through claimdb's own API.
    let got = s.call(Some(&alice), "GET", &format!("{DOCS}/notes/n1"), None);
    assert_eq!(got.status, 200, "{}", got.json);
    assert_eq!(got.json["fields"], every_type("alice"));
    let own = s.call(Some(&alice), "GET", "/v1/docs/notes/n1", None);
    assert_eq!(own.status, 200, "{}", own.json);
    assert_eq!(own.json["data"]["n"], 9_007_199_254_740_993_i64);
    assert_eq!(own.json["data"]["ref"], json!({"$ref": "notes/other"}));
    assert_eq!(own.json["data"]["nan"], json!({"$double": "NaN"}));

    // A document written through /v1/docs reads through REST.
    let put = s.call(
        Some(&alice),
        "PUT",
        "/v1/docs/notes/n2",
        Some(json!({"owner": "alice", "n": 2, "when": {"$timestamp": "2026-01-02T03:04:05.000006Z"}})),
    );
    assert!(put.status == 200 || put.status == 201, "{}", put.json);
    let via_rest = s.call(Some(&alice), "GET", &format!("{DOCS}/notes/n2"), None);
    assert_eq!(
        via_rest.json["fields"],
        json!({
            "owner": {"stringValue": "alice"},
            "n": {"integerValue": "2"},
            "when": {"timestampValue": "2026-01-02T03:04:05.000006Z"}
        })
    );

    // A field mask.
    let masked = s.call(
        Some(&alice),
        "GET",
        &format!("{DOCS}/notes/n1?mask.fieldPaths=owner&mask.fieldPaths=map.inner"),
        None,
    );
    assert_eq!(
        masked.json["fields"],
        json!({"owner": {"stringValue": "alice"}, "map": {"mapValue": {"fields": {"inner": {"booleanValue": true}}}}})
    );

    // The rules decide: another user, no token, a forged token.
    assert_error(
        &s.call(Some(&bob), "GET", &format!("{DOCS}/notes/n1"), None),
        403,
        "PERMISSION_DENIED",
    );
    assert_error(
        &s.call(None, "GET", &format!("{DOCS}/notes/n1"), None),
        403,
        "PERMISSION_DENIED",
    );
    let forged = forged(&alice);
    assert_error(
        &s.call(Some(&forged), "GET", &format!("{DOCS}/notes/n1"), None),
        401,
        "UNAUTHENTICATED",
    );
    assert_error(
        &s.call(
            Some(&bob),
            "POST",
            &format!("{DOCS}/notes?documentId=b1"),
            Some(json!({"fields": {"owner": {"stringValue": "alice"}}})),
        ),
        403,
        "PERMISSION_DENIED",
    );

    // An update mask: masked fields change, a masked field absent from the body is removed,
    // the rest stays.
    let patched = s.call(
        Some(&alice),
        "PATCH",
        &format!("{DOCS}/notes/n1?updateMask.fieldPaths=d&updateMask.fieldPaths=none&updateMask.fieldPaths=map.added"),
        Some(json!({"fields": {"d": {"doubleValue": 2.5}, "map": {"mapValue": {"fields": {"added": {"integerValue": "7"}}}}, "ignored": {"stringValue": "x"}}})),
    );
    assert_eq!(patched.status, 200, "{}", patched.json);
    let fields = &patched.json["fields"];
    assert_eq!(fields["d"], json!({"doubleValue": 2.5}));
    assert!(fields.get("none").is_none(), "{fields}");
    assert!(fields.get("ignored").is_none(), "{fields}");
    assert_eq!(
        fields["map"]["mapValue"]["fields"]["added"],
        json!({"integerValue": "7"})
    );
    assert_eq!(
        fields["map"]["mapValue"]["fields"]["inner"],
        json!({"booleanValue": true})
    );
    assert_eq!(fields["owner"], json!({"stringValue": "alice"}));
    let second_update = patched.json["updateTime"].as_str().unwrap().to_string();
    assert_ne!(second_update, first_update);

    // updateTime is the concurrency token: a stale one fails, the current one applies.
    let stale = s.call(
        Some(&alice),
        "PATCH",
        &format!("{DOCS}/notes/n1?currentDocument.updateTime={first_update}"),
        Some(json!({"fields": {"owner": {"stringValue": "alice"}}})),
    );
    assert_error(&stale, 400, "FAILED_PRECONDITION");
    let replaced = s.call(
        Some(&alice),
        "PATCH",
        &format!("{DOCS}/notes/n1?currentDocument.updateTime={second_update}"),
        Some(json!({"fields": {"owner": {"stringValue": "alice"}, "only": {"integerValue": "1"}}})),
    );
    assert_eq!(replaced.status, 200, "{}", replaced.json);
    assert_eq!(
        replaced.json["fields"],
        json!({"owner": {"stringValue": "alice"}, "only": {"integerValue": "1"}})
    );

    // A masked patch of a missing document creates it (the rules see a create); with
    // exists=true it is NOT_FOUND where the rules allow the update; createDocument on a taken
    // id is ALREADY_EXISTS.
    let upsert = s.call(
        Some(&alice),
        "PATCH",
        &format!("{DOCS}/notes/n3?updateMask.fieldPaths=owner"),
        Some(json!({"fields": {"owner": {"stringValue": "alice"}}})),
    );
    assert_eq!(upsert.status, 200, "{}", upsert.json);
    assert_error(
        &s.call(
            Some(&alice),
            "PATCH",
            &format!("{DOCS}/open/o1?updateMask.fieldPaths=owner&currentDocument.exists=true"),
            Some(json!({"fields": {"owner": {"stringValue": "alice"}}})),
        ),
        404,
        "NOT_FOUND",
    );
    let open = s.call(
        Some(&alice),
        "POST",
        &format!("{DOCS}/open?documentId=o2"),
        Some(json!({"fields": {}})),
    );
    assert_eq!(open.status, 200, "{}", open.json);
    assert!(open.json.get("fields").is_none(), "{}", open.json);
    assert_error(
        &s.call(
            Some(&alice),
            "POST",
            &format!("{DOCS}/open?documentId=o2"),
            Some(json!({"fields": {"owner": {"stringValue": "alice"}}})),
        ),
        409,
        "ALREADY_EXISTS",
    );

    // List, a page at a time.
    let page = s.call(
        Some(&alice),
        "GET",
        &format!("{DOCS}/notes?pageSize=2"),
        None,
    );
    assert_eq!(page.status, 200, "{}", page.json);
    assert_eq!(page.json["documents"].as_array().unwrap().len(), 2);
    let token = page.json["nextPageToken"].as_str().unwrap();
    let rest = s.call(
        Some(&alice),
        "GET",
        &format!("{DOCS}/notes?pageSize=2&pageToken={token}"),
        None,
    );
    assert_eq!(rest.status, 200, "{}", rest.json);
    let names: Vec<&str> = page.json["documents"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest.json["documents"].as_array().unwrap())
        .map(|d| d["name"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert!(rest.json.get("nextPageToken").is_none(), "{}", rest.json);

    // Delete with a precondition; then the document is gone.
    let deleted = s.call(
        Some(&alice),
        "DELETE",
        &format!("{DOCS}/notes/n3?currentDocument.exists=true"),
        None,
    );
    assert_eq!((deleted.status, &deleted.json), (200, &json!({})));
    // Gone: reading it now is decided on no document (this rule then denies); where the rules
    // allow the read, it is NOT_FOUND, and so is a delete that needs it to exist.
    assert_error(
        &s.call(Some(&alice), "GET", &format!("{DOCS}/notes/n3"), None),
        403,
        "PERMISSION_DENIED",
    );
    let deleted = s.call(Some(&alice), "DELETE", &format!("{DOCS}/open/o2"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.json);
    assert_error(
        &s.call(Some(&alice), "GET", &format!("{DOCS}/open/o2"), None),
        404,
        "NOT_FOUND",
    );
    assert_error(
        &s.call(
            Some(&alice),
            "DELETE",
            &format!("{DOCS}/open/o2?currentDocument.exists=true"),
            None,
        ),
        404,
        "NOT_FOUND",
    );

    // Explicit transactions: reads pin what they returned; a commit after another writer
    // changed a read document is ABORTED and applies nothing; rollback ends one.
    let rpc = |name: &str, body: Value| {
        s.call(Some(&alice), "POST", &format!("{DOCS}:{name}"), Some(body))
    };
    let n1 = "projects/demo-app/databases/(default)/documents/notes/n1";
    let n2 = "projects/demo-app/databases/(default)/documents/notes/n2";
    let begun = rpc("beginTransaction", json!({}));
    assert_eq!(begun.status, 200, "{}", begun.json);
    let tx = begun.json["transaction"].as_str().unwrap().to_string();
    let read = rpc("batchGet", json!({"documents": [n1], "transaction": tx}));
    assert_eq!(read.status, 200, "{}", read.json);
    assert_eq!(read.json[0]["found"]["name"], n1);
    let other = s.call(
        Some(&alice),
        "PATCH",
        &format!("{DOCS}/notes/n1?updateMask.fieldPaths=only"),
        Some(json!({"fields": {"only": {"integerValue": "2"}}})),
    );
    assert_eq!(other.status, 200, "{}", other.json);
    let write = json!({"update": {"name": n2, "fields": {"owner": {"stringValue": "alice"}, "tx": {"booleanValue": true}}}});
    assert_error(
        &rpc("commit", json!({"transaction": tx, "writes": [write]})),
        409,
        "ABORTED",
    );
    assert!(
        s.call(Some(&alice), "GET", &format!("{DOCS}/notes/n2"), None)
            .json["fields"]
            .get("tx")
            .is_none()
    );
    // Begun by the first read, then committed.
    let read = rpc("batchGet", json!({"documents": [n1], "newTransaction": {}}));
    assert_eq!(read.status, 200, "{}", read.json);
    let tx = read.json[0]["transaction"].as_str().unwrap().to_string();
    assert_eq!(read.json[1]["found"]["name"], n1);
    let committed = rpc("commit", json!({"transaction": tx, "writes": [write]}));
    assert_eq!(committed.status, 200, "{}", committed.json);
    assert_eq!(committed.json["writeResults"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.call(Some(&alice), "GET", &format!("{DOCS}/notes/n2"), None)
            .json["fields"]["tx"],
        json!({"booleanValue": true})
    );
    // The transaction ended with its commit; rollback ends one; read-only ones cannot write.
    assert_error(
        &rpc("commit", json!({"transaction": tx})),
        400,
        "INVALID_ARGUMENT",
    );
    let tx = rpc("beginTransaction", json!({})).json["transaction"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(rpc("rollback", json!({"transaction": tx})).json, json!({}));
    assert_error(
        &rpc("rollback", json!({"transaction": tx})),
        400,
        "INVALID_ARGUMENT",
    );
    let ro = rpc("beginTransaction", json!({"options": {"readOnly": {}}})).json["transaction"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        &rpc("commit", json!({"transaction": ro, "writes": [write]})),
        400,
        "INVALID_ARGUMENT",
    );
    // A verify write fails the commit when the document is not as it says.
    let stale = json!({"verify": n1, "currentDocument": {"updateTime": first_update}});
    assert_error(
        &rpc("commit", json!({"writes": [stale, write]})),
        400,
        "FAILED_PRECONDITION",
    );

    // batchWrite: each write on its own, each with its status (one denied, the other applied).
    let mine = json!({"update": {"name": "projects/demo-app/databases/(default)/documents/notes/w1", "fields": {"owner": {"stringValue": "alice"}}}});
    let theirs = json!({"update": {"name": "projects/demo-app/databases/(default)/documents/notes/w2", "fields": {"owner": {"stringValue": "bob"}}}});
    let batch = rpc("batchWrite", json!({"writes": [mine, theirs]}));
    assert_eq!(batch.status, 200, "{}", batch.json);
    assert_eq!(batch.json["status"][0], json!({}));
    assert_eq!(batch.json["status"][1]["code"], 7, "{}", batch.json);
    assert!(batch.json["writeResults"][0]["updateTime"].is_string());
    assert_eq!(
        s.call(Some(&alice), "GET", &format!("{DOCS}/notes/w1"), None)
            .status,
        200
    );

    // A list ordered by a field (a query underneath: documents without the field are left out).
    let ordered = s.call(
        Some(&alice),
        "GET",
        &format!("{DOCS}/notes?orderBy=only%20desc&pageSize=5"),
        None,
    );
    assert_eq!(ordered.status, 200, "{}", ordered.json);
    let ids: Vec<&str> = ordered.json["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(ids, ["n1"]);

    // partitionQuery answers one partition for a collection group ordered by name.
    let partitions = rpc(
        "partitionQuery",
        json!({"structuredQuery": {"from": [{"collectionId": "notes", "allDescendants": true}], "orderBy": [{"field": {"fieldPath": "__name__"}}]}, "partitionCount": 4}),
    );
    assert_eq!(
        (partitions.status, &partitions.json),
        (200, &json!({"partitions": []}))
    );

    // Names and bodies that are not Firestore's are refused clearly.
    assert_error(
        &s.call(
            Some(&alice),
            "GET",
            "/v1/projects/other/databases/(default)/documents/notes/n1",
            None,
        ),
        404,
        "NOT_FOUND",
    );
    assert_error(
        &s.call(
            Some(&alice),
            "PATCH",
            &format!("{DOCS}/notes/n1"),
            Some(json!({"fields": {"bad": {"integerValue": "one"}}})),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert_error(
        &s.call(
            Some(&alice),
            "GET",
            &format!("{DOCS}/notes/n1?bogus=1"),
            None,
        ),
        400,
        "INVALID_ARGUMENT",
    );
}

fn names(documents: &Value) -> Vec<String> {
    documents
        .as_array()
        .map(|docs| {
            docs.iter()
                .map(|d| {
                    let name = d["name"].as_str().unwrap();
                    name.split("/documents/").nth(1).unwrap().to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn firestore_rest_or_queries_collection_ids_and_missing_documents() {
    let s = Setup::start();
    let alice = s.token("alice");
    let put = |path: &str, fields: Value| {
        let r = s.call(
            Some(&alice),
            "PATCH",
            &format!("{DOCS}/{path}"),
            Some(json!({ "fields": fields })),
        );
        assert_eq!(r.status, 200, "{path}: {}", r.json);
    };
    let text = |v: &str| json!({"stringValue": v});
    put(
        "posts/p1",
        json!({"owner": text("alice"), "public": {"booleanValue": false}}),
    );
    put(
        "posts/p2",
        json!({"owner": text("bob"), "public": {"booleanValue": true}}),
    );
    put(
        "posts/p3",
        json!({"owner": text("alice"), "public": {"booleanValue": true}}),
    );
    put(
        "posts/p4",
        json!({"owner": text("bob"), "public": {"booleanValue": false}}),
    );
    put("posts/p5/comments/c1", json!({"owner": text("alice")}));
    put("posts/p6/comments/c1/likes/l1", json!({}));
    put("open/o1", json!({"n": {"integerValue": "1"}}));
    put("open/o2/deep/d1", json!({}));
    put("open/o3", json!({"n": {"integerValue": "3"}}));
    put("open/o4/a/b/c/d", json!({}));

    // owner == me OR public == true: each branch is proven by the rule, so the query runs;
    // p3 matches both branches and comes once.
    let eq = |field: &str, value: Value| json!({"fieldFilter": {"field": {"fieldPath": field}, "op": "EQUAL", "value": value}});
    let or_query = |second: Value| {
        json!({"structuredQuery": {
            "from": [{"collectionId": "posts"}],
            "where": {"compositeFilter": {"op": "OR", "filters": [eq("owner", text("alice")), second]}},
            "orderBy": [{"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}]
        }})
    };
    let rpc = |token: Option<&str>, admin: bool, at: &str, body: Value| {
        s.call_as(token, admin, "POST", &format!("{DOCS}{at}"), Some(body))
    };
    let run = rpc(
        Some(&alice),
        false,
        ":runQuery",
        or_query(eq("public", json!({"booleanValue": true}))),
    );
    assert_eq!(run.status, 200, "{}", run.json);
    let found: Vec<String> = run
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["document"]["name"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(found, ["p3", "p2", "p1"]);
    // Rules are not filters: a branch the rules cannot prove (owner == bob) denies it all.
    let denied = rpc(
        Some(&alice),
        false,
        ":runQuery",
        or_query(eq("owner", text("bob"))),
    );
    assert_error(&denied, 403, "PERMISSION_DENIED");
    // The same or query counted through runAggregationQuery.
    let mut count = or_query(eq("public", json!({"booleanValue": true})));
    count["structuredAggregationQuery"] = json!({
        "structuredQuery": count["structuredQuery"].take(),
        "aggregations": [{"alias": "n", "count": {}}]
    });
    count.as_object_mut().unwrap().remove("structuredQuery");
    let counted = rpc(Some(&alice), false, ":runAggregationQuery", count);
    assert_eq!(counted.status, 200, "{}", counted.json);
    assert_eq!(
        counted.json[0]["result"]["aggregateFields"]["n"],
        json!({"integerValue": "3"})
    );

    // listCollectionIds: administrators only (collection ids reveal the structure).
    let ids = |admin: bool, at: &str, body: Value| rpc(Some(&alice), admin, at, body);
    assert_error(
        &ids(false, ":listCollectionIds", json!({})),
        403,
        "PERMISSION_DENIED",
    );
    let root = ids(true, ":listCollectionIds", json!({}));
    assert_eq!(root.status, 200, "{}", root.json);
    let ids_of = |v: &Value| -> Vec<String> {
        v["collectionIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_of(&root.json), ["open", "posts"]);
    // Pages: one id at a time, continuing with the token.
    let first = ids(true, ":listCollectionIds", json!({"pageSize": 1}));
    assert_eq!(ids_of(&first.json), ["open"]);
    let token = first.json["nextPageToken"].as_str().unwrap().to_string();
    let second = ids(
        true,
        ":listCollectionIds",
        json!({"pageSize": 1, "pageToken": token}),
    );
    assert_eq!(ids_of(&second.json), ["posts"]);
    assert!(
        second.json.get("nextPageToken").is_none(),
        "{}",
        second.json
    );
    // Below a document, existing or not.
    let below = ids(true, "/posts/p6:listCollectionIds", json!({}));
    assert_eq!(ids_of(&below.json), ["comments"]);
    let below = ids(true, "/posts/p1:listCollectionIds", json!({}));
    assert_eq!(ids_of(&below.json), Vec::<String>::new());
    // A page size past claimdb's largest page is that page, not an error.
    let large = ids(true, ":listCollectionIds", json!({"pageSize": 100_000}));
    assert_eq!(ids_of(&large.json), ["open", "posts"]);
    assert_error(
        &ids(true, ":listCollectionIds", json!({"pageSize": "x"})),
        400,
        "INVALID_ARGUMENT",
    );

    // showMissing: missing documents (o2, o4: absent, with documents below) as bare names,
    // in id order with the others; administrators only, and the rules decide the list.
    let list = |admin: bool, collection: &str, query: &str| {
        s.call_as(
            Some(&alice),
            admin,
            "GET",
            &format!("{DOCS}/{collection}?showMissing=true{query}"),
            None,
        )
    };
    assert_error(&list(false, "open", ""), 403, "PERMISSION_DENIED");
    let all = list(true, "open", "");
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(
        names(&all.json["documents"]),
        ["open/o1", "open/o2", "open/o3", "open/o4"]
    );
    let o2 = &all.json["documents"][1];
    assert_eq!(
        o2.as_object().unwrap().len(),
        1,
        "a missing document is its name: {o2}"
    );
    assert_eq!(
        all.json["documents"][0]["fields"],
        json!({"n": {"integerValue": "1"}})
    );
    assert!(all.json["documents"][0]["updateTime"].is_string());
    let page = list(true, "open", "&pageSize=3");
    assert_eq!(
        names(&page.json["documents"]),
        ["open/o1", "open/o2", "open/o3"]
    );
    let token = page.json["nextPageToken"].as_str().unwrap().to_string();
    let rest = list(true, "open", &format!("&pageSize=3&pageToken={token}"));
    assert_eq!(names(&rest.json["documents"]), ["open/o4"]);
    assert!(rest.json.get("nextPageToken").is_none(), "{}", rest.json);
    // The rules decide the list: posts' rule cannot be proven without filters.
    assert_error(&list(true, "posts", ""), 403, "PERMISSION_DENIED");
    assert_error(&list(true, "open", "&orderBy=n"), 400, "INVALID_ARGUMENT");
}
