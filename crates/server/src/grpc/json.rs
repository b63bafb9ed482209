//! Messages to and from their proto3 JSON, the form `claimdb_firestore::rpc` takes and
//! answers. The messages' serde is pbjson's; two of its choices differ from what proto3 JSON
//! (and so the REST protocol) means, and are bridged here:
//!
//! - a non-finite double: pbjson hands serde the `f64`, and `serde_json` turns NaN and the
//!   infinities into `null`. [`to_json`] serializes through [`Serializer`], which writes them as
//!   proto3 JSON does (`"NaN"`, `"Infinity"`, `"-Infinity"`), and otherwise builds the same
//!   `serde_json::Value` `serde_json::to_value` would;
//! - a null `Value`: pbjson reads `"nullValue": null` as an absent field (its `NullValue`
//!   reads only as a unit, which JSON's `null` inside an option never is), leaving the `Value`
//!   with no type. Every `Value` the answers hold has one, so [`from_json`] makes each `Value`
//!   left empty the null it was ([`Nulls`]). (pbjson writes a null as `"nullValue": null`,
//!   which the value decoder reads.)

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::ser::{self, Impossible};
use serde_json::{Map, Number, Value as Json};

use claimdb_firestore_proto::v1 as pb;
use claimdb_firestore_proto::v1::value::ValueType;

/// Why a message could not be converted.
#[derive(Debug)]
pub(crate) struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// A message's proto3 JSON.
pub(crate) fn to_json<T: Serialize>(message: &T) -> Result<Json, Error> {
    message.serialize(Serializer)
}

/// A message from proto3 JSON.
pub(crate) fn from_json<T: DeserializeOwned + Nulls>(json: Json) -> Result<T, serde_json::Error> {
    let mut message: T = serde_json::from_value(json)?;
    message.nulls();
    Ok(message)
}

/// Makes each `Value` a message holds that has no type a null (see the module's comment).
pub(crate) trait Nulls {
    fn nulls(&mut self);
}

impl Nulls for pb::Value {
    fn nulls(&mut self) {
        match &mut self.value_type {
            None => self.value_type = Some(ValueType::NullValue(0)),
            Some(ValueType::ArrayValue(array)) => array.values.iter_mut().for_each(Nulls::nulls),
            Some(ValueType::MapValue(map)) => map.fields.values_mut().for_each(Nulls::nulls),
            Some(_) => {}
        }
    }
}

impl Nulls for pb::Document {
    fn nulls(&mut self) {
        self.fields.values_mut().for_each(Nulls::nulls);
    }
}

impl<T: Nulls> Nulls for Option<T> {
    fn nulls(&mut self) {
        if let Some(inner) = self {
            inner.nulls();
        }
    }
}

impl<T: Nulls> Nulls for Vec<T> {
    fn nulls(&mut self) {
        self.iter_mut().for_each(Nulls::nulls);
    }
}

impl Nulls for pb::WriteResult {
    fn nulls(&mut self) {
        self.transform_results.nulls();
    }
}

impl Nulls for pb::ListDocumentsResponse {
    fn nulls(&mut self) {
        self.documents.nulls();
    }
}

impl Nulls for pb::BatchGetDocumentsResponse {
    fn nulls(&mut self) {
        if let Some(pb::batch_get_documents_response::Result::Found(doc)) = &mut self.result {
            doc.nulls();
        }
    }
}

impl Nulls for pb::RunQueryResponse {
    fn nulls(&mut self) {
        self.document.nulls();
    }
}

impl Nulls for pb::RunAggregationQueryResponse {
    fn nulls(&mut self) {
        if let Some(result) = &mut self.result {
            result.aggregate_fields.values_mut().for_each(Nulls::nulls);
        }
    }
}

impl Nulls for pb::CommitResponse {
    fn nulls(&mut self) {
        self.write_results.nulls();
    }
}

impl Nulls for pb::BatchWriteResponse {
    fn nulls(&mut self) {
        self.write_results.nulls();
    }
}

impl Nulls for pb::WriteResponse {
    fn nulls(&mut self) {
        self.write_results.nulls();
    }
}

impl Nulls for pb::PartitionQueryResponse {
    fn nulls(&mut self) {
        for cursor in &mut self.partitions {
            cursor.values.nulls();
        }
    }
}

impl Nulls for pb::ListenResponse {
    fn nulls(&mut self) {
        if let Some(pb::listen_response::ResponseType::DocumentChange(change)) =
            &mut self.response_type
        {
            change.document.nulls();
        }
    }
}

/// Messages that hold no `Value`.
macro_rules! no_values {
    ($($t:ty),*) => {
        $(impl Nulls for $t {
            fn nulls(&mut self) {}
        })*
    };
}

no_values!(
    pb::BeginTransactionResponse,
    pb::ListCollectionIdsResponse,
    claimdb_firestore_proto::well_known::Empty
);

/// Serializes into a `serde_json::Value`, non-finite floats as proto3 JSON's strings.
pub(crate) struct Serializer;

fn float(f: f64) -> Json {
    if f.is_nan() {
        Json::String("NaN".into())
    } else if f == f64::INFINITY {
        Json::String("Infinity".into())
    } else if f == f64::NEG_INFINITY {
        Json::String("-Infinity".into())
    } else {
        Number::from_f64(f).map_or(Json::Null, Json::Number)
    }
}

impl ser::Serializer for Serializer {
    type Ok = Json;
    type Error = Error;
    type SerializeSeq = Seq;
    type SerializeTuple = Seq;
    type SerializeTupleStruct = Seq;
    type SerializeTupleVariant = Impossible<Json, Error>;
    type SerializeMap = Object;
    type SerializeStruct = Object;
    type SerializeStructVariant = Impossible<Json, Error>;

    fn serialize_bool(self, v: bool) -> Result<Json, Error> {
        Ok(Json::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<Json, Error> {
        Ok(Json::from(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Json, Error> {
        Ok(float(f64::from(v)))
    }
    fn serialize_f64(self, v: f64) -> Result<Json, Error> {
        Ok(float(v))
    }
    fn serialize_char(self, v: char) -> Result<Json, Error> {
        Ok(Json::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Json, Error> {
        Ok(Json::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Json, Error> {
        Ok(Json::Array(v.iter().map(|b| Json::from(*b)).collect()))
    }
    fn serialize_none(self) -> Result<Json, Error> {
        Ok(Json::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Json, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Json, Error> {
        Ok(Json::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Json, Error> {
        Ok(Json::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Json, Error> {
        Ok(Json::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Json, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Json, Error> {
        let mut map = Map::new();
        map.insert(variant.to_owned(), value.serialize(self)?);
        Ok(Json::Object(map))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len)))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq, Error> {
        Ok(Seq(Vec::with_capacity(len)))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error(format!("{name}: tuple variants have no proto3 JSON")))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Object, Error> {
        Ok(Object {
            map: Map::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Object, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error(format!(
            "{name}: struct variants have no proto3 JSON"
        )))
    }
}

/// An array being serialized.
pub(crate) struct Seq(Vec<Json>);

impl ser::SerializeSeq for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Array(self.0))
    }
}

impl ser::SerializeTuple for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Json, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq {
    type Ok = Json;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<Json, Error> {
        ser::SerializeSeq::end(self)
    }
}

/// An object being serialized (a message, or a map field, whose keys are strings).
pub(crate) struct Object {
    map: Map<String, Json>,
    key: Option<String>,
}

impl ser::SerializeMap for Object {
    type Ok = Json;
    type Error = Error;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(match key.serialize(Serializer)? {
            Json::String(s) => s,
            // Map keys of integer or bool type are written as strings in proto3 JSON.
            Json::Number(n) => n.to_string(),
            Json::Bool(b) => b.to_string(),
            other => return Err(Error(format!("a map key must be a string, not {other}"))),
        });
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value without its key".into()))?;
        self.map.insert(key, value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Object(self.map))
    }
}

impl ser::SerializeStruct for Object {
    type Ok = Json;
    type Error = Error;
    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.map
            .insert(key.to_owned(), value.serialize(Serializer)?);
        Ok(())
    }
    fn end(self) -> Result<Json, Error> {
        Ok(Json::Object(self.map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(v: ValueType) -> pb::Value {
        pb::Value {
            value_type: Some(v),
        }
    }

    /// What pbjson and serde_json alone get wrong, and what they get right, as the RPC table
    /// reads it.
    #[test]
    fn messages_become_the_proto3_json_the_rest_protocol_speaks() {
        let doc = pb::Document {
            name: "projects/p/databases/(default)/documents/c/d".into(),
            fields: [
                ("nan", value(ValueType::DoubleValue(f64::NAN))),
                ("inf", value(ValueType::DoubleValue(f64::INFINITY))),
                ("minus", value(ValueType::DoubleValue(f64::NEG_INFINITY))),
                ("half", value(ValueType::DoubleValue(0.5))),
                ("big", value(ValueType::IntegerValue(i64::MIN))),
                ("null", value(ValueType::NullValue(0))),
                ("bytes", value(ValueType::BytesValue(vec![251, 255]))),
                ("empty", pb::Value { value_type: None }),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            ..Default::default()
        };
        let json = to_json(&doc).unwrap();
        assert_eq!(
            json,
            json!({
                "name": "projects/p/databases/(default)/documents/c/d",
                "fields": {
                    "nan": {"doubleValue": "NaN"},
                    "inf": {"doubleValue": "Infinity"},
                    "minus": {"doubleValue": "-Infinity"},
                    "half": {"doubleValue": 0.5},
                    "big": {"integerValue": "-9223372036854775808"},
                    "null": {"nullValue": null},
                    "bytes": {"bytesValue": "+/8="},
                    "empty": {},
                }
            })
        );
        // serde_json's own serializer would have lost the non-finite doubles.
        assert_eq!(
            serde_json::to_value(&doc).unwrap()["fields"]["nan"]["doubleValue"],
            Json::Null
        );
    }

    /// The REST encoder's JSON reads back into the same message, nulls included (pbjson alone
    /// reads `"nullValue": null` as no value at all).
    #[test]
    fn answers_read_back_with_their_nulls() {
        let answer = json!({
            "name": "projects/p/databases/(default)/documents/c/d",
            "fields": {
                "null": {"nullValue": null},
                "list": {"arrayValue": {"values": [{"nullValue": null}, {"doubleValue": "NaN"}]}},
                "map": {"mapValue": {"fields": {"inner": {"nullValue": null}}}},
                "nullValue": {"stringValue": "a field named nullValue"},
            },
            "createTime": "2026-01-01T00:00:00.000001Z",
            "updateTime": "2026-01-01T00:00:00.000002Z",
        });
        let raw: pb::Document = serde_json::from_value(answer.clone()).unwrap();
        assert_eq!(raw.fields["null"].value_type, None);
        let doc: pb::Document = from_json(answer).unwrap();
        let null = value(ValueType::NullValue(0));
        assert_eq!(doc.fields["null"], null);
        let Some(ValueType::ArrayValue(list)) = &doc.fields["list"].value_type else {
            panic!("{:?}", doc.fields["list"]);
        };
        assert_eq!(list.values[0], null);
        assert!(matches!(list.values[1].value_type, Some(ValueType::DoubleValue(d)) if d.is_nan()));
        let Some(ValueType::MapValue(map)) = &doc.fields["map"].value_type else {
            panic!("{:?}", doc.fields["map"]);
        };
        assert_eq!(map.fields["inner"], null);
        assert_eq!(
            doc.fields["nullValue"],
            value(ValueType::StringValue("a field named nullValue".into()))
        );
        assert_eq!(doc.update_time.unwrap().nanos, 2_000);
        // A JSON answer that does not fit the message is an error, not a guess.
        assert!(from_json::<pb::Document>(json!({"fields": {"a": {"noSuchValue": 1}}})).is_err());
    }
}
