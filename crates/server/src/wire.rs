//! Wire types: the JSON shapes of requests and responses, kept apart from the domain types so
//! the API stays stable while the core moves, with explicit conversions both ways. Conversions
//! from the wire refuse bad input with an [`ApiError`] that names the offending part.

use claimdb_engine::{
    CommitResult, Condition, Cursor, Direction, Document, Filter, ListPage, ListRequest, Op, Order,
    Precondition, Query, QueryPaging, QueryResults, Scope, Write, WriteCondition, WriteOp,
};
use claimdb_model::json::EncodedMap;
use claimdb_model::json::{decode_update, decode_value, decode_write};
use claimdb_model::{CollectionPath, DocPath, FieldPath, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::ApiError;
use crate::extract::{parse_if_match, parse_if_none_match};

/// A document as every read and write returns it, written straight from the document (no
/// intermediate JSON tree or strings).
#[derive(Debug, Serialize)]
pub struct DocumentOut<'a> {
    #[serde(serialize_with = "shown")]
    pub path: &'a DocPath,
    pub data: EncodedMap<'a>,
    #[serde(serialize_with = "shown")]
    pub create_time: &'a Timestamp,
    #[serde(serialize_with = "shown")]
    pub update_time: &'a Timestamp,
    pub version: u64,
}

impl<'a> From<&'a Document> for DocumentOut<'a> {
    fn from(d: &'a Document) -> Self {
        DocumentOut {
            path: &d.path,
            data: EncodedMap(&d.data),
            create_time: &d.create_time,
            update_time: &d.update_time,
            version: d.version,
        }
    }
}

/// Writes a field through its `Display`.
fn shown<S: serde::Serializer>(
    value: &impl std::fmt::Display,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// `GET /v1/docs/{collection}`.
#[derive(Debug, Serialize)]
pub struct ListOut<'a> {
    pub documents: Vec<DocumentOut<'a>>,
    pub next_page_token: Option<&'a str>,
}

impl<'a> From<&'a ListPage> for ListOut<'a> {
    fn from(page: &'a ListPage) -> Self {
        ListOut {
            documents: page.documents.iter().map(DocumentOut::from).collect(),
            next_page_token: page.next_page_token.as_deref(),
        }
    }
}

/// The query string of `GET /v1/docs/{path}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    pub page_size: Option<usize>,
    pub page_token: Option<String>,
}

impl ListParams {
    pub fn is_empty(&self) -> bool {
        self.page_size.is_none() && self.page_token.is_none()
    }
}

impl From<ListParams> for ListRequest {
    fn from(p: ListParams) -> Self {
        ListRequest {
            page_size: p.page_size,
            page_token: p.page_token,
        }
    }
}

/// `POST /v1/query` and the response.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub collection: Option<String>,
    pub collection_group: Option<String>,
    pub parent: Option<String>,
    #[serde(rename = "where", default)]
    pub filters: Vec<Json>,
    #[serde(default)]
    pub order_by: Vec<Json>,
    pub start_at: Option<Vec<Json>>,
    pub start_after: Option<Vec<Json>>,
    pub end_at: Option<Vec<Json>>,
    pub end_before: Option<Vec<Json>>,
    #[serde(default)]
    pub offset: usize,
    pub limit: Option<usize>,
    /// Documents in this response (1 to 1,000); default: `limit` when at most 1,000, else 100.
    pub page_size: Option<usize>,
    /// The `next_page_token` of the previous response to the same query.
    pub page_token: Option<String>,
}

impl QueryRequest {
    /// The paging part of the request (taken out; the rest converts into a [`Query`]).
    pub fn take_paging(&mut self) -> QueryPaging {
        QueryPaging {
            page_size: self.page_size.take(),
            page_token: self.page_token.take(),
        }
    }
}

/// The response of `POST /v1/query`: one page, and the token that continues the query when
/// more may follow.
#[derive(Debug, Serialize)]
pub struct QueryOut<'a> {
    pub documents: Vec<DocumentOut<'a>>,
    pub next_page_token: Option<&'a str>,
}

impl<'a> From<&'a QueryResults> for QueryOut<'a> {
    fn from(page: &'a QueryResults) -> Self {
        QueryOut {
            documents: page.documents.iter().map(DocumentOut::from).collect(),
            next_page_token: page.next_page_token.as_deref(),
        }
    }
}

impl TryFrom<QueryRequest> for Query {
    type Error = ApiError;

    fn try_from(r: QueryRequest) -> Result<Query, ApiError> {
        let scope = match (r.collection, r.collection_group) {
            (Some(c), None) => {
                if r.parent.is_some() {
                    return Err(ApiError::invalid(
                        "parent only applies to collection_group; put the full path in collection",
                    ));
                }
                Scope::Collection(CollectionPath::parse(&c).map_err(invalid)?)
            }
            (None, Some(group)) => {
                if group.is_empty() || group.contains('/') {
                    return Err(ApiError::invalid(format!(
                        "collection_group {group:?} must be one collection id, without '/'"
                    )));
                }
                let under = r
                    .parent
                    .as_deref()
                    .map(|p| {
                        DocPath::parse(p).map_err(|e| ApiError::invalid(format!("parent: {e}")))
                    })
                    .transpose()?;
                Scope::Group {
                    collection_id: group,
                    under,
                }
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "give either collection or collection_group, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::invalid(
                    "a query needs collection or collection_group",
                ));
            }
        };
        let items: Vec<Condition> = r
            .filters
            .iter()
            .enumerate()
            .map(|(i, f)| condition(&format!("where[{i}]"), f, 0))
            .collect::<Result<_, _>>()?;
        // Without an or, `where` is the query's plain list of filters; with one, the whole
        // list is its condition (an and of the items).
        let (filters, condition) = if items.iter().any(Condition::has_or) {
            (Vec::new(), Some(Condition::And(items)))
        } else {
            let all = Condition::And(items);
            (all.leaves().into_iter().cloned().collect(), None)
        };
        let order_by = r
            .order_by
            .iter()
            .enumerate()
            .map(|(i, o)| order(i, o))
            .collect::<Result<_, _>>()?;
        let start = one_cursor(("start_at", r.start_at), ("start_after", r.start_after))?;
        let end = one_cursor(("end_at", r.end_at), ("end_before", r.end_before))?;
        Ok(Query {
            scope,
            filters,
            condition,
            order_by,
            start,
            end,
            offset: r.offset,
            limit: r.limit,
        })
    }
}

/// How deep `or` and `and` may nest in one `where` item.
const MAX_WHERE_DEPTH: usize = 32;

/// One `where` item: a filter `[field, operator, value]`, or `{"or": [item, …]}` /
/// `{"and": [item, …]}` of at least one item, nested at most [`MAX_WHERE_DEPTH`] deep.
fn condition(at: &str, json: &Json, depth: usize) -> Result<Condition, ApiError> {
    let Json::Object(composite) = json else {
        return filter(at, json).map(Condition::Filter);
    };
    let shape = || {
        ApiError::invalid(format!(
            "{at} must be [field, operator, value] or {{\"or\": [...]}} or {{\"and\": [...]}} \
             holding at least one of those"
        ))
    };
    let (Some((kind, Json::Array(items))), 1) = (composite.iter().next(), composite.len()) else {
        return Err(shape());
    };
    if items.is_empty() || !matches!(kind.as_str(), "or" | "and") {
        return Err(shape());
    }
    if depth >= MAX_WHERE_DEPTH {
        return Err(ApiError::invalid(format!(
            "{at}: or and and nest more than {MAX_WHERE_DEPTH} deep"
        )));
    }
    let children = items
        .iter()
        .enumerate()
        .map(|(i, item)| condition(&format!("{at}.{kind}[{i}]"), item, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if kind == "or" {
        Condition::Or(children)
    } else {
        Condition::And(children)
    })
}

fn filter(i: &str, json: &Json) -> Result<Filter, ApiError> {
    let shape = || {
        ApiError::invalid(format!(
            "{i} must be [field, operator, value], e.g. [\"year\", \">=\", 2000]"
        ))
    };
    let [field, op, value] = json.as_array().map(Vec::as_slice).ok_or_else(shape)? else {
        return Err(shape());
    };
    let (Some(field), Some(op_text)) = (field.as_str(), op.as_str()) else {
        return Err(shape());
    };
    let field = FieldPath::parse(field).map_err(|e| ApiError::invalid(format!("{i}: {e}")))?;
    let op = Op::parse(op_text).ok_or_else(|| {
        ApiError::invalid(format!(
            "{i}: unknown operator {op_text:?}; use one of ==, !=, <, <=, >, >=, in, \
             not-in, array-contains, array-contains-any"
        ))
    })?;
    let value = decode_value(value).map_err(|e| ApiError::invalid(format!("{i} value: {e}")))?;
    Ok(Filter { field, op, value })
}

fn order(i: usize, json: &Json) -> Result<Order, ApiError> {
    let shape = || {
        ApiError::invalid(format!(
            "order_by[{i}] must be \"field\" or [\"field\", \"asc\" | \"desc\"]"
        ))
    };
    let (field, direction) = match json {
        Json::String(field) => (field.as_str(), Direction::Asc),
        Json::Array(pair) => match pair.as_slice() {
            [Json::String(field), Json::String(dir)] => {
                let direction = match dir.as_str() {
                    "asc" => Direction::Asc,
                    "desc" => Direction::Desc,
                    other => {
                        return Err(ApiError::invalid(format!(
                            "order_by[{i}]: direction {other:?} must be \"asc\" or \"desc\""
                        )));
                    }
                };
                (field.as_str(), direction)
            }
            _ => return Err(shape()),
        },
        _ => return Err(shape()),
    };
    let field =
        FieldPath::parse(field).map_err(|e| ApiError::invalid(format!("order_by[{i}]: {e}")))?;
    Ok(Order { field, direction })
}

fn one_cursor(
    inclusive: (&str, Option<Vec<Json>>),
    exclusive: (&str, Option<Vec<Json>>),
) -> Result<Option<Cursor>, ApiError> {
    let (name, values, inclusive) = match (inclusive, exclusive) {
        ((a, Some(_)), (b, Some(_))) => {
            return Err(ApiError::invalid(format!("give {a} or {b}, not both")));
        }
        ((name, Some(values)), _) => (name, values, true),
        (_, (name, Some(values))) => (name, values, false),
        _ => return Ok(None),
    };
    let values = values
        .iter()
        .enumerate()
        .map(|(i, v)| decode_value(v).map_err(|e| ApiError::invalid(format!("{name}[{i}]: {e}"))))
        .collect::<Result<Vec<Value>, _>>()?;
    Ok(Some(Cursor { values, inclusive }))
}

/// `POST /v1/batch`. Writes stay raw JSON here so each one's error can name its index.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub writes: Vec<Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteRequest {
    op: WireOp,
    path: String,
    data: Option<Json>,
    if_match: Option<String>,
    if_none_match: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireOp {
    Create,
    Set,
    Update,
    Delete,
}

impl BatchRequest {
    pub fn into_writes(self) -> Result<Vec<Write>, ApiError> {
        self.writes
            .into_iter()
            .enumerate()
            .map(|(i, json)| batch_write(i, json).map_err(|e| e.at_write(i)))
            .collect()
    }
}

fn batch_write(i: usize, json: Json) -> Result<Write, ApiError> {
    let w: WriteRequest =
        serde_json::from_value(json).map_err(|e| ApiError::invalid(format!("writes[{i}]: {e}")))?;
    let at = |e: claimdb_model::ModelError| ApiError::invalid(format!("writes[{i}]: {e}"));
    let path = DocPath::parse(&w.path).map_err(at)?;
    let condition = match (&w.if_match, &w.if_none_match) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(format!(
                "writes[{i}]: give if_match or if_none_match, not both"
            )));
        }
        (Some(m), None) => parse_if_match(m, &format!("writes[{i}].if_match"))?,
        (None, Some(n)) => parse_if_none_match(n, &format!("writes[{i}].if_none_match"))?,
        (None, None) => WriteCondition::None,
    };
    let precondition = match condition {
        WriteCondition::None => Precondition::None,
        WriteCondition::Exists => Precondition::Exists,
        WriteCondition::Missing => Precondition::Missing,
        WriteCondition::VersionIn(versions) => match versions.as_slice() {
            [v] => Precondition::Version(*v),
            _ => {
                return Err(ApiError::invalid(format!(
                    "writes[{i}].if_match must be one version (\"<v>\") or \"*\""
                )));
            }
        },
    };
    let data = |op: &str| {
        w.data.as_ref().ok_or_else(|| {
            ApiError::invalid(format!("writes[{i}]: a {op} needs data (a JSON object)"))
        })
    };
    let op = match w.op {
        WireOp::Create => {
            if precondition != Precondition::None {
                return Err(ApiError::invalid(format!(
                    "writes[{i}]: a create takes no if_match or if_none_match (it already requires that the document not exist)"
                )));
            }
            let d = decode_write(data("create")?).map_err(at)?;
            WriteOp::Create {
                data: d.data,
                transforms: d.transforms,
            }
        }
        WireOp::Set => {
            let d = decode_write(data("set")?).map_err(at)?;
            WriteOp::Set {
                data: d.data,
                transforms: d.transforms,
            }
        }
        WireOp::Update => {
            let u = decode_update(data("update")?).map_err(at)?;
            WriteOp::Update {
                fields: u.fields,
                transforms: u.transforms,
            }
        }
        WireOp::Delete => {
            if w.data.is_some() {
                return Err(ApiError::invalid(format!(
                    "writes[{i}]: a delete takes no data"
                )));
            }
            WriteOp::Delete
        }
    };
    Ok(Write::new(path, op).with_precondition(precondition))
}

#[derive(Debug, Serialize)]
pub struct BatchOut {
    pub commit_time: String,
    pub results: Vec<WriteResultOut>,
}

#[derive(Debug, Serialize)]
pub struct WriteResultOut {
    pub path: String,
    pub version: Option<u64>,
    pub update_time: Option<String>,
}

impl From<&CommitResult> for BatchOut {
    fn from(c: &CommitResult) -> Self {
        BatchOut {
            commit_time: c.commit_time.to_string(),
            results: c
                .results
                .iter()
                .map(|r| WriteResultOut {
                    path: r.path.to_string(),
                    version: r.document.as_ref().map(|d| d.version),
                    update_time: r.document.as_ref().map(|d| d.update_time.to_string()),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusOut {
    pub status: &'static str,
}

fn invalid(e: claimdb_model::ModelError) -> ApiError {
    ApiError::invalid(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(body: Json) -> Result<Query, String> {
        let r: QueryRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
        Query::try_from(r).map_err(|e| e.message)
    }

    #[test]
    fn converts_a_full_query() {
        let q = query(json!({
            "collection": "movies",
            "where": [["year", ">=", 2000], ["genre", "==", "drama"]],
            "order_by": [["year", "desc"], "title"],
            "start_after": [2010, "Heat"],
            "offset": 1, "limit": 5
        }))
        .unwrap();
        assert_eq!(q.filters.len(), 2);
        assert_eq!(q.filters[0].op, Op::Ge);
        assert_eq!(q.order_by[0].direction, Direction::Desc);
        assert_eq!(q.order_by[1].direction, Direction::Asc);
        let start = q.start.unwrap();
        assert!(!start.inclusive);
        assert_eq!(start.values[0], Value::Int(2010));
        assert_eq!((q.offset, q.limit), (1, Some(5)));
        let g = query(json!({"collection_group": "reviews", "parent": "movies/m1"})).unwrap();
        assert!(matches!(g.scope, Scope::Group { under: Some(_), .. }));
    }

    #[test]
    fn converts_or_items_into_the_condition() {
        let q = query(json!({
            "collection": "movies",
            "where": [
                ["year", ">=", 2000],
                {"or": [["genre", "==", "drama"], {"and": [["genre", "==", "noir"], ["rated", "==", true]]}]}
            ]
        }))
        .unwrap();
        assert!(q.filters.is_empty());
        let Some(Condition::And(items)) = &q.condition else {
            panic!("expected the where list as an and: {:?}", q.condition);
        };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1], Condition::Or(branches) if branches.len() == 2));
        // An and alone is still the plain list of filters.
        let q = query(json!({
            "collection": "movies",
            "where": [["year", ">=", 2000], {"and": [["a", "==", 1], ["b", "==", 2]]}]
        }))
        .unwrap();
        assert_eq!((q.filters.len(), q.condition), (3, None));
    }

    #[test]
    fn refuses_bad_queries_naming_the_problem() {
        for (body, why) in [
            (
                json!({"collection": "movies", "where": [{"or": []}]}),
                "where[0] must be [field, operator, value] or {\"or\"",
            ),
            (
                json!({"collection": "movies", "where": [{"xor": [["a", "==", 1]]}]}),
                "where[0] must be",
            ),
            (
                json!({"collection": "movies", "where": [{"or": [["a", "~", 1]]}]}),
                "where[0].or[0]: unknown operator",
            ),
            (
                json!({"collection": "movies", "where": [["a", "~", 1]]}),
                "unknown operator \"~\"",
            ),
            (
                json!({"collection": "movies", "where": [["a", "=="]]}),
                "where[0] must be",
            ),
            (
                json!({"collection": "movies", "order_by": [["a", "up"]]}),
                "direction \"up\"",
            ),
            (
                json!({"collection": "movies", "order_by": [1]}),
                "order_by[0] must be",
            ),
            (json!({"collection": "movies/m1"}), "names a document"),
            (
                json!({"collection": "a", "collection_group": "b"}),
                "not both",
            ),
            (json!({}), "needs collection"),
            (json!({"collection_group": "a/b"}), "one collection id"),
            (
                json!({"collection": "m", "parent": "m/1"}),
                "parent only applies",
            ),
            (
                json!({"collection": "m", "start_at": [1], "start_after": [1]}),
                "not both",
            ),
            (
                json!({"collection": "m", "bogus": 1}),
                "unknown field `bogus`",
            ),
        ] {
            let err = query(body.clone()).unwrap_err();
            assert!(err.contains(why), "{body}: {err}");
        }
    }

    #[test]
    fn converts_batch_writes_and_names_the_bad_one() {
        let ok = BatchRequest {
            writes: vec![
                json!({"op": "create", "path": "a/1", "data": {"x": 1}}),
                json!({"op": "set", "path": "a/2", "data": {}, "if_match": "\"4\""}),
                json!({"op": "update", "path": "a/3", "data": {"x.y": 1}, "if_match": "*"}),
                json!({"op": "delete", "path": "a/4", "if_none_match": "*"}),
            ],
        };
        let writes = ok.into_writes().unwrap();
        assert_eq!(writes[1].precondition, Precondition::Version(4));
        assert_eq!(writes[2].precondition, Precondition::Exists);
        assert_eq!(writes[3].precondition, Precondition::Missing);
        for (write, why) in [
            (
                json!({"op": "upsert", "path": "a/1"}),
                "unknown variant `upsert`",
            ),
            (json!({"op": "set", "path": "a"}), "names a collection"),
            (json!({"op": "set", "path": "a/1"}), "needs data"),
            (
                json!({"op": "delete", "path": "a/1", "data": {}}),
                "takes no data",
            ),
            (
                json!({"op": "set", "path": "a/1", "data": {}, "extra": 1}),
                "unknown field `extra`",
            ),
            (
                json!({"op": "set", "path": "a/1", "data": {}, "if_match": "\"1\",\"2\""}),
                "one version",
            ),
        ] {
            let batch = BatchRequest {
                writes: vec![json!({"op": "delete", "path": "a/0"}), write.clone()],
            };
            let err = batch.into_writes().unwrap_err();
            assert!(err.message.contains(why), "{write}: {}", err.message);
            assert_eq!(err.details["write_index"], json!(1));
        }
    }
}
