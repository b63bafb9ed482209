//! The single-field index entries Firestore keeps automatically, computed from a document's
//! data so every backend indexes alike: for every field path at every nesting level, one value
//! entry (the value's index key), and for an array one "contains" entry per distinct element.
//! Storing and diffing the entries is the backend's business.

use std::collections::BTreeSet;

use claimdb_model::{FieldPath, Map, Value, key};

/// Entry kind of a field's whole value.
pub const KIND_VALUE: u8 = 0;
/// Entry kind of one element of an array field.
pub const KIND_CONTAINS: u8 = 1;

/// One index entry of a document: (encoded field path, kind, value key).
pub type IndexEntry = (Vec<u8>, u8, Vec<u8>);

/// The bytes naming a field path in an index: each segment escaped as in document keys.
pub fn field_key(field: &FieldPath) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in field.segments() {
        key::encode_escaped(&mut out, segment.as_bytes());
    }
    out
}

/// Every index entry of a document's data.
pub fn entries(data: &Map) -> BTreeSet<IndexEntry> {
    let mut out = BTreeSet::new();
    collect(data, &mut Vec::new(), &mut out);
    out
}

fn collect(map: &Map, prefix: &mut Vec<u8>, out: &mut BTreeSet<IndexEntry>) {
    for (name, value) in map {
        let len = prefix.len();
        key::encode_escaped(prefix, name.as_bytes());
        out.insert((prefix.clone(), KIND_VALUE, key::index_key(value)));
        match value {
            Value::Array(items) => {
                for item in items {
                    out.insert((prefix.clone(), KIND_CONTAINS, key::index_key(item)));
                }
            }
            Value::Map(inner) => collect(inner, prefix, out),
            _ => {}
        }
        prefix.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_every_nested_field_and_distinct_array_elements() {
        let mut inner = Map::new();
        inner.insert("b".into(), Value::Int(1));
        let mut data = Map::new();
        data.insert("a".into(), Value::Map(inner));
        data.insert(
            "t".into(),
            Value::Array(vec![Value::Int(1), Value::Double(1.0), Value::Int(2)]),
        );
        let e = entries(&data);
        let a = field_key(&FieldPath::single("a"));
        let ab = field_key(&FieldPath::parse("a.b").unwrap());
        let t = field_key(&FieldPath::single("t"));
        assert!(e.contains(&(ab, KIND_VALUE, key::index_key(&Value::Int(1)))));
        assert!(e.iter().any(|x| x.0 == a && x.1 == KIND_VALUE));
        let contains: Vec<_> = e
            .iter()
            .filter(|x| x.0 == t && x.1 == KIND_CONTAINS)
            .collect();
        assert_eq!(contains.len(), 2, "1 and 1.0 are one element for queries");
        assert_eq!(e.len(), 5);
    }
}
