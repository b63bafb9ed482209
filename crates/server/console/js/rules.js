// Rules: the active rules and where they are managed, an editor whose draft is checked
// (POST /v1/admin/rules/check: errors at line and column) and published (PUT /v1/admin/rules,
// a new stored version in force at once), the stored versions with rollback, and a test runner
// for rules test files with coverage (POST /v1/admin/rules/test). The draft is kept in this tab
// so the playground can try it before it is published.
//
// Routes: #/rules (editor), #/rules/versions, #/rules/tests.

import * as api from './api.js';
import { h, replace, field, errorBox, statusLine, confirmButton } from './dom.js';

const DRAFT = 'claimdb.console.rulesDraft';

export function draft() {
  return sessionStorage.getItem(DRAFT);
}

function setDraft(text) {
  sessionStorage.setItem(DRAFT, text);
}

/** A source listing with line numbers; `marks` maps a line to a class and a note. */
export function listing(source, marks = new Map()) {
  return h('ol', { class: 'listing' }, source.split('\n').map((line, i) => {
    const m = marks.get(i + 1);
    return h('li', { class: m ? `mark ${m.kind}` : null, value: i + 1 },
      h('code', {}, line || ' '),
      m ? h('span', { class: 'note' }, m.note) : null);
  }));
}

/** The UTF-16 offset of 1-based `line`, `column` (in characters) in `text`. */
function offsetOf(text, line, column) {
  let offset = 0;
  for (let l = 1; l < line; l += 1) {
    const next = text.indexOf('\n', offset);
    if (next < 0) return text.length;
    offset = next + 1;
  }
  let col = 1;
  while (col < column && offset < text.length && text[offset] !== '\n') {
    offset += text.codePointAt(offset) > 0xffff ? 2 : 1;
    col += 1;
  }
  return offset;
}

function diagnostics(list, kind, textarea) {
  return h('ul', { class: `diagnostics ${kind}` }, list.map((d) => h('li', {},
    h('button', {
      type: 'button',
      class: 'link',
      onclick: () => {
        const at = offsetOf(textarea.value, d.line, d.column);
        textarea.focus();
        textarea.setSelectionRange(at, at + Math.max(1, d.width ?? 1));
      },
    }, `line ${d.line}:${d.column}`),
    ` ${kind}: ${d.message}`,
    h('pre', { class: 'caret' }, `${d.source_line}\n${' '.repeat(Math.max(0, d.column - 1))}${'^'.repeat(Math.max(1, d.width ?? 1))}`))));
}

function tabs(current) {
  const tab = (href, name, label) => h('a', { href, 'aria-current': current === name ? 'page' : null }, label);
  return h('nav', { class: 'tabs', 'aria-label': 'Rules' },
    tab('#/rules', 'editor', 'Editor'),
    tab('#/rules/versions', 'versions', 'Versions'),
    tab('#/rules/tests', 'tests', 'Tests'),
    h('a', { href: '#/playground' }, 'Playground'));
}

export async function render(container, route) {
  const sub = route.rest || 'editor';
  if (sub === 'versions') return versions(container);
  if (sub === 'tests') return tests(container);
  return editorPage(container);
}

async function editorPage(container) {
  const active = await api.admin('GET', '/v1/admin/rules');
  const fromFile = active.managed_in === 'file';
  const text = h('textarea', { rows: 24, spellcheck: 'false', class: 'mono code', wrap: 'off' });
  text.value = draft() ?? active.source;
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const numbers = () => {
    const n = text.value.split('\n').length;
    gutter.textContent = Array.from({ length: n }, (_, i) => String(i + 1)).join('\n');
  };
  numbers();
  text.addEventListener('input', () => { setDraft(text.value); numbers(); });
  text.addEventListener('scroll', () => { gutter.scrollTop = text.scrollTop; });
  const problems = h('div', { 'aria-live': 'polite' });
  const status = statusLine();
  const check = async () => {
    const r = await api.admin('POST', '/v1/admin/rules/check', { body: { source: text.value } });
    replace(problems,
      r.errors.length ? [h('h2', {}, `${r.errors.length} error${r.errors.length === 1 ? '' : 's'}`), diagnostics(r.errors, 'error', text)] : null,
      r.warnings.length ? [h('h2', {}, `${r.warnings.length} warning${r.warnings.length === 1 ? '' : 's'}`), diagnostics(r.warnings, 'warning', text)] : null);
    return r;
  };
  const checkButton = h('button', { type: 'button', onclick: async () => {
    try {
      const r = await check();
      status.show(r.ok ? `Compiles: ${r.allow_statements} allow statement${r.allow_statements === 1 ? '' : 's'}.` : 'Does not compile; nothing was published.', r.ok ? 'ok' : 'error');
    } catch (e) {
      replace(problems, errorBox(e));
    }
  } }, 'Check');
  const publish = h('button', { type: 'button', class: 'primary', disabled: fromFile, onclick: async () => {
    try {
      const r = await check();
      if (!r.ok) {
        status.show('Not published: the rules do not compile (see the errors below).', 'error');
        problems.querySelector('button')?.focus();
        return;
      }
      const stored = await api.admin('PUT', '/v1/admin/rules', { body: { source: text.value } });
      sessionStorage.removeItem(DRAFT);
      status.show(`Published: version ${stored.version} is in force.`, 'ok');
      replace(origin, `In force: ${`rules v${stored.version}`} (managed in the database).`);
    } catch (e) {
      replace(problems, errorBox(e));
      status.show('Not published.', 'error');
    }
  } }, 'Publish');
  const revert = h('button', { type: 'button', onclick: async () => {
    const now = await api.admin('GET', '/v1/admin/rules');
    text.value = now.source;
    sessionStorage.removeItem(DRAFT);
    numbers();
    replace(problems);
    status.show('The editor shows the rules in force.');
  } }, 'Discard draft');
  const origin = h('p', {}, `In force: ${active.origin} (managed in ${active.managed_in === 'file' ? 'a rules file' : 'the database'}).`);
  const editorId = 'rules-source';
  text.id = editorId;
  replace(container,
    h('h1', {}, 'Rules'),
    tabs('editor'),
    origin,
    fromFile ? h('p', { class: 'status warn' }, 'Rules come from a file on this server: edit the file (it is reloaded when it changes). Publishing here is refused.') : null,
    h('label', { for: editorId }, 'Rules source (Firestore Security Rules)'),
    h('div', { class: 'code-editor' }, gutter, text),
    h('div', { class: 'actions' }, checkButton, publish, revert, h('a', { href: '#/playground?draft=1' }, 'Try the draft in the playground')),
    status,
    problems);
  return null;
}

async function versions(container) {
  const list = h('tbody');
  const shown = h('div');
  const more = h('button', { type: 'button', hidden: true }, 'Older versions');
  let before = null;
  const load = async () => {
    const page = await api.admin('GET', `/v1/admin/rules/versions?limit=20${before ? `&before=${before}` : ''}`);
    for (const v of page.versions) {
      list.append(h('tr', {},
        h('td', {}, String(v.version)),
        h('td', {}, v.created),
        h('td', {}, v.author ?? ''),
        h('td', {}, String(v.bytes)),
        h('td', {},
          h('button', { type: 'button', class: 'small', onclick: () => showVersion(v.version) }, `View v${v.version}`), ' ',
          confirmButton(`Roll back to v${v.version}`, `Really make v${v.version}'s rules the rules in force?`, async () => {
            try {
              const r = await api.admin('POST', '/v1/admin/rules/rollback', { body: { version: v.version } });
              replace(shown, h('p', { class: 'status ok', role: 'status' }, `Version ${v.version}'s rules are in force again, as version ${r.version}.`));
            } catch (e) {
              replace(shown, errorBox(e));
            }
          }, { class: 'small danger' }))));
    }
    before = page.next_before;
    more.hidden = !before;
  };
  const showVersion = async (v) => {
    try {
      const r = await api.admin('GET', `/v1/admin/rules/versions/${v}`);
      replace(shown, h('h2', {}, `Version ${v}`),
        h('div', { class: 'actions' }, h('button', { type: 'button', onclick: () => { setDraft(r.source); location.hash = '#/rules'; } }, 'Open in the editor')),
        listing(r.source));
    } catch (e) {
      replace(shown, errorBox(e));
    }
  };
  more.addEventListener('click', () => load().catch((e) => replace(shown, errorBox(e))));
  replace(container, h('h1', {}, 'Rules'), tabs('versions'),
    h('table', { class: 'grid' },
      h('caption', {}, 'Stored versions, newest first'),
      h('thead', {}, h('tr', {}, ['Version', 'Created', 'Author', 'Bytes', ''].map((c) => h('th', { scope: 'col' }, c)))),
      list),
    more, shown);
  try {
    await load();
  } catch (e) {
    replace(shown, errorBox(e));
  }
  return null;
}

const EXAMPLE_CASES = `cases:
  - name: signed-in users read notes
    auth: {uid: alice, token: {}}
    method: get
    path: notes/n1
    expect: allow
  - name: nobody else does
    auth: null
    method: get
    path: notes/n1
    expect: deny
`;

async function tests(container) {
  const text = h('textarea', { rows: 16, spellcheck: 'false', class: 'mono code' });
  text.value = sessionStorage.getItem('claimdb.console.cases') ?? EXAMPLE_CASES;
  text.addEventListener('input', () => sessionStorage.setItem('claimdb.console.cases', text.value));
  const [textField] = field('Test cases (YAML or JSON, the format of claimdb rules test)', text);
  const file = h('input', { type: 'file', accept: '.yaml,.yml,.json,text/yaml,application/json' });
  const [fileField] = field('Or load a case file', file);
  file.addEventListener('change', async () => {
    if (file.files?.[0]) {
      text.value = await file.files[0].text();
      sessionStorage.setItem('claimdb.console.cases', text.value);
    }
  });
  const useDraft = h('input', { type: 'checkbox', checked: draft() !== null });
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'card' }, textField, fileField,
    h('label', { class: 'check' }, useDraft, ' Test the draft in the editor (otherwise the rules in force)'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Run tests')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out, h('p', { class: 'muted' }, 'Running…'));
    const body = { cases: text.value };
    if (useDraft.checked && draft() !== null) body.source = draft();
    try {
      const r = await api.admin('POST', '/v1/admin/rules/test', { body });
      replace(out,
        h('p', { class: `status ${r.all_passed ? 'ok' : 'error'}`, role: 'status' }, `${r.passed} passed, ${r.failed} failed (rules: ${r.rules})`),
        h('table', { class: 'grid' },
          h('caption', {}, 'Cases'),
          h('thead', {}, h('tr', {}, ['', 'Case', 'Expected', 'Decision', 'Why'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, r.cases.map((c) => h('tr', { class: c.passed ? 'pass' : 'fail' },
            h('td', {}, c.passed ? 'ok' : 'FAIL'),
            h('td', {}, c.name),
            h('td', {}, c.expect),
            h('td', {}, c.decision),
            h('td', {}, c.decision === 'allow' ? (c.granted_by_line ? `granted at line ${c.granted_by_line}` : '') : h('pre', { class: 'explanation' }, c.explanation)))))),
        h('table', { class: 'grid' },
          h('caption', {}, 'Coverage of allow statements'),
          h('thead', {}, h('tr', {}, ['Line', 'Match', 'Allow', 'Condition', 'Seen', ''].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, r.coverage.map((c) => h('tr', { class: c.complete ? 'pass' : 'fail' },
            h('td', {}, String(c.line)),
            h('td', {}, h('code', {}, c.pattern)),
            h('td', {}, c.methods),
            h('td', {}, h('code', {}, c.condition ?? '(always)')),
            h('td', {}, [c.ever_true && 'true', c.ever_false && 'false', c.ever_error && 'error'].filter(Boolean).join(', ') || 'never evaluated'),
            h('td', {}, c.complete ? 'covered' : 'not covered'))))),
        h('details', {}, h('summary', {}, 'Report as claimdb rules test prints it'), h('pre', {}, r.report)));
    } catch (e) {
      replace(out, errorBox(e));
    }
  });
  replace(container, h('h1', {}, 'Rules'), tabs('tests'), form, out);
  return null;
}
