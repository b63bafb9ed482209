//! The JWS compact form, decoded only as far as the pre-checks need: size limit, three
//! base64url parts, header and payload as JSON objects parsed strictly (a repeated name at any
//! depth is refused), and the header policy (`alg` never `none`/HMAC/unknown, no `jku`/`x5u`/
//! `jwk`/`x5c`, no `crit`).
//!
//! Signatures are not checked here; `verify` hands the signing input to jsonwebtoken.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::config::Alg;
use crate::error::VerifyError;

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Header parameters that would let a token name its own key; all refused.
const KEY_CHOOSING_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// A token split and decoded, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct Decoded<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `base64url(header) "." base64url(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub signature: &'a str,
}

/// Size, structure and strict JSON; no policy beyond that (an empty signature is the header
/// policy's business, so that `alg: none` is reported as what it is).
pub fn decode(token: &str) -> Result<Decoded<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge {
            size: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let token = token.trim();
    let parts = token.split('.').count();
    if parts == 5 {
        return Err(VerifyError::Malformed(
            "it has five parts: an encrypted token (JWE) is not supported".into(),
        ));
    }
    if parts != 3 {
        return Err(VerifyError::Malformed(format!(
            "a JWT has three parts separated by dots; this has {parts}"
        )));
    }
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| VerifyError::Malformed("missing signature part".into()))?;
    let (h, p) = signing_input
        .split_once('.')
        .ok_or_else(|| VerifyError::Malformed("missing payload part".into()))?;
    let header = object(h, "header")?;
    let claims = object(p, "payload")?;
    Ok(Decoded {
        header,
        claims,
        signing_input,
        signature,
    })
}

/// The header policy that holds for every provider; returns the algorithm.
pub fn check_header(header: &Map<String, Value>) -> Result<Alg, VerifyError> {
    for h in KEY_CHOOSING_HEADERS {
        if header.contains_key(h) {
            return Err(VerifyError::ForbiddenHeader(h.to_owned()));
        }
    }
    if let Some(crit) = header.get("crit") {
        let first = crit
            .as_array()
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .unwrap_or("crit")
            .to_owned();
        return Err(VerifyError::UnsupportedCritical(first));
    }
    let alg = match header.get("alg") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(VerifyError::Malformed(
                "the header's alg is not a string".into(),
            ));
        }
        None => return Err(VerifyError::Malformed("the header has no alg".into())),
    };
    match header.get("kid") {
        None | Some(Value::String(_)) => {}
        Some(_) => {
            return Err(VerifyError::Malformed(
                "the header's kid is not a string".into(),
            ));
        }
    }
    Alg::from_name(alg).ok_or_else(|| VerifyError::AlgorithmNotAllowed {
        alg: alg.to_owned(),
        allowed: Vec::new(),
    })
}

/// The header's `kid`, if any (type-checked by [`check_header`]).
pub fn kid(header: &Map<String, Value>) -> Option<&str> {
    header.get("kid").and_then(Value::as_str)
}

fn object(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| {
        VerifyError::Malformed(format!("the {what} is not base64url without padding: {e}"))
    })?;
    let strict: Strict = serde_json::from_slice(&bytes).map_err(|e| {
        if let Some(name) = e.to_string().strip_prefix(DUPLICATE_MARK) {
            let name = name.split(DUPLICATE_END).next().unwrap_or(name);
            VerifyError::DuplicateClaim(name.to_owned())
        } else {
            VerifyError::Malformed(format!("the {what} is not valid JSON: {e}"))
        }
    })?;
    match strict.0 {
        Value::Object(m) => Ok(m),
        _ => Err(VerifyError::Malformed(format!(
            "the {what} is JSON but not an object"
        ))),
    }
}

const DUPLICATE_MARK: &str = "duplicate name \u{1}";
const DUPLICATE_END: char = '\u{1}';

/// A JSON value that refuses repeated object names at any depth.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                let shown: String = k.chars().take(64).collect();
                return Err(de::Error::custom(format!(
                    "{DUPLICATE_MARK}{shown}{DUPLICATE_END}"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn tok(h: &str, p: &str) -> String {
        format!("{}.{}.c2ln", b64(h), b64(p))
    }

    #[test]
    fn decode_table() {
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        let cases: Vec<(String, Result<(), &str>)> = vec![
            (tok(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#), Ok(())),
            (big, Err("too-large")),
            ("abc".into(), Err("malformed")),
            ("a.b.c.d.e".into(), Err("malformed")),
            (
                format!("{}.{}.", b64(r#"{"alg":"RS256"}"#), b64("{}")),
                Ok(()),
            ),
            (
                format!("{}=.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64("{}")),
                Err("malformed"),
            ),
            (tok("[1]", "{}"), Err("malformed")),
            (tok(r#"{"alg":"RS256"}"#, "not json"), Err("malformed")),
            (
                tok(r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#),
                Err("duplicate-claim"),
            ),
            (
                tok(r#"{"alg":"RS256","alg":"none"}"#, "{}"),
                Err("duplicate-claim"),
            ),
            (
                tok(r#"{"alg":"RS256"}"#, r#"{"x":{"a":1,"a":2}}"#),
                Err("duplicate-claim"),
            ),
            (
                tok(r#"{"alg":"RS256"}"#, r#"{"x":[{"a":1},{"a":2}]}"#),
                Ok(()),
            ),
        ];
        for (token, want) in cases {
            let got = decode(&token).map(|_| ()).map_err(|e| e.reason());
            assert_eq!(got, want, "{}", &token[..token.len().min(80)]);
        }
    }

    #[test]
    fn header_policy_table() {
        let cases: &[(&str, Result<Alg, &str>)] = &[
            (r#"{"alg":"RS256","kid":"k"}"#, Ok(Alg::RS256)),
            (r#"{"alg":"EdDSA"}"#, Ok(Alg::EdDSA)),
            (r#"{"alg":"none"}"#, Err("algorithm-not-allowed")),
            (r#"{"alg":"HS256"}"#, Err("algorithm-not-allowed")),
            (r#"{"alg":"rs256"}"#, Err("algorithm-not-allowed")),
            (r#"{"alg":"ES512"}"#, Err("algorithm-not-allowed")),
            (r#"{}"#, Err("malformed")),
            (r#"{"alg":1}"#, Err("malformed")),
            (r#"{"alg":"RS256","kid":5}"#, Err("malformed")),
            (
                r#"{"alg":"RS256","jku":"https://evil/jwks"}"#,
                Err("forbidden-header"),
            ),
            (
                r#"{"alg":"RS256","x5u":"https://evil/c"}"#,
                Err("forbidden-header"),
            ),
            (
                r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#,
                Err("forbidden-header"),
            ),
            (r#"{"alg":"RS256","x5c":["MII"]}"#, Err("forbidden-header")),
            (
                r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
                Err("unsupported-critical-header"),
            ),
        ];
        for (h, want) in cases {
            let header = match decode(&tok(h, "{}")) {
                Ok(d) => d.header,
                Err(e) => unreachable!("{h}: {e}"),
            };
            assert_eq!(check_header(&header).map_err(|e| e.reason()), *want, "{h}");
        }
    }
}
