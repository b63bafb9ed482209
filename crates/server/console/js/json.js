// JSON read and written exactly, for documents: JSON.parse turns `2.0` into `2` and
// 9007199254740993 into 9007199254740992, but in claimdb `2` is an integer and `2.0` a double,
// and integers are 64-bit. `parse` keeps every number as a `JNum` holding its literal text, and
// makes objects without a prototype (so a field named `__proto__` is just a field); `stringify`
// writes `JNum`s back verbatim.

export class JNum {
  constructor(text) {
    this.text = text;
  }

  /** Written without a fraction or exponent: an integer in claimdb. */
  isInt() {
    return /^-?\d+$/.test(this.text);
  }

  toString() {
    return this.text;
  }
}

const MAX_DEPTH = 512;

/** Parses JSON text; numbers become `JNum`, objects prototype-less. Throws SyntaxError. */
export function parse(text) {
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at position ${i}`);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i += 1;
  };
  const string = () => {
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') i += 1;
      i += 1;
    }
    if (i >= text.length) fail('unterminated string');
    i += 1;
    // The string token alone, through the platform's parser: every escape exactly as JSON says.
    return JSON.parse(text.slice(start, i));
  };
  const value = (depth) => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i += 1;
      const obj = Object.create(null);
      ws();
      if (text[i] === '}') {
        i += 1;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a field name');
        const key = string();
        ws();
        if (text[i] !== ':') fail('expected :');
        i += 1;
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`field ${JSON.stringify(key)} repeated`);
        obj[key] = value(depth + 1);
        ws();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        if (text[i] === '}') {
          i += 1;
          return obj;
        }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i += 1;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i += 1;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i += 1;
          continue;
        }
        if (text[i] === ']') {
          i += 1;
          return arr;
        }
        fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m && m[0] !== '' && m[0] !== '-') {
      i += m[0].length;
      return new JNum(m[0]);
    }
    for (const [word, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    return fail('unexpected character');
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('unexpected text after the value');
  return v;
}

/** Writes a value (with `JNum`s) as JSON; `indent` as JSON.stringify's. */
export function stringify(v, indent = 0) {
  const pad = typeof indent === 'number' ? ' '.repeat(indent) : indent;
  const go = (x, depth) => {
    if (x instanceof JNum) return x.text;
    if (x === null || x === undefined) return 'null';
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) throw new TypeError('not a finite number');
      return String(x);
    }
    if (typeof x === 'boolean' || typeof x === 'string') return JSON.stringify(x);
    const inner = pad ? `\n${pad.repeat(depth + 1)}` : '';
    const close = pad ? `\n${pad.repeat(depth)}` : '';
    const sep = pad ? ': ' : ':';
    if (Array.isArray(x)) {
      if (x.length === 0) return '[]';
      return `[${x.map((e) => inner + go(e, depth + 1)).join(',')}${close}]`;
    }
    const keys = Object.keys(x);
    if (keys.length === 0) return '{}';
    return `{${keys.map((k) => `${inner}${JSON.stringify(k)}${sep}${go(x[k], depth + 1)}`).join(',')}${close}}`;
  };
  return go(v, 0);
}

/** Bytes of a string in UTF-8. */
export function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}
