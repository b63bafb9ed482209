//! `firebase-admin` (npm, pinned) over **gRPC** — its default transport, no `preferRest` —
//! against the real binary: CRUD with transforms and every kind of value, queries (filters,
//! order, limit, cursors, an or query, a collection group), count/sum/avg, `getAll`,
//! `runTransaction` (the lazy `newTransaction` of a first read; a conflicting write makes the
//! commit abort and the SDK run it again), batches, a `BulkWriter`, `listDocuments` and
//! `listCollections`.
//!
//! Twice: against `claimdb emulator` as the owner (the SDK's own `Bearer owner`), and against a
//! production-mode server with a user's signed IdP token in `customHeaders` under real rules —
//! a denied read is PERMISSION_DENIED, a forged token UNAUTHENTICATED, the metadata RPCs are
//! for administrators. The SDK is installed once under the target directory; without npm it
//! prints a SKIPPED banner (and fails with `CI=true`).

use serde_json::json;

use crate::external::{npm_install, skipped};
use crate::firestore_sdk::{host_port, run_node};
use crate::idp::{Deployment, Key, claims};
use crate::util::Server;

const FIREBASE_ADMIN: &str = "firebase-admin@13.10.0";

/// The scenario; arguments: host, port, project, the token (`''`: the SDK's own `owner`),
/// `owner` or `user`, and a forged token.
const SCRIPT: &str = r#"
import assert from 'node:assert/strict';
import { initializeApp } from 'firebase-admin/app';
import {
  getFirestore, FieldValue, FieldPath, Filter, Timestamp, GeoPoint, AggregateField,
} from 'firebase-admin/firestore';

const [host, port, project, token, who, forged] = process.argv.slice(2);
process.env.FIRESTORE_EMULATOR_HOST = `${host}:${port}`;
const connect = (name, accessToken) => {
  const db = getFirestore(initializeApp({ projectId: project }, name));
  // With an emulator host the SDK speaks plain-text gRPC and sends `customHeaders` as
  // metadata (`Bearer owner` unless given).
  if (accessToken) db.settings({ customHeaders: { Authorization: `Bearer ${accessToken}` } });
  return db;
};
const db = connect('main', token);
const other = connect('other', token);
const code = async (promise) => {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
};
const col = who === 'owner' ? 'cities' : 'mine';

// Every kind of value, through the message ⇄ proto3 JSON bridge and back.
const ref = db.collection(col).doc('sf');
const when = Timestamp.fromMillis(1700000000123);
await ref.set({
  owner: 'alice', name: 'SF', pop: 800000, when, big: 2n ** 62n, nothing: null, nan: NaN,
  inf: -Infinity, half: 0.5, bytes: Buffer.from([0, 1, 254, 255]), geo: new GeoPoint(37.7, -122.4),
  link: db.doc(`${col}/la`), list: [1, 'two', null, { three: 3 }], nested: { a: { b: null } },
});
let snap = await ref.get();
assert.equal(snap.get('name'), 'SF');
assert.ok(snap.get('when').isEqual(when));
assert.equal(snap.get('big'), 2 ** 62);
assert.equal(snap.get('nothing'), null);
assert.ok(Number.isNaN(snap.get('nan')));
assert.equal(snap.get('inf'), -Infinity);
assert.deepEqual([...snap.get('bytes')], [0, 1, 254, 255]);
assert.ok(snap.get('geo').isEqual(new GeoPoint(37.7, -122.4)));
assert.equal(snap.get('link').path, `${col}/la`);
assert.deepEqual(snap.get('list'), [1, 'two', null, { three: 3 }]);
assert.deepEqual(snap.get('nested'), { a: { b: null } });
assert.equal(snap.updateTime.nanoseconds % 1000, 0);

await ref.update({
  pop: FieldValue.increment(5), tags: FieldValue.arrayUnion('a'), at: FieldValue.serverTimestamp(),
  'nested.a.c': 1, half: FieldValue.delete(),
});
snap = await ref.get();
assert.equal(snap.get('pop'), 800005);
assert.deepEqual(snap.get('tags'), ['a']);
assert.ok(snap.get('at') instanceof Timestamp);
assert.deepEqual(snap.get('nested'), { a: { b: null, c: 1 } });
assert.equal(snap.get('half'), undefined);
// A precondition: update of a missing document — NOT_FOUND, after the rules, which decide it
// as an update of nothing first (as on REST: these rules refuse it).
const missingUpdate = await code(db.collection(col).doc('nope').update({ owner: 'alice', x: 1 }));
assert.equal(missingUpdate, who === 'owner' ? 5 : 7);
// create() of an existing one.
assert.equal(await code(ref.create({ owner: 'alice' })), 6);

const added = await db.collection(col).add({ owner: 'alice', name: 'LA', pop: 4000000 });
assert.equal(added.id.length, 20);
await db.collection(col).doc('ny').set({ owner: 'alice', name: 'NY', pop: 8000000 });
const mine = db.collection(col).where('owner', '==', 'alice');
const big = await mine.where('pop', '>', 1000000).orderBy('pop').get();
assert.deepEqual(big.docs.map((d) => d.get('name')), ['LA', 'NY']);
const top = await mine.orderBy('pop', 'desc').limit(1).get();
assert.deepEqual(top.docs.map((d) => d.id), ['ny']);
// Cursors, by value and by snapshot.
const after = await mine.orderBy('pop').startAfter(800005).endAt(8000000).get();
assert.deepEqual(after.docs.map((d) => d.get('name')), ['LA', 'NY']);
const fromSnap = await mine.orderBy('pop').startAt(snap).limit(2).get();
assert.deepEqual(fromSnap.docs.map((d) => d.get('name')), ['SF', 'LA']);
const before = await mine.orderBy('pop', 'desc').endBefore(800005).get();
assert.deepEqual(before.docs.map((d) => d.get('name')), ['NY', 'LA']);
const names = await mine.orderBy(FieldPath.documentId()).select('name').get();
assert.deepEqual(names.docs.map((d) => d.id), [added.id, 'ny', 'sf'].sort());
assert.deepEqual(names.docs.map((d) => d.data()).filter((d) => d.name === 'SF'), [{ name: 'SF' }]);
assert.ok(names.docs.every((d) => Object.keys(d.data()).join() === 'name'));
// An or query (beside a plain filter, which proves the owner for the rules in each branch).
const either = await mine.where(Filter.or(Filter.where('name', '==', 'SF'), Filter.where('pop', '>', 5000000))).get();
assert.deepEqual(either.docs.map((d) => d.id).sort(), ['ny', 'sf']);
// Aggregations.
assert.equal((await mine.count().get()).data().count, 3);
const totals = await mine.aggregate({
  n: AggregateField.count(), total: AggregateField.sum('pop'), mean: AggregateField.average('pop'),
}).get();
assert.deepEqual(totals.data(), { n: 3, total: 12800005, mean: 12800005 / 3 });
const none = await mine.where('pop', '<', 0).aggregate({ mean: AggregateField.average('pop') }).get();
assert.equal(none.data().mean, null);
// A collection group.
await ref.collection('tags').doc('t1').set({ owner: 'alice', tag: 'fog' });
await db.collection(col).doc('ny').collection('tags').doc('t2').set({ owner: 'alice', tag: 'rain' });
const group = await db.collectionGroup('tags').where('owner', '==', 'alice').orderBy('tag').get();
assert.deepEqual(group.docs.map((d) => d.ref.path), [`${col}/sf/tags/t1`, `${col}/ny/tags/t2`]);

const [a, b] = await db.getAll(ref, db.collection(col).doc('none'));
assert.ok(a.exists && !b.exists);
const [masked] = await db.getAll(ref, { fieldMask: ['name'] });
assert.deepEqual(masked.data(), { name: 'SF' });

// A transaction: the first read begins it; a write by someone else between its read and its
// commit aborts the commit, and the SDK runs the function again.
let attempts = 0;
await db.runTransaction(async (t) => {
  attempts++;
  const s = await t.get(ref);
  if (attempts === 1) await other.doc(ref.path).update({ pop: FieldValue.increment(1000) });
  t.update(ref, { pop: s.get('pop') + 1 });
});
assert.equal(attempts, 2);
assert.equal((await ref.get()).get('pop'), 801006);
// A transaction that reads a query and one that gives up.
const counted = await db.runTransaction(async (t) => (await t.get(mine.where('pop', '>', 1000000))).size);
assert.equal(counted, 2);
assert.equal(await code(db.runTransaction(async (t) => { await t.get(ref); throw Object.assign(new Error('no'), { code: 'mine' }); })), 'mine');

const batch = db.batch();
batch.set(db.collection(col).doc('x'), { owner: 'alice', n: 1 });
batch.delete(added);
await batch.commit();
assert.equal((await added.get()).exists, false);

const writer = db.bulkWriter();
for (let i = 0; i < 5; i++) writer.set(db.collection(col).doc(`b${i}`), { owner: 'alice', i });
await writer.close();
assert.equal((await mine.where('i', '>=', 0).get()).size, 5);

await ref.delete();
assert.equal((await ref.get()).exists, false);

if (who === 'owner') {
  // Collection ids, and a list with the missing documents (sf now has only a subcollection).
  const roots = (await db.listCollections()).map((c) => c.id);
  assert.ok(roots.includes(col), JSON.stringify(roots));
  assert.deepEqual((await ref.listCollections()).map((c) => c.id), ['tags']);
  const listed = (await db.collection(col).listDocuments()).map((d) => d.id).sort();
  assert.deepEqual(listed, ['b0', 'b1', 'b2', 'b3', 'b4', 'ny', 'sf', 'x']);
}

if (who === 'user') {
  // The rules decide: another user's document, a query they do not allow, a forged token.
  await db.collection(col).doc('theirs').set({ owner: 'alice' });
  assert.equal(await code(db.collection(col).doc('theirs').set({ owner: 'bob' })), 7);
  assert.equal(await code(db.collection(col).get()), 7);
  assert.equal(await code(db.collection(col).count().get()), 7);
  assert.equal(await code(db.collection('elsewhere').doc('d').get()), 7);
  // Collection ids and missing documents are for administrators.
  assert.equal(await code(db.listCollections()), 7);
  assert.equal(await code(db.collection(col).listDocuments()), 7);
  const bad = connect('forged', forged);
  assert.equal(await code(bad.collection(col).doc('x').get()), 16);
  assert.equal(await code(bad.collection(col).doc('x').set({ owner: 'alice' })), 16);
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
    match /{path=**}/tags/{id} {
      allow read: if request.auth != null && resource.data.owner == request.auth.uid;
      allow write: if request.auth != null && request.resource.data.owner == request.auth.uid;
    }
  }
}
";

/// The SDK spoke gRPC, not REST: the server counted its calls under the gRPC method paths
/// (with the status of their codes) and no request under the REST routes.
fn assert_spoke_grpc(server: &Server) {
    let (status, metrics) = server.get("/metrics").unwrap();
    assert_eq!(status, 200);
    for rpc in [
        "BatchGetDocuments",
        "Commit",
        "RunQuery",
        "RunAggregationQuery",
        "Rollback",
        "BatchWrite",
    ] {
        let series = format!(
            "claimdb_http_requests_total{{route=\"/google.firestore.v1.Firestore/{rpc}\",method=\"POST\",status=\"200\"}}"
        );
        assert!(metrics.contains(&series), "no {series} in\n{metrics}");
    }
    assert!(
        !metrics.contains("route=\"/v1/projects/"),
        "a REST route was used:\n{metrics}"
    );
}

fn sdk() -> Option<String> {
    match npm_install(&[FIREBASE_ADMIN]) {
        Ok(dir) => Some(dir),
        Err(why) => {
            skipped("the firebase-admin gRPC test", &why);
            None
        }
    }
}

#[test]
fn firebase_admin_over_grpc_runs_against_the_emulator_as_owner() {
    let Some(sdk) = sdk() else { return };
    let server = Server::emulator(&[]);
    let (host, port) = host_port(&server);
    run_node(
        &sdk,
        "admin-grpc-owner",
        SCRIPT,
        &[&host, &port, "demo-grpc", "", "owner", ""],
    );
    assert_spoke_grpc(&server);
}

#[test]
fn firebase_admin_over_grpc_runs_with_a_users_idp_token_under_the_rules() {
    let Some(sdk) = sdk() else { return };
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(RULES, "project_id = \"demo-grpc\"");
    let alice = key.sign(&claims("alice", json!({})));
    let forged = Key::new("k1").sign(&claims("alice", json!({})));
    let (host, port) = host_port(&server);
    run_node(
        &sdk,
        "admin-grpc-user",
        SCRIPT,
        &[&host, &port, "demo-grpc", &alice, "user", &forged],
    );
    assert_spoke_grpc(&server);
    // The denials were counted with the HTTP status of their codes.
    let (_, metrics) = server.get("/metrics").unwrap();
    assert!(
        metrics.contains(
            "route=\"/google.firestore.v1.Firestore/BatchGetDocuments\",method=\"POST\",status=\"403\""
        ),
        "{metrics}"
    );
}
