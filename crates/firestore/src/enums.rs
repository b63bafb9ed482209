//! Enum values as numbers: proto3 JSON allows an enum as its name or its number, and the
//! server SDKs' REST transport (`preferRest`, google-gax's fallback with `enum-encoding=int`)
//! sends numbers. The decoders read names; [`query_names`] turns the numbers of a query's enums into
//! their names first (`setToServerValue` takes both where it is read, in `commit`).

use std::borrow::Cow;

use serde_json::Value as Json;

/// `StructuredQuery.CompositeFilter.Operator`.
const COMPOSITE_OPS: &[&str] = &["OPERATOR_UNSPECIFIED", "AND", "OR"];
/// `StructuredQuery.FieldFilter.Operator`.
const FIELD_OPS: &[&str] = &[
    "OPERATOR_UNSPECIFIED",
    "LESS_THAN",
    "LESS_THAN_OR_EQUAL",
    "GREATER_THAN",
    "GREATER_THAN_OR_EQUAL",
    "EQUAL",
    "NOT_EQUAL",
    "ARRAY_CONTAINS",
    "IN",
    "ARRAY_CONTAINS_ANY",
    "NOT_IN",
];
/// `StructuredQuery.UnaryFilter.Operator` (1 is not used).
const UNARY_OPS: &[&str] = &[
    "OPERATOR_UNSPECIFIED",
    "",
    "IS_NAN",
    "IS_NULL",
    "IS_NOT_NAN",
    "IS_NOT_NULL",
];
/// `StructuredQuery.Direction`.
const DIRECTIONS: &[&str] = &["DIRECTION_UNSPECIFIED", "ASCENDING", "DESCENDING"];

/// A `StructuredQuery` with its enum numbers replaced by names (borrowed when it has none).
pub fn query_names(query: &Json) -> Cow<'_, Json> {
    if !has_number_enum(query) {
        return Cow::Borrowed(query);
    }
    let mut owned = query.clone();
    if let Json::Object(q) = &mut owned {
        if let Some(filter) = q.get_mut("where") {
            filter_names(filter, 0);
        }
        if let Some(Json::Array(orders)) = q.get_mut("orderBy") {
            for order in orders {
                name_member(order, "direction", DIRECTIONS);
            }
        }
    }
    Cow::Owned(owned)
}

/// Whether any member named like one of the enums above holds a number (cheap check first).
fn has_number_enum(json: &Json) -> bool {
    match json {
        Json::Object(map) => map.iter().any(|(k, v)| {
            (matches!(k.as_str(), "op" | "direction") && v.is_number()) || has_number_enum(v)
        }),
        Json::Array(items) => items.iter().any(has_number_enum),
        _ => false,
    }
}

/// Filters nest at most as deep as a request can (bounded by the body limit); a depth bound
/// keeps a hostile body from recursing without end.
const MAX_DEPTH: usize = 64;

fn filter_names(filter: &mut Json, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Json::Object(f) = filter else {
        return;
    };
    if let Some(composite) = f.get_mut("compositeFilter") {
        name_member(composite, "op", COMPOSITE_OPS);
        if let Some(Json::Array(filters)) = composite.get_mut("filters") {
            for inner in filters {
                filter_names(inner, depth + 1);
            }
        }
    }
    if let Some(field) = f.get_mut("fieldFilter") {
        name_member(field, "op", FIELD_OPS);
    }
    if let Some(unary) = f.get_mut("unaryFilter") {
        name_member(unary, "op", UNARY_OPS);
    }
}

/// Replaces `object[member]`, when it is a known number, by its name.
fn name_member(object: &mut Json, member: &str, names: &[&str]) {
    if let Some(value) = object.get_mut(member)
        && let Some(name) = value
            .as_u64()
            .and_then(|i| names.get(usize::try_from(i).ok()?))
            .filter(|name| !name.is_empty())
    {
        *value = Json::String((*name).to_owned());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_become_names_and_names_stay() {
        let query = json!({
            "from": [{"collectionId": "c"}],
            "where": {"compositeFilter": {"op": 1, "filters": [
                {"fieldFilter": {"field": {"fieldPath": "a"}, "op": 3, "value": {"integerValue": "1"}}},
                {"unaryFilter": {"field": {"fieldPath": "b"}, "op": 5}},
                {"compositeFilter": {"op": 2, "filters": [
                    {"fieldFilter": {"field": {"fieldPath": "c"}, "op": "IN", "value": {"arrayValue": {}}}},
                ]}},
            ]}},
            "orderBy": [{"field": {"fieldPath": "a"}, "direction": 2}],
        });
        let named = query_names(&query);
        assert_eq!(
            *named,
            json!({
                "from": [{"collectionId": "c"}],
                "where": {"compositeFilter": {"op": "AND", "filters": [
                    {"fieldFilter": {"field": {"fieldPath": "a"}, "op": "GREATER_THAN", "value": {"integerValue": "1"}}},
                    {"unaryFilter": {"field": {"fieldPath": "b"}, "op": "IS_NOT_NULL"}},
                    {"compositeFilter": {"op": "OR", "filters": [
                        {"fieldFilter": {"field": {"fieldPath": "c"}, "op": "IN", "value": {"arrayValue": {}}}},
                    ]}},
                ]}},
                "orderBy": [{"field": {"fieldPath": "a"}, "direction": "DESCENDING"}],
            })
        );
        // Names only: nothing is copied.
        assert!(matches!(query_names(&named), Cow::Borrowed(_)));
        // Unknown numbers stay numbers, for the decoder to refuse.
        let odd = json!({"where": {"unaryFilter": {"op": 1}}, "orderBy": [{"direction": 9}]});
        assert_eq!(*query_names(&odd), odd);
    }
}
