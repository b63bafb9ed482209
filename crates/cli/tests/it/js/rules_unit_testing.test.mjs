// A rules test suite as a Firebase project writes it with `@firebase/rules-unit-testing` v5 and
// `node:test`, run unchanged against `claimdb emulator` (host and port from the environment, as
// a project's CI passes them): authenticatedContext with and without custom claims,
// unauthenticatedContext, withSecurityRulesDisabled to seed data, assertSucceeds / assertFails
// on get, set, update, delete and queries (modular and compat calls), rules that read other
// documents with get() and exists(), a listener decided like a read, and clearFirestore between
// tests. The rules come from the file `RULES_FILE` names (`rules_unit_testing.rules`).

import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertFails, assertSucceeds, initializeTestEnvironment,
} from '@firebase/rules-unit-testing';
import {
  collection, deleteDoc, doc, getDoc, getDocs, query, setDoc, updateDoc, where, onSnapshot,
} from 'firebase/firestore';

const rules = readFileSync(process.env.RULES_FILE, 'utf8');

let env;

before(async () => {
  env = await initializeTestEnvironment({
    projectId: 'demo-rules-unit',
    firestore: { host: process.env.FIRESTORE_HOST, port: Number(process.env.FIRESTORE_PORT), rules },
  });
});

after(async () => {
  await env.cleanup();
});

beforeEach(async () => {
  await env.clearFirestore();
});

const seed = (docs) => env.withSecurityRulesDisabled(async (context) => {
  const db = context.firestore();
  for (const [path, data] of Object.entries(docs)) {
    await setDoc(doc(db, path), data);
  }
});

describe('users', () => {
  test('signed-in users read profiles; strangers do not', async () => {
    await seed({ 'users/alice': { name: 'Alice' } });
    const bob = env.authenticatedContext('bob').firestore();
    const stranger = env.unauthenticatedContext().firestore();
    const snap = await assertSucceeds(getDoc(doc(bob, 'users/alice')));
    assert.equal(snap.data().name, 'Alice');
    await assertFails(getDoc(doc(stranger, 'users/alice')));
  });

  test('a user writes only their own profile, with the allowed fields', async () => {
    const alice = env.authenticatedContext('alice').firestore();
    await assertSucceeds(setDoc(doc(alice, 'users/alice'), { name: 'Alice' }));
    await assertFails(setDoc(doc(alice, 'users/bob'), { name: 'Not Bob' }));
    await assertFails(setDoc(doc(alice, 'users/alice'), { name: 'Alice', admin: true }));
    await assertSucceeds(updateDoc(doc(alice, 'users/alice'), { bio: 'hello' }));
    // The compat API that rules-unit-testing's contexts also offer.
    await assertSucceeds(alice.collection('users').doc('alice').update({ bio: 'compat' }));
    await assertFails(alice.collection('users').doc('carol').set({ name: 'x' }));
  });

  test('a user or a moderator deletes a profile', async () => {
    await seed({ 'users/alice': { name: 'Alice' }, 'users/bob': { name: 'Bob' } });
    const alice = env.authenticatedContext('alice').firestore();
    const moderator = env.authenticatedContext('mod', { moderator: true }).firestore();
    await assertFails(deleteDoc(doc(alice, 'users/bob')));
    await assertSucceeds(deleteDoc(doc(alice, 'users/alice')));
    await assertSucceeds(deleteDoc(doc(moderator, 'users/bob')));
  });
});

describe('posts', () => {
  test('drafts are read by their author only; published posts by anyone', async () => {
    await seed({
      'posts/draft': { author: 'alice', published: false, title: 'wip' },
      'posts/live': { author: 'alice', published: true, title: 'hi' },
    });
    const alice = env.authenticatedContext('alice').firestore();
    const bob = env.authenticatedContext('bob').firestore();
    const stranger = env.unauthenticatedContext().firestore();
    await assertSucceeds(getDoc(doc(alice, 'posts/draft')));
    await assertFails(getDoc(doc(bob, 'posts/draft')));
    await assertSucceeds(getDoc(doc(stranger, 'posts/live')));
  });

  test('queries must be constrained as the rules are: rules are not filters', async () => {
    await seed({
      'posts/draft': { author: 'alice', published: false },
      'posts/live': { author: 'bob', published: true },
    });
    const stranger = env.unauthenticatedContext().firestore();
    await assertFails(getDocs(collection(stranger, 'posts')));
    const published = await assertSucceeds(
      getDocs(query(collection(stranger, 'posts'), where('published', '==', true))));
    assert.deepEqual(published.docs.map((d) => d.id), ['live']);
    const alice = env.authenticatedContext('alice').firestore();
    const mine = await assertSucceeds(
      getDocs(query(collection(alice, 'posts'), where('author', '==', 'alice'))));
    assert.deepEqual(mine.docs.map((d) => d.id), ['draft']);
  });

  test('authors create unpublished posts; moderators (a custom claim) publish and delete', async () => {
    const alice = env.authenticatedContext('alice').firestore();
    const moderator = env.authenticatedContext('mod', { moderator: true }).firestore();
    await assertFails(setDoc(doc(alice, 'posts/p1'), { author: 'alice', published: true }));
    await assertFails(setDoc(doc(alice, 'posts/p1'), { author: 'bob', published: false }));
    await assertSucceeds(setDoc(doc(alice, 'posts/p1'), { author: 'alice', published: false }));
    await assertFails(updateDoc(doc(alice, 'posts/p1'), { published: true }));
    await assertFails(updateDoc(doc(moderator, 'posts/p1'), { author: 'mod' }));
    await assertSucceeds(updateDoc(doc(moderator, 'posts/p1'), { published: true }));
    await assertFails(deleteDoc(doc(alice, 'posts/p1')));
    await assertSucceeds(deleteDoc(doc(moderator, 'posts/p1')));
  });

  test('comments: the rules read other documents with get() and exists()', async () => {
    await seed({ 'posts/live': { author: 'bob', published: true }, 'posts/draft': { author: 'bob', published: false } });
    const alice = env.authenticatedContext('alice').firestore();
    await assertFails(setDoc(doc(alice, 'posts/live/comments/c1'), { text: 'first' }));
    await assertSucceeds(setDoc(doc(alice, 'users/alice'), { name: 'Alice' }));
    await assertSucceeds(setDoc(doc(alice, 'posts/live/comments/c1'), { text: 'first' }));
    await assertSucceeds(getDoc(doc(alice, 'posts/live/comments/c1')));
    await assertFails(getDoc(doc(alice, 'posts/draft/comments/c1')));
  });

  test('a listener is decided like a read', async () => {
    await seed({ 'posts/live': { author: 'bob', published: true }, 'posts/draft': { author: 'bob', published: false } });
    const stranger = env.unauthenticatedContext().firestore();
    const first = (ref) => new Promise((resolve, reject) => {
      const unsubscribe = onSnapshot(ref, (s) => { unsubscribe(); resolve(s); }, reject);
    });
    const snap = await assertSucceeds(first(doc(stranger, 'posts/live')));
    assert.equal(snap.data().published, true);
    await assertFails(first(doc(stranger, 'posts/draft')));
  });
});

describe('clearFirestore', () => {
  test('writes a document', async () => {
    await seed({ 'users/left-behind': { name: 'x' } });
  });

  test('finds nothing left by the previous test', async () => {
    await env.withSecurityRulesDisabled(async (context) => {
      const snap = await getDoc(doc(context.firestore(), 'users/left-behind'));
      assert.equal(snap.exists(), false);
    });
  });
});
