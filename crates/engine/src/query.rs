//! Checks on a query that do not need the store: operand shapes and cursors that match the
//! effective order. The store's planner still decides how (and whether) a query can be served.

use claimdb_model::{FieldPath, Value};
use claimdb_store::{Cursor, Direction, Op, Query, Scope};

use crate::error::EngineError;

/// Most elements of an `in`, `not-in` or `array-contains-any` operand (Firestore's limit).
pub const MAX_DISJUNCTION: usize = 30;

pub(crate) fn validate(query: &Query) -> Result<(), EngineError> {
    for filter in &query.filters {
        if matches!(filter.op, Op::In | Op::NotIn | Op::ArrayContainsAny) {
            match &filter.value {
                Value::Array(items) if !items.is_empty() && items.len() <= MAX_DISJUNCTION => {}
                Value::Array(items) => {
                    return Err(EngineError::invalid_argument(format!(
                        "the operand of '{}' on {} has {} elements; it needs 1 to {MAX_DISJUNCTION}",
                        filter.op.as_str(),
                        filter.field,
                        items.len()
                    )));
                }
                other => {
                    return Err(EngineError::invalid_argument(format!(
                        "the operand of '{}' on {} must be an array, not {}",
                        filter.op.as_str(),
                        filter.field,
                        other.type_name()
                    )));
                }
            }
        }
    }
    let order = effective_order(query);
    for (name, cursor) in [("start", &query.start), ("end", &query.end)] {
        if let Some(cursor) = cursor {
            check_cursor(name, cursor, &order, &query.scope)?;
        }
    }
    Ok(())
}

/// The fields a query is ordered by, in order: the explicit `order_by`, then inequality-filtered
/// fields not already ordered, then `__name__`.
pub(crate) fn effective_order(query: &Query) -> Vec<FieldPath> {
    let mut fields: Vec<FieldPath> = query.order_by.iter().map(|o| o.field.clone()).collect();
    for filter in &query.filters {
        let inequality = matches!(
            filter.op,
            Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::NotIn
        );
        if inequality && !fields.contains(&filter.field) {
            fields.push(filter.field.clone());
        }
    }
    if !fields.iter().any(FieldPath::is_document_id) {
        fields.push(FieldPath::single(claimdb_model::field::DOCUMENT_ID));
    }
    fields
}

fn check_cursor(
    name: &str,
    cursor: &Cursor,
    order: &[FieldPath],
    scope: &Scope,
) -> Result<(), EngineError> {
    if cursor.values.is_empty() {
        return Err(EngineError::invalid_argument(format!(
            "the {name} cursor has no values; give one value per order_by field"
        )));
    }
    if cursor.values.len() > order.len() {
        let shown: Vec<String> = order.iter().map(ToString::to_string).collect();
        return Err(EngineError::invalid_argument(format!(
            "the {name} cursor has {} values but the query is ordered by only {} field(s) ({}); \
             a cursor gives at most one value per order field",
            cursor.values.len(),
            order.len(),
            shown.join(", ")
        )));
    }
    for (field, value) in order.iter().zip(&cursor.values) {
        if !field.is_document_id() {
            continue;
        }
        let fits = match value {
            Value::Reference(_) => true,
            Value::String(id) => {
                matches!(scope, Scope::Collection(_)) && !id.is_empty() && !id.contains('/')
            }
            _ => false,
        };
        if !fits {
            return Err(EngineError::invalid_argument(format!(
                "the {name} cursor's value for __name__ must be a document reference \
                 ({{\"$ref\": \"coll/doc\"}}){}, not {}",
                if matches!(scope, Scope::Collection(_)) {
                    " or a document id"
                } else {
                    ""
                },
                value.type_name()
            )));
        }
    }
    Ok(())
}

/// The rules' view of a query: a `list` on its collection with the query's filters, order,
/// limit and offset (rules are not filters: the rules must allow every document the query could
/// return, proven from these constraints).
pub(crate) fn rules_request(
    query: &Query,
    auth: Option<claimdb_model::Value>,
) -> Result<claimdb_rules::Request, EngineError> {
    let target = match &query.scope {
        Scope::Collection(c) => claimdb_rules::Target::Collection(c.clone()),
        Scope::Group {
            collection_id,
            under,
        } => claimdb_rules::Target::Group {
            under: under.clone(),
            collection_id: collection_id.clone(),
        },
    };
    let mut request = claimdb_rules::Request::new(
        claimdb_rules::Method::List,
        target,
        claimdb_model::Timestamp::now(),
    );
    request.auth = auth;
    request.query = Some(claimdb_rules::Query {
        limit: query.limit.and_then(|l| i64::try_from(l).ok()),
        offset: (query.offset > 0).then(|| i64::try_from(query.offset).unwrap_or(i64::MAX)),
        order_by: query
            .order_by
            .iter()
            .map(|o| (o.field.to_string(), o.direction == Direction::Desc))
            .collect(),
        filters: query
            .filters
            .iter()
            .map(|f| claimdb_rules::Filter {
                field: f.field.to_string(),
                op: f.op,
                value: f.value.clone(),
            })
            .collect(),
    });
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::CollectionPath;
    use claimdb_store::{Direction, Filter, Order};

    fn query() -> Query {
        Query::collection(CollectionPath::parse("movies").unwrap())
    }

    fn field(name: &str) -> FieldPath {
        FieldPath::parse(name).unwrap()
    }

    #[test]
    fn effective_order_appends_inequalities_and_name() {
        let mut q = query();
        q.order_by.push(Order {
            field: field("year"),
            direction: Direction::Desc,
        });
        q.filters.push(Filter {
            field: field("rating"),
            op: Op::Gt,
            value: Value::Int(3),
        });
        q.filters.push(Filter {
            field: field("genre"),
            op: Op::Eq,
            value: Value::Int(3),
        });
        q.filters.push(Filter {
            field: field("year"),
            op: Op::Lt,
            value: Value::Int(3),
        });
        let order: Vec<String> = effective_order(&q)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(order, ["year", "rating", "__name__"]);
    }

    #[test]
    fn cursors_must_fit_the_order() {
        let mut q = query();
        q.order_by.push(Order {
            field: field("year"),
            direction: Direction::Asc,
        });
        q.start = Some(Cursor {
            values: vec![Value::Int(2000), Value::String("m1".into())],
            inclusive: true,
        });
        assert!(validate(&q).is_ok());
        q.start = Some(Cursor {
            values: vec![Value::Int(2000), Value::String("m1".into()), Value::Int(1)],
            inclusive: true,
        });
        let e = validate(&q).unwrap_err();
        assert!(
            e.message()
                .contains("ordered by only 2 field(s) (year, __name__)"),
            "{e}"
        );
        q.start = None;
        q.end = Some(Cursor {
            values: vec![Value::Int(2000), Value::Int(5)],
            inclusive: false,
        });
        let e = validate(&q).unwrap_err();
        assert!(
            e.message()
                .contains("__name__ must be a document reference"),
            "{e}"
        );
        q.end = Some(Cursor {
            values: vec![],
            inclusive: false,
        });
        assert!(validate(&q).unwrap_err().message().contains("no values"));
    }

    #[test]
    fn disjunction_operands_must_be_small_arrays() {
        let mut q = query();
        q.filters.push(Filter {
            field: field("g"),
            op: Op::In,
            value: Value::Int(1),
        });
        assert!(
            validate(&q)
                .unwrap_err()
                .message()
                .contains("must be an array, not integer")
        );
        q.filters[0].value = Value::Array(vec![]);
        assert!(
            validate(&q)
                .unwrap_err()
                .message()
                .contains("has 0 elements")
        );
        q.filters[0].value = Value::Array(vec![Value::Int(1)]);
        assert!(validate(&q).is_ok());
    }
}
