//! The continuation token of a query (`next_page_token` out, `page_token` back in): the
//! store's [`Position`] where a page ended, tied to the query it came from by a fingerprint
//! (SHA-256 of the query's canonical form), base64url-encoded so that clients treat it as
//! opaque.
//!
//! A token is validated, not signed: a client that edits one can only move where its own query
//! continues — a position narrows the documents a query returns, never widens them, and the
//! rules decide on the query itself (filters, order, limit) on every page, so nothing a token
//! says is trusted for authorization. What is refused is a token that does not parse, belongs
//! to another query, or (checked by the store) does not fit the query's order, offset or limit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use claimdb_model::{FieldPath, Value, key};
use claimdb_store::{Condition, Cursor, Direction, Position, Query, Scope};

use crate::error::EngineError;

/// The format of a token; a different one is refused.
const VERSION: u8 = 1;
/// Bytes of the query's fingerprint kept in a token.
const FINGERPRINT_BYTES: usize = 16;

/// The token that continues `query` at `position`.
pub(crate) fn encode(query: &Query, position: &Position) -> String {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.extend_from_slice(&fingerprint(query));
    put_len(&mut out, position.skipped);
    put_len(&mut out, position.returned);
    put_len(&mut out, position.keys.len());
    for k in &position.keys {
        put_bytes(&mut out, k);
    }
    BASE64URL.encode(out)
}

/// The position a token continues `query` at; refused unless it was made for this query.
pub(crate) fn decode(query: &Query, token: &str) -> Result<Position, EngineError> {
    let bad = || {
        EngineError::invalid_argument(
            "page_token is not valid; pass the next_page_token of the previous page unchanged, \
             together with the same query",
        )
    };
    let bytes = BASE64URL.decode(token.as_bytes()).map_err(|_| bad())?;
    let mut r = Reader(&bytes);
    if r.byte() != Some(VERSION) {
        return Err(bad());
    }
    let print = r.take(FINGERPRINT_BYTES).ok_or_else(bad)?;
    if print != fingerprint(query) {
        return Err(EngineError::invalid_argument(
            "page_token belongs to a different query; a page token continues only the query \
             whose response carried it (same collection, filters, order, cursors, offset and \
             limit)",
        ));
    }
    let skipped = r.len().ok_or_else(bad)?;
    let returned = r.len().ok_or_else(bad)?;
    let n = r.len().ok_or_else(bad)?;
    // Each key takes at least one byte of length: a count beyond what is left is garbage.
    if n > r.0.len() {
        return Err(bad());
    }
    let mut keys = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.len().ok_or_else(bad)?;
        keys.push(r.take(len).ok_or_else(bad)?.to_vec());
    }
    if !r.0.is_empty() {
        return Err(bad());
    }
    Ok(Position {
        keys,
        skipped,
        returned,
    })
}

/// The first bytes of SHA-256 over the query's canonical form: every part that decides its
/// result, each length-prefixed. Values are in the total order's full encoding (not cut to the
/// index-key length), so queries that differ anywhere differ here.
fn fingerprint(query: &Query) -> [u8; FINGERPRINT_BYTES] {
    let mut c = Vec::with_capacity(256);
    match &query.scope {
        Scope::Collection(path) => {
            c.push(0);
            put_bytes(&mut c, path.as_str().as_bytes());
        }
        Scope::Group {
            collection_id,
            under,
        } => {
            c.push(1);
            put_bytes(&mut c, collection_id.as_bytes());
            match under {
                Some(doc) => {
                    c.push(1);
                    put_bytes(&mut c, doc.as_str().as_bytes());
                }
                None => c.push(0),
            }
        }
    }
    put_len(&mut c, query.filters.len());
    for f in &query.filters {
        put_field(&mut c, &f.field);
        put_bytes(&mut c, f.op.as_str().as_bytes());
        put_value(&mut c, &f.value);
    }
    put_condition(&mut c, query.condition.as_ref());
    put_len(&mut c, query.order_by.len());
    for o in &query.order_by {
        put_field(&mut c, &o.field);
        c.push(u8::from(o.direction == Direction::Desc));
    }
    for cursor in [&query.start, &query.end] {
        put_cursor(&mut c, cursor.as_ref());
    }
    put_len(&mut c, query.offset);
    match query.limit {
        Some(l) => {
            c.push(1);
            put_len(&mut c, l);
        }
        None => c.push(0),
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &c);
    let mut out = [0u8; FINGERPRINT_BYTES];
    out.copy_from_slice(&digest.as_ref()[..FINGERPRINT_BYTES]);
    out
}

fn put_condition(c: &mut Vec<u8>, condition: Option<&Condition>) {
    match condition {
        None => c.push(0),
        Some(Condition::Filter(f)) => {
            c.push(1);
            put_field(c, &f.field);
            put_bytes(c, f.op.as_str().as_bytes());
            put_value(c, &f.value);
        }
        Some(Condition::And(children) | Condition::Or(children)) => {
            c.push(if matches!(condition, Some(Condition::And(_))) {
                2
            } else {
                3
            });
            put_len(c, children.len());
            for child in children {
                put_condition(c, Some(child));
            }
        }
    }
}

fn put_cursor(c: &mut Vec<u8>, cursor: Option<&Cursor>) {
    match cursor {
        None => c.push(0),
        Some(cursor) => {
            c.push(if cursor.inclusive { 1 } else { 2 });
            put_len(c, cursor.values.len());
            for v in &cursor.values {
                put_value(c, v);
            }
        }
    }
}

fn put_field(c: &mut Vec<u8>, field: &FieldPath) {
    put_len(c, field.segments().len());
    for s in field.segments() {
        put_bytes(c, s.as_bytes());
    }
}

fn put_value(c: &mut Vec<u8>, value: &Value) {
    put_bytes(c, &key::encode(value));
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// A LEB128 unsigned integer.
fn put_len(out: &mut Vec<u8>, n: usize) {
    let mut n = n as u64;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A LEB128 integer of at most ten bytes that fits a `usize`.
    fn len(&mut self) -> Option<usize> {
        let mut n: u64 = 0;
        for i in 0..10 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return None;
            }
            n |= part << (7 * i);
            if b & 0x80 == 0 {
                return usize::try_from(n).ok();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use claimdb_model::CollectionPath;
    use claimdb_store::{Filter, Op, Order};

    use super::*;

    fn query() -> Query {
        let mut q = Query::collection(CollectionPath::parse("movies").unwrap());
        q.filters.push(Filter {
            field: FieldPath::parse("year").unwrap(),
            op: Op::Ge,
            value: Value::Int(1990),
        });
        q.order_by.push(Order {
            field: FieldPath::single("year"),
            direction: Direction::Desc,
        });
        q.limit = Some(50);
        q
    }

    fn position() -> Position {
        Position {
            keys: vec![key::index_key(&Value::Int(2001)), vec![0x70, 1, 2, 0, 0]],
            skipped: 3,
            returned: 200,
        }
    }

    #[test]
    fn tokens_round_trip_and_are_opaque_text() {
        let q = query();
        let token = encode(&q, &position());
        assert!(!token.contains(['+', '/', '=']), "{token}");
        assert_eq!(decode(&q, &token).unwrap(), position());
        let empty = Position {
            keys: vec![],
            skipped: 0,
            returned: usize::MAX,
        };
        assert_eq!(decode(&q, &encode(&q, &empty)).unwrap(), empty);
    }

    /// A token continues only the query it came from: any change to a part that decides the
    /// result makes it a different query.
    #[test]
    fn a_token_is_refused_for_another_query() {
        let q = query();
        let token = encode(&q, &position());
        let mut others = Vec::new();
        let mut o = q.clone();
        o.filters[0].value = Value::Int(1991);
        others.push(o);
        let mut o = q.clone();
        o.filters[0].op = Op::Gt;
        others.push(o);
        let mut o = q.clone();
        o.order_by[0].direction = Direction::Asc;
        others.push(o);
        // An or, and the same filters under an and instead.
        let leaf = |v: i64| {
            Condition::Filter(Filter {
                field: FieldPath::single("genre"),
                op: Op::Eq,
                value: Value::Int(v),
            })
        };
        let mut o = q.clone();
        o.condition = Some(Condition::Or(vec![leaf(1), leaf(2)]));
        others.push(o.clone());
        o.condition = Some(Condition::And(vec![leaf(1), leaf(2)]));
        others.push(o);
        let mut o = q.clone();
        o.limit = None;
        others.push(o);
        let mut o = q.clone();
        o.offset = 1;
        others.push(o);
        let mut o = q.clone();
        o.start = Some(Cursor {
            values: vec![Value::Int(2000)],
            inclusive: true,
        });
        others.push(o);
        let mut o = q.clone();
        o.scope = Scope::Group {
            collection_id: "movies".into(),
            under: None,
        };
        others.push(o);
        for other in others {
            let e = decode(&other, &token).unwrap_err();
            assert!(e.message().contains("different query"), "{other:?}: {e}");
        }
        // Values equal in the total order (`1990 == 1990.0`) select the same documents: the
        // same query.
        let mut same = q.clone();
        same.filters[0].value = Value::Double(1990.0);
        assert_eq!(decode(&same, &token).unwrap(), position());
    }

    #[test]
    fn garbage_is_refused() {
        let q = query();
        let good = encode(&q, &position());
        let bytes = BASE64URL.decode(&good).unwrap();
        let mut cases: Vec<String> = vec![
            String::new(),
            "!!!".into(),
            BASE64URL.encode([2u8]),
            BASE64URL.encode(&bytes[..bytes.len() - 1]),
            BASE64URL.encode([&bytes[..], &[0]].concat()),
        ];
        // A huge key count with nothing behind it.
        let mut huge = bytes[..1 + FINGERPRINT_BYTES].to_vec();
        put_len(&mut huge, 0);
        put_len(&mut huge, 0);
        put_len(&mut huge, usize::MAX);
        cases.push(BASE64URL.encode(huge));
        // An over-long integer.
        let mut long = bytes[..1 + FINGERPRINT_BYTES].to_vec();
        long.extend([0xff; 11]);
        cases.push(BASE64URL.encode(long));
        for bad in cases {
            let e = decode(&q, &bad).unwrap_err();
            assert_eq!(e.code(), "invalid-argument");
            assert!(
                e.message().contains("page_token is not valid"),
                "{bad}: {e}"
            );
        }
    }
}
