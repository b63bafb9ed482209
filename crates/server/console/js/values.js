// Document values with their types, as README "Documents on the wire" defines them: plain JSON
// plus single-key `$` objects — {"$timestamp": "…"}, {"$bytes": "<base64>"}, {"$ref": "c/d"},
// {"$geo": [lat, lng]}, {"$double": "NaN"} — where `2` is an integer and `2.0` a double.
//
// A value in the editor is a node `{type, value}`:
//   null → null; boolean → true/false; integer, double → the number's text; string, timestamp,
//   bytes (base64), reference (a document path) → text; geopoint → [lat text, lng text];
//   array → [node, …]; map → [[name, node], …]; serverTimestamp → true (a write transform).
// `fromWire` reads the wire form (parsed by json.js, numbers exact), `toWire` writes it back and
// throws `ValueError` naming the field when an input cannot be that type.

import { h, uid } from './dom.js';
import { JNum } from './json.js';

export const TYPES = [
  ['string', 'string'],
  ['integer', 'integer'],
  ['double', 'double'],
  ['boolean', 'boolean'],
  ['null', 'null'],
  ['timestamp', 'timestamp'],
  ['bytes', 'bytes (base64)'],
  ['reference', 'reference'],
  ['geopoint', 'geo point'],
  ['array', 'array'],
  ['map', 'map'],
  ['serverTimestamp', 'server timestamp (set on save)'],
];

export class ValueError extends Error {}

const INT_MIN = -(2n ** 63n);
const INT_MAX = 2n ** 63n - 1n;

export function fromWire(v) {
  if (v === null || v === undefined) return { type: 'null', value: null };
  if (typeof v === 'boolean') return { type: 'boolean', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (v instanceof JNum) return { type: v.isInt() ? 'integer' : 'double', value: v.text };
  if (typeof v === 'number') return { type: Number.isInteger(v) ? 'integer' : 'double', value: String(v) };
  if (Array.isArray(v)) return { type: 'array', value: v.map(fromWire) };
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0].startsWith('$')) {
    const inner = v[keys[0]];
    switch (keys[0]) {
      case '$timestamp': return { type: 'timestamp', value: String(inner) };
      case '$bytes': return { type: 'bytes', value: String(inner) };
      case '$ref': return { type: 'reference', value: String(inner) };
      case '$geo': return { type: 'geopoint', value: [String(inner?.[0] ?? ''), String(inner?.[1] ?? '')] };
      case '$double': return { type: 'double', value: String(inner) };
      case '$serverTimestamp': return { type: 'serverTimestamp', value: true };
      default: break;
    }
  }
  return { type: 'map', value: keys.map((k) => [k, fromWire(v[k])]) };
}

/** A document's data (an object) as a map node. */
export function documentNode(data) {
  return fromWire(data ?? Object.create(null));
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function number(text, where, what) {
  const t = String(text).trim();
  if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(t)) throw new ValueError(`${where}: ${JSON.stringify(text)} is not ${what}`);
  return t;
}

export function toWire(node, where = 'value') {
  const { type, value } = node;
  switch (type) {
    case 'null': return null;
    case 'boolean': return Boolean(value);
    case 'string': return String(value);
    case 'integer': {
      const t = String(value).trim();
      if (!/^-?\d+$/.test(t)) throw new ValueError(`${where}: ${JSON.stringify(value)} is not an integer`);
      const n = BigInt(t);
      if (n < INT_MIN || n > INT_MAX) throw new ValueError(`${where}: ${t} does not fit a 64-bit integer`);
      return new JNum(n.toString());
    }
    case 'double': {
      const t = String(value).trim();
      if (['NaN', 'Infinity', '-Infinity'].includes(t)) return { $double: t };
      const n = number(t, where, 'a number');
      if (!Number.isFinite(Number(n))) throw new ValueError(`${where}: ${t} is too large for a double`);
      // A double keeps a fraction or an exponent on the wire.
      return new JNum(/[.eE]/.test(n) ? n : `${n}.0`);
    }
    case 'timestamp': {
      const t = String(value).trim();
      if (!TIMESTAMP.test(t)) throw new ValueError(`${where}: ${JSON.stringify(value)} is not an RFC 3339 time such as 2026-01-01T00:00:00Z`);
      return { $timestamp: t };
    }
    case 'bytes': {
      const t = String(value).replace(/\s+/g, '');
      if (!BASE64.test(t) || t.length % 4 !== 0) throw new ValueError(`${where}: not base64 (standard alphabet, padded)`);
      return { $bytes: t };
    }
    case 'reference': {
      const t = String(value).trim().replace(/^\/+|\/+$/g, '');
      if (!t || t.split('/').length % 2 !== 0) throw new ValueError(`${where}: a reference names a document (collection/id, …)`);
      return { $ref: t };
    }
    case 'geopoint': {
      const lat = number(value[0], `${where} latitude`, 'a number');
      const lng = number(value[1], `${where} longitude`, 'a number');
      if (Math.abs(Number(lat)) > 90) throw new ValueError(`${where}: latitude must be between -90 and 90`);
      if (Math.abs(Number(lng)) > 180) throw new ValueError(`${where}: longitude must be between -180 and 180`);
      const dbl = (t) => new JNum(/[.eE]/.test(t) ? t : `${t}.0`);
      return { $geo: [dbl(lat), dbl(lng)] };
    }
    case 'array': return value.map((n, i) => toWire(n, `${where}[${i}]`));
    case 'map': {
      const out = Object.create(null);
      for (const [k, n] of value) {
        const name = `${where === 'value' ? '' : `${where}.`}${k}`;
        if (k === '') throw new ValueError(`${where}: a field has no name`);
        if (k.startsWith('$')) throw new ValueError(`${name}: field names may not start with $`);
        if (Object.prototype.hasOwnProperty.call(out, k)) throw new ValueError(`${name}: this field appears twice`);
        out[k] = toWire(n, name);
      }
      return out;
    }
    case 'serverTimestamp': return { $serverTimestamp: true };
    default: throw new ValueError(`${where}: unknown type ${type}`);
  }
}

/** A fresh node of `type`, keeping what can be kept of `old`. */
export function convert(old, type) {
  const text = ['string', 'integer', 'double', 'timestamp', 'bytes', 'reference'].includes(old?.type) ? String(old.value) : '';
  switch (type) {
    case 'null': return { type, value: null };
    case 'boolean': return { type, value: false };
    case 'integer': return { type, value: /^-?\d+$/.test(text) ? text : '0' };
    case 'double': return { type, value: text && !Number.isNaN(Number(text)) ? text : '0.0' };
    case 'timestamp': return { type, value: TIMESTAMP.test(text) ? text : new Date().toISOString() };
    case 'geopoint': return { type, value: ['0.0', '0.0'] };
    case 'array': return { type, value: [] };
    case 'map': return { type, value: [] };
    case 'serverTimestamp': return { type, value: true };
    default: return { type, value: text };
  }
}

// ---------------------------------------------------------------------------------------------
// Showing values.

function typeBadge(type) {
  const label = TYPES.find(([t]) => t === type)?.[1] ?? type;
  return h('span', { class: `type type-${type}` }, label.replace(' (base64)', '').replace(' (set on save)', ''));
}

/** A read-only view: a definition list of fields with their types, nested. */
export function view(node) {
  if (node.type === 'map') {
    if (node.value.length === 0) return h('span', { class: 'muted' }, '{} (no fields)');
    return h('dl', { class: 'fields' }, node.value.map(([k, n]) => [
      h('dt', {}, h('span', { class: 'fname' }, k), ' ', typeBadge(n.type)),
      h('dd', {}, view(n)),
    ]));
  }
  if (node.type === 'array') {
    if (node.value.length === 0) return h('span', { class: 'muted' }, '[] (empty)');
    return h('ol', { class: 'array', start: 0 }, node.value.map((n) => h('li', {}, typeBadge(n.type), ' ', view(n))));
  }
  if (node.type === 'null') return h('span', { class: 'muted' }, 'null');
  if (node.type === 'boolean') return h('code', {}, String(node.value));
  if (node.type === 'geopoint') return h('code', {}, `${node.value[0]}, ${node.value[1]}`);
  if (node.type === 'reference') return h('a', { href: `#/documents/${node.value}` }, node.value);
  if (node.type === 'serverTimestamp') return h('span', { class: 'muted' }, 'server time');
  if (node.type === 'string') return h('span', { class: 'str' }, node.value);
  return h('code', {}, String(node.value));
}

// ---------------------------------------------------------------------------------------------
// Editing values: a type selector and the inputs of that type, nested for maps and arrays.
// Every control has a label naming its field, so the form reads well with a screen reader.

function typeSelect(node, name, onType, allowTransforms) {
  const id = uid('type');
  const select = h('select', { id, 'aria-label': `type of ${name}`, class: 'type-select' },
    TYPES.filter(([t]) => allowTransforms || t !== 'serverTimestamp')
      .map(([t, label]) => h('option', { value: t, selected: t === node.type }, label)));
  select.addEventListener('change', () => onType(select.value));
  return select;
}

/**
 * An editor for `node` (mutated in place) named `name` for labels. `allowTransforms`: offer the
 * server timestamp. Returns an element.
 */
export function editor(node, name, allowTransforms = true) {
  const box = h('div', { class: 'value-editor' });
  const render = () => {
    box.replaceChildren(typeSelect(node, name, (t) => {
      Object.assign(node, convert(node, t));
      render();
      box.querySelector('select')?.focus();
    }, allowTransforms), inputs());
  };
  const inputs = () => {
    switch (node.type) {
      case 'null':
      case 'serverTimestamp':
        return h('span', { class: 'muted' }, node.type === 'null' ? 'null' : 'the commit time');
      case 'boolean': {
        const sel = h('select', { 'aria-label': `value of ${name}` },
          h('option', { value: 'true', selected: node.value === true }, 'true'),
          h('option', { value: 'false', selected: node.value !== true }, 'false'));
        sel.addEventListener('change', () => { node.value = sel.value === 'true'; });
        return sel;
      }
      case 'geopoint': {
        const lat = h('input', { type: 'text', inputmode: 'decimal', value: node.value[0], 'aria-label': `latitude of ${name}`, size: 10 });
        const lng = h('input', { type: 'text', inputmode: 'decimal', value: node.value[1], 'aria-label': `longitude of ${name}`, size: 10 });
        lat.addEventListener('input', () => { node.value[0] = lat.value; });
        lng.addEventListener('input', () => { node.value[1] = lng.value; });
        return h('span', { class: 'geo' }, 'lat ', lat, ' lng ', lng);
      }
      case 'array': return arrayEditor(node, name, allowTransforms);
      case 'map': return mapEditor(node, name, allowTransforms);
      default: {
        const multiline = node.type === 'string' && String(node.value).includes('\n');
        const attrs = { 'aria-label': `value of ${name}`, value: node.value, spellcheck: node.type === 'string' ? 'true' : 'false' };
        if (node.type === 'integer' || node.type === 'double') attrs.inputmode = 'decimal';
        if (node.type === 'timestamp') attrs.placeholder = '2026-01-01T00:00:00.000000Z';
        if (node.type === 'reference') attrs.placeholder = 'collection/document';
        const input = multiline ? h('textarea', { ...attrs, rows: 3 }) : h('input', { type: 'text', ...attrs });
        input.addEventListener('input', () => { node.value = input.value; });
        return input;
      }
    }
  };
  render();
  return box;
}

/** The editor of a whole document: its fields (the top level is always a map). */
export function documentEditor(node) {
  return mapEditor(node, 'document', true);
}

function arrayEditor(node, name, allowTransforms) {
  const list = h('ol', { class: 'array-editor', start: 0 });
  const render = () => {
    list.replaceChildren(...node.value.map((n, i) => h('li', {},
      editor(n, `${name}[${i}]`, false),
      h('button', { type: 'button', class: 'small', 'aria-label': `remove ${name}[${i}]`, onclick: () => { node.value.splice(i, 1); render(); } }, 'Remove'))));
  };
  render();
  return h('div', { class: 'nested' }, list,
    h('button', { type: 'button', class: 'small', onclick: () => { node.value.push({ type: 'string', value: '' }); render(); list.querySelector('li:last-child input, li:last-child select')?.focus(); } }, `Add element to ${name}`));
}

function mapEditor(node, name, allowTransforms) {
  const rows = h('div', { class: 'map-editor' });
  const render = () => {
    rows.replaceChildren(...node.value.map((entry, i) => {
      const fieldName = () => (name === 'document' ? entry[0] || `field ${i + 1}` : `${name}.${entry[0] || i + 1}`);
      const key = h('input', { type: 'text', value: entry[0], class: 'fname-input', 'aria-label': `name of field ${i + 1}${name === 'document' ? '' : ` in ${name}`}`, placeholder: 'field name', spellcheck: 'false' });
      key.addEventListener('input', () => { entry[0] = key.value; });
      return h('div', { class: 'map-row' },
        key,
        editor(entry[1], fieldName(), allowTransforms),
        h('button', { type: 'button', class: 'small', 'aria-label': `remove field ${fieldName()}`, onclick: () => { node.value.splice(i, 1); render(); } }, 'Remove'));
    }));
  };
  render();
  return h('div', { class: 'nested' }, rows,
    h('button', { type: 'button', class: 'small', onclick: () => { node.value.push(['', { type: 'string', value: '' }]); render(); rows.querySelector('.map-row:last-child .fname-input')?.focus(); } },
      name === 'document' ? 'Add field' : `Add field to ${name}`));
}
