// The Firebase lite SDK scenario that `firestore_sdk.rs` runs in Node and `firestore_browser.rs`
// bundles (esbuild) and runs in Chromium, against the real binary under real rules: setDoc with
// every value type, getDoc (present and missing), updateDoc with transforms and a field delete,
// addDoc, merges, write batches (one denied as a whole), queries (or queries too),
// aggregations, transactions,
// deleteDoc, denied reads and writes (`permission-denied`) and a forged token
// (`unauthenticated`). It asserts with its own small helpers (no `node:assert`), so the same
// file runs in both places; a failed check throws.
//
// `scenario(params)` — params: { host, port, project, alice, bob, forged } (tokens are IdP JWTs,
// passed as `mockUserToken`, which the SDK sends verbatim as the bearer token). It expects
// `notes/from-v1` ({owner: 'alice', n: 7}) to have been written through claimdb's own API.
// `probe(params)` makes one read and returns its outcome: a page whose origin claimdb does not
// allow must fail it.

import { initializeApp } from 'firebase/app';
import {
  getFirestore, connectFirestoreEmulator, doc, collection, getDoc, setDoc, updateDoc, deleteDoc,
  addDoc, writeBatch, increment, serverTimestamp, arrayUnion, arrayRemove, deleteField,
  Timestamp, Bytes, GeoPoint, query, where, orderBy, limit, startAfter, getDocs, getCount,
  getAggregate, sum, average, collectionGroup, runTransaction, or, and,
} from 'firebase/firestore/lite';

const show = (v) => JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? String(x) : x));

function fail(message, got, want) {
  throw new Error(`${message}: got ${show(got)}, want ${show(want)}`);
}

const assert = {
  ok(value, message = 'expected a true value') {
    if (!value) fail(message, value, true);
  },
  equal(got, want, message = 'not equal') {
    if (!Object.is(got, want)) fail(message, got, want);
  },
  // Plain data only (arrays, objects, primitives); key order does not matter.
  deepEqual(got, want, message = 'not deeply equal') {
    const same = (a, b) => {
      if (Object.is(a, b)) return true;
      if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
      if (Array.isArray(a) !== Array.isArray(b)) return false;
      const ka = Object.keys(a);
      const kb = Object.keys(b);
      return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
    };
    if (!same(got, want)) fail(message, got, want);
  },
};

function connector({ host, port, project }) {
  return (name, token) => {
    const db = getFirestore(initializeApp({ projectId: project, apiKey: 'test-api-key' }, name));
    connectFirestoreEmulator(db, host, Number(port), { mockUserToken: token });
    return db;
  };
}

const code = async (promise) => {
  try { await promise; return 'ok'; } catch (e) { return e.code; }
};

export async function probe(params) {
  const db = connector(params)('probe', params.alice);
  try {
    await getDoc(doc(db, 'notes', 'from-v1'));
    return { ok: true };
  } catch (e) {
    return { ok: false, code: e.code, message: String(e.message) };
  }
}

export async function scenario(params) {
  const connect = connector(params);
  const db = connect('alice', params.alice);
  const checks = [];
  const step = (name) => checks.push(name);

  // setDoc with every type, read back exactly.
  const when = Timestamp.fromMillis(1765100000123);
  const ref = doc(db, 'notes', 's1');
  await setDoc(ref, {
    owner: 'alice', n: 1, half: 0.5, when, bytes: Bytes.fromUint8Array(new Uint8Array([0, 1, 255])),
    geo: new GeoPoint(52.5, 13.4), list: [1, 'a'], nested: { x: true }, nothing: null,
    other: doc(db, 'notes', 'other'),
  });
  let snap = await getDoc(ref);
  assert.ok(snap.exists());
  let data = snap.data();
  assert.equal(data.n, 1);
  assert.equal(data.half, 0.5);
  assert.ok(data.when.isEqual(when));
  assert.deepEqual([...data.bytes.toUint8Array()], [0, 1, 255]);
  assert.ok(data.geo.isEqual(new GeoPoint(52.5, 13.4)));
  assert.deepEqual(data.list, [1, 'a']);
  assert.deepEqual(data.nested, { x: true });
  assert.equal(data.nothing, null);
  assert.equal(data.other.path, 'notes/other');
  step('setDoc/getDoc');

  // updateDoc with transforms and a field delete.
  await updateDoc(ref, {
    n: increment(2), at: serverTimestamp(), list: arrayUnion('b', 1), 'nested.y': 5,
    nothing: deleteField(),
  });
  data = (await getDoc(ref)).data();
  assert.equal(data.n, 3);
  assert.ok(data.at instanceof Timestamp);
  assert.ok(Math.abs(data.at.toMillis() - Date.now()) < 60000);
  assert.deepEqual(data.list, [1, 'a', 'b']);
  assert.deepEqual(data.nested, { x: true, y: 5 });
  assert.ok(!('nothing' in data));
  await updateDoc(ref, { list: arrayRemove('a') });
  assert.deepEqual((await getDoc(ref)).data().list, [1, 'b']);
  step('updateDoc with transforms');

  // A missing document.
  assert.equal((await getDoc(doc(db, 'notes', 'missing'))).exists(), false);
  step('getDoc of a missing document');

  // addDoc makes an id.
  const added = await addDoc(collection(db, 'notes'), { owner: 'alice', added: true });
  assert.equal(added.id.length, 20);
  assert.equal((await getDoc(added)).data().added, true);
  step('addDoc');

  // setDoc with merge keeps the other fields.
  await setDoc(ref, { merged: 'yes' }, { merge: true });
  data = (await getDoc(ref)).data();
  assert.equal(data.merged, 'yes');
  assert.equal(data.n, 3);
  step('setDoc with merge');

  // A batch is atomic: all applied, or (with a denied write) none.
  const batch = writeBatch(db);
  batch.set(doc(db, 'notes', 'b1'), { owner: 'alice', i: 1 });
  batch.set(doc(db, 'notes', 'b2'), { owner: 'alice', i: 2 });
  batch.delete(added);
  await batch.commit();
  assert.equal((await getDoc(doc(db, 'notes', 'b2'))).data().i, 2);
  assert.equal((await getDoc(added)).exists(), false);
  const denied = writeBatch(db);
  denied.set(doc(db, 'notes', 'b3'), { owner: 'alice' });
  denied.set(doc(db, 'notes', 'b4'), { owner: 'mallory' });
  assert.equal(await code(denied.commit()), 'permission-denied');
  assert.equal((await getDoc(doc(db, 'notes', 'b3'))).exists(), false);
  step('writeBatch');

  // A document written through claimdb's own API.
  assert.equal((await getDoc(doc(db, 'notes', 'from-v1'))).data().n, 7);
  step('a document written through /v1/docs');

  // Another user is denied by the rules; a forged token is unauthenticated.
  const other = connect('bob', params.bob);
  assert.equal(await code(getDoc(doc(other, 'notes', 's1'))), 'permission-denied');
  assert.equal(await code(setDoc(doc(other, 'notes', 'x'), { owner: 'alice' })), 'permission-denied');
  assert.equal(await code(updateDoc(doc(other, 'notes', 's1'), { n: 0 })), 'permission-denied');
  const bad = connect('forged', params.forged);
  assert.equal(await code(getDoc(doc(bad, 'notes', 's1'))), 'unauthenticated');
  step('denied read and writes, forged token');

  // Queries: filters, order, limit, cursors, collection groups, aggregations.
  for (const [i, tag] of [[1, 'a'], [2, 'b'], [3, 'a'], [4, 'b'], [5, 'a']]) {
    await setDoc(doc(db, 'posts', `p${i}`), { n: i, tag });
  }
  await setDoc(doc(db, 'users', 'u1', 'posts', 'deep'), { n: 10, tag: 'a' });
  const names = (s) => s.docs.map((d) => d.id);
  const posts = collection(db, 'posts');
  assert.deepEqual(names(await getDocs(query(posts, where('n', '>', 1), orderBy('n', 'desc'), limit(2)))), ['p5', 'p4']);
  assert.deepEqual(names(await getDocs(query(posts, where('tag', '==', 'a')))), ['p1', 'p3', 'p5']);
  const first = (await getDocs(query(posts, orderBy('n'), limit(2)))).docs[1];
  assert.deepEqual(names(await getDocs(query(posts, orderBy('n'), startAfter(first), limit(2)))), ['p3', 'p4']);
  assert.deepEqual(names(await getDocs(query(posts, where('tag', 'in', ['b'])))), ['p2', 'p4']);
  assert.deepEqual(names(await getDocs(query(collectionGroup(db, 'posts'), where('tag', '==', 'a'), orderBy('n')))), ['p1', 'p3', 'p5', 'deep']);
  assert.equal((await getDocs(query(posts, where('n', '>', 100)))).empty, true);
  assert.equal((await getCount(query(posts, where('tag', '==', 'a')))).data().count, 3);
  // Or queries: a document matching both branches (p4) once, in order; nested with and.
  assert.deepEqual(names(await getDocs(query(posts, or(where('tag', '==', 'b'), where('n', '==', 4))))), ['p2', 'p4']);
  assert.deepEqual(names(await getDocs(query(posts, or(where('n', '<', 2), where('n', '>', 4)), orderBy('n', 'desc')))), ['p5', 'p1']);
  assert.deepEqual(names(await getDocs(query(posts, and(where('tag', '==', 'a'), or(where('n', '==', 1), where('n', '==', 5)))))), ['p1', 'p5']);
  assert.equal((await getCount(query(posts, or(where('tag', '==', 'b'), where('n', '==', 5))))).data().count, 3);
  const agg = (await getAggregate(posts, { total: sum('n'), mean: average('n') })).data();
  assert.equal(agg.total, 15);
  assert.equal(agg.mean, 3);
  // Rules are not filters: a query the rules cannot prove is allowed fails as a whole.
  assert.equal(await code(getDocs(collection(db, 'notes'))), 'permission-denied');
  step('queries and aggregations');

  // Transactions (optimistic: reads, then a commit with preconditions and verify writes):
  // concurrent increments all land; a read-only document is verified.
  const counter = doc(db, 'posts', 'counter');
  await setDoc(counter, { n: 0 });
  const bump = () => runTransaction(db, async (t) => {
    const s = await t.get(counter);
    t.update(counter, { n: s.data().n + 1 });
  });
  await Promise.all([bump(), bump(), bump()]);
  assert.equal((await getDoc(counter)).data().n, 3);
  await runTransaction(db, async (t) => {
    const a = await t.get(doc(db, 'posts', 'p1'));
    const b = await t.get(counter);
    t.set(doc(db, 'posts', 'sum'), { n: a.data().n + b.data().n });
  });
  assert.equal((await getDoc(doc(db, 'posts', 'sum'))).data().n, 4);
  step('runTransaction');

  // deleteDoc.
  await deleteDoc(doc(db, 'notes', 'b1'));
  assert.equal((await getDoc(doc(db, 'notes', 'b1'))).exists(), false);
  step('deleteDoc');
  return { checks };
}
