//! The JSON form of documents written and read without a `serde_json::Value` in between: every
//! response carries documents and every read decodes one, and the detour through a tree of JSON
//! values (allocate it, walk it, drop it) cost about a tenth of a point read.
//!
//! Both directions mean exactly what [`encode_value`](super::encode_value) and
//! [`decode_document`](super::decode_document) mean; the tests compare them on every type, on
//! the limits and on malformed input.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value as Json;

use super::{Mode, check_field_name, decode_tagged};
use crate::error::ModelError;
use crate::field::FieldPath;
use crate::limits::MAX_DEPTH;
use crate::value::{Map, Value};

/// A value in its JSON form, written straight to a serializer.
#[derive(Debug, Clone, Copy)]
pub struct Encoded<'a>(pub &'a Value);

/// A document (or map) in its JSON form, written straight to a serializer.
#[derive(Debug, Clone, Copy)]
pub struct EncodedMap<'a>(pub &'a Map);

impl Serialize for EncodedMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, &Encoded(value))?;
        }
        map.end()
    }
}

/// `{"<tag>": <inner>}`.
fn tagged<S: Serializer, T: Serialize + ?Sized>(
    serializer: S,
    tag: &str,
    inner: &T,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(tag, inner)?;
    map.end()
}

/// Text through `Display`, without an intermediate `String` where the serializer allows.
struct Shown<'a, T: fmt::Display>(&'a T);

impl<T: fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

impl Serialize for Encoded<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Double(d) => double(serializer, *d),
            Value::Timestamp(t) => tagged(serializer, "$timestamp", &Shown(t)),
            Value::String(s) => serializer.serialize_str(s),
            Value::Bytes(b) => tagged(serializer, "$bytes", &BASE64.encode(b)),
            Value::Reference(p) => tagged(serializer, "$ref", &Shown(p)),
            Value::GeoPoint { lat, lng } => tagged(serializer, "$geo", &GeoPair(*lat, *lng)),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Encoded(item))?;
                }
                seq.end()
            }
            Value::Map(map) => EncodedMap(map).serialize(serializer),
        }
    }
}

/// A double: a JSON number when finite, else `{"$double": "NaN" | "Infinity" | "-Infinity"}`.
fn double<S: Serializer>(serializer: S, d: f64) -> Result<S::Ok, S::Error> {
    if d.is_finite() {
        serializer.serialize_f64(d)
    } else {
        let name = if d.is_nan() {
            "NaN"
        } else if d > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        tagged(serializer, "$double", name)
    }
}

struct GeoPair(f64, f64);

impl Serialize for GeoPair {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct D(f64);
        impl Serialize for D {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                double(serializer, self.0)
            }
        }
        let mut seq = serializer.serialize_seq(Some(2))?;
        seq.serialize_element(&D(self.0))?;
        seq.serialize_element(&D(self.1))?;
        seq.end()
    }
}

/// A document's JSON text, as stored.
pub fn document_text(map: &Map) -> String {
    // Writing to a String cannot fail, and every key is a string.
    serde_json::to_string(&EncodedMap(map)).unwrap_or_default()
}

/// The length of a document's JSON text, without building it.
pub(super) fn text_len(map: &Map) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, &EncodedMap(map)) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// Decodes a stored document from its JSON text: what `decode_document` does with the text
/// parsed first (the same values, the same errors), without the parsed tree. Only stored text
/// comes here: request bodies go through the strict reader of `json_text`, which refuses
/// repeated names.
pub fn decode_document_text(text: &str) -> Result<Map, ModelError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut state = State::default();
    let decoded = (&mut de)
        .deserialize_any(DocumentVisitor { state: &mut state })
        .and_then(|map| de.end().map(|()| map));
    decoded.map_err(|e| {
        state
            .error
            .take()
            .unwrap_or_else(|| ModelError::InvalidJson(e.to_string()))
    })
}

/// What the visitors share: the field path being read (for messages) and the model's error,
/// kept whole here because serde carries errors as text.
#[derive(Default)]
struct State {
    path: Vec<String>,
    error: Option<ModelError>,
}

impl State {
    fn fail<E: de::Error>(&mut self, e: ModelError) -> E {
        let text = e.to_string();
        self.error = Some(e);
        E::custom(text)
    }

    fn too_deep<E: de::Error>(&mut self) -> E {
        let e = ModelError::InvalidDocument(format!(
            "nesting is deeper than {MAX_DEPTH} levels at {}",
            FieldPath::from_segments(self.path.clone())
        ));
        self.fail(e)
    }
}

/// The whole document: an object whose fields are at depth 1.
struct DocumentVisitor<'s> {
    state: &'s mut State,
}

impl<'de> Visitor<'de> for DocumentVisitor<'_> {
    type Value = Map;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a document (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Map, A::Error> {
        let mut map = Map::new();
        while let Some(name) = access.next_key::<String>()? {
            field(&mut access, &mut map, name, 1, self.state)?;
        }
        Ok(map)
    }
}

/// Reads the value of field `name` (at `depth`) into `map`.
fn field<'de, A: MapAccess<'de>>(
    access: &mut A,
    map: &mut Map,
    name: String,
    depth: usize,
    state: &mut State,
) -> Result<(), A::Error> {
    if let Err(e) = check_field_name(&name) {
        return Err(state.fail(e));
    }
    state.path.push(name);
    let value = access.next_value_seed(ValueSeed {
        depth,
        state: &mut *state,
    });
    let name = state.path.pop().unwrap_or_default();
    map.insert(name, value?);
    Ok(())
}

/// One value at `depth` (top-level fields are depth 1).
struct ValueSeed<'s> {
    depth: usize,
    state: &'s mut State,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(self.state.too_deep());
        }
        deserializer.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn number<E: de::Error>(self, n: &serde_json::Number) -> Result<Value, E> {
        super::decode_number(n, &self.state.path).map_err(|e| self.state.fail(e))
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a document value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        match i64::try_from(u) {
            Ok(i) => Ok(Value::Int(i)),
            Err(_) => self.number(&serde_json::Number::from(u)),
        }
    }

    fn visit_f64<E: de::Error>(self, d: f64) -> Result<Value, E> {
        match serde_json::Number::from_f64(d) {
            Some(n) => self.number(&n),
            // JSON text has no NaN or infinity; serde_json refuses what overflows.
            None => Err(self.state.fail(ModelError::InvalidValue(format!(
                "number {d} is not a finite double"
            )))),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
        while let Some(item) = access.next_element_seed(ValueSeed {
            depth: self.depth + 1,
            state: &mut *self.state,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let first = access.next_key::<String>()?;
        if let Some(tag) = first.as_deref().filter(|k| k.starts_with('$')) {
            // A typed value is an object of exactly one `$` key; with more keys, the `$` key is
            // a field name refused for its `$`.
            let inner: Json = access.next_value()?;
            if access.next_key::<de::IgnoredAny>()?.is_some() {
                let e = check_field_name(tag)
                    .err()
                    .unwrap_or_else(|| ModelError::InvalidDocument(tag.to_owned()));
                return Err(self.state.fail(e));
            }
            let mut transforms = Vec::new();
            return match decode_tagged(
                tag,
                &inner,
                Mode::Plain,
                self.depth,
                &mut self.state.path,
                &mut transforms,
            ) {
                Ok(Some(value)) => Ok(value),
                // Plain mode refuses every transform before returning one.
                Ok(None) => Err(self.state.fail(ModelError::InvalidValue(format!(
                    "{tag} is a write transform; it is not allowed here"
                )))),
                Err(e) => Err(self.state.fail(e)),
            };
        }
        // A map's own fields are one level deeper, checked even when it has none.
        let depth = self.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.state.too_deep());
        }
        let mut map = Map::new();
        if let Some(name) = first {
            field(&mut access, &mut map, name, depth, self.state)?;
            while let Some(name) = access.next_key::<String>()? {
                field(&mut access, &mut map, name, depth, self.state)?;
            }
        }
        Ok(Value::Map(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{decode_document, encode_document, encode_value};
    use proptest::prelude::*;

    /// The old way: through a `serde_json::Value`.
    fn via_tree(text: &str) -> Result<Map, ModelError> {
        let json: Json =
            serde_json::from_str(text).map_err(|e| ModelError::InvalidJson(e.to_string()))?;
        decode_document(&json)
    }

    fn document() -> impl Strategy<Value = Map> {
        crate::arbitrary::document(true)
    }

    proptest! {
        #[test]
        fn writes_what_the_tree_writes(doc in document()) {
            let direct = document_text(&doc);
            let tree = serde_json::to_string(&encode_document(&doc)).unwrap_or_default();
            prop_assert_eq!(&direct, &tree);
            prop_assert_eq!(super::super::document_size(&doc), tree.len());
        }

        #[test]
        fn reads_what_the_tree_reads(doc in document()) {
            let text = document_text(&doc);
            // NaN is not equal to itself, so compare what was read as text.
            let direct = decode_document_text(&text).map(|m| document_text(&m));
            let tree = via_tree(&text).map(|m| document_text(&m));
            prop_assert_eq!(&direct, &tree);
            prop_assert_eq!(direct, Ok(text));
        }
    }

    #[test]
    fn one_value_is_written_as_the_tree_writes_it() {
        for v in [
            Value::Double(f64::NAN),
            Value::Double(-0.0),
            Value::GeoPoint {
                lat: 1.5,
                lng: -2.0,
            },
            Value::String("\u{0}\"\\\u{2028}".into()),
        ] {
            let direct = serde_json::to_string(&Encoded(&v)).ok();
            assert_eq!(direct, serde_json::to_string(&encode_value(&v)).ok());
        }
    }

    /// Malformed and out-of-limit stored text: the same error as the tree gives, or (where only
    /// serde's wording could differ) an error too.
    #[test]
    fn refuses_what_the_tree_refuses_with_the_same_error() {
        let deep_map = |levels: usize| {
            let mut text = "{\"a\":1}".to_string();
            for _ in 1..levels {
                text = format!("{{\"m\":{text}}}");
            }
            text
        };
        let deep_array = |levels: usize| {
            let mut text = "1".to_string();
            for _ in 1..levels {
                text = format!("[{text}]");
            }
            format!("{{\"a\":{text}}}")
        };
        let mut empty_at_limit = "{}".to_string();
        for _ in 0..20 {
            empty_at_limit = format!("{{\"m\":{empty_at_limit}}}");
        }
        let same = [
            "{\"$x\":1}",
            "{\"a\":{\"$x\":1,\"b\":2}}",
            "{\"a\":{\"b\":2,\"$x\":1}}",
            "{\"a\":{\"$timestamp\":5}}",
            "{\"a\":{\"$timestamp\":\"2020-13-01T00:00:00Z\"}}",
            "{\"a\":{\"$bytes\":\"***\"}}",
            "{\"a\":{\"$ref\":\"odd\"}}",
            "{\"a\":{\"$geo\":[91,0]}}",
            "{\"a\":{\"$geo\":[1]}}",
            "{\"a\":{\"$double\":\"nan\"}}",
            "{\"a\":{\"$increment\":1}}",
            "{\"a\":{\"$serverTimestamp\":true}}",
            "{\"a\":{\"$unknown\":true}}",
            "{\"a\":[{\"$delete\":true}]}",
            "{\"a\":9223372036854775808}",
            "{\"a\":-9223372036854775808}",
            "{\"a\":18446744073709551616}",
            "{\"\":1}",
            "{\"a\":{\"$geo\":[1,2]},\"b\":{}}",
            &deep_map(20),
            &deep_map(21),
            &deep_map(22),
            &deep_array(20),
            &deep_array(21),
            &empty_at_limit,
        ];
        for text in same {
            assert_eq!(decode_document_text(text), via_tree(text), "{text}");
        }
        for text in [
            "",
            "{",
            "{\"a\":1}x",
            "[1]",
            "3",
            "{\"a\":1e400}",
            "{\"a\":nul}",
        ] {
            assert!(decode_document_text(text).is_err(), "{text}");
            assert!(via_tree(text).is_err(), "{text}");
        }
    }
}
