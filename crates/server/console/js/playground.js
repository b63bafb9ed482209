// The rules playground: a hypothetical request — who (uid and token claims, or nobody), method,
// path, the incoming data, documents assumed to exist, a list's query, the time — decided by the rules in
// force or by the editor's draft through POST /v1/rules/explain, shown with the decision, the
// explanation and the rule lines that matched, were tried and granted.
//
// The route's parameters fill the form (the audit log and denied console requests link here):
// #/playground?method=get&path=notes/n1&uid=ada&claims={…}&time=…&draft=1

import * as api from './api.js';
import { h, replace, field, errorBox } from './dom.js';
import { parse as parseExact, stringify } from './json.js';
import { draft, listing } from './rules.js';

const METHODS = ['get', 'list', 'create', 'update', 'delete'];

export async function render(container, route) {
  const p = route.params;
  const hasDraft = draft() !== null;
  const useDraft = h('input', { type: 'checkbox', checked: hasDraft && p.get('draft') === '1', disabled: !hasDraft });
  const authed = h('input', { type: 'checkbox', checked: p.has('uid') });
  const uid = h('input', { type: 'text', value: p.get('uid') ?? '', spellcheck: 'false', class: 'mono' });
  const claims = h('textarea', { rows: 3, spellcheck: 'false', class: 'mono' });
  claims.value = p.get('claims') ?? '{}';
  const method = h('select', {}, METHODS.map((m) => h('option', { value: m, selected: (p.get('method') ?? 'get') === m }, m)));
  const path = h('input', { type: 'text', value: p.get('path') ?? '', spellcheck: 'false', class: 'mono', required: true });
  const data = h('textarea', { rows: 4, spellcheck: 'false', class: 'mono' });
  data.value = p.get('data') ?? '';
  const existing = h('textarea', { rows: 3, spellcheck: 'false', class: 'mono', placeholder: '{"notes/n1": {"owner": "ada"}}' });
  const query = h('textarea', { rows: 2, spellcheck: 'false', class: 'mono', placeholder: '{"where": [["owner", "==", "ada"]], "limit": 20}' });
  const [uidField] = field('User id (request.auth.uid)', uid);
  const [claimsField] = field('Token claims (request.auth.token, JSON)', claims,
    'Custom claims stored for the user are not added here: use "Add stored custom claims".');
  const [methodField] = field('Method', method);
  const [pathField] = field('Path (a document; a collection for list)', path);
  const [dataField] = field('Incoming data (request.resource.data, for create and update; JSON)', data);
  const [existingField] = field('Documents that exist, by path (JSON; others are read from the database)', existing);
  const [queryField] = field('The list\'s query (JSON: where, order_by, limit)', query);
  const time = h('input', { type: 'text', value: p.get('time') ?? '', spellcheck: 'false', class: 'mono', placeholder: '2026-01-01T00:00:00Z' });
  const [timeField] = field('request.time (RFC 3339; now when empty)', time);
  const loadClaims = async () => {
    if (!uid.value.trim()) return;
    try {
      const r = (await api.request('GET', `/v1/admin/users/${encodeURIComponent(uid.value.trim())}/claims`, { exact: true })).body;
      let current = Object.create(null);
      try { current = parseExact(claims.value || '{}'); } catch { /* replaced below */ }
      claims.value = stringify(Object.assign(Object.create(null), current, r.claims));
    } catch (e) {
      out.prepend(errorBox(e));
    }
  };
  const out = h('div', { class: 'explain-result', 'aria-live': 'polite' });
  const sync = () => {
    uidField.hidden = !authed.checked;
    claimsField.hidden = !authed.checked;
    addClaims.hidden = !authed.checked;
    dataField.hidden = !['create', 'update'].includes(method.value);
    queryField.hidden = method.value !== 'list';
  };
  const addClaims = h('button', { type: 'button', class: 'small', onclick: loadClaims }, 'Add stored custom claims');
  authed.addEventListener('change', sync);
  method.addEventListener('change', sync);
  const form = h('form', { class: 'card playground', 'aria-label': 'Hypothetical request' },
    h('fieldset', {}, h('legend', {}, 'Who'),
      h('label', { class: 'check' }, authed, ' Authenticated (otherwise request.auth is null)'),
      uidField, claimsField, addClaims),
    h('fieldset', {}, h('legend', {}, 'What'), methodField, pathField, dataField, queryField,
      h('details', {}, h('summary', {}, 'Documents assumed to exist, and the time'), existingField, timeField)),
    h('label', { class: 'check' }, useDraft, hasDraft ? ' Decide with the draft in the rules editor (not published)' : ' Decide with the editor\'s draft (there is none)'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Run')));
  sync();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out, h('p', { class: 'muted' }, 'Deciding…'));
    let body;
    try {
      body = Object.create(null);
      body.auth = authed.checked ? { uid: uid.value.trim(), token: parseExact(claims.value || '{}') } : null;
      body.method = method.value;
      body.path = path.value.trim().replace(/^\/+|\/+$/g, '');
      if (!dataField.hidden && data.value.trim()) body.data = parseExact(data.value);
      if (existing.value.trim()) body.existing = parseExact(existing.value);
      if (!queryField.hidden && query.value.trim()) body.query = parseExact(query.value);
      if (time.value.trim()) body.time = time.value.trim();
      if (useDraft.checked && draft() !== null) body.rules = draft();
    } catch (e) {
      replace(out, errorBox({ code: 'invalid-argument', message: `Not JSON: ${e.message}` }));
      return;
    }
    try {
      const [r, source] = await Promise.all([
        api.admin('POST', '/v1/rules/explain', { body: stringify(body) }),
        body.rules ? Promise.resolve(body.rules) : api.admin('GET', '/v1/admin/rules').then((a) => a.source),
      ]);
      replace(out, result(r, source));
      out.querySelector('.decision')?.focus();
    } catch (e) {
      replace(out, errorBox(e));
    }
  });
  // The user's stored claims are filled in before the form is shown, so nothing typed into it
  // is overwritten.
  if (p.has('uid') && !p.has('claims')) await loadClaims();
  replace(container, h('h1', {}, 'Rules playground'), form, out);
  return null;
}

function result(r, source) {
  const marks = new Map();
  for (const m of r.matched ?? []) marks.set(m.line, { kind: 'matched', note: `match ${m.pattern}` });
  for (const t of r.tried ?? []) {
    const granted = r.granted_by_line === t.line;
    marks.set(t.line, { kind: granted ? 'granted' : (t.outcome === 'true' ? 'granted' : 'denied'), note: `allow ${t.methods}: ${t.outcome}` });
  }
  return h('div', {},
    h('p', { class: `decision ${r.allowed ? 'allowed' : 'denied'}`, tabindex: '-1', role: 'status' },
      r.allowed ? `ALLOWED${r.granted_by_line ? ` by the allow at line ${r.granted_by_line}` : ''}` : 'DENIED',
      ` — ${r.method} ${r.path} (rules: ${r.rules})`),
    r.summary ? h('p', {}, r.summary) : null,
    r.explanation ? h('pre', { class: 'explanation' }, r.explanation) : null,
    (r.reasons ?? []).length ? h('table', { class: 'grid' },
      h('caption', {}, 'Why each allow did not grant'),
      h('thead', {}, h('tr', {}, ['Allow at', 'Line', 'Expression', 'Because'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, r.reasons.map((x) => h('tr', {}, h('td', {}, String(x.allow_line)), h('td', {}, String(x.line)), h('td', {}, h('code', {}, x.expression)), h('td', {}, x.message))))) : null,
    (r.tried ?? []).length ? h('table', { class: 'grid' },
      h('caption', {}, 'Allow statements tried'),
      h('thead', {}, h('tr', {}, ['Line', 'Methods', 'Outcome'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, r.tried.map((t) => h('tr', {}, h('td', {}, String(t.line)), h('td', {}, t.methods), h('td', {}, t.outcome))))) : null,
    r.limit ? h('p', { class: 'status warn' }, `Stopped by a limit: ${r.limit}`) : null,
    h('h2', {}, 'The rules, with the lines this request matched'),
    listing(source, marks));
}
