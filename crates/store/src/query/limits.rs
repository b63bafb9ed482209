//! The limits of one query, defined once: the engine checks them before the rules decide (so a
//! client hears about a too-large query before anything else) and every backend checks them
//! again when it prepares the query, with the same function and the same messages. Also the
//! page sizes and the default work bound shared by queries and collection lists.
//!
//! The query limits are Firestore's documented ones:
//! - <https://firebase.google.com/docs/firestore/query-data/queries#query_limitations>: "The sum
//!   of filters, sort orders, and parent document path (1 for a subcollection, 0 for a root
//!   collection) in a query cannot exceed 100"; `not-in` takes at most 10 comparison values.
//! - <https://firebase.google.com/docs/firestore/query-data/queries#in_not-in_and_array-contains-any>:
//!   `in` and `array-contains-any` take at most 30 comparison values.
//! - <https://firebase.google.com/docs/firestore/query-data/queries#limits_on_or_queries>: "Cloud
//!   Firestore limits a query to a maximum of 30 disjunctions in disjunctive normal form" (each
//!   `in` / `array-contains-any` value is one disjunct, and several of them multiply).
//! - <https://firebase.google.com/docs/firestore/query-data/multiple-range-fields#limitations>:
//!   at most 10 fields with range or inequality filters.
//!
//! The page sizes and the work bound are claimdb's: one response holds at most
//! [`MAX_PAGE_SIZE`] documents, and one page examines at most the configured number of
//! documents (default [`DEFAULT_MAX_EXAMINED`]) before it ends early with a continuation.

use std::collections::BTreeSet;

use claimdb_model::Value;

use super::{Op, Query, Scope};
use crate::StoreError;

/// Most filters plus explicit orders (plus 1 for a subcollection) in one query.
pub const MAX_FILTERS_AND_ORDERS: usize = 100;
/// Most elements of an `in` or `array-contains-any` operand.
pub const MAX_IN_VALUES: usize = 30;
/// Most elements of a `not-in` operand.
pub const MAX_NOT_IN_VALUES: usize = 10;
/// Most disjunctions of the query in disjunctive normal form: the product of the sizes of its
/// `in` and `array-contains-any` operands.
pub const MAX_DISJUNCTIONS: usize = 30;
/// Most distinct fields with range or inequality filters (`<`, `<=`, `>`, `>=`, `!=`, `not-in`).
pub const MAX_INEQUALITY_FIELDS: usize = 10;

/// Documents in one page of a query or a collection list when the client does not choose.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most documents in one page of a query or a collection list.
pub const MAX_PAGE_SIZE: usize = 1_000;
/// Documents one page of a query may examine (read and test against its filters) before it
/// ends early with a continuation, unless configured otherwise.
pub const DEFAULT_MAX_EXAMINED: usize = 10_000;

/// Whether `op` is a range or inequality filter (it implies an order on its field).
pub fn is_inequality(op: Op) -> bool {
    matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::Ne | Op::NotIn)
}

/// Checks `query` against every limit above; the error names the limit and the query's count.
/// Filters are counted in the query's disjunctive normal form ([`Query::conjunctions`]): each
/// filter once per conjunction it is part of, as Firestore counts them.
pub fn check(query: &Query) -> Result<(), StoreError> {
    let conjunctions = query.conjunctions()?;
    let parent = match &query.scope {
        Scope::Collection(c) => usize::from(c.parent_doc().is_some()),
        Scope::Group { under, .. } => usize::from(under.is_some()),
    };
    let filters: usize = conjunctions.iter().map(Vec::len).sum();
    let total = filters + query.order_by.len() + parent;
    if total > MAX_FILTERS_AND_ORDERS {
        return Err(invalid(format!(
            "the query has {filters} filters{} and {} orders{}: {total} in all, over the limit \
             of {MAX_FILTERS_AND_ORDERS} filters, orders and parent document together",
            if conjunctions.len() > 1 {
                " (counted in each of its disjunctions)"
            } else {
                ""
            },
            query.order_by.len(),
            if parent == 1 {
                " below a parent document (which counts 1)"
            } else {
                ""
            },
        )));
    }
    let mut disjunctions: usize = 0;
    let mut inequality_fields = BTreeSet::new();
    for conjunction in &conjunctions {
        let mut ways: usize = 1;
        for filter in conjunction {
            let op = filter.op.as_str();
            let field = &filter.field;
            let max = match filter.op {
                Op::In | Op::ArrayContainsAny => Some(MAX_IN_VALUES),
                Op::NotIn => Some(MAX_NOT_IN_VALUES),
                _ => None,
            };
            if let Some(max) = max {
                let Value::Array(items) = &filter.value else {
                    return Err(invalid(format!(
                        "the operand of {op} on {field} must be an array, not {}",
                        filter.value.type_name()
                    )));
                };
                if items.is_empty() || items.len() > max {
                    return Err(invalid(format!(
                        "the operand of {op} on {field} must hold 1 to {max} values (the {op} \
                         limit); it holds {}",
                        items.len()
                    )));
                }
                if filter.op != Op::NotIn {
                    ways = ways.saturating_mul(items.len());
                }
            }
            if is_inequality(filter.op) && !field.is_document_id() {
                inequality_fields.insert(field);
            }
        }
        disjunctions = disjunctions.saturating_add(ways);
    }
    if disjunctions > MAX_DISJUNCTIONS {
        return Err(invalid(format!(
            "the query's or filters and in and array-contains-any operands make {disjunctions} \
             disjunctions in disjunctive normal form (each in and array-contains-any value is \
             one), over the limit of {MAX_DISJUNCTIONS}"
        )));
    }
    if inequality_fields.len() > MAX_INEQUALITY_FIELDS {
        return Err(invalid(format!(
            "the query has range or inequality filters on {} fields, over the limit of \
             {MAX_INEQUALITY_FIELDS}",
            inequality_fields.len()
        )));
    }
    Ok(())
}

/// A page size asked for by a client: [`DEFAULT_PAGE_SIZE`] when absent, else 1 to
/// [`MAX_PAGE_SIZE`].
pub fn page_size(requested: Option<usize>) -> Result<usize, StoreError> {
    match requested {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(invalid(format!(
            "page_size {n} is out of range; it must be between 1 and {MAX_PAGE_SIZE}"
        ))),
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::InvalidArgument(message)
}

#[cfg(test)]
mod tests {
    use claimdb_model::{CollectionPath, FieldPath};

    use super::*;
    use crate::query::{Condition, Direction, Filter, Order};

    fn q(collection: &str) -> Query {
        Query::collection(CollectionPath::parse(collection).unwrap())
    }

    fn f(field: &str, op: Op, value: Value) -> Filter {
        Filter {
            field: FieldPath::parse(field).unwrap(),
            op,
            value,
        }
    }

    fn ints(n: i64) -> Value {
        Value::Array((0..n).map(Value::Int).collect())
    }

    fn message(query: &Query) -> String {
        match check(query) {
            Err(StoreError::InvalidArgument(m)) => m,
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    #[test]
    fn filters_and_orders_together_are_at_most_100() {
        let mut query = q("c");
        query.filters = vec![f("a", Op::Eq, Value::Int(1)); 60];
        query.order_by = vec![
            Order {
                field: FieldPath::single("b"),
                direction: Direction::Asc,
            };
            40
        ];
        assert!(check(&query).is_ok());
        query.filters.push(f("a", Op::Eq, Value::Int(1)));
        assert!(message(&query).contains("over the limit of 100"));
        // Below a parent document the parent counts one.
        let mut sub = q("c/d/e");
        sub.filters = vec![f("a", Op::Eq, Value::Int(1)); 100];
        assert!(message(&sub).contains("parent document (which counts 1)"));
        sub.filters.pop();
        assert!(check(&sub).is_ok());
    }

    #[test]
    fn operand_sizes_and_disjunctions() {
        let mut query = q("c");
        query.filters = vec![f("a", Op::NotIn, ints(10))];
        assert!(check(&query).is_ok());
        query.filters = vec![f("a", Op::NotIn, ints(11))];
        assert!(message(&query).contains("1 to 10 values (the not-in limit)"));
        query.filters = vec![f("a", Op::In, ints(31))];
        assert!(message(&query).contains("1 to 30 values (the in limit)"));
        query.filters = vec![f("a", Op::ArrayContainsAny, ints(0))];
        assert!(message(&query).contains("holds 0"));
        query.filters = vec![f("a", Op::In, Value::Int(1))];
        assert!(message(&query).contains("must be an array"));
        query.filters = vec![f("a", Op::In, ints(5)), f("b", Op::In, ints(6))];
        assert!(check(&query).is_ok(), "5 × 6 = 30 disjunctions");
        query.filters.push(f("t", Op::ArrayContainsAny, ints(2)));
        assert!(message(&query).contains("make 60 disjunctions"));
    }

    fn leaf(field: &str, op: Op, value: Value) -> Condition {
        Condition::Filter(f(field, op, value))
    }

    /// Ors count in disjunctive normal form: `(a or b) and (c or d)` is four disjunctions,
    /// each `in` value one more, and every filter counts once per disjunction it is in.
    #[test]
    fn or_filters_count_in_disjunctive_normal_form() {
        let mut query = q("c");
        let pair = |x: &str, y: &str| {
            Condition::Or(vec![
                leaf(x, Op::Eq, Value::Int(1)),
                leaf(y, Op::Eq, Value::Int(1)),
            ])
        };
        query.condition = Some(Condition::And(vec![pair("a", "b"), pair("c", "d")]));
        assert_eq!(query.conjunctions().unwrap().len(), 4);
        assert!(check(&query).is_ok());
        // Five pairs: 32 conjunctions, refused while expanding.
        query.condition = Some(Condition::And(
            ["a", "b", "c", "d", "e"]
                .iter()
                .map(|x| pair(x, "z"))
                .collect(),
        ));
        assert!(message(&query).contains("more than 30 disjunctions"));
        // 2 disjunctions, one of them an in of 29 values: 30; of 30: 31.
        query.condition = Some(Condition::Or(vec![
            leaf("a", Op::In, ints(29)),
            leaf("b", Op::Eq, Value::Int(1)),
        ]));
        assert!(check(&query).is_ok());
        query.condition = Some(Condition::Or(vec![
            leaf("a", Op::In, ints(30)),
            leaf("b", Op::Eq, Value::Int(1)),
        ]));
        assert!(message(&query).contains("make 31 disjunctions"));
        // The same branch twice is one disjunction.
        query.condition = Some(Condition::Or(vec![
            leaf("a", Op::Eq, Value::Int(1)),
            leaf("a", Op::Eq, Value::Int(1)),
        ]));
        assert_eq!(query.conjunctions().unwrap().len(), 1);
        // The plain filters count in every disjunction: 2 × 50 + 2 = 102.
        query.filters = vec![f("x", Op::Eq, Value::Int(1)); 50];
        query.condition = Some(pair("a", "b"));
        assert!(message(&query).contains("102 in all"));
        query.filters.clear();
        query.condition = Some(Condition::Or(vec![]));
        assert!(message(&query).contains("at least one filter"));
    }

    #[test]
    fn at_most_ten_inequality_fields() {
        let mut query = q("c");
        query.filters = (0..10)
            .map(|i| f(&format!("f{i}"), Op::Gt, Value::Int(1)))
            .collect();
        // Several filters on one field and on __name__ count once and not at all.
        query.filters.push(f("f0", Op::Lt, Value::Int(9)));
        query
            .filters
            .push(f("__name__", Op::Gt, Value::String("x".into())));
        assert!(check(&query).is_ok());
        query.filters.push(f("g", Op::Ne, Value::Int(1)));
        assert!(message(&query).contains("on 11 fields, over the limit of 10"));
    }

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert_eq!(page_size(Some(MAX_PAGE_SIZE)).unwrap(), MAX_PAGE_SIZE);
        for bad in [0, MAX_PAGE_SIZE + 1] {
            assert!(matches!(
                page_size(Some(bad)),
                Err(StoreError::InvalidArgument(m)) if m.contains("page_size")
            ));
        }
    }
}
