// The full Firebase web SDK (`firebase/firestore`, which speaks gRPC in Node: the Listen and
// Write streams) against the real binary, with an IdP's signed token passed as `mockUserToken`
// and real rules that need the custom claim `member`: setDoc and updateDoc through the Write
// stream, getDoc and onSnapshot through the Listen stream, listeners on a document and on a query
// seeing writes made through claimdb's own `/v1/docs`, denied listens and writes, and both
// listeners ended by `permission-denied` once the admin API removes the claim.
//
// `node firestore_full_node.mjs '<params JSON>'` — params: { host, port, project, alice,
// adminKey }. Prints `ALL CHECKS PASSED` at the end; a failed check throws.

import assert from 'node:assert/strict';
import { initializeApp } from 'firebase/app';
import {
  getFirestore, connectFirestoreEmulator, doc, collection, query, where, orderBy, onSnapshot,
  setDoc, updateDoc, deleteDoc, getDoc, getDocFromServer, getDocsFromServer, increment,
  serverTimestamp, terminate,
} from 'firebase/firestore';

const p = JSON.parse(process.argv[2]);
const base = `http://${p.host}:${p.port}`;
const WAIT_MS = 15000;

const db = getFirestore(initializeApp({ projectId: p.project, apiKey: 'test-api-key' }, 'full'));
connectFirestoreEmulator(db, p.host, Number(p.port), { mockUserToken: p.alice });

const checks = [];
const check = (name) => { checks.push(name); console.log(`ok - ${name}`); };

async function api(method, path, body, headers) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
const asAlice = { authorization: `Bearer ${p.alice}` };
const asAdmin = { 'x-claimdb-admin-key': p.adminKey };

const code = async (promise) => {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
};

// A listener's snapshots and its end, awaited one condition at a time.
function listen(ref) {
  const snapshots = [];
  let error = null;
  let wake = () => {};
  const unsubscribe = onSnapshot(ref, { includeMetadataChanges: true },
    (s) => { snapshots.push(s); wake(); },
    (e) => { error = e; wake(); });
  return {
    unsubscribe,
    // The first snapshot (since the last one matched) for which `pred` holds.
    async until(pred, what) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        while (snapshots.length) {
          const s = snapshots.shift();
          if (pred(s)) return s;
        }
        if (error) throw new Error(`${what}: the listener failed: ${error.code} ${error.message}`);
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${what}: no such snapshot within ${WAIT_MS} ms`);
        await new Promise((resolve) => { wake = resolve; setTimeout(resolve, left); });
      }
    },
    async failure(what) {
      const deadline = Date.now() + WAIT_MS;
      while (!error) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${what}: the listener did not fail within ${WAIT_MS} ms`);
        await new Promise((resolve) => { wake = resolve; setTimeout(resolve, left); });
      }
      return error;
    },
  };
}
const fromServer = (s) => !s.metadata.fromCache && !s.metadata.hasPendingWrites;

// Alice may read rooms only with the custom claim `member`.
await api('PUT', '/v1/admin/users/alice/claims', { member: true }, asAdmin);

// Write stream: setDoc; Listen stream: getDoc from the server.
await setDoc(doc(db, 'rooms', 'r1'), { owner: 'alice', n: 1, at: serverTimestamp() });
let got = await getDocFromServer(doc(db, 'rooms', 'r1'));
assert.equal(got.data().n, 1);
assert.ok(got.data().at.toMillis() > Date.now() - 60000, 'a server timestamp');
check('setDoc then getDocFromServer');
await updateDoc(doc(db, 'rooms', 'r1'), { n: increment(2) });
assert.equal((await getDoc(doc(db, 'rooms', 'r1'))).data().n, 3);
check('updateDoc with an increment');

// A document listener sees writes made through /v1/docs.
const one = listen(doc(db, 'rooms', 'r1'));
let s = await one.until((s) => fromServer(s) && s.exists(), 'the first snapshot');
assert.equal(s.data().n, 3);
await api('PUT', '/v1/docs/rooms/r1', { owner: 'alice', n: 10 }, asAlice);
s = await one.until((s) => fromServer(s) && s.data()?.n === 10, 'the /v1 write');
check('a document listener sees a /v1/docs write');

// A query listener: additions, changes, removals in order.
const q = query(collection(db, 'rooms'), where('owner', '==', 'alice'), orderBy('n'));
const many = listen(q);
s = await many.until(fromServer, 'the first query snapshot');
assert.deepEqual(s.docs.map((d) => d.id), ['r1']);
await api('PUT', '/v1/docs/rooms/r2', { owner: 'alice', n: 5 }, asAlice);
s = await many.until((s) => fromServer(s) && s.size === 2, 'r2 added');
assert.deepEqual(s.docs.map((d) => d.id), ['r2', 'r1']);
assert.deepEqual(s.docChanges().map((c) => `${c.type}:${c.doc.id}`), ['added:r2']);
await api('PUT', '/v1/docs/rooms/r2', { owner: 'alice', n: 20 }, asAlice);
s = await many.until((s) => fromServer(s) && s.docs[1]?.id === 'r2', 'r2 moved');
assert.deepEqual(s.docs.map((d) => [d.id, d.data().n]), [['r1', 10], ['r2', 20]]);
await api('DELETE', '/v1/docs/rooms/r1', undefined, asAlice);
s = await many.until((s) => fromServer(s) && s.size === 1, 'r1 removed');
assert.deepEqual(s.docChanges().map((c) => `${c.type}:${c.doc.id}`), ['removed:r1']);
s = await one.until((s) => fromServer(s) && !s.exists(), 'r1 deleted');
check('a query listener sees /v1/docs additions, moves and deletions');

// The SDK's own writes reach its listeners, acknowledged by the server.
await setDoc(doc(db, 'rooms', 'r3'), { owner: 'alice', n: 1 });
s = await many.until((s) => fromServer(s) && s.size === 2, 'r3 from the SDK');
assert.deepEqual(s.docs.map((d) => d.id), ['r3', 'r2']);
await deleteDoc(doc(db, 'rooms', 'r3'));
s = await many.until((s) => fromServer(s) && s.size === 1, 'r3 deleted by the SDK');
check('the SDK\'s writes reach its listeners');
const checked = await getDocsFromServer(q);
assert.deepEqual(checked.docs.map((d) => d.id), ['r2']);
check('getDocsFromServer');

// Denied: a write the rules refuse, a listen they refuse.
assert.equal(await code(setDoc(doc(db, 'rooms', 'theirs'), { owner: 'bob', n: 1 })), 'permission-denied');
const secret = listen(doc(db, 'secret', 's1'));
assert.equal((await secret.failure('a secret listen')).code, 'permission-denied');
check('denied writes and listens fail with permission-denied');

// The admin removes the claim: both listeners end with permission-denied.
await api('DELETE', '/v1/admin/users/alice/claims', undefined, asAdmin);
assert.equal((await one.failure('the document listener')).code, 'permission-denied');
assert.equal((await many.failure('the query listener')).code, 'permission-denied');
check('listeners end with permission-denied when the claim is removed');

await terminate(db);
console.log(`${checks.length} checks`);
console.log('ALL CHECKS PASSED');
process.exit(0);
