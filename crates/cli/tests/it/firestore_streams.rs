//! The official clients that use Firestore's bidirectional streams (gRPC `Listen` and `Write`)
//! against the real binary: the full Firebase web SDK (`firebase/firestore`) in Node under real
//! rules and an IdP's signed token (`js/firestore_full_node.mjs`: setDoc / getDoc through the
//! streams, listeners on a document and a query seeing `/v1/docs` writes, listeners ended by
//! `permission-denied` when the admin API removes the custom claim the rules need), and
//! `@firebase/rules-unit-testing` v5 running a rules test suite unchanged against
//! `claimdb emulator` with `node --test` (`js/rules_unit_testing.test.mjs`).
//!
//! The npm packages are installed once under the target directory. Without Node/npm or the
//! registry the tests print a SKIPPED banner and pass, except with `CI=true`, where they fail.

use std::process::Command;

use serde_json::json;

use crate::external::{npm_install, skipped};
use crate::firestore_sdk::{FIREBASE, host_port, run_node, write_beside_modules};
use crate::idp::{Deployment, claims};
use crate::util::Server;

const RULES_UNIT_TESTING: &str = "@firebase/rules-unit-testing@5.0.2";

const ADMIN_KEY: &str = "an-admin-key-for-the-stream-tests";

/// Rooms are read with the custom claim `member`; written by their owner.
const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /rooms/{id} {
      allow read: if request.auth != null && request.auth.token.member == true;
      allow create, update: if request.auth != null
        && request.resource.data.owner == request.auth.uid;
      allow delete: if request.auth != null && resource.data.owner == request.auth.uid;
    }
    match /secret/{id} {
      allow read, write: if false;
    }
  }
}
";

#[test]
fn the_full_firebase_sdk_listens_and_writes_over_grpc_under_the_rules() {
    let sdk = match npm_install(&[FIREBASE]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the full Firebase SDK test", &why),
    };
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(
        RULES,
        &format!("project_id = \"demo-full\"\nadmin_key = \"{ADMIN_KEY}\"\n"),
    );
    let alice = key.sign(&claims("alice", json!({})));
    let (host, port) = host_port(&server);
    let params = json!({
        "host": host,
        "port": port,
        "project": "demo-full",
        "alice": alice,
        "adminKey": ADMIN_KEY,
    });
    run_node(
        &sdk,
        "full-node",
        include_str!("js/firestore_full_node.mjs"),
        &[&params.to_string()],
    );
}

#[test]
fn rules_unit_testing_runs_a_rules_suite_unchanged_against_the_emulator() {
    let dir = match npm_install(&[FIREBASE, RULES_UNIT_TESTING]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the rules-unit-testing test", &why),
    };
    let server = Server::emulator(&[]);
    let (host, port) = host_port(&server);
    let suite = write_beside_modules(
        &dir,
        "rules-unit-testing",
        include_str!("js/rules_unit_testing.test.mjs"),
    );
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(rules.path(), include_str!("js/rules_unit_testing.rules")).unwrap();
    let output = Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .arg(format!("{dir}/{suite}"))
        .env("FIRESTORE_HOST", &host)
        .env("FIRESTORE_PORT", &port)
        .env("RULES_FILE", rules.path())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{suite}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {what} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    assert!(
        output.status.success() && count("fail") == Some(0) && count("pass") == Some(10),
        "the rules test suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
