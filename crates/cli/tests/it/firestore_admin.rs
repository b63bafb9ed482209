//! `firebase-admin` (npm, pinned) with `preferRest: true` against the real binary: the Node
//! server SDK's REST transport (google-gax's fallback, which sends enums as numbers) doing
//! CRUD with transforms, queries (an or query too), count, getAll, transactions (a read-only one
//! at a past `readTime` too), batches and a BulkWriter; as the owner also `listCollections` and `listDocuments` (listCollectionIds and a
//! list with `showMissing`), which a user is refused.
//!
//! Twice: against `claimdb emulator` as the owner (what a Firebase project's server code
//! does against an emulator), and against a production-mode server with a user's signed IdP
//! token as the access token of the SDK's auth client — the rules decide, a forged token is
//! unauthenticated. The SDK is installed once under the target directory; without npm it
//! prints a SKIPPED banner (and fails with `CI=true`).

use serde_json::json;

use crate::external::{npm_install, skipped};
use crate::firestore_sdk::{host_port, run_node};
use crate::idp::{Deployment, Key, claims};
use crate::util::Server;

const FIREBASE_ADMIN: &str = "firebase-admin@13.10.0";

/// The scenario; arguments: host, port, project, the access token, and `owner` or `user`.
const SCRIPT: &str = r#"
import assert from 'node:assert/strict';
import { initializeApp } from 'firebase-admin/app';
import { getFirestore, FieldValue, Filter, Timestamp } from 'firebase-admin/firestore';
import { OAuth2Client } from 'google-auth-library';

const [host, port, project, token, who, forged] = process.argv.slice(2);
process.env.FIRESTORE_EMULATOR_HOST = `${host}:${port}`;
const connect = (name, accessToken) => {
  const db = getFirestore(initializeApp({ projectId: project }, name));
  // The REST transport takes its Authorization header from the auth client; with an emulator
  // host the SDK also adds `customHeaders` (`Bearer owner` unless given), which win.
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: accessToken, expiry_date: Date.now() + 3600e3 });
  db.settings({
    preferRest: true, authClient, customHeaders: { Authorization: `Bearer ${accessToken}` },
  });
  return db;
};
const db = connect('main', token);
const code = async (promise) => {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
};
const col = who === 'owner' ? 'cities' : 'mine';

const ref = db.collection(col).doc('sf');
const when = Timestamp.fromMillis(1700000000123);
await ref.set({ owner: 'alice', name: 'SF', pop: 800000, when });
let snap = await ref.get();
assert.equal(snap.get('name'), 'SF');
assert.ok(snap.get('when').isEqual(when));
await ref.update({ pop: FieldValue.increment(5), tags: FieldValue.arrayUnion('a'), at: FieldValue.serverTimestamp() });
snap = await ref.get();
assert.equal(snap.get('pop'), 800005);
assert.deepEqual(snap.get('tags'), ['a']);
assert.ok(snap.get('at') instanceof Timestamp);

const added = await db.collection(col).add({ owner: 'alice', name: 'LA', pop: 4000000 });
assert.equal(added.id.length, 20);
const big = await db.collection(col).where('owner', '==', 'alice').where('pop', '>', 1000000).get();
assert.deepEqual(big.docs.map((d) => d.id), [added.id]);
const ordered = await db.collection(col).where('owner', '==', 'alice').orderBy('pop', 'desc').limit(1).get();
assert.deepEqual(ordered.docs.map((d) => d.id), [added.id]);
assert.equal((await db.collection(col).where('owner', '==', 'alice').count().get()).data().count, 2);

const [a, b] = await db.getAll(ref, db.collection(col).doc('none'));
assert.ok(a.exists && !b.exists);

await db.runTransaction(async (t) => {
  const s = await t.get(ref);
  t.update(ref, { pop: s.get('pop') + 1 });
});
assert.equal((await ref.get()).get('pop'), 800006);

const batch = db.batch();
batch.set(db.collection(col).doc('x'), { owner: 'alice', n: 1 });
batch.delete(added);
await batch.commit();
assert.equal((await added.get()).exists, false);

const writer = db.bulkWriter();
for (let i = 0; i < 5; i++) writer.set(db.collection(col).doc(`b${i}`), { owner: 'alice', i });
await writer.close();
assert.equal((await db.collection(col).where('owner', '==', 'alice').where('i', '>=', 0).get()).size, 5);

// An or query (beside a plain filter, which proves the owner for the rules in each branch).
const either = await db.collection(col).where('owner', '==', 'alice')
  .where(Filter.or(Filter.where('name', '==', 'SF'), Filter.where('i', '==', 1))).get();
assert.deepEqual(either.docs.map((d) => d.id), ['b1', 'sf']);

// A read-only transaction at a past readTime: every read in it (a get, a query, a count)
// sees the documents as they were then.
const past = db.collection(col).doc('past');
const then = (await past.set({ owner: 'alice', v: 1 })).writeTime;
await new Promise((resolve) => setTimeout(resolve, 5));
await past.set({ owner: 'alice', v: 2 });
const versions = db.collection(col).where('owner', '==', 'alice').where('v', '>=', 0);
const seen = await db.runTransaction(async (t) => {
  const doc = await t.get(past);
  const query = await t.get(versions);
  const count = await t.get(versions.count());
  return [doc.get('v'), query.docs.map((d) => d.get('v')), count.data().count];
}, { readOnly: true, readTime: then });
assert.deepEqual(seen, [1, [1], 1]);
assert.equal((await past.get()).get('v'), 2);
await past.delete();

await ref.delete();
assert.equal((await ref.get()).exists, false);

if (who === 'owner') {
  // Collection ids, and a list with the missing documents (sf now has only a subcollection).
  await ref.collection('streets').doc('s1').set({ n: 1 });
  const roots = (await db.listCollections()).map((c) => c.id);
  assert.ok(roots.includes(col), JSON.stringify(roots));
  assert.deepEqual((await ref.listCollections()).map((c) => c.id), ['streets']);
  const listed = (await db.collection(col).listDocuments()).map((d) => d.id);
  assert.ok(listed.includes('sf') && listed.includes('x'), JSON.stringify(listed));
}

if (who === 'user') {
  // The rules decide: another user's document, and a forged token.
  assert.equal(await code(db.collection(col).doc('theirs').set({ owner: 'bob' })), 7);
  assert.equal(await code(db.collection(col).get()), 7);
  // Collection ids and missing documents are for administrators.
  assert.equal(await code(db.listCollections()), 7);
  assert.equal(await code(db.collection(col).listDocuments()), 7);
  const bad = connect('forged', forged);
  assert.equal(await code(bad.collection(col).doc('x').get()), 16);
}
console.log('ALL CHECKS PASSED');
process.exit(0);
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

fn sdk() -> Option<String> {
    match npm_install(&[FIREBASE_ADMIN]) {
        Ok(dir) => Some(dir),
        Err(why) => {
            skipped("the firebase-admin preferRest test", &why);
            None
        }
    }
}

#[test]
fn firebase_admin_over_rest_runs_against_the_emulator_as_owner() {
    let Some(sdk) = sdk() else { return };
    let server = Server::emulator(&[]);
    let (host, port) = host_port(&server);
    run_node(
        &sdk,
        "admin-owner",
        SCRIPT,
        &[&host, &port, "demo-admin", "owner", "owner", ""],
    );
}

#[test]
fn firebase_admin_over_rest_runs_with_a_users_idp_token_under_the_rules() {
    let Some(sdk) = sdk() else { return };
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(RULES, "project_id = \"demo-admin\"");
    let alice = key.sign(&claims("alice", json!({})));
    let forged = Key::new("k1").sign(&claims("alice", json!({})));
    let (host, port) = host_port(&server);
    run_node(
        &sdk,
        "admin-user",
        SCRIPT,
        &[&host, &port, "demo-admin", &alice, "user", &forged],
    );
}
