//! The official Firebase web SDK (`firebase/firestore/lite`, npm `firebase`, pinned) in Node
//! against the real binary, with an IdP's signed tokens passed as `mockUserToken` (sent verbatim
//! as the bearer token) and real rules: the scenario of `js/firestore_lite_scenario.mjs`
//! (setDoc, getDoc present and missing, updateDoc with transforms and a field delete, addDoc,
//! write batches, queries, aggregations, transactions, deleteDoc, denied reads and writes →
//! `permission-denied`, a forged token → `unauthenticated`), and documents crossing between
//! the SDK and claimdb's own `/v1/docs`. [`SdkWorld`] is the server, IdP and tokens that
//! scenario needs; `firestore_browser.rs` runs the same scenario in Chromium over it.
//!
//! The SDK is installed once under the target directory. Without Node/npm or the registry the
//! test prints a SKIPPED banner and passes, except with `CI=true`, where it fails.

use std::process::Command;

use serde_json::json;

use crate::external::{npm_install, skipped};
use crate::idp::{Deployment, Idp, claims, forged};
use crate::util::{Server, request};

pub(crate) const FIREBASE: &str = "firebase@12.19.0";

/// The scenario both the Node and the browser test run (an ES module importing the SDK).
pub(crate) const SCENARIO: &str = include_str!("js/firestore_lite_scenario.mjs");

pub(crate) const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read: if request.auth != null
        && (resource == null || resource.data.owner == request.auth.uid);
      allow create: if request.auth != null && request.resource.data.owner == request.auth.uid;
      allow update: if request.auth != null && resource.data.owner == request.auth.uid
        && request.resource.data.owner == resource.data.owner;
      allow delete: if request.auth != null && resource.data.owner == request.auth.uid;
    }
    match /{path=**}/posts/{id} {
      allow read, write: if request.auth != null;
    }
  }
}
"#;

/// Runs the scenario in Node: `node runner.mjs <params JSON>`.
const NODE_RUNNER: &str = r#"
import { scenario } from './SCENARIO_FILE';
const { checks } = await scenario(JSON.parse(process.argv[2]));
console.log(`${checks.length} steps: ${checks.join(', ')}`);
console.log('ALL CHECKS PASSED');
"#;

/// A claimdb serving `demo-sdk` under [`RULES`] with an IdP's tokens for alice and bob, a
/// forged one, and `notes/from-v1` written through `/v1/docs`.
pub(crate) struct SdkWorld {
    pub(crate) server: Server,
    pub(crate) alice: String,
    pub(crate) bob: String,
    pub(crate) forged: String,
    _idp: Idp,
    _dir: tempfile::TempDir,
}

impl SdkWorld {
    /// Starts it; `extra_config` is appended to the top-level keys of the config file.
    pub(crate) fn start(extra_config: &str) -> SdkWorld {
        let Deployment {
            server,
            key,
            idp,
            dir,
        } = Deployment::start(RULES, &format!("project_id = \"demo-sdk\"\n{extra_config}"));
        let alice = key.sign(&claims("alice", json!({})));
        let bob = key.sign(&claims("bob", json!({})));
        let forged = forged(&alice);
        let world = SdkWorld {
            server,
            alice,
            bob,
            forged,
            _idp: idp,
            _dir: dir,
        };
        let (status, body) = request(
            "PUT",
            &world.server.url("/v1/docs/notes/from-v1"),
            Some(r#"{"owner": "alice", "n": 7}"#),
            &[("authorization", &world.auth())],
        )
        .unwrap();
        assert_eq!(status, 201, "{body}");
        world
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.alice)
    }

    /// The scenario's parameters, as JSON.
    pub(crate) fn params(&self) -> serde_json::Value {
        let address = self.server.base.trim_start_matches("http://");
        let (host, port) = address.rsplit_once(':').unwrap();
        json!({
            "host": host,
            "port": port,
            "project": "demo-sdk",
            "alice": self.alice,
            "bob": self.bob,
            "forged": self.forged,
        })
    }

    /// What the scenario wrote, read through claimdb's own API.
    pub(crate) fn check_written(&self) {
        let (status, body) = request(
            "GET",
            &self.server.url("/v1/docs/notes/s1"),
            None,
            &[("authorization", &self.auth())],
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["data"]["n"], 3);
        assert_eq!(
            doc["data"]["when"],
            json!({"$timestamp": "2025-12-07T09:33:20.123000Z"})
        );
        assert_eq!(doc["data"]["other"], json!({"$ref": "notes/other"}));
        assert_eq!(doc["data"]["list"], json!([1, "b"]));
        assert_eq!(doc["data"]["merged"], "yes");
    }
}

/// Writes `text` into `dir` under a name unique to this process (so test processes sharing the
/// install do not collide) and returns the name; the caller removes it.
pub(crate) fn write_beside_modules(dir: &str, stem: &str, text: &str) -> String {
    let name = format!("{stem}-{}.mjs", std::process::id());
    std::fs::write(format!("{dir}/{name}"), text).unwrap();
    name
}

#[test]
fn the_firebase_lite_sdk_reads_and_writes_under_the_rules() {
    let sdk = match npm_install(&[FIREBASE]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the Firebase SDK test", &why),
    };
    let world = SdkWorld::start("");
    // The scripts live beside node_modules so `import 'firebase/…'` resolves.
    let scenario = write_beside_modules(&sdk, "scenario", SCENARIO);
    let runner = write_beside_modules(
        &sdk,
        "node-runner",
        &NODE_RUNNER.replace("SCENARIO_FILE", &scenario),
    );
    let output = Command::new("node")
        .arg(format!("{sdk}/{runner}"))
        .arg(world.params().to_string())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{sdk}/{scenario}"));
    let _ = std::fs::remove_file(format!("{sdk}/{runner}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the SDK script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    world.check_written();
}

/// Runs a Node script (written beside the SDK's modules, so its imports resolve) with `args`;
/// it must print `ALL CHECKS PASSED`.
pub(crate) fn run_node(dir: &str, stem: &str, script: &str, args: &[&str]) {
    let name = write_beside_modules(dir, stem, script);
    let output = Command::new("node")
        .arg(format!("{dir}/{name}"))
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{name}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("ALL CHECKS PASSED"),
        "the script {stem} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

/// The server's host and port, as the SDKs' `connect…Emulator` calls take them.
pub(crate) fn host_port(server: &Server) -> (String, String) {
    let address = server.base.trim_start_matches("http://");
    let (host, port) = address.rsplit_once(':').unwrap();
    (host.to_owned(), port.to_owned())
}

/// The lite SDK against `claimdb emulator` as Firebase projects' tests use it: `mockUserToken`
/// objects (unsigned tokens the SDK makes), the string `owner`, rules put and documents cleared
/// through the emulator's endpoints with `fetch`, and two projects that do not share data.
const EMULATOR_SCRIPT: &str = r#"
import assert from 'node:assert/strict';
import { initializeApp } from 'firebase/app';
import {
  getFirestore, connectFirestoreEmulator, doc, collection, getDoc, setDoc, getDocs, query, where,
  runTransaction,
} from 'firebase/firestore/lite';

const [host, port] = process.argv.slice(2);
const base = `http://${host}:${port}`;
let apps = 0;
const connect = (project, user) => {
  const db = getFirestore(initializeApp({ projectId: project }, `app${apps++}`));
  connectFirestoreEmulator(db, host, Number(port), user ? { mockUserToken: user } : {});
  return db;
};
const code = async (promise) => {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
};

// Rules as `initializeTestEnvironment({firestore: {rules}})` sends them.
const rules = `rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read: if request.auth != null;
      allow write: if request.auth.uid == id || request.auth.token.admin == true;
    }
  }
}`;
let r = await fetch(`${base}/emulator/v1/projects/demo-one:securityRules`, {
  method: 'PUT', body: JSON.stringify({ rules: { files: [{ content: rules }] } }),
});
assert.equal(r.status, 200, await r.text());

const alice = connect('demo-one', { sub: 'alice', email: 'alice@example.com' });
const admin = connect('demo-one', { sub: 'root', admin: true });
const nobody = connect('demo-one', null);
const owner = connect('demo-one', 'owner');
await setDoc(doc(alice, 'notes', 'alice'), { n: 1 });
assert.equal(await code(setDoc(doc(alice, 'notes', 'bob'), { n: 1 })), 'permission-denied');
assert.equal(await code(getDoc(doc(nobody, 'notes', 'alice'))), 'permission-denied');
await setDoc(doc(admin, 'notes', 'bob'), { n: 2 });
assert.deepEqual((await getDocs(query(collection(alice, 'notes'), where('n', '>', 0)))).docs.map((d) => d.id), ['alice', 'bob']);
await runTransaction(alice, async (t) => {
  const s = await t.get(doc(alice, 'notes', 'alice'));
  t.update(doc(alice, 'notes', 'alice'), { n: s.data().n + 1 });
});
assert.equal((await getDoc(doc(alice, 'notes', 'alice'))).data().n, 2);
// `owner` bypasses the rules.
await setDoc(doc(owner, 'locked', 'x'), { a: 1 });
assert.equal((await getDoc(doc(owner, 'locked', 'x'))).data().a, 1);
assert.equal(await code(getDoc(doc(alice, 'locked', 'x'))), 'permission-denied');

// Another project id is another database.
const elsewhere = connect('demo-two', { sub: 'alice' });
assert.equal((await getDoc(doc(elsewhere, 'notes', 'alice'))).exists(), false);

// clearFirestore.
r = await fetch(`${base}/emulator/v1/projects/demo-one/databases/(default)/documents`, { method: 'DELETE' });
assert.equal(r.status, 200);
assert.equal((await getDoc(doc(alice, 'notes', 'alice'))).exists(), false);
assert.equal(await code(setDoc(doc(alice, 'notes', 'bob'), { n: 1 })), 'permission-denied');
console.log('ALL CHECKS PASSED');
"#;

#[test]
fn the_firebase_lite_sdk_runs_against_the_emulator_with_mock_user_tokens() {
    let sdk = match npm_install(&[FIREBASE]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the Firebase SDK emulator test", &why),
    };
    let server = Server::emulator(&[]);
    let (host, port) = host_port(&server);
    run_node(&sdk, "emulator", EMULATOR_SCRIPT, &[&host, &port]);
}
