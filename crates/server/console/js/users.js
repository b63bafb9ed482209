// Users: the users claimdb has a record of (GET /v1/admin/users, by uid prefix), one user's
// record, their custom claims — edited as JSON with the 1,000-byte limit counted as the server
// counts it (compact JSON, UTF-8) — and revocation of every credential issued before now.
//
// Routes: #/users (search), #/users/<uid> (one user; also for a uid with no record yet).

import * as api from './api.js';
import { h, replace, field, errorBox, statusLine, confirmButton, unixTime } from './dom.js';
import { parse as parseExact, stringify, utf8Length } from './json.js';

const MAX_CLAIMS_BYTES = 1000;

export async function render(container, route) {
  if (route.rest) return user(container, route.rest);
  return search(container, route.params.get('prefix') ?? '');
}

async function search(container, prefix) {
  const input = h('input', { type: 'search', value: prefix, spellcheck: 'false' });
  const [inputField] = field('User id starts with', input);
  const tbody = h('tbody');
  const status = statusLine();
  const more = h('button', { type: 'button', hidden: true }, 'More users');
  let token = null;
  const load = async (reset) => {
    if (reset) {
      token = null;
      tbody.replaceChildren();
    }
    const qs = new URLSearchParams({ page_size: '50' });
    if (input.value.trim()) qs.set('prefix', input.value.trim());
    if (token) qs.set('page_token', token);
    try {
      const r = await api.admin('GET', `/v1/admin/users?${qs}`);
      for (const u of r.users) {
        const claimsText = u.custom_claims ? JSON.stringify(u.custom_claims) : '';
        tbody.append(h('tr', {},
          h('td', {}, h('a', { href: `#/users/${encodeURIComponent(u.uid)}` }, u.uid)),
          h('td', {}, u.provider ?? ''),
          h('td', {}, u.email ?? ''),
          h('td', {}, u.created ? unixTime(u.created) : ''),
          h('td', {}, h('code', {}, claimsText.length > 60 ? `${claimsText.slice(0, 60)}…` : claimsText)),
          h('td', {}, u.tokens_valid_after ? `before ${unixTime(u.tokens_valid_after)}` : '')));
      }
      token = r.next_page_token ?? null;
      more.hidden = !token;
      const n = tbody.children.length;
      status.show(`${n} user${n === 1 ? '' : 's'}${token ? ' (more below)' : ''}`);
    } catch (e) {
      status.clear();
      tbody.append(h('tr', {}, h('td', { colspan: 6 }, errorBox(e))));
    }
  };
  const form = h('form', { class: 'inline card', role: 'search' }, inputField, h('button', { type: 'submit', class: 'primary' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    history.replaceState(null, '', `#/users?prefix=${encodeURIComponent(input.value.trim())}`);
    load(true);
  });
  const openUid = h('input', { type: 'text', spellcheck: 'false' });
  const [openField] = field('Open a user by id', openUid, 'Also for a user claimdb has no record of yet: setting custom claims creates the record.');
  const openForm = h('form', { class: 'inline card' }, openField, h('button', { type: 'submit' }, 'Open'));
  openForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (openUid.value.trim()) location.hash = `#/users/${encodeURIComponent(openUid.value.trim())}`;
  });
  more.addEventListener('click', () => load(false));
  replace(container, h('h1', {}, 'Users'), form, openForm, status,
    h('table', { class: 'grid' },
      h('caption', {}, 'Users with a record (signed in through claimdb, or given claims or a revocation)'),
      h('thead', {}, h('tr', {}, ['User id', 'Provider', 'Email', 'First seen', 'Custom claims', 'Revoked'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody),
    more);
  await load(true);
  return null;
}

async function user(container, uid) {
  const path = `/v1/admin/users/${encodeURIComponent(uid)}`;
  const record = h('div');
  const status = statusLine();
  const claims = h('textarea', { rows: 8, spellcheck: 'false', class: 'mono' });
  const counter = h('span', { class: 'counter', 'aria-live': 'polite' });
  const [claimsField] = field('Custom claims (a JSON object; reserved JWT names are refused)', claims);
  claimsField.append(counter);
  const count = () => {
    // The server counts the object as compact JSON, in UTF-8 bytes.
    try {
      const v = parseExact(claims.value || '{}');
      const n = utf8Length(stringify(v));
      counter.textContent = `${n} / ${MAX_CLAIMS_BYTES} bytes`;
      counter.className = n > MAX_CLAIMS_BYTES ? 'counter over' : 'counter';
    } catch {
      counter.textContent = `not JSON yet / ${MAX_CLAIMS_BYTES} bytes`;
      counter.className = 'counter over';
    }
  };
  claims.addEventListener('input', count);
  const out = h('div', { 'aria-live': 'assertive' });
  const showRecord = async () => {
    try {
      // Through the search, which answers an empty page rather than a 404 for no record.
      const page = await api.admin('GET', `/v1/admin/users?${new URLSearchParams({ prefix: uid, page_size: '1' })}`);
      const r = page.users?.[0]?.uid === uid ? page.users[0] : null;
      if (!r) {
        replace(record, h('p', { class: 'muted' }, 'claimdb has no record of this user yet (setting custom claims or revoking creates one).'));
        return;
      }
      replace(record, h('dl', { class: 'meta' },
        h('dt', {}, 'provider'), h('dd', {}, r.provider ?? '–'),
        h('dt', {}, 'email'), h('dd', {}, r.email ?? '–'),
        h('dt', {}, 'first seen'), h('dd', {}, r.created ? unixTime(r.created) : '–'),
        h('dt', {}, 'credentials refused if issued before'), h('dd', {}, r.tokens_valid_after ? unixTime(r.tokens_valid_after) : 'none revoked')));
    } catch (e) {
      replace(record, errorBox(e));
    }
  };
  const loadClaims = async () => {
    const r = (await api.request('GET', `${path}/claims`, { exact: true })).body;
    claims.value = stringify(r.claims ?? {}, 2);
    count();
  };
  const form = h('form', { class: 'card' }, claimsField,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save claims'),
      confirmButton('Remove all claims', 'Really remove all claims?', async () => {
        replace(out);
        try {
          await api.admin('DELETE', `${path}/claims`);
          await loadClaims();
          status.show('Custom claims removed; they apply from the user\'s next request.', 'ok');
        } catch (e) {
          replace(out, errorBox(e));
        }
      })),
    out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    let text;
    try {
      text = stringify(parseExact(claims.value || '{}'));
    } catch (e) {
      replace(out, errorBox({ code: 'invalid-argument', message: `Not JSON: ${e.message}` }));
      return;
    }
    try {
      await api.admin('PUT', `${path}/claims`, { body: text });
      await loadClaims();
      await showRecord();
      status.show('Custom claims saved; they apply from the user\'s next request.', 'ok');
    } catch (e) {
      replace(out, errorBox(e));
    }
  });
  const revoke = confirmButton('Revoke every credential', 'Really revoke? Tokens, sessions and refresh tokens issued before now stop working', async () => {
    status.show('Revoking (takes up to a second)…');
    try {
      const r = await api.admin('POST', `${path}/revoke`);
      status.show(`Revoked: credentials issued before ${unixTime(r.tokens_valid_after)} are refused.`, 'ok');
      await showRecord();
    } catch (e) {
      status.clear();
      replace(out, errorBox(e));
    }
  });
  // Loaded before the form is shown, so nothing typed into it is overwritten.
  await Promise.all([showRecord(), loadClaims().catch((e) => replace(out, errorBox(e)))]);
  replace(container,
    h('p', {}, h('a', { href: '#/users' }, '← Users')),
    h('h1', {}, `User ${uid}`),
    status, record, form,
    h('section', { class: 'card', 'aria-labelledby': 'revoke-title' }, h('h2', { id: 'revoke-title' }, 'Revocation'),
      h('p', {}, 'Every token, session and refresh token of this user issued before now is refused on every node.'), revoke),
    h('p', {}, h('a', { href: `#/audit?uid=${encodeURIComponent(uid)}` }, 'This user\'s decisions in the audit log')));
  return null;
}
