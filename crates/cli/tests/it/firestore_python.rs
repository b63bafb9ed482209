//! Python's `google-cloud-firestore` (PyPI, pinned) over gRPC against the real binary: set, get,
//! update with transforms, delete, a query, a transaction (explicit BeginTransaction, as the
//! Python and Go clients do; a conflicting write makes its commit abort and the client run it
//! again) and a batch.
//!
//! Twice: against `claimdb emulator` with `FIRESTORE_EMULATOR_HOST` (the client then sends
//! `Bearer owner` on every call), and against a production-mode server with a user's signed
//! IdP token under real rules — given to the client as `google.oauth2.credentials.Credentials`
//! over a plain-text channel to the loopback address (`grpc.local_channel_credentials()`,
//! which carries call credentials without TLS), the way README's how-to shows; a denied write
//! or list is PermissionDenied, a forged token Unauthenticated. Installed once under the target
//! directory with pip; without it the tests print a SKIPPED banner (and fail with `CI=true`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::external::{pip_install, skipped};
use crate::idp::{Deployment, Key, claims};
use crate::util::Server;

const FIRESTORE: &str = "google-cloud-firestore==2.34.1";

/// The scenario; its parameters come as JSON on stdin: mode (`owner` or `user`), host
/// (`127.0.0.1:port`), project, collection, and for a user the token and a forged one.
const SCRIPT: &str = r#"
import json, os, sys
params = json.load(sys.stdin)
if params["mode"] == "owner":
    os.environ["FIRESTORE_EMULATOR_HOST"] = params["host"]
import grpc
from google.api_core import exceptions
from google.cloud import firestore

def connect(token):
    if token is None:
        return firestore.Client(project=params["project"])
    # A user's token over plain text: the client has no setting for it (with
    # FIRESTORE_EMULATOR_HOST it sends `Bearer owner`), so its API layer gets a channel whose
    # calls carry the token (google-auth), over local credentials (loopback, no TLS).
    import google.auth.transport.grpc
    import google.auth.transport.requests
    from google.oauth2.credentials import Credentials
    from google.cloud.firestore_v1.services.firestore import FirestoreClient
    from google.cloud.firestore_v1.services.firestore.transports.grpc import FirestoreGrpcTransport
    creds = Credentials(token=token)
    channel = google.auth.transport.grpc.secure_authorized_channel(
        creds, google.auth.transport.requests.Request(), params["host"],
        ssl_credentials=grpc.local_channel_credentials())
    db = firestore.Client(project=params["project"], credentials=creds)
    db._firestore_api_internal = FirestoreClient(
        transport=FirestoreGrpcTransport(host=params["host"], channel=channel))
    return db

db = connect(params.get("token"))
other = connect(params.get("token"))
col = db.collection(params["collection"])
ref = col.document("p1")
ref.set({"owner": "alice", "n": 1, "tags": ["a"], "nothing": None, "ratio": 0.25})
snap = ref.get()
assert snap.to_dict() == {"owner": "alice", "n": 1, "tags": ["a"], "nothing": None, "ratio": 0.25}, snap.to_dict()
ref.update({"n": firestore.Increment(2), "tags": firestore.ArrayUnion(["b"]), "at": firestore.SERVER_TIMESTAMP})
snap = ref.get()
assert snap.get("n") == 3 and snap.get("tags") == ["a", "b"], snap.to_dict()
assert snap.get("at") is not None
col.document("p2").set({"owner": "alice", "n": 10})
mine = col.where(filter=firestore.FieldFilter("owner", "==", "alice"))
top = mine.order_by("n", direction=firestore.Query.DESCENDING).limit(1)
assert [d.id for d in top.stream()] == ["p2"]
assert [d.id for d in mine.where(filter=firestore.FieldFilter("n", "<", 5)).stream()] == ["p1"]

# A transaction: BeginTransaction, a read in it, a commit; a write by someone else between
# the read and the commit aborts the commit, and the client runs the function again.
attempts = []
@firestore.transactional
def bump(tx, r):
    attempts.append(1)
    s = r.get(transaction=tx)
    if len(attempts) == 1:
        other.collection(params["collection"]).document("p1").update({"n": firestore.Increment(100)})
    tx.update(r, {"n": s.get("n") + 1})
bump(db.transaction(), ref)
assert len(attempts) == 2, attempts
assert ref.get().get("n") == 104

batch = db.batch()
batch.set(col.document("p3"), {"owner": "alice", "n": 5})
batch.delete(col.document("p2"))
batch.commit()
assert not col.document("p2").get().exists and col.document("p3").get().exists
ref.delete()
assert not ref.get().exists

if params["mode"] == "user":
    try:
        col.document("theirs").set({"owner": "bob"})
        raise AssertionError("a write for bob was allowed")
    except exceptions.PermissionDenied:
        pass
    try:
        list(col.stream())
        raise AssertionError("an unfiltered list was allowed")
    except exceptions.PermissionDenied:
        pass
    bad = connect(params["forged"])
    try:
        bad.collection(params["collection"]).document("p3").get()
        raise AssertionError("a forged token read")
    except exceptions.Unauthenticated:
        pass
print("ALL CHECKS PASSED")
"#;

const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /mine/{id} {
      allow read: if request.auth != null
        && (resource == null || resource.data.owner == request.auth.uid);
      allow create, update: if request.resource.data.owner == request.auth.uid;
      allow delete: if resource.data.owner == request.auth.uid;
    }
  }
}
";

fn client() -> Option<String> {
    match pip_install(FIRESTORE, "from google.cloud import firestore") {
        Ok(dir) => Some(dir),
        Err(why) => {
            skipped("the google-cloud-firestore test", &why);
            None
        }
    }
}

fn run_python(deps: &str, params: &Value) {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .env("PYTHONPATH", deps)
        .env_remove("FIRESTORE_EMULATOR_HOST")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(params.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the Python scenario failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The client's transaction began with BeginTransaction (not a first read's newTransaction).
fn assert_began_transactions(server: &Server) {
    let (_, metrics) = server.get("/metrics").unwrap();
    for rpc in [
        "BeginTransaction",
        "BatchGetDocuments",
        "Commit",
        "RunQuery",
    ] {
        let series = format!(
            "claimdb_http_requests_total{{route=\"/google.firestore.v1.Firestore/{rpc}\",method=\"POST\",status=\"200\"}}"
        );
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
}

#[test]
fn python_firestore_runs_against_the_emulator_as_owner() {
    let Some(deps) = client() else { return };
    let server = Server::emulator(&[]);
    let host = server.base.trim_start_matches("http://").to_owned();
    run_python(
        &deps,
        &json!({"mode": "owner", "host": host, "project": "demo-py", "collection": "things"}),
    );
    assert_began_transactions(&server);
}

#[test]
fn python_firestore_runs_with_a_users_idp_token_under_the_rules() {
    let Some(deps) = client() else { return };
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(RULES, "project_id = \"demo-py\"");
    let alice = key.sign(&claims("alice", json!({})));
    let forged = Key::new("k1").sign(&claims("alice", json!({})));
    let host = server.base.trim_start_matches("http://").to_owned();
    run_python(
        &deps,
        &json!({
            "mode": "user", "host": host, "project": "demo-py", "collection": "mine",
            "token": alice, "forged": forged,
        }),
    );
    assert_began_transactions(&server);
}
