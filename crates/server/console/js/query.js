// Query: the JSON of POST /v1/query (README "Documents on the wire": where, or/and, order_by,
// cursors, limit, collection_group), run as the act-as caller a page at a time, or watched live
// through /v1/listen with the same JSON.

import * as api from './api.js';
import { h, replace, field, statusLine } from './dom.js';
import { documentNode, view } from './values.js';
import { parse as parseExact, stringify } from './json.js';
import { actAsBar, dataError } from './documents.js';

const EXAMPLE = '{\n  "collection": "movies",\n  "where": [["year", ">=", 1990]],\n  "order_by": [["year", "desc"]],\n  "limit": 20\n}';

export async function render(container, route) {
  const text = h('textarea', { rows: 9, spellcheck: 'false', class: 'mono' });
  text.value = route.params.get('q') ?? sessionStorage.getItem('claimdb.console.query') ?? EXAMPLE;
  const [textField] = field('Query (JSON)', text, 'The body of POST /v1/query, without page_size and page_token.');
  const status = statusLine();
  const results = h('div', { class: 'results' });
  const more = h('button', { type: 'button', hidden: true }, 'Next page');
  let stop = null;
  let pageToken = null;
  let shown = [];

  const read = () => {
    sessionStorage.setItem('claimdb.console.query', text.value);
    return parseExact(text.value);
  };
  const table = (docs) => h('ol', { class: 'query-results' }, docs.map((d) => h('li', {},
    h('a', { href: `#/documents/${d.path}` }, d.path), ' ',
    h('span', { class: 'muted' }, `v${d.version}`),
    h('details', {}, h('summary', {}, 'fields'), view(documentNode(d.data))))));
  const collectionOf = (q) => q.collection ?? (q.collection_group ? `**/${q.collection_group}` : '');

  const run = async (next) => {
    if (stop) { stop(); stop = null; }
    let q;
    try {
      q = read();
    } catch (e) {
      replace(results, dataError({ code: 'invalid-argument', message: `The query is not JSON: ${e.message}` }));
      return;
    }
    if (next && pageToken) q.page_token = pageToken;
    else shown = [];
    status.show('Running…');
    try {
      const r = await api.data('POST', '/v1/query', { body: stringify(q) });
      const docs = r.body.documents ?? [];
      shown = shown.concat(docs);
      pageToken = r.body.next_page_token ?? null;
      more.hidden = !pageToken;
      status.show(`${shown.length} document${shown.length === 1 ? '' : 's'}${pageToken ? ', more on the next page' : ''}`, 'ok');
      replace(results, table(shown));
    } catch (e) {
      status.clear();
      more.hidden = true;
      replace(results, dataError(e, 'list', collectionOf(q)));
    }
  };
  const watch = () => {
    if (stop) { stop(); stop = null; }
    let q;
    try {
      q = read();
    } catch (e) {
      replace(results, dataError({ code: 'invalid-argument', message: `The query is not JSON: ${e.message}` }));
      return;
    }
    more.hidden = true;
    let docs = [];
    status.show('Connecting…');
    stop = api.listen({ query: q }, {
      onSnapshot: (d) => { docs = d; status.show(`${docs.length} document${docs.length === 1 ? '' : 's'} · live`, 'live'); replace(results, table(docs)); },
      onChanges: (c) => { docs = api.applyChanges(docs, c); status.show(`${docs.length} document${docs.length === 1 ? '' : 's'} · live`, 'live'); replace(results, table(docs)); },
      onError: (e) => { status.clear(); replace(results, dataError(e, 'list', collectionOf(q))); },
    });
  };
  const form = h('form', { class: 'card query-form', 'aria-label': 'Query' }, textField,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Run'),
      h('button', { type: 'button', onclick: watch }, 'Watch live'),
      h('button', { type: 'button', onclick: () => { if (stop) { stop(); stop = null; status.show('Stopped.'); } } }, 'Stop')));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); run(false); });
  more.addEventListener('click', () => run(true));
  replace(container, h('h1', {}, 'Query'), actAsBar(), form, status, results, more);
  return () => stop?.();
}
