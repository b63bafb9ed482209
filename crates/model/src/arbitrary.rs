//! Value generators for property tests (feature `arbitrary`, for other crates' tests): every
//! kind of [`Value`], with the doubles, strings and timestamps that break naive encoders (NaN,
//! ±Infinity, -0.0, the smallest subnormal, control characters, quotes, the first and last
//! representable instants). Not part of claimdb's runtime.

use proptest::prelude::*;

use crate::path::DocPath;
use crate::value::{Map, Timestamp, Value};

/// Any value, nested up to four levels. With `nested_arrays` false, no array directly holds an
/// array (Firestore's rule; claimdb's own JSON form allows it).
pub fn value(nested_arrays: bool) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![
            any::<f64>(),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(1.0),
            Just(5e-324),
        ]
        .prop_map(Value::Double),
        (-62_135_596_800_000_000_i64..253_402_300_799_999_999).prop_filter_map("in range", |us| {
            Timestamp::from_micros(us).ok().map(Value::Timestamp)
        }),
        "\\PC{0,12}".prop_map(Value::String),
        "[\"\\\\\u{0}-\u{1f}\u{7f}é😀a]{0,6}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bytes),
        "[a-z]{1,4}/[a-z0-9]{1,4}(/[a-z]{1,3}/[a-z]{1,3})?".prop_filter_map("a path", |p| {
            DocPath::parse(&p).ok().map(Value::Reference)
        }),
        (-90.0..=90.0_f64, -180.0..=180.0_f64).prop_map(|(lat, lng)| Value::GeoPoint { lat, lng }),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(
                inner
                    .clone()
                    .prop_filter("no nested array", move |v| nested_arrays
                        || !matches!(v, Value::Array(_))),
                0..5
            )
            .prop_map(Value::Array),
            proptest::collection::btree_map("[a-zé_\"\\\\. ]{1,5}", inner, 0..5)
                .prop_map(Value::Map),
        ]
    })
}

/// A document's fields.
pub fn document(nested_arrays: bool) -> impl Strategy<Value = Map> {
    proptest::collection::btree_map("[a-zA-Z_é\"]{1,6}", value(nested_arrays), 0..6)
}
