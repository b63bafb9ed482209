// Building the page without innerHTML: `h('button', {onclick}, 'Save')` makes an element, sets
// properties (on*), attributes (everything else; `class` included) and appends children (strings
// become text nodes, null/false are skipped, arrays are flattened). Also the few widgets every
// page uses: a status line read out by screen readers, the error box of the API's error shape,
// and a two-step confirmation button (no window.confirm, which a keyboard user cannot review).

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let ids = 0;
/** A unique id for label/field pairs. */
export function uid(prefix = 'f') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled input, textarea or select: returns [wrapper, control]. */
export function field(label, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  const wrapper = h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('div', { class: 'hint', id: hintId }, hint) : null);
  return [wrapper, control];
}

/** A polite live region for "Saved", "Loading…" and friends. */
export function statusLine() {
  const el = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' });
  el.show = (text, kind = 'info') => {
    el.className = `status ${kind}`;
    el.textContent = text;
  };
  el.clear = () => el.show('');
  return el;
}

/** An error as the API describes it, in an alert box. */
export function errorBox(err) {
  const lines = [];
  const details = err?.details ?? {};
  if (details.explanation) lines.push(h('pre', { class: 'explanation' }, details.explanation));
  else if (details.summary) lines.push(h('p', {}, details.summary));
  return h('div', { class: 'error', role: 'alert' },
    h('strong', {}, err?.code ? `${err.status ?? ''} ${err.code}`.trim() : 'Error'),
    ' ',
    h('span', { class: 'message' }, err?.message ?? String(err)),
    lines);
}

/** A button that asks once more before `action` runs: "Delete" → "Really delete?". */
export function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = false;
  let timer = null;
  const btn = h('button', { type: 'button', class: 'danger', ...attrs }, label);
  const disarm = () => {
    armed = false;
    btn.textContent = label;
    btn.classList.remove('armed');
  };
  btn.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      btn.textContent = confirmLabel;
      btn.classList.add('armed');
      clearTimeout(timer);
      timer = setTimeout(disarm, 6000);
      return;
    }
    clearTimeout(timer);
    disarm();
    await action();
  });
  btn.addEventListener('blur', () => setTimeout(() => { if (document.activeElement !== btn) disarm(); }, 0));
  return btn;
}

/** `n` bytes in words. */
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** Seconds in words: 42 s, 3 min, 5.2 h, 2.1 d. */
export function duration(s) {
  if (s === null || s === undefined) return '–';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** Unix seconds as an RFC 3339 time. */
export function unixTime(secs) {
  if (secs === null || secs === undefined) return '–';
  return new Date(Number(secs) * 1000).toISOString();
}
