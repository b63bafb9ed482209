// The console's shell: signing in (the admin key, or a login session whose user has an admin
// role), signing out, the navigation and the hash router (#/documents/…, #/rules, …). Each page
// module exports `render(container, params)`, which may return a function that stops what the
// page started (live listeners) when another page is shown.

import * as api from './api.js';
import { h, replace, field, errorBox } from './dom.js';

const pages = {
  documents: () => import('./documents.js'),
  query: () => import('./query.js'),
  rules: () => import('./rules.js'),
  playground: () => import('./playground.js'),
  users: () => import('./users.js'),
  audit: () => import('./audit.js'),
  health: () => import('./health.js'),
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
let stopPage = null;
let rendering = 0;

/** `#/name/rest?a=b` → { name, rest, params }. */
function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart] = hash.split('?');
  const [name, ...rest] = pathPart.split('/');
  return {
    name: pages[name] ? name : 'documents',
    rest: rest.map(decodeURIComponent).join('/'),
    params: new URLSearchParams(queryPart ?? ''),
  };
}

async function show() {
  const r = route();
  const mine = ++rendering;
  if (stopPage) {
    try { stopPage(); } catch { /* already stopped */ }
    stopPage = null;
  }
  for (const a of nav.querySelectorAll('a')) {
    if (a.getAttribute('href') === `#/${r.name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const container = h('div', { class: `page page-${r.name}` });
  replace(main, container);
  document.title = `${r.name[0].toUpperCase()}${r.name.slice(1)} · claimdb console`;
  try {
    const module = await pages[r.name]();
    if (mine !== rendering) return;
    const stop = await module.render(container, r);
    if (mine !== rendering) {
      if (typeof stop === 'function') stop();
      return;
    }
    stopPage = typeof stop === 'function' ? stop : null;
  } catch (e) {
    if (mine === rendering) container.append(errorBox(e));
  }
}

let lastPage = null;
function onHashChange() {
  const r = route();
  // Pages that keep their own state in the hash (documents' path) re-render; focus moves to the
  // content only when the section changes, so keyboard users are not thrown around.
  show().then(() => {
    if (lastPage !== r.name) main.focus({ preventScroll: true });
    lastPage = r.name;
  });
}

function showSignedIn() {
  const s = api.session();
  nav.hidden = false;
  const label = s.mode === 'key'
    ? 'Signed in with the admin key'
    : `Signed in as ${s.me?.uid ?? '?'} (login session)`;
  replace(who, h('span', { class: 'muted' }, label), ' ',
    h('button', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'));
  window.addEventListener('hashchange', onHashChange);
  if (!location.hash || location.hash === '#' || location.hash === '#signin') location.hash = '#/documents';
  else onHashChange();
}

async function signOut() {
  window.removeEventListener('hashchange', onHashChange);
  if (stopPage) {
    stopPage();
    stopPage = null;
  }
  await api.signOut();
  nav.hidden = true;
  replace(who);
  history.replaceState(null, '', '#signin');
  showSignIn('You are signed out.');
}

function showSignIn(notice) {
  const key = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const [keyField] = field('Admin key', key, 'The admin_key of the configuration (or the generated key claimdb printed at first start). It is kept in this tab only (sessionStorage) and sent as X-Claimdb-Admin-Key.');
  const out = h('div', { 'aria-live': 'assertive' });
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sign in to the claimdb console'),
    notice ? h('p', { class: 'status info', role: 'status' }, notice) : null,
    keyField,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in with the admin key'),
    out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out, h('p', { class: 'muted' }, 'Checking…'));
    try {
      await api.signInWithKey(key.value.trim());
      replace(out);
      showSignedIn();
    } catch (e) {
      replace(out, errorBox(e));
      key.focus();
    }
  });
  const sessionBox = h('div', { class: 'card signin' },
    h('h2', {}, 'Or use a login session'),
    h('p', {}, 'A user who signed in through one of claimdb\'s login providers and holds one of the admin_roles may use the console with the session cookie. To come back here after the login, ',
      h('code', {}, `${location.origin}/console/`), ' must be listed in app_redirects.'),
    h('button', { type: 'button', onclick: async () => {
      replace(out);
      try {
        await api.signInWithSession();
        showSignedIn();
      } catch (e) {
        replace(out, errorBox(e));
      }
    } }, 'Continue with my current session'),
    h('ul', { class: 'providers' }));
  replace(main, form, sessionBox);
  api.loginProviders().then((list) => {
    const ul = sessionBox.querySelector('.providers');
    for (const p of list) {
      ul.append(h('li', {}, h('button', { type: 'button', onclick: () => api.startLogin(p) }, `Sign in through ${p}`)));
    }
  });
  key.focus();
}

async function boot() {
  try {
    if (await api.resume()) {
      showSignedIn();
      return;
    }
  } catch (e) {
    showSignIn(`Your earlier sign-in no longer works: ${e.message}`);
    return;
  }
  showSignIn();
}

// The skip link moves focus; it must not change the hash the router reads.
document.querySelector('.skip')?.addEventListener('click', (ev) => {
  ev.preventDefault();
  main.focus();
});

boot();
