//! `runQuery` and `runAggregationQuery`: a `StructuredQuery` translated to the engine's query
//! (so the rules decide it as a list, rules-are-not-filters and Firestore's query limits
//! included) and run to the end a page at a time. The answer is the stream of `RunQueryResponse`
//! (or `RunAggregationQueryResponse`) as one JSON array. Both read at the request's `readTime`
//! or in its transaction (see `consistency`), every page at the same time.
//!
//! Bounded: a query is read at most [`MAX_RESULTS`] documents far (each page also within the
//! engine's examined-documents bound); beyond, it fails with RESOURCE_EXHAUSTED naming `limit`,
//! rather than building an answer of unbounded size.

use claimdb_engine::{
    Condition, Cursor, Direction, Document, Engine, Filter, Op, Order, Query, QueryPaging,
    ReadTime, RequestContext, Scope,
};
use claimdb_model::{CollectionPath, DocPath, FieldPath, Timestamp, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::consistency::{self, Consistency};
use crate::documents;
use crate::names::{Database, Resource};
use crate::status::{Code, Status};
use crate::transactions::Transactions;
use crate::value;

/// The most documents one `runQuery` or aggregation reads.
pub const MAX_RESULTS: usize = 10_000;

/// A decoded `StructuredQuery`: the engine's query and the projection (`select`), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Structured {
    pub query: Query,
    pub select: Option<Vec<FieldPath>>,
}

/// Decodes a `StructuredQuery` below `parent` (the root, or a document).
pub fn decode(json: &Json, parent: &Resource, db: &Database) -> Result<Structured, Status> {
    let named = crate::enums::query_names(json);
    let Json::Object(q) = &*named else {
        return Err(Status::invalid("structuredQuery must be an object"));
    };
    for key in q.keys() {
        if !matches!(
            key.as_str(),
            "select" | "from" | "where" | "orderBy" | "startAt" | "endAt" | "offset" | "limit"
        ) {
            return Err(Status::invalid(format!(
                "{key:?} is not a field of StructuredQuery"
            )));
        }
    }
    let under = match parent {
        Resource::Root => None,
        Resource::Document(path) => Some(path.clone()),
        Resource::Collection(_) => {
            return Err(Status::invalid(
                "a query's parent is a document or the database root",
            ));
        }
    };
    let scope = scope(q.get("from"), under)?;
    // A `where` without an or is the engine's plain list of filters; one with an or is its
    // condition, which the store plans in disjunctive normal form.
    let (filters, condition) = match q.get("where").filter(|w| !w.is_null()) {
        None => (Vec::new(), None),
        Some(json) => {
            let tree = filter(json, db, 0)?;
            if tree.has_or() {
                (Vec::new(), Some(tree))
            } else {
                (tree.leaves().into_iter().cloned().collect(), None)
            }
        }
    };
    let order_by = match q.get("orderBy") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(orders)) => orders.iter().map(order).collect::<Result<_, _>>()?,
        Some(_) => return Err(Status::invalid("orderBy must be an array")),
    };
    let start = cursor(q.get("startAt"), db, true)?;
    let end = cursor(q.get("endAt"), db, false)?;
    let offset = count(q.get("offset"), "offset")?.unwrap_or(0);
    let limit = count(q.get("limit"), "limit")?;
    let select = match q.get("select") {
        None | Some(Json::Null) => None,
        Some(Json::Object(select)) => Some(
            match select.get("fields") {
                None | Some(Json::Null) => Vec::new(),
                Some(Json::Array(fields)) => fields
                    .iter()
                    .map(field_reference)
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(Status::invalid("select.fields must be an array")),
            }
            .into_iter()
            .filter(|f: &FieldPath| f.to_string() != "__name__")
            .collect(),
        ),
        Some(_) => return Err(Status::invalid("select must be an object")),
    };
    Ok(Structured {
        query: Query {
            scope,
            filters,
            condition,
            order_by,
            start,
            end,
            offset,
            limit,
        },
        select,
    })
}

fn scope(from: Option<&Json>, under: Option<DocPath>) -> Result<Scope, Status> {
    let Some(Json::Array(from)) = from else {
        return Err(Status::invalid("from must name one collection"));
    };
    let [Json::Object(selector)] = from.as_slice() else {
        return Err(Status::invalid("from must name exactly one collection"));
    };
    let id = selector
        .get("collectionId")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| Status::invalid("from[0].collectionId must be one collection id"))?;
    let all = match selector.get("allDescendants") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(Status::invalid("allDescendants must be a boolean")),
    };
    if all {
        return Ok(Scope::Group {
            collection_id: id.to_string(),
            under,
        });
    }
    let path = match &under {
        Some(doc) => format!("{doc}/{id}"),
        None => id.to_string(),
    };
    CollectionPath::parse(&path)
        .map(Scope::Collection)
        .map_err(|e| Status::invalid(e.to_string()))
}

fn field_reference(json: &Json) -> Result<FieldPath, Status> {
    let path = json
        .get("fieldPath")
        .and_then(Json::as_str)
        .ok_or_else(|| Status::invalid("a field reference is {\"fieldPath\": \"…\"}"))?;
    FieldPath::parse(path).map_err(|e| Status::invalid(e.to_string()))
}

/// How deep composite filters may nest in one `where`.
const MAX_FILTER_DEPTH: usize = 32;

/// A `Filter` (composite, field or unary) as a condition, composites nested at most
/// [`MAX_FILTER_DEPTH`] deep.
fn filter(json: &Json, db: &Database, depth: usize) -> Result<Condition, Status> {
    let Json::Object(f) = json else {
        return Err(Status::invalid("a Filter must be an object"));
    };
    if let Some(Json::Object(composite)) = f.get("compositeFilter") {
        if depth >= MAX_FILTER_DEPTH {
            return Err(Status::invalid(format!(
                "composite filters nest more than {MAX_FILTER_DEPTH} deep"
            )));
        }
        let or = match composite.get("op").and_then(Json::as_str) {
            Some("AND") => false,
            Some("OR") => true,
            other => {
                return Err(Status::invalid(format!(
                    "compositeFilter.op {other:?} is not AND or OR"
                )));
            }
        };
        let children = match composite.get("filters") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(filters)) => filters
                .iter()
                .map(|child| filter(child, db, depth + 1))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Status::invalid("compositeFilter.filters must be an array")),
        };
        return Ok(if or {
            Condition::Or(children)
        } else {
            Condition::And(children)
        });
    }
    if let Some(Json::Object(field)) = f.get("fieldFilter") {
        let path = field_reference(field.get("field").unwrap_or(&Json::Null))?;
        let op = match field.get("op").and_then(Json::as_str) {
            Some("LESS_THAN") => Op::Lt,
            Some("LESS_THAN_OR_EQUAL") => Op::Le,
            Some("GREATER_THAN") => Op::Gt,
            Some("GREATER_THAN_OR_EQUAL") => Op::Ge,
            Some("EQUAL") => Op::Eq,
            Some("NOT_EQUAL") => Op::Ne,
            Some("ARRAY_CONTAINS") => Op::ArrayContains,
            Some("IN") => Op::In,
            Some("ARRAY_CONTAINS_ANY") => Op::ArrayContainsAny,
            Some("NOT_IN") => Op::NotIn,
            other => {
                return Err(Status::invalid(format!(
                    "fieldFilter.op {other:?} is not an operator"
                )));
            }
        };
        let value = value::decode(field.get("value").unwrap_or(&Json::Null), db)?;
        return Ok(Condition::Filter(Filter {
            field: path,
            op,
            value,
        }));
    }
    if let Some(Json::Object(unary)) = f.get("unaryFilter") {
        let path = field_reference(unary.get("field").unwrap_or(&Json::Null))?;
        let (op, value) = match unary.get("op").and_then(Json::as_str) {
            Some("IS_NULL") => (Op::Eq, Value::Null),
            Some("IS_NOT_NULL") => (Op::Ne, Value::Null),
            Some("IS_NAN") => (Op::Eq, Value::Double(f64::NAN)),
            Some("IS_NOT_NAN") => (Op::Ne, Value::Double(f64::NAN)),
            other => {
                return Err(Status::invalid(format!(
                    "unaryFilter.op {other:?} is not an operator"
                )));
            }
        };
        return Ok(Condition::Filter(Filter {
            field: path,
            op,
            value,
        }));
    }
    Err(Status::invalid(
        "a Filter has one of compositeFilter, fieldFilter or unaryFilter",
    ))
}

fn order(json: &Json) -> Result<Order, Status> {
    let field = field_reference(json.get("field").unwrap_or(&Json::Null))?;
    let direction = match json.get("direction").and_then(Json::as_str) {
        None | Some("ASCENDING") | Some("DIRECTION_UNSPECIFIED") => Direction::Asc,
        Some("DESCENDING") => Direction::Desc,
        Some(other) => {
            return Err(Status::invalid(format!(
                "direction {other:?} is not ASCENDING or DESCENDING"
            )));
        }
    };
    Ok(Order { field, direction })
}

/// `startAt` (`before: true` = start at, else after) or `endAt` (`before: true` = end before,
/// else at).
fn cursor(json: Option<&Json>, db: &Database, start: bool) -> Result<Option<Cursor>, Status> {
    let Some(Json::Object(c)) = json else {
        return match json {
            None | Some(Json::Null) => Ok(None),
            Some(_) => Err(Status::invalid("a Cursor must be an object")),
        };
    };
    let values = match c.get("values") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(values)) => values
            .iter()
            .map(|v| value::decode(v, db))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(Status::invalid("cursor values must be an array")),
    };
    let before = c.get("before").and_then(Json::as_bool).unwrap_or(false);
    Ok(Some(Cursor {
        values,
        inclusive: if start { before } else { !before },
    }))
}

/// `offset` / `limit`: a non-negative number (`limit` may be an `Int32Value` wrapper).
fn count(json: Option<&Json>, what: &str) -> Result<Option<usize>, Status> {
    let n = match json {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Object(wrapper)) => wrapper.get("value").cloned().unwrap_or(Json::from(0)),
        Some(other) => other.clone(),
    };
    let n = match &n {
        Json::Number(n) => n.as_u64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    };
    n.map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
        .ok_or_else(|| Status::invalid(format!("{what} must be a non-negative integer")))
}

/// Runs the query to its end (or [`MAX_RESULTS`]), every page as of `at`.
async fn fetch(
    engine: &Engine,
    ctx: &RequestContext,
    query: &Query,
    at: ReadTime,
) -> Result<Vec<Document>, Status> {
    let mut out = Vec::new();
    let mut paging = QueryPaging {
        page_size: None,
        page_token: None,
    };
    loop {
        let page = engine.query_at(ctx, query, &paging, at).await?;
        out.extend(page.documents);
        if out.len() > MAX_RESULTS {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!(
                    "the query returns more than {MAX_RESULTS} documents; set a limit and page with cursors"
                ),
            ));
        }
        match page.next_page_token {
            Some(token) => paging.page_token = Some(token),
            None => return Ok(out),
        }
    }
}

/// `runQuery`: the results as `[{document, readTime}, …]`, or `[{readTime}]` when none; in a
/// transaction (`transaction`, or `newTransaction`, whose id is answered first) the documents
/// returned are remembered as read; at a past `readTime` (given, or the transaction's) the
/// documents are those of then, and `readTime` says it.
pub async fn run_query(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    transactions: &Transactions,
    parent: &Resource,
    body: &JsonMap<String, Json>,
    now: Timestamp,
) -> Result<Json, Status> {
    check_request(body, "structuredQuery")?;
    let structured = decode(
        body.get("structuredQuery").unwrap_or(&Json::Null),
        parent,
        db,
    )?;
    let read = consistency::select(transactions, body)?;
    let docs = fetch(engine, ctx, &structured.query, read.at).await?;
    remember(transactions, &read, &docs)?;
    let read_time = Json::String(read.answered_time(now).to_string());
    let mut out = Vec::with_capacity(docs.len() + 1);
    if let (Some(id), true) = (&read.transaction, read.begun) {
        out.push(json!({ "transaction": id, "readTime": read_time }));
    }
    if docs.is_empty() && out.is_empty() {
        out.push(json!({ "readTime": read_time }));
    }
    for mut doc in docs {
        if let Some(select) = &structured.select {
            doc.data = documents::project(&doc.data, select);
        }
        out.push(json!({ "document": value::encode_document(&doc, db), "readTime": read_time }));
    }
    Ok(Json::Array(out))
}

/// `partitionQuery`: claimdb serves a query from one node in one piece, so the answer is one
/// partition (no split points), after checking the query is one Firestore could partition
/// (a collection group ordered by name at most).
pub fn partition_query(
    db: &Database,
    parent: &Resource,
    body: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    if let Some(key) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "structuredQuery" | "partitionCount" | "pageToken" | "pageSize" | "readTime"
        )
    }) {
        return Err(Status::invalid(format!(
            "{key:?} is not a field of PartitionQueryRequest"
        )));
    }
    let structured = decode(
        body.get("structuredQuery").unwrap_or(&Json::Null),
        parent,
        db,
    )?;
    let q = &structured.query;
    let by_name_only = q
        .order_by
        .iter()
        .all(|o| o.field.to_string() == "__name__" && o.direction == Direction::Asc);
    if !matches!(q.scope, Scope::Group { .. })
        || !q.filters.is_empty()
        || q.condition.is_some()
        || !by_name_only
        || q.start.is_some()
        || q.end.is_some()
        || q.offset != 0
        || q.limit.is_some()
    {
        return Err(Status::invalid(
            "partitionQuery takes a collection group query with no filters, ordered by __name__ ascending",
        ));
    }
    Ok(json!({ "partitions": [] }))
}

/// A list's `orderBy` (`"a desc, b"`) as the orders of a query.
pub fn list_order(text: &str) -> Result<Vec<Order>, Status> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut words = part.split_whitespace();
            let field = words.next().unwrap_or_default();
            let direction = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => Direction::Asc,
                Some("desc") => Direction::Desc,
                Some(other) => {
                    return Err(Status::invalid(format!(
                        "orderBy direction {other:?} is not asc or desc"
                    )));
                }
            };
            if words.next().is_some() {
                return Err(Status::invalid(format!(
                    "orderBy {part:?} is not \"field [asc|desc]\""
                )));
            }
            let field = FieldPath::parse(field).map_err(|e| Status::invalid(e.to_string()))?;
            Ok(Order { field, direction })
        })
        .collect()
}

/// Refuses what a query request carries beyond `query_field` and its consistency selector.
fn check_request(body: &JsonMap<String, Json>, query_field: &str) -> Result<(), Status> {
    for key in body.keys() {
        if key == query_field
            || matches!(key.as_str(), "transaction" | "newTransaction" | "readTime")
        {
            continue;
        }
        return Err(match key.as_str() {
            "explainOptions" => Status::new(
                Code::Unimplemented,
                format!("{key} is not supported here yet"),
            ),
            other => Status::invalid(format!("{other:?} is not a field of the request")),
        });
    }
    Ok(())
}

/// Remembers the documents a read in a transaction returned (see
/// [`Consistency::pins_reads`]).
fn remember(
    transactions: &Transactions,
    read: &Consistency,
    docs: &[Document],
) -> Result<(), Status> {
    if let (Some(id), true) = (&read.transaction, read.pins_reads()) {
        let found: Vec<&Document> = docs.iter().collect();
        transactions.record(id, &found, &[])?;
    }
    Ok(())
}

/// `runAggregationQuery`: count, sum and avg over the query's documents, as
/// `[{result: {aggregateFields: {alias: Value}}, readTime}]` (with the `transaction` the
/// request began, if it began one); in a transaction or at a past time as `runQuery` reads.
pub async fn run_aggregation(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    transactions: &Transactions,
    parent: &Resource,
    body: &JsonMap<String, Json>,
    now: Timestamp,
) -> Result<Json, Status> {
    check_request(body, "structuredAggregationQuery")?;
    let Some(Json::Object(aggregation)) = body.get("structuredAggregationQuery") else {
        return Err(Status::invalid("structuredAggregationQuery is required"));
    };
    let structured = decode(
        aggregation.get("structuredQuery").unwrap_or(&Json::Null),
        parent,
        db,
    )?;
    let Some(Json::Array(aggregations)) = aggregation.get("aggregations") else {
        return Err(Status::invalid("aggregations must be an array"));
    };
    let read = consistency::select(transactions, body)?;
    let docs = fetch(engine, ctx, &structured.query, read.at).await?;
    remember(transactions, &read, &docs)?;
    let mut fields = JsonMap::new();
    for (i, a) in aggregations.iter().enumerate() {
        let alias = a
            .get("alias")
            .and_then(Json::as_str)
            .map_or_else(|| format!("aggregate_{i}"), str::to_string);
        let result = if let Some(count) = a.get("count") {
            let up_to = count
                .get("upTo")
                .map(|u| self::count(Some(u), "upTo"))
                .transpose()?
                .flatten();
            let n = up_to.map_or(docs.len(), |u| docs.len().min(u));
            value::encode(&Value::Int(i64::try_from(n).unwrap_or(i64::MAX)), db)
        } else if let Some(sum) = a.get("sum") {
            let field = field_reference(sum.get("field").unwrap_or(&Json::Null))?;
            value::encode(&sum_of(&docs, &field), db)
        } else if let Some(avg) = a.get("avg") {
            let field = field_reference(avg.get("field").unwrap_or(&Json::Null))?;
            value::encode(&average_of(&docs, &field), db)
        } else {
            return Err(Status::invalid(
                "an aggregation is one of count, sum or avg",
            ));
        };
        fields.insert(alias, result);
    }
    let mut result = json!({
        "result": { "aggregateFields": fields },
        "readTime": read.answered_time(now).to_string(),
    });
    if let (Some(id), true) = (&read.transaction, read.begun) {
        result["transaction"] = Json::String(id.clone());
    }
    Ok(Json::Array(vec![result]))
}

/// The numbers at `field` (other values are skipped, as Firestore does).
fn numbers<'a>(docs: &'a [Document], field: &'a FieldPath) -> impl Iterator<Item = &'a Value> {
    docs.iter()
        .filter_map(move |d| documents::lookup(&d.data, field))
        .filter(|v| v.is_number())
}

/// Firestore's sum: an integer while every operand is one and it does not overflow, else a
/// double; 0 over no numbers.
fn sum_of(docs: &[Document], field: &FieldPath) -> Value {
    let mut int: Option<i64> = Some(0);
    let mut double = 0.0_f64;
    for v in numbers(docs, field) {
        match v {
            Value::Int(i) => {
                int = int.and_then(|s| s.checked_add(*i));
                double += *i as f64;
            }
            Value::Double(d) => {
                int = None;
                double += d;
            }
            _ => {}
        }
    }
    match int {
        Some(i) => Value::Int(i),
        None => Value::Double(double),
    }
}

/// Firestore's avg: a double, or null over no numbers.
fn average_of(docs: &[Document], field: &FieldPath) -> Value {
    let (mut total, mut n) = (0.0_f64, 0_u64);
    for v in numbers(docs, field) {
        match v {
            Value::Int(i) => total += *i as f64,
            Value::Double(d) => total += d,
            _ => continue,
        }
        n += 1;
    }
    if n == 0 {
        Value::Null
    } else {
        Value::Double(total / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        Database::new("p").unwrap()
    }

    #[test]
    fn decodes_the_sdks_structured_queries() {
        let q = json!({
            "from": [{"collectionId": "posts"}],
            "where": {"compositeFilter": {"op": "AND", "filters": [
                {"fieldFilter": {"field": {"fieldPath": "n"}, "op": "GREATER_THAN", "value": {"integerValue": "1"}}},
                {"fieldFilter": {"field": {"fieldPath": "tag"}, "op": "IN", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}}},
                {"unaryFilter": {"field": {"fieldPath": "gone"}, "op": "IS_NULL"}}
            ]}},
            "orderBy": [{"field": {"fieldPath": "n"}, "direction": "DESCENDING"}, {"field": {"fieldPath": "__name__"}, "direction": "DESCENDING"}],
            "startAt": {"values": [{"integerValue": "9"}], "before": false},
            "endAt": {"values": [{"integerValue": "2"}], "before": true},
            "offset": 1,
            "limit": {"value": 5},
            "select": {"fields": [{"fieldPath": "n"}]}
        });
        let parent = Resource::Document(DocPath::parse("users/u1").unwrap());
        let s = decode(&q, &parent, &db()).unwrap();
        assert_eq!(
            s.query.scope,
            Scope::Collection(CollectionPath::parse("users/u1/posts").unwrap())
        );
        assert_eq!(s.query.filters.len(), 3);
        assert_eq!(s.query.filters[2].op, Op::Eq);
        assert_eq!(s.query.order_by[0].direction, Direction::Desc);
        assert_eq!(
            s.query.start,
            Some(Cursor {
                values: vec![Value::Int(9)],
                inclusive: false
            })
        );
        assert_eq!(
            s.query.end,
            Some(Cursor {
                values: vec![Value::Int(2)],
                inclusive: false
            })
        );
        assert_eq!((s.query.offset, s.query.limit), (1, Some(5)));
        assert_eq!(s.select.unwrap().len(), 1);

        let group = json!({"from": [{"collectionId": "posts", "allDescendants": true}]});
        let s = decode(&group, &Resource::Root, &db()).unwrap();
        assert_eq!(
            s.query.scope,
            Scope::Group {
                collection_id: "posts".into(),
                under: None
            }
        );
    }

    /// OR composites nest with AND ones; a `where` without an or stays a flat list.
    #[test]
    fn decodes_or_composites_as_a_condition() {
        let eq = |f: &str, v: i64| json!({"fieldFilter": {"field": {"fieldPath": f}, "op": "EQUAL", "value": {"integerValue": v.to_string()}}});
        let q = json!({
            "from": [{"collectionId": "c"}],
            "where": {"compositeFilter": {"op": "AND", "filters": [
                eq("a", 1),
                {"compositeFilter": {"op": "OR", "filters": [eq("b", 2), {"unaryFilter": {"field": {"fieldPath": "c"}, "op": "IS_NULL"}}]}}
            ]}}
        });
        let s = decode(&q, &Resource::Root, &db()).unwrap();
        assert!(s.query.filters.is_empty());
        let Some(Condition::And(children)) = &s.query.condition else {
            panic!("expected an and: {:?}", s.query.condition);
        };
        assert!(matches!(&children[1], Condition::Or(branches) if branches.len() == 2));
        assert_eq!(s.query.conjunctions().unwrap().len(), 2);
        // Nested ands alone flatten.
        let q = json!({
            "from": [{"collectionId": "c"}],
            "where": {"compositeFilter": {"op": "AND", "filters": [
                eq("a", 1),
                {"compositeFilter": {"op": "AND", "filters": [eq("b", 2)]}}
            ]}}
        });
        let s = decode(&q, &Resource::Root, &db()).unwrap();
        assert_eq!((s.query.filters.len(), s.query.condition), (2, None));
        // Nesting is bounded.
        let mut deep = eq("a", 1);
        for _ in 0..40 {
            deep = json!({"compositeFilter": {"op": "OR", "filters": [deep]}});
        }
        let q = json!({"from": [{"collectionId": "c"}], "where": deep});
        let e = decode(&q, &Resource::Root, &db()).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.contains("nest"), "{}", e.message);
    }

    #[test]
    fn refuses_what_it_does_not_serve() {
        for bad in [
            json!({"from": []}),
            json!({"from": [{"collectionId": "a/b"}]}),
            json!({"from": [{"collectionId": "c"}], "limit": -1}),
            json!({"from": [{"collectionId": "c"}], "where": {"fieldFilter": {"field": {"fieldPath": "a"}, "op": "LIKE", "value": {"nullValue": null}}}}),
            json!({"from": [{"collectionId": "c"}], "having": true}),
            json!({"from": [{"collectionId": "c"}], "where": {"compositeFilter": {"op": "XOR", "filters": []}}}),
        ] {
            assert_eq!(
                decode(&bad, &Resource::Root, &db()).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn sums_and_averages_like_firestore() {
        let doc = |v: Value| Document {
            path: DocPath::parse("c/d").unwrap(),
            data: [("x".to_string(), v)].into_iter().collect(),
            create_time: Timestamp::from_micros(0).unwrap(),
            update_time: Timestamp::from_micros(0).unwrap(),
            version: 1,
        };
        let x = FieldPath::parse("x").unwrap();
        let ints = [
            doc(Value::Int(2)),
            doc(Value::Int(3)),
            doc(Value::String("no".into())),
        ];
        assert_eq!(sum_of(&ints, &x), Value::Int(5));
        assert_eq!(average_of(&ints, &x), Value::Double(2.5));
        let mixed = [doc(Value::Int(2)), doc(Value::Double(0.5))];
        assert_eq!(sum_of(&mixed, &x), Value::Double(2.5));
        let overflow = [doc(Value::Int(i64::MAX)), doc(Value::Int(1))];
        assert!(matches!(sum_of(&overflow, &x), Value::Double(_)));
        assert_eq!(average_of(&[], &x), Value::Null);
        assert_eq!(sum_of(&[], &x), Value::Int(0));
    }
}
