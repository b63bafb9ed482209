//! The JWS compact form, decoded only as far as the pre-checks need: size limit, three
//! base64url parts, header and payload as JSON objects parsed strictly (a repeated name at any
//! depth is refused), and the header policy (`alg` never `none`/HMAC/unknown, no `jku`/`x5u`/
//! `jwk`/`x5c`, no `crit`).
//!
//! Two entry points share the structural checks and the strict claims parser: [`decode`] (header
//! as a JSON map, for tools that show it) and [`decode_for_verify`], the verifier's hot path,
//! which reads the header in one strict pass straight into the few parameters the policy needs
//! (no map) and returns the same reasons, in the same order, as `decode` + [`check_header`].
//! The strict parsing itself is `claimdb_model::json_text`, the same code every JSON request
//! body goes through.
//!
//! Signatures are not checked here; `verify` hands the signing input to aws-lc-rs.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimdb_model::ModelError;
use claimdb_model::json_text::{StrictValue, StrictVisitor, duplicate_key, duplicate_key_in};
use serde::de::{self, DeserializeSeed as _, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::alg::Alg;
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
    let parts = split(token)?;
    let header = object(parts.header, "header")?;
    let claims = object(parts.payload, "payload")?;
    Ok(Decoded {
        header,
        claims,
        signing_input: parts.signing_input,
        signature: parts.signature,
    })
}

/// A token split and decoded for verification: the header reduced to what the policy needs.
#[derive(Debug)]
pub(crate) struct ForVerify<'a> {
    pub header: Header,
    pub claims: Map<String, Value>,
    pub signing_input: &'a str,
    pub signature: &'a str,
}

/// [`decode`] for the verifier: the same checks and reasons, without building the header map.
pub(crate) fn decode_for_verify(token: &str) -> Result<ForVerify<'_>, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge {
            size: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let parts = split(token)?;
    let header = header(parts.header)?;
    let claims = object(parts.payload, "payload")?;
    Ok(ForVerify {
        header,
        claims,
        signing_input: parts.signing_input,
        signature: parts.signature,
    })
}

struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signing_input: &'a str,
    signature: &'a str,
}

/// Three dot-separated parts, found in one SIMD scan (memchr).
fn split(token: &str) -> Result<Parts<'_>, VerifyError> {
    let token = token.trim();
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (first, second) = (dots.next(), dots.next());
    let (Some(first), Some(second), None) = (first, second, dots.next()) else {
        let parts = 1 + usize::from(first.is_some()) + usize::from(second.is_some());
        let parts = parts + dots.count() + usize::from(parts == 3);
        return Err(if parts == 5 {
            VerifyError::Malformed(
                "it has five parts: an encrypted token (JWE) is not supported".into(),
            )
        } else {
            VerifyError::Malformed(format!(
                "a JWT has three parts separated by dots; this has {parts}"
            ))
        });
    };
    // Dots are ASCII, so both positions are char boundaries.
    let (Some(signing_input), Some(signature), Some(header), Some(payload)) = (
        token.get(..second),
        token.get(second + 1..),
        token.get(..first),
        token.get(first + 1..second),
    ) else {
        return Err(VerifyError::Malformed(
            "a JWT has three parts separated by dots".into(),
        ));
    };
    Ok(Parts {
        header,
        payload,
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

/// The header parameters the policy reads, gathered in one strict pass by [`decode_for_verify`].
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// The header was valid JSON but not an object (reported after the JSON is checked).
    not_object: bool,
    /// Which of [`KEY_CHOOSING_HEADERS`] are present (same order).
    key_choosing: [bool; 4],
    /// `crit`, if present: its first name when that is a string.
    crit: Option<Option<String>>,
    alg: Param,
    kid: Param,
}

#[derive(Debug, Default)]
enum Param {
    #[default]
    Absent,
    NotString,
    String(String),
}

impl Header {
    /// The header policy, exactly as [`check_header`] applies it to the header map.
    pub(crate) fn check(&self) -> Result<Alg, VerifyError> {
        for (h, present) in KEY_CHOOSING_HEADERS.iter().zip(self.key_choosing) {
            if present {
                return Err(VerifyError::ForbiddenHeader((*h).to_owned()));
            }
        }
        if let Some(first) = &self.crit {
            return Err(VerifyError::UnsupportedCritical(
                first.clone().unwrap_or_else(|| "crit".to_owned()),
            ));
        }
        let alg = match &self.alg {
            Param::String(s) => s.as_str(),
            Param::NotString => {
                return Err(VerifyError::Malformed(
                    "the header's alg is not a string".into(),
                ));
            }
            Param::Absent => return Err(VerifyError::Malformed("the header has no alg".into())),
        };
        if matches!(self.kid, Param::NotString) {
            return Err(VerifyError::Malformed(
                "the header's kid is not a string".into(),
            ));
        }
        Alg::from_name(alg).ok_or_else(|| VerifyError::AlgorithmNotAllowed {
            alg: alg.to_owned(),
            allowed: Vec::new(),
        })
    }

    /// The `kid`, if it is a string (see [`Header::check`]).
    pub(crate) fn kid(&self) -> Option<&str> {
        match &self.kid {
            Param::String(s) => Some(s),
            _ => None,
        }
    }
}

/// The header's `kid`, if any (type-checked by [`check_header`]).
pub fn kid(header: &Map<String, Value>) -> Option<&str> {
    header.get("kid").and_then(Value::as_str)
}

fn base64url(part: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|e| {
        VerifyError::Malformed(format!("the {what} is not base64url without padding: {e}"))
    })
}

fn json_error(e: &serde_json::Error, what: &str) -> VerifyError {
    match duplicate_key_in(e) {
        Some(name) => VerifyError::DuplicateClaim(name),
        None => VerifyError::Malformed(format!("the {what} is not valid JSON: {e}")),
    }
}

fn object(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = base64url(part, what)?;
    let value = claimdb_model::json_text::parse_strict(&bytes).map_err(|e| match e {
        ModelError::DuplicateKey(name) => VerifyError::DuplicateClaim(name),
        other => VerifyError::Malformed(format!(
            "the {what} is not valid JSON: {}",
            match other {
                ModelError::InvalidJson(text) => text,
                other => other.to_string(),
            }
        )),
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(VerifyError::Malformed(format!(
            "the {what} is JSON but not an object"
        ))),
    }
}

fn header(part: &str) -> Result<Header, VerifyError> {
    let bytes = base64url(part, "header")?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let header = HeaderSeed
        .deserialize(&mut de)
        .and_then(|h| de.end().map(|()| h))
        .map_err(|e| json_error(&e, "header"))?;
    if header.not_object {
        return Err(VerifyError::Malformed(
            "the header is JSON but not an object".into(),
        ));
    }
    Ok(header)
}

/// Deserializes a [`Header`] from a JSON object, refusing repeated names at any depth as
/// [`Strict`] does. Any other JSON value is parsed (strictly) and marked `not_object`, so that
/// errors come in the same order as from `object`: invalid JSON first, then "not an object".
struct HeaderSeed;

impl<'de> de::DeserializeSeed<'de> for HeaderSeed {
    type Value = Header;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        match d.deserialize_any(HeaderVisitor)? {
            Ok(h) => Ok(h),
            Err(_not_an_object) => Ok(Header {
                not_object: true,
                ..Header::default()
            }),
        }
    }
}

/// A JSON object as a [`Header`], or any other value (parsed strictly) as itself.
struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Result<Header, Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        StrictVisitor.visit_bool(v).map(Err)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        StrictVisitor.visit_i64(v).map(Err)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        StrictVisitor.visit_u64(v).map(Err)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        StrictVisitor.visit_f64(v).map(Err)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        StrictVisitor.visit_str(v).map(Err)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        StrictVisitor.visit_unit().map(Err)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        StrictVisitor.visit_seq(seq).map(Err)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut h = Header::default();
        let mut seen: Vec<String> = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            if seen.contains(&k) {
                return Err(duplicate_key(&k));
            }
            let StrictValue(v) = map.next_value()?;
            match k.as_str() {
                "alg" | "kid" => {
                    let p = match v {
                        Value::String(s) => Param::String(s),
                        _ => Param::NotString,
                    };
                    if k == "alg" {
                        h.alg = p;
                    } else {
                        h.kid = p;
                    }
                }
                "crit" => {
                    let first = v
                        .as_array()
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    h.crit = Some(first);
                }
                name => {
                    if let Some(i) = KEY_CHOOSING_HEADERS.iter().position(|f| *f == name) {
                        h.key_choosing[i] = true;
                    }
                }
            }
            seen.push(k);
        }
        Ok(Ok(h))
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

    /// The verifier's header pass must refuse exactly what `decode` + `check_header` refuse,
    /// with the same reason and message, whatever the header holds.
    #[test]
    fn verify_path_agrees_with_decode_and_check_header() {
        let headers = [
            r#"{"alg":"RS256","kid":"k"}"#,
            r#"{"alg":"RS256","typ":"JWT","kid":"k","x-extra":{"a":[1,{"b":2}]}}"#,
            r#"{"alg":"EdDSA"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256","kid":"k"}"#,
            r#"{"alg":"rs256"}"#,
            r#"{}"#,
            r#"{"alg":1}"#,
            r#"{"alg":null}"#,
            r#"{"alg":"RS256","kid":5}"#,
            r#"{"alg":"RS256","kid":null}"#,
            r#"{"alg":5,"kid":5}"#,
            r#"{"kid":5}"#,
            r#"{"alg":"RS256","jku":"https://evil/jwks"}"#,
            r#"{"alg":"RS256","x5u":"https://evil/c"}"#,
            r#"{"alg":"RS256","jwk":{"kty":"RSA"}}"#,
            r#"{"alg":"RS256","x5c":["MII"]}"#,
            r#"{"x5c":["MII"],"jku":"u","alg":"none"}"#,
            r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"RS256","crit":"exp"}"#,
            r#"{"alg":"RS256","crit":[5]}"#,
            r#"{"alg":"RS256","crit":[],"jku":"u"}"#,
            r#"{"alg":"RS256","alg":"none"}"#,
            r#"{"alg":"RS256","kid":"a","kid":"b"}"#,
            r#"{"alg":"RS256","typ":"JWT","typ":"JWT"}"#,
            r#"{"alg":"RS256","jwk":{"kty":"RSA","kty":"EC"}}"#,
            r#"{"alg":"RS256","x":[{"a":1,"a":2}]}"#,
            r#"{"alg":"RS256","x":1,"x":{"a":1,"a":2}}"#,
            r#"{"alg":"RS\u0032\u0035\u0036","k\u0069d":"k"}"#,
            r#"{"alg":"RS256","kid":"k"} x"#,
            r#"{"alg":"RS256""#,
            r#"[1]"#,
            r#"[{"a":1,"a":2}]"#,
            r#"[1] x"#,
            r#""alg""#,
            r#"12"#,
            r#"-1.5"#,
            r#"true"#,
            r#"null"#,
            "",
            "not json",
        ];
        let payloads = [r#"{"sub":"a"}"#, r#"{"sub":"a","sub":"b"}"#, "[]", "x"];
        for h in headers {
            for p in payloads {
                for token in [tok(h, p), format!("{}.{}", b64(h), b64(p))] {
                    let slow = decode(&token).and_then(|d| {
                        check_header(&d.header)
                            .map(|alg| (alg, kid(&d.header).map(str::to_owned), d.claims))
                    });
                    let fast = decode_for_verify(&token).and_then(|d| {
                        d.header
                            .check()
                            .map(|alg| (alg, d.header.kid().map(str::to_owned), d.claims))
                    });
                    let show = |r: &Result<_, VerifyError>| match r {
                        Ok(v) => format!("ok {v:?}"),
                        Err(e) => format!("{}: {e}", e.reason()),
                    };
                    assert_eq!(show(&fast), show(&slow), "header {h} payload {p}");
                }
            }
        }
        let big = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            decode_for_verify(&big).map(|_| ()).map_err(|e| e.reason()),
            Err("too-large")
        );
    }
}
