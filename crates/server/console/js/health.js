// Health: GET /v1/admin/status shown for a person — readiness, version and uptime, the store,
// the rules in force, each identity provider's keys (ids, age, last fetch error, fetch counts),
// claimdb's own signing keys and their rotation, the audit log and the token cache.

import * as api from './api.js';
import { h, replace, errorBox, bytes, duration } from './dom.js';

function rows(pairs) {
  return h('dl', { class: 'meta' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '–')]));
}

export async function render(container) {
  const body = h('div', { class: 'health' });
  const refresh = h('button', { type: 'button', onclick: () => load() }, 'Refresh');
  replace(container, h('h1', {}, 'Health'), refresh, body);
  const load = async () => {
    try {
      const s = await api.admin('GET', '/v1/admin/status');
      replace(body, view(s));
    } catch (e) {
      replace(body, errorBox(e));
    }
  };
  await load();
  return null;
}

function view(s) {
  const providers = s.providers ?? [];
  const issuer = s.issuer;
  return [
    h('section', { class: 'card', 'aria-labelledby': 'h-server' },
      h('h2', { id: 'h-server' }, 'Server'),
      h('p', { class: `decision ${s.ready ? 'allowed' : 'denied'}` }, s.ready ? 'Ready' : `Not ready: ${s.not_ready_reason}`),
      rows([
        ['version', s.version],
        ['started', s.started],
        ['uptime', duration(s.uptime_secs)],
        ['Firestore project', s.firestore_project],
        s.emulator ? ['emulator mode', 'on (rules bypass with Bearer owner)'] : null,
      ])),
    h('section', { class: 'card', 'aria-labelledby': 'h-store' },
      h('h2', { id: 'h-store' }, 'Store'),
      rows([
        ['storage', s.store?.description],
        ['answers', s.store?.ok ? 'yes' : `no: ${s.store?.error}`],
        ['shared by several nodes', s.store?.shared_across_nodes ? 'yes (PostgreSQL)' : 'no'],
        ['audit journal in the store', s.store?.journal ? 'yes' : 'no'],
      ])),
    h('section', { class: 'card', 'aria-labelledby': 'h-rules' },
      h('h2', { id: 'h-rules' }, 'Rules'),
      rows([
        ['in force', s.rules?.origin],
        ['managed in', s.rules?.managed_in],
        ['version', s.rules?.version !== null && s.rules?.version !== undefined ? String(s.rules.version) : '–'],
      ]),
      h('a', { href: '#/rules' }, 'Open the rules')),
    h('section', { class: 'card wide', 'aria-labelledby': 'h-providers' },
      h('h2', { id: 'h-providers' }, 'Identity providers'),
      providers.length === 0 ? h('p', { class: 'muted' }, 'None configured.') : h('table', { class: 'grid' },
        h('caption', {}, 'Keys of every provider whose tokens are accepted'),
        h('thead', {}, h('tr', {}, ['Name', 'Issuer', 'Keys from', 'Key ids', 'Key age', 'Last fetch error', 'Fetches (failed)', 'Algorithms'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, providers.map((p) => h('tr', { class: p.last_error ? 'fail' : null },
          h('td', {}, p.name),
          h('td', {}, h('code', {}, p.issuer)),
          h('td', {}, h('code', {}, p.keys_from)),
          h('td', {}, (p.key_ids ?? []).length ? h('ul', { class: 'plain' }, p.key_ids.map((k) => h('li', {}, h('code', {}, k)))) : `${p.keys ?? 0} key(s)`),
          h('td', {}, p.key_age_secs === null || p.key_age_secs === undefined ? '–' : duration(p.key_age_secs), p.loaded_from_persistence ? ' (from the stored copy)' : ''),
          h('td', {}, p.last_error ?? 'none'),
          h('td', {}, `${p.fetches ?? 0} (${p.fetch_failures ?? 0})`),
          h('td', {}, (p.algorithms ?? []).join(', '))))))),
    issuer ? h('section', { class: 'card wide', 'aria-labelledby': 'h-issuer' },
      h('h2', { id: 'h-issuer' }, 'claimdb\'s issuer'),
      rows([
        ['issuer (iss)', issuer.issuer],
        ['algorithm for new keys', issuer.algorithm],
        ['scheduled rotation', issuer.rotate_after_days ? `every ${issuer.rotate_after_days} days` : 'off (claimdb token rotate-keys)'],
        ['token lifetime', duration(issuer.token_ttl_secs)],
        ['login providers', (issuer.login_providers ?? []).join(', ') || 'none'],
      ]),
      Array.isArray(issuer.keys) ? h('table', { class: 'grid' },
        h('caption', {}, 'Signing keys (published at /.well-known/jwks.json)'),
        h('thead', {}, h('tr', {}, ['Key id', 'Algorithm', 'State', 'Created', 'Retired', 'Leaves the JWKS'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, issuer.keys.map((k) => h('tr', {},
          h('td', {}, h('code', {}, k.kid)),
          h('td', {}, k.alg),
          h('td', {}, k.active ? 'active' : 'retired'),
          h('td', {}, k.created ?? '–'),
          h('td', {}, k.retired ?? '–'),
          h('td', {}, k.unpublished_at ?? '–'))))) : errorBox({ message: issuer.keys?.error ?? 'keys unavailable' })) : null,
    s.audit ? h('section', { class: 'card', 'aria-labelledby': 'h-audit' },
      h('h2', { id: 'h-audit' }, 'Audit log'),
      rows([
        ['healthy', s.audit.healthy ? 'yes' : 'NO: writes are failing'],
        ['events written', String(s.audit.events_written)],
        ['events failed', String(s.audit.events_failed)],
        ['queued', String(s.audit.queue_depth)],
        ['kept', `${bytes(s.audit.retained_bytes)} in ${s.audit.retained_files} file(s), of at most ${bytes(s.audit.max_bytes)}`],
        ['oldest event', s.audit.oldest_event],
        ['kept for', s.audit.max_age_days ? `${s.audit.max_age_days} days` : 'any age'],
      ])) : h('section', { class: 'card' }, h('h2', {}, 'Audit log'), h('p', {}, 'Off on this server (audit = false).')),
    s.token_cache ? h('section', { class: 'card', 'aria-labelledby': 'h-cache' },
      h('h2', { id: 'h-cache' }, 'Verified-token cache'),
      rows([['tokens', String(s.token_cache.entries)], ['memory', bytes(s.token_cache.bytes)]])) : null,
  ];
}
