// Documents: browse collections and subcollections (Firestore's listCollectionIds, which needs
// the admin condition), the documents of a collection and one document, both live through
// /v1/listen, and create, edit and delete documents with typed values. Reads and writes run as
// the act-as caller (see api.js), so the rules decide them; a denial links to the playground
// with the same request.
//
// The route is #/documents/<path>: nothing (the root), a collection or a document.

import * as api from './api.js';
import { h, replace, field, errorBox, statusLine, confirmButton } from './dom.js';
import { documentNode, view, documentEditor, toWire, fromWire, ValueError } from './values.js';
import { stringify, parse as parseExact } from './json.js';

const PAGE = 100;

/** A link to the playground with this request, as the act-as caller. */
export function playgroundLink(method, path, text = 'Why? Try this request in the playground') {
  const params = new URLSearchParams({ method, path });
  const auth = api.actAsAuth();
  if (auth) {
    params.set('uid', auth.uid);
    params.set('claims', JSON.stringify(auth.token));
  }
  return h('a', { href: `#/playground?${params}`, class: 'playground-link' }, text);
}

/** The error of a data request, with the playground link when the rules denied it. */
export function dataError(e, method, path) {
  const box = errorBox(e);
  if (e?.code === 'permission-denied' || e?.status === 403) box.append(h('p', {}, playgroundLink(method, path)));
  return box;
}

/** Who data requests run as, and a form to change it. */
export function actAsBar() {
  const s = api.session();
  const a = api.actAs();
  const kinds = [['anonymous', 'nobody (unauthenticated)'], ['user', 'a user (token minted for them)']];
  if (s.mode === 'session') kinds.splice(1, 0, ['session', `your session (${s.me?.uid ?? '?'})`]);
  const kind = h('select', {}, kinds.map(([k, label]) => h('option', { value: k, selected: a.kind === k }, label)));
  const uidInput = h('input', { type: 'text', value: a.uid, spellcheck: 'false', size: 14, placeholder: 'uid' });
  const claims = h('input', { type: 'text', value: a.claims || '{}', spellcheck: 'false', size: 28, class: 'mono' });
  const [kindField] = field('Data requests run as', kind);
  const [uidField] = field('User id', uidInput);
  const [claimsField] = field('Token claims (JSON)', claims);
  const out = h('span', { role: 'status', class: 'status' }, `Running as ${api.actAsLabel()}.`);
  const sync = () => {
    uidField.hidden = kind.value !== 'user';
    claimsField.hidden = kind.value !== 'user';
  };
  kind.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'act-as', 'aria-label': 'Who data requests run as' },
    kindField, uidField, claimsField,
    h('button', { type: 'submit' }, 'Apply'), out,
    h('p', { class: 'hint' }, 'The console does not bypass your rules: reads and writes here are decided as for this caller and audited. Custom claims stored for the user are added to the token\'s on every request.'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (kind.value === 'user') {
      if (!uidInput.value.trim()) {
        out.textContent = 'Give a user id.';
        uidInput.focus();
        return;
      }
      try {
        const c = JSON.parse(claims.value || '{}');
        if (typeof c !== 'object' || Array.isArray(c) || c === null) throw new Error('claims must be a JSON object');
      } catch (e) {
        out.textContent = `Claims: ${e.message}`;
        claims.focus();
        return;
      }
    }
    api.setActAs({ kind: kind.value, uid: uidInput.value.trim(), claims: claims.value.trim() || '{}' });
    out.textContent = `Now running as ${api.actAsLabel()}.`;
  });
  return form;
}

function split(path) {
  return path ? path.split('/') : [];
}

function docLink(path, current) {
  const id = path.split('/').pop();
  return h('a', { href: `#/documents/${path}`, 'aria-current': current ? 'true' : null, class: current ? 'current' : null }, id);
}

export async function render(container, route) {
  const path = route.rest.replace(/^\/+|\/+$/g, '');
  const segs = split(path);
  const isDoc = segs.length > 0 && segs.length % 2 === 0;
  const collection = segs.length === 0 ? null : (isDoc ? segs.slice(0, -1).join('/') : path);
  const parentDoc = collection ? split(collection).slice(0, -1).join('/') : '';
  const docPath = isDoc ? path : null;
  const stops = [];

  // The path bar: breadcrumbs and a path to go to.
  const crumbs = h('ol', { class: 'crumbs' }, h('li', {}, h('a', { href: '#/documents' }, 'root')));
  segs.forEach((s, i) => crumbs.append(h('li', {}, h('a', { href: `#/documents/${segs.slice(0, i + 1).join('/')}` }, s))));
  const goInput = h('input', { type: 'text', value: path, spellcheck: 'false', class: 'mono' });
  const [goField] = field('Path', goInput);
  const goForm = h('form', { class: 'go' }, goField, h('button', { type: 'submit' }, 'Go'));
  goForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    location.hash = `#/documents/${goInput.value.trim().replace(/^\/+|\/+$/g, '')}`;
  });

  const colPane = h('section', { class: 'pane', 'aria-labelledby': 'pane-cols' });
  const docsPane = h('section', { class: 'pane', 'aria-labelledby': 'pane-docs' });
  const docPane = h('section', { class: 'pane wide', 'aria-labelledby': 'pane-doc' });
  replace(container,
    h('h1', { class: 'visually-hidden' }, 'Documents'),
    actAsBar(),
    h('nav', { class: 'pathbar', 'aria-label': 'Path' }, crumbs, goForm),
    h('div', { class: 'panes' }, colPane, docsPane, docPane));

  collectionsPane(colPane, parentDoc, collection);
  if (collection) stops.push(documentsPane(docsPane, collection, docPath));
  else replace(docsPane, h('h2', { id: 'pane-docs' }, 'Documents'), h('p', { class: 'muted' }, 'Choose a collection.'));
  if (docPath) stops.push(documentPane(docPane, docPath, collection));
  else if (collection && route.params.get('new') === '1') newDocumentPane(docPane, collection);
  else replace(docPane, h('h2', { id: 'pane-doc' }, 'Document'), h('p', { class: 'muted' }, collection ? 'Choose a document, or add one.' : ''));

  const onActAs = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
  window.addEventListener('claimdb:act-as', onActAs);
  return () => {
    window.removeEventListener('claimdb:act-as', onActAs);
    for (const stop of stops) stop();
  };
}

async function collectionsPane(pane, parentDoc, current) {
  const list = h('ul', { class: 'list' }, h('li', { class: 'muted' }, 'Loading…'));
  const newId = h('input', { type: 'text', spellcheck: 'false', size: 12 });
  const [newField] = field('New collection id', newId, 'Its first document creates it.');
  const form = h('form', { class: 'inline' }, newField, h('button', { type: 'submit' }, 'Open'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = newId.value.trim();
    if (id) location.hash = `#/documents/${parentDoc ? `${parentDoc}/` : ''}${id}`;
  });
  replace(pane, h('h2', { id: 'pane-cols' }, parentDoc ? `Collections of ${parentDoc}` : 'Collections'), list, form);
  try {
    const ids = await api.collectionIds(parentDoc);
    replace(list, ids.length === 0 ? h('li', { class: 'muted' }, 'None yet.') : ids.map((id) => {
      const p = parentDoc ? `${parentDoc}/${id}` : id;
      return h('li', {}, h('a', { href: `#/documents/${p}`, 'aria-current': p === current ? 'true' : null, class: p === current ? 'current' : null }, id));
    }));
  } catch (e) {
    replace(list, h('li', {}, errorBox(e)));
  }
}

function documentsPane(pane, collection, currentDoc) {
  let limit = PAGE;
  let stop = null;
  let docs = [];
  const list = h('ul', { class: 'list', 'aria-live': 'polite', 'aria-relevant': 'additions removals' });
  const status = statusLine();
  const more = h('button', { type: 'button', hidden: true }, 'Show more');
  const add = h('a', { href: `#/documents/${collection}?new=1`, class: 'button primary' }, 'Add document');
  replace(pane, h('h2', { id: 'pane-docs' }, `Documents in ${collection}`), add, status, list, more);
  const show = () => {
    replace(list, docs.length === 0 ? h('li', { class: 'muted' }, 'No documents.') : docs.map((d) => h('li', {}, docLink(d.path, d.path === currentDoc))));
    more.hidden = docs.length < limit;
    status.show(`${docs.length} document${docs.length === 1 ? '' : 's'} · live`, 'live');
  };
  const start = () => {
    if (stop) stop();
    status.show('Loading…');
    stop = api.listen({ query: { collection, limit } }, {
      onSnapshot: (d) => { docs = d; show(); },
      onChanges: (c) => { docs = api.applyChanges(docs, c); show(); },
      onError: (e) => {
        status.clear();
        replace(list, h('li', {}, dataError(e, 'list', collection)));
      },
    });
  };
  more.addEventListener('click', () => {
    limit += PAGE;
    start();
  });
  start();
  return () => stop?.();
}

/** A new document in `collection`, in the document pane. */
function newDocumentPane(pane, collection) {
  replace(pane, h('h2', { id: 'pane-doc' }, `New document in ${collection}`), docEditor({
    collection,
    node: documentNode(null),
    onDone: (saved) => {
      location.hash = `#/documents/${saved ?? collection}`;
    },
  }));
  pane.querySelector('input')?.focus();
}

function meta(doc) {
  return h('dl', { class: 'meta' },
    h('dt', {}, 'version'), h('dd', {}, String(doc.version)),
    h('dt', {}, 'created'), h('dd', {}, String(doc.create_time)),
    h('dt', {}, 'updated'), h('dd', {}, String(doc.update_time)));
}

function documentPane(pane, docPath, collection) {
  let doc;
  let editing = false;
  // While our own save is in flight its change may arrive first: not "changed meanwhile".
  let saving = false;
  let savedVersion = null;
  const status = statusLine();
  const body = h('div', { class: 'doc-body' });
  const subs = h('div', { class: 'subcollections' });
  const actions = h('div', { class: 'actions' });
  replace(pane, h('h2', { id: 'pane-doc' }, docPath), status, actions, body, subs);

  const showDoc = () => {
    if (editing) return;
    if (doc === null) {
      replace(actions, h('button', { type: 'button', class: 'primary', onclick: () => edit(true) }, 'Create this document'));
      replace(body, h('p', { class: 'muted' }, 'There is no document at this path.'));
      return;
    }
    replace(actions,
      h('button', { type: 'button', onclick: () => edit(false) }, 'Edit'),
      confirmButton('Delete', 'Really delete?', remove));
    replace(body, meta(doc), view(documentNode(doc.data)));
  };
  const edit = (create) => {
    editing = true;
    replace(actions);
    replace(body, docEditor({
      path: docPath,
      collection,
      version: create ? null : doc.version,
      node: create ? documentNode(null) : documentNode(doc.data),
      onSaving: (on) => { saving = on; },
      onDone: (savedPath, saved) => {
        editing = false;
        if (saved) {
          savedVersion = String(saved.version);
          if (!doc || Number(saved.version) >= Number(doc.version)) doc = saved;
          status.show(`Saved: version ${saved.version}`, 'ok');
        }
        showDoc();
        actions.querySelector('button')?.focus();
      },
    }));
    body.querySelector('select, input')?.focus();
  };
  const remove = async () => {
    try {
      await api.data('DELETE', `/v1/docs/${api.encodePath(docPath)}`, { headers: { 'if-match': `"${doc.version}"` } });
      status.show('Deleted.', 'ok');
      location.hash = `#/documents/${collection}`;
    } catch (e) {
      replace(body, dataError(e, 'delete', docPath));
    }
  };
  status.show('Loading…');
  const stop = api.listen({ path: docPath }, {
    onSnapshot: (d) => {
      doc = d[0] ?? null;
      status.show('live', 'live');
      showDoc();
    },
    onChanges: (changes) => {
      const before = doc;
      for (const c of changes) doc = c.type === 'removed' ? null : c.document;
      if (editing) {
        if (!saving) status.show(doc ? `Changed meanwhile: now version ${doc.version}. Saving will be refused; cancel to see it.` : 'Deleted meanwhile.', 'warn');
      } else {
        if (!doc || String(doc.version) !== savedVersion) status.show(doc ? `Updated: version ${doc.version}` : (before ? 'Deleted' : 'live'), 'live');
        showDoc();
      }
    },
    onError: (e) => {
      status.clear();
      replace(body, dataError(e, 'get', docPath));
    },
  });
  api.collectionIds(docPath).then((ids) => {
    if (ids.length) {
      replace(subs, h('h3', {}, 'Subcollections'), h('ul', { class: 'list' }, ids.map((id) => h('li', {}, h('a', { href: `#/documents/${docPath}/${id}` }, id)))));
    }
  }).catch((e) => replace(subs, errorBox(e)));
  return stop;
}

/**
 * The editor of one document: typed fields, or the `$`-typed JSON. `path` fixed (edit, create
 * at a path) or null (new document in `collection`, with an id to choose or generate).
 * `version`: the version edited (saved with If-Match), null to create (If-None-Match: *).
 */
function docEditor({ path = null, collection, version = null, node, onDone, onSaving = () => {} }) {
  let mode = 'fields';
  const out = h('div', { 'aria-live': 'assertive' });
  const id = h('input', { type: 'text', spellcheck: 'false', class: 'mono', size: 20 });
  const [idField] = field('Document id', id, 'Leave empty for a generated id.');
  const holder = h('div', { class: 'editor-holder' });
  const json = h('textarea', { rows: 14, spellcheck: 'false', class: 'mono', 'aria-label': 'Document as JSON' });
  const toggle = h('button', { type: 'button', class: 'small' }, 'Edit as JSON');
  const showFields = () => replace(holder, documentEditor(node));
  toggle.addEventListener('click', () => {
    replace(out);
    try {
      if (mode === 'fields') {
        json.value = stringify(toWire(node), 2);
        replace(holder, json);
        mode = 'json';
        toggle.textContent = 'Edit as fields';
        json.focus();
      } else {
        const parsed = fromWire(parseExact(json.value || '{}'));
        if (parsed.type !== 'map') throw new ValueError('a document is a JSON object');
        Object.assign(node, parsed);
        showFields();
        mode = 'fields';
        toggle.textContent = 'Edit as JSON';
      }
    } catch (e) {
      replace(out, errorBox(e));
    }
  });
  const form = h('form', { class: 'doc-editor card', 'aria-label': path ? `Edit ${path}` : `New document in ${collection}` },
    path ? null : idField,
    h('div', { class: 'row' }, h('span', { class: 'muted' }, 'Types follow README "Documents on the wire".'), toggle),
    holder,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Save'),
      h('button', { type: 'button', onclick: () => onDone(null) }, 'Cancel')),
    out);
  showFields();
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out);
    let text;
    try {
      if (mode === 'json') {
        const parsed = fromWire(parseExact(json.value || '{}'));
        if (parsed.type !== 'map') throw new ValueError('a document is a JSON object');
        text = stringify(toWire(parsed));
      } else {
        text = stringify(toWire(node));
      }
    } catch (e) {
      replace(out, errorBox(e));
      return;
    }
    const target = path ?? (id.value.trim() ? `${collection}/${id.value.trim()}` : null);
    onSaving(true);
    try {
      let saved;
      if (target) {
        const headers = version === null ? { 'if-none-match': '*' } : { 'if-match': `"${version}"` };
        saved = (await api.data('PUT', `/v1/docs/${api.encodePath(target)}`, { body: text, headers })).body;
      } else {
        saved = (await api.data('POST', `/v1/docs/${api.encodePath(collection)}`, { body: text })).body;
      }
      onSaving(false);
      onDone(saved.path, saved);
    } catch (e) {
      onSaving(false);
      const method = version === null ? 'create' : 'update';
      const box = e.status === 412
        ? errorBox({ ...e, message: version === null ? 'A document already exists there.' : 'The document changed since you opened it: cancel to see the new version, then edit again.' })
        : dataError(e, method, target ?? `${collection}/new-id`);
      replace(out, box);
    }
  });
  return form;
}
