// Talking to claimdb. Two credentials, never mixed up:
//
// - the operator's, for the admin API: the admin key (kept in sessionStorage, sent as
//   X-Claimdb-Admin-Key) or the session cookie of a login whose user has an admin role;
// - the caller that data requests (/v1/docs, /v1/query, /v1/listen) run as. The console does not
//   bypass the rules: it reads and writes as nobody (unauthenticated), as the signed-in session's
//   user, or as a user of the operator's choosing, with a short-lived token minted for that user
//   through the admin API (POST /v1/admin/users/{uid}/tokens). The rules decide those requests as
//   they would that user's, and the audit log records them.
//
// Every error is the API's shape: `ApiError` carries status, code, message and details.

import { parse as parseExact, stringify as stringifyExact } from './json.js';

const KEY_STORAGE = 'claimdb.console.adminKey';
const MODE_STORAGE = 'claimdb.console.mode';
const ACT_AS_STORAGE = 'claimdb.console.actAs';

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details ?? {};
  }
}

const state = {
  /** 'key' | 'session' | null */
  mode: null,
  key: null,
  /** The status document read at sign-in (version, project, login providers, …). */
  status: null,
  /** For a session: /v1/me. */
  me: null,
  /** { kind: 'anonymous' | 'session' | 'user', uid, claims: text } */
  actAs: null,
  /** The minted token of actAs (kind 'user'): { token, expiresAt (ms), for: 'uid|claims' }. */
  minted: null,
};

export function session() {
  return state;
}

function adminHeaders() {
  return state.mode === 'key' ? { 'x-claimdb-admin-key': state.key } : {};
}

/** How admin requests authenticate: the key (no cookie) or the cookie. */
function adminCredentials() {
  return state.mode === 'key' ? 'omit' : 'same-origin';
}

async function errorOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    const e = body?.error;
    if (e && typeof e === 'object') {
      // claimdb's shape, or Firestore's google.rpc.Status on the Firestore paths.
      return new ApiError(response.status, e.code && typeof e.code === 'string' ? e.code : (e.status ?? 'error'),
        e.message ?? response.statusText, e.details && !Array.isArray(e.details) ? e.details : {});
    }
  } catch {
    // not JSON
  }
  return new ApiError(response.status, 'http-error', text.slice(0, 300) || response.statusText);
}

/**
 * One request. `as`: 'admin' (the operator's credential) or 'data' (the act-as caller's).
 * `body`: a JS value (sent as JSON), or `text` with its `contentType`. `exact`: parse the answer
 * keeping numbers exact (documents). Returns { status, headers, body }.
 */
export async function request(method, path, opts = {}) {
  const { as = 'admin', body, text, contentType, exact = false, headers = {} } = opts;
  const h = { ...headers };
  let credentials;
  if (as === 'admin') {
    Object.assign(h, adminHeaders());
    credentials = adminCredentials();
  } else {
    const auth = await dataAuth();
    Object.assign(h, auth.headers);
    credentials = auth.credentials;
  }
  let payload;
  if (text !== undefined) {
    payload = text;
    h['content-type'] = contentType ?? 'text/plain; charset=utf-8';
  } else if (body !== undefined) {
    payload = typeof body === 'string' ? body : stringifyExact(body);
    h['content-type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, { method, headers: h, body: payload, credentials, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', `claimdb did not answer: ${e.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  const type = response.headers.get('content-type') ?? '';
  let parsed = null;
  if (response.status !== 204) {
    const raw = await response.text();
    if (type.includes('json') && raw) parsed = exact ? parseExact(raw) : JSON.parse(raw);
    else parsed = raw;
  }
  return { status: response.status, headers: response.headers, body: parsed };
}

export async function admin(method, path, opts = {}) {
  return (await request(method, path, { ...opts, as: 'admin' })).body;
}

export async function data(method, path, opts = {}) {
  return request(method, path, { exact: true, ...opts, as: 'data' });
}

// ---------------------------------------------------------------------------------------------
// Signing in and out.

/** Checks `key` against the admin API; on success it is kept for this tab only. */
export async function signInWithKey(key) {
  state.mode = 'key';
  state.key = key;
  try {
    state.status = await admin('GET', '/v1/admin/status');
  } catch (e) {
    state.mode = null;
    state.key = null;
    throw e;
  }
  sessionStorage.setItem(KEY_STORAGE, key);
  sessionStorage.setItem(MODE_STORAGE, 'key');
  loadActAs();
}

/** Uses the login session's cookie; its user must hold an admin role. */
export async function signInWithSession() {
  state.mode = 'session';
  state.key = null;
  try {
    state.status = await admin('GET', '/v1/admin/status');
    state.me = await admin('GET', '/v1/me');
  } catch (e) {
    state.mode = null;
    sessionStorage.removeItem(MODE_STORAGE);
    throw e;
  }
  sessionStorage.setItem(MODE_STORAGE, 'session');
  loadActAs();
}

/** Signs in again from what this tab kept (after a reload); false when there is nothing. */
export async function resume() {
  const mode = sessionStorage.getItem(MODE_STORAGE);
  if (mode === 'key') {
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (!key) return false;
    await signInWithKey(key);
    return true;
  }
  if (mode === 'session' || mode === 'session-pending') {
    // 'session-pending': back from a login started here.
    await signInWithSession();
    return true;
  }
  return false;
}

/** Starts a login through `provider`, coming back to the console. */
export function startLogin(provider) {
  sessionStorage.setItem(MODE_STORAGE, 'session-pending');
  const back = `${location.origin}/console/`;
  location.assign(`/v1/login/${encodeURIComponent(provider)}?redirect=${encodeURIComponent(back)}`);
}

export async function signOut() {
  const wasSession = state.mode === 'session';
  sessionStorage.removeItem(KEY_STORAGE);
  sessionStorage.removeItem(MODE_STORAGE);
  sessionStorage.removeItem(ACT_AS_STORAGE);
  Object.assign(state, { mode: null, key: null, status: null, me: null, actAs: null, minted: null });
  if (wasSession) {
    await fetch('/v1/logout', { method: 'POST', credentials: 'same-origin' }).catch(() => {});
  }
}

/** The login providers a console user may sign in through (public: /v1/login/{name}). */
export async function loginProviders() {
  const r = await fetch('/console/login-providers', { credentials: 'omit' });
  if (!r.ok) return [];
  return (await r.json()).providers ?? [];
}

// ---------------------------------------------------------------------------------------------
// Who data requests run as.

function loadActAs() {
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(ACT_AS_STORAGE) ?? 'null');
  } catch {
    saved = null;
  }
  const kinds = state.mode === 'session' ? ['anonymous', 'session', 'user'] : ['anonymous', 'user'];
  if (saved && kinds.includes(saved.kind)) state.actAs = saved;
  else state.actAs = { kind: state.mode === 'session' ? 'session' : 'anonymous', uid: '', claims: '{}' };
  state.minted = null;
}

export function actAs() {
  return state.actAs;
}

/** Changes who data requests run as; a token is minted at the next request. */
export function setActAs(next) {
  state.actAs = { kind: next.kind, uid: next.uid ?? '', claims: next.claims ?? '{}' };
  state.minted = null;
  sessionStorage.setItem(ACT_AS_STORAGE, JSON.stringify(state.actAs));
  window.dispatchEvent(new CustomEvent('claimdb:act-as'));
}

/** Words for the act-as caller: "user ada", "nobody (unauthenticated)". */
export function actAsLabel(a = state.actAs) {
  if (!a) return '–';
  if (a.kind === 'anonymous') return 'nobody (unauthenticated)';
  if (a.kind === 'session') return `your session (${state.me?.uid ?? '?'})`;
  return `user ${a.uid}`;
}

/** The act-as caller as the rules playground describes an `auth`. */
export function actAsAuth() {
  const a = state.actAs;
  if (!a || a.kind === 'anonymous') return null;
  if (a.kind === 'session') return { uid: state.me?.uid ?? '', token: state.me?.claims ?? {} };
  let token = {};
  try {
    token = JSON.parse(a.claims || '{}');
  } catch {
    token = {};
  }
  return { uid: a.uid, token };
}

async function dataAuth() {
  const a = state.actAs;
  if (!a || a.kind === 'anonymous') return { headers: {}, credentials: 'omit' };
  if (a.kind === 'session') return { headers: {}, credentials: 'same-origin' };
  const key = `${a.uid}|${a.claims}`;
  const now = Date.now();
  if (!state.minted || state.minted.for !== key || state.minted.expiresAt - now < 60_000) {
    let claims;
    try {
      claims = JSON.parse(a.claims || '{}');
    } catch (e) {
      throw new ApiError(0, 'invalid-argument', `the claims to act with are not JSON: ${e.message}`);
    }
    const minted = await admin('POST', `/v1/admin/users/${encodeURIComponent(a.uid)}/tokens`, {
      body: { claims, ttl: '30m' },
    });
    state.minted = { token: minted.id_token, expiresAt: Number(minted.expires_at) * 1000, for: key };
  }
  return { headers: { authorization: `Bearer ${state.minted.token}` }, credentials: 'omit' };
}

// ---------------------------------------------------------------------------------------------
// Paths and names.

export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The Firestore REST documents root of the configured project. */
export function firestoreRoot() {
  const project = state.status?.firestore_project ?? 'demo-claimdb';
  return `/v1/projects/${encodeURIComponent(project)}/databases/(default)/documents`;
}

/** Collection ids below a document (or the root for ''), through Firestore's listCollectionIds. */
export async function collectionIds(docPath) {
  const base = firestoreRoot() + (docPath ? `/${encodePath(docPath)}` : '');
  const ids = [];
  let pageToken;
  do {
    const body = await admin('POST', `${base}:listCollectionIds`, {
      body: pageToken ? { pageSize: 300, pageToken } : { pageSize: 300 },
    });
    ids.push(...(body.collectionIds ?? []));
    pageToken = body.nextPageToken;
  } while (pageToken && ids.length < 3000);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Realtime: /v1/listen read through fetch (EventSource cannot send the Authorization header).

/**
 * Listens to `params` (`{path}` or `{query}`: an object, sent as JSON). Calls `onSnapshot(docs)`,
 * `onChanges(changes)` and `onError(ApiError)`; reconnects with Last-Event-ID when the stream
 * drops. Returns a function that stops it.
 */
export function listen(params, { onSnapshot, onChanges, onError, onOpen }) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;
  let reminted = 0;
  const qs = new URLSearchParams();
  if (params.path) qs.set('path', params.path);
  if (params.query) qs.set('query', stringifyExact(params.query));
  const dispatch = (event, dataText) => {
    if (event === 'error') {
      let body = null;
      try {
        body = JSON.parse(dataText);
      } catch {
        body = null;
      }
      const e = body?.error ?? {};
      // The minted token of the act-as user expired: mint another and resume (once a minute
      // at most, so a revoked user's listener does end).
      if (e.code === 'unauthenticated' && state.actAs?.kind === 'user' && Date.now() - reminted > 60_000) {
        reminted = Date.now();
        state.minted = null;
        return;
      }
      stopped = true;
      onError?.(new ApiError(0, e.code ?? 'error', e.message ?? dataText, e.details ?? {}));
      return;
    }
    const body = parseExact(dataText);
    if (event === 'snapshot') onSnapshot?.(body.documents ?? []);
    else if (event === 'changes') onChanges?.(body.changes ?? []);
  };
  const run = async () => {
    let failures = 0;
    while (!stopped) {
      let response;
      try {
        const auth = await dataAuth();
        const headers = { ...auth.headers, accept: 'text/event-stream' };
        if (lastId) headers['last-event-id'] = lastId;
        response = await fetch(`/v1/listen?${qs}`, {
          headers, credentials: auth.credentials, signal: controller.signal, cache: 'no-store',
        });
      } catch (e) {
        if (controller.signal.aborted) return;
        if (e instanceof ApiError) {
          onError?.(e);
          return;
        }
        failures += 1;
        if (failures > 5) {
          onError?.(new ApiError(0, 'network', `the live connection failed: ${e.message}`));
          return;
        }
        await new Promise((r) => setTimeout(r, 1000 * failures));
        continue;
      }
      if (!response.ok) {
        onError?.(await errorOf(response));
        return;
      }
      failures = 0;
      onOpen?.();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const dataLines = [];
            let id = null;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const name = colon < 0 ? line : line.slice(0, colon);
              const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (name === 'event') event = v;
              else if (name === 'data') dataLines.push(v);
              else if (name === 'id') id = v;
            }
            if (dataLines.length) {
              if (id) lastId = id;
              dispatch(event, dataLines.join('\n'));
              if (stopped) return;
            }
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      // The stream ended without an error event (a restart, a proxy): resume where it was.
      if (!stopped) await new Promise((r) => setTimeout(r, 500));
    }
  };
  run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

/** Applies a `changes` event to a list of documents (the listener's order and limit kept). */
export function applyChanges(docs, changes) {
  const out = docs.slice();
  for (const c of changes) {
    if (c.type === 'removed' || c.type === 'modified') {
      const at = c.old_index !== null && c.old_index !== undefined ? Number(c.old_index) : out.findIndex((d) => d.path === c.document.path);
      if (at >= 0) out.splice(at, 1);
    }
    if (c.type === 'added' || c.type === 'modified') {
      const at = c.new_index !== null && c.new_index !== undefined ? Number(c.new_index) : out.length;
      out.splice(at, 0, c.document);
    }
  }
  return out;
}
