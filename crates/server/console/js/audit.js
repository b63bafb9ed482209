// Audit: the newest decisions of the audit log (GET /v1/admin/audit), denials only unless asked
// otherwise, filtered by user, path (and everything below it) and time; every data decision
// links to the playground with the same request (who, method, path) filled in.
//
// Route: #/audit?uid=…&path=…&since=…&until=…&all=1

import * as api from './api.js';
import { h, replace, field, errorBox, statusLine } from './dom.js';

export async function render(container, route) {
  const p = route.params;
  const denials = h('input', { type: 'checkbox', checked: p.get('all') !== '1' });
  const uid = h('input', { type: 'text', value: p.get('uid') ?? '', spellcheck: 'false', size: 14 });
  const path = h('input', { type: 'text', value: p.get('path') ?? '', spellcheck: 'false', size: 20 });
  const since = h('input', { type: 'text', value: p.get('since') ?? '24h', spellcheck: 'false', size: 12 });
  const until = h('input', { type: 'text', value: p.get('until') ?? '', spellcheck: 'false', size: 12 });
  const limit = h('input', { type: 'number', value: p.get('limit') ?? '100', min: 1, max: 10000, size: 6 });
  const fields = [
    field('User id', uid)[0],
    field('Path (and below)', path)[0],
    field('Since', since, '90s, 30m, 1h, 2d or an RFC 3339 time')[0],
    field('Until', until)[0],
    field('At most', limit)[0],
  ];
  const status = statusLine();
  const tbody = h('tbody');
  const load = async () => {
    const qs = new URLSearchParams();
    if (denials.checked) qs.set('deny', 'true');
    for (const [k, el] of [['uid', uid], ['path', path], ['since', since], ['until', until], ['limit', limit]]) {
      if (el.value.trim()) qs.set(k, el.value.trim());
    }
    status.show('Reading the log…');
    try {
      const r = await api.admin('GET', `/v1/admin/audit?${qs}`);
      replace(tbody, r.events.length === 0
        ? h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No matching decisions.'))
        : r.events.map(row));
      status.show(`${r.events.length} decision${r.events.length === 1 ? '' : 's'}, newest first`);
    } catch (e) {
      status.clear();
      replace(tbody, h('tr', {}, h('td', { colspan: 8 }, errorBox(e))));
    }
  };
  const form = h('form', { class: 'card filters', 'aria-label': 'Filter decisions' },
    h('label', { class: 'check' }, denials, ' Denials only'),
    fields,
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const qs = new URLSearchParams();
    if (!denials.checked) qs.set('all', '1');
    for (const [k, el] of [['uid', uid], ['path', path], ['since', since], ['until', until]]) {
      if (el.value.trim()) qs.set(k, el.value.trim());
    }
    history.replaceState(null, '', `#/audit?${qs}`);
    load();
  });
  replace(container, h('h1', {}, 'Audit log'), form, status,
    h('table', { class: 'grid audit' },
      h('caption', {}, 'Decisions'),
      h('thead', {}, h('tr', {}, ['Time', 'Decision', 'User', 'Method', 'Path', 'Rule', 'Reason', ''].map((c) => h('th', { scope: 'col' }, c)))),
      tbody));
  await load();
  return null;
}

const DATA_METHODS = ['get', 'list', 'create', 'update', 'delete'];

function row(e) {
  let link = null;
  if (DATA_METHODS.includes(e.method) && e.path) {
    const params = new URLSearchParams({ method: e.method, path: e.path });
    if (e.uid) params.set('uid', e.uid);
    link = h('a', { href: `#/playground?${params}`, 'aria-label': `Try ${e.method} ${e.path}${e.uid ? ` as ${e.uid}` : ''} in the playground` }, 'Playground');
  }
  return h('tr', { class: e.decision === 'deny' ? 'deny' : 'allow' },
    h('td', {}, h('time', { datetime: e.time }, e.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))),
    h('td', {}, e.decision),
    h('td', {}, e.uid ?? h('span', { class: 'muted' }, 'nobody'), e.provider ? h('span', { class: 'muted' }, ` (${e.provider})`) : null),
    h('td', {}, e.method),
    h('td', {}, h('code', {}, e.path)),
    h('td', {}, e.rule ?? ''),
    h('td', {}, e.reason ?? ''),
    h('td', {}, link));
}
