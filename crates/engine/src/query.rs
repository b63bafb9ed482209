//! Checks on a query that do not need the store — its limits (the store's one definition,
//! [`claimdb_store::query::limits`]) and cursors that match the effective order (the store's
//! [`Query::effective_order`]) — run before the rules decide, so a client hears about a bad
//! query first; the page size of a query; and the rules' view of a query. The store's planner
//! still decides how (and whether) a query can be served.

use claimdb_model::Value;
use claimdb_store::query::limits;
use claimdb_store::{Cursor, Direction, Order, PageRequest, Query, Scope};

use crate::auth::Principal;
use crate::authz::Loaded;
use crate::context::RequestContext;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::read_time::ReadTime;

/// One query request's paging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPaging {
    /// 1..=[`limits::MAX_PAGE_SIZE`]; when `None`, the query's limit if it is at most that,
    /// else [`limits::DEFAULT_PAGE_SIZE`].
    pub page_size: Option<usize>,
    /// The `next_page_token` of the previous page of the same query.
    pub page_token: Option<String>,
}

/// One page of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResults {
    pub documents: Vec<claimdb_store::Document>,
    /// Present when more documents may follow (a page cut short by the work bound may hold
    /// fewer documents than its size, even none).
    pub next_page_token: Option<String>,
}

pub(crate) fn validate(query: &Query) -> Result<(), EngineError> {
    limits::check(query)?;
    let order = query.effective_order();
    for (name, cursor) in [("start", &query.start), ("end", &query.end)] {
        if let Some(cursor) = cursor {
            check_cursor(name, cursor, &order, &query.scope)?;
        }
    }
    Ok(())
}

/// The page size of one query request.
pub(crate) fn page_size(query: &Query, requested: Option<usize>) -> Result<usize, EngineError> {
    match (requested, query.limit) {
        (None, Some(limit)) if limit <= limits::MAX_PAGE_SIZE => Ok(limit.max(1)),
        _ => Ok(limits::page_size(requested)?),
    }
}

fn check_cursor(
    name: &str,
    cursor: &Cursor,
    order: &[Order],
    scope: &Scope,
) -> Result<(), EngineError> {
    if cursor.values.is_empty() {
        return Err(EngineError::invalid_argument(format!(
            "the {name} cursor has no values; give one value per order_by field"
        )));
    }
    if cursor.values.len() > order.len() {
        let shown: Vec<String> = order.iter().map(|o| o.field.to_string()).collect();
        return Err(EngineError::invalid_argument(format!(
            "the {name} cursor has {} values but the query is ordered by only {} field(s) ({}); \
             a cursor gives at most one value per order field",
            cursor.values.len(),
            order.len(),
            shown.join(", ")
        )));
    }
    for (field, value) in order.iter().map(|o| &o.field).zip(&cursor.values) {
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
    auth: Option<std::sync::Arc<claimdb_model::Value>>,
    now: claimdb_model::Timestamp,
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
    let to_rules = |f: &&claimdb_store::Filter| claimdb_rules::Filter {
        field: f.field.to_string(),
        op: f.op,
        value: f.value.clone(),
    };
    // An or query goes to the rules in disjunctive normal form, each conjunction one way a
    // document may match (every one must be allowed), as the Firestore emulator decides.
    let (filters, disjunctions) = match query.conjunctions()?.as_slice() {
        [one] => (one.iter().map(to_rules).collect(), Vec::new()),
        many => (
            Vec::new(),
            many.iter()
                .map(|c| c.iter().map(to_rules).collect())
                .collect(),
        ),
    };
    let mut request = claimdb_rules::Request::new(claimdb_rules::Method::List, target, now);
    request.auth = auth;
    request.query = Some(claimdb_rules::Query {
        limit: query.limit.and_then(|l| i64::try_from(l).ok()),
        offset: (query.offset > 0).then(|| i64::try_from(query.offset).unwrap_or(i64::MAX)),
        order_by: query
            .order_by
            .iter()
            .map(|o| (o.field.to_string(), o.direction == Direction::Desc))
            .collect(),
        filters,
        disjunctions,
    });
    Ok(request)
}

impl Engine {
    /// Runs one page of a query: at most the page size of documents, after examining at most
    /// the work bound, with a token to continue when more may follow.
    pub async fn query(
        &self,
        ctx: &RequestContext,
        query: &Query,
        paging: &QueryPaging,
    ) -> Result<QueryResults, EngineError> {
        self.query_at(ctx, query, paging, ReadTime::Latest).await
    }

    /// One page of a query over the documents as they were at `at` (see [`ReadTime`]): decided
    /// by the rules as a live query is (on its constraints), run with the same semantics, page
    /// size and work bound. A page token continues the same query; pass the same time with it.
    pub async fn query_at(
        &self,
        ctx: &RequestContext,
        query: &Query,
        paging: &QueryPaging,
        at: ReadTime,
    ) -> Result<QueryResults, EngineError> {
        validate(query)?;
        let size = page_size(query, paging.page_size)?;
        let resume = paging
            .page_token
            .as_deref()
            .map(|token| crate::page_token::decode(query, token))
            .transpose()?;
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules_for(auth.as_ref());
        let request = rules_request(
            query,
            auth.as_ref().map(Principal::rules_value),
            self.clock.timestamp(),
        )?;
        self.check(
            ctx,
            auth.as_ref(),
            &rules,
            &request,
            &mut Loaded::default(),
            false,
        )
        .await?;
        let page = PageRequest {
            size,
            max_examined: self.query_max_examined,
            resume,
        };
        let result = at.query(&*self.store, query, &page).await?;
        Ok(QueryResults {
            documents: result.documents,
            next_page_token: result
                .next
                .map(|position| crate::page_token::encode(query, &position)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::{CollectionPath, FieldPath};
    use claimdb_store::{Filter, Op};

    fn query() -> Query {
        Query::collection(CollectionPath::parse("movies").unwrap())
    }

    fn field(name: &str) -> FieldPath {
        FieldPath::parse(name).unwrap()
    }

    fn filter(name: &str, op: Op, value: Value) -> Filter {
        Filter {
            field: field(name),
            op,
            value,
        }
    }

    fn by(name: &str, direction: Direction) -> Order {
        Order {
            field: field(name),
            direction,
        }
    }

    fn at(values: Vec<Value>) -> Option<Cursor> {
        Some(Cursor {
            values,
            inclusive: true,
        })
    }

    fn ok_for_store(q: &Query) -> bool {
        claimdb_store::query::PreparedQuery::new(q, &claimdb_store::PageRequest::first(10)).is_ok()
    }

    /// The engine once computed the query order with its own copy of the rules, which
    /// disagreed with the store's on several inequality fields (filter order instead of field
    /// order), on an explicit `__name__` order (the store then dropped the inequality fields,
    /// Firestore appends them after it) and on an inequality filter on `__name__` (the engine
    /// ordered by name first). A cursor valid for one was refused by the other. Both now use
    /// `Query::effective_order`; each case below failed before.
    #[test]
    fn cursor_checks_follow_the_stores_order() {
        let reference = Value::Reference(claimdb_model::DocPath::parse("movies/m1").unwrap());
        // Several inequality fields: ordered by field path, not by filter position.
        let mut q = query();
        q.filters = vec![
            filter("x", Op::Gt, Value::Int(1)),
            filter("a", Op::Ne, Value::String("s".into())),
        ];
        let order: Vec<String> = q
            .effective_order()
            .iter()
            .map(|o| o.field.to_string())
            .collect();
        assert_eq!(order, ["a", "x", "__name__"]);
        q.start = at(vec![
            Value::String("t".into()),
            Value::Int(2),
            reference.clone(),
        ]);
        assert!(validate(&q).is_ok() && ok_for_store(&q));
        // An explicit __name__ order keeps the inequality field, after it, in its direction.
        let mut q = query();
        q.filters = vec![filter("year", Op::Gt, Value::Int(1))];
        q.order_by = vec![by("__name__", Direction::Desc)];
        assert_eq!(
            q.effective_order(),
            vec![by("__name__", Direction::Desc), by("year", Direction::Desc)]
        );
        q.start = at(vec![reference.clone(), Value::Int(2000)]);
        assert!(validate(&q).is_ok() && ok_for_store(&q));
        // A __name__ inequality does not put the name before the other fields.
        let mut q = query();
        q.filters = vec![
            filter("__name__", Op::Gt, reference.clone()),
            filter("year", Op::Gt, Value::Int(1)),
        ];
        q.start = at(vec![Value::Int(2000), reference.clone()]);
        assert!(validate(&q).is_ok() && ok_for_store(&q));
        q.start = at(vec![reference, Value::Int(2000)]);
        assert!(validate(&q).is_err());
        assert!(!ok_for_store(&q));
    }

    #[test]
    fn page_size_defaults_to_a_small_limit() {
        let mut q = query();
        assert_eq!(page_size(&q, None).unwrap(), limits::DEFAULT_PAGE_SIZE);
        q.limit = Some(500);
        assert_eq!(page_size(&q, None).unwrap(), 500);
        assert_eq!(page_size(&q, Some(20)).unwrap(), 20);
        q.limit = Some(5_000);
        assert_eq!(page_size(&q, None).unwrap(), limits::DEFAULT_PAGE_SIZE);
        let e = page_size(&q, Some(limits::MAX_PAGE_SIZE + 1)).unwrap_err();
        assert_eq!(e.code(), "invalid-argument");
        assert!(e.message().contains("page_size"), "{e}");
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
        assert!(validate(&q).unwrap_err().message().contains("holds 0"));
        q.filters[0].value = Value::Array(vec![Value::Int(1)]);
        assert!(validate(&q).is_ok());
    }

    /// An or query reaches the rules as its disjunctive normal form, the plain filters in
    /// every conjunction; a condition without an or stays one list of filters.
    #[test]
    fn or_queries_reach_the_rules_in_disjunctive_normal_form() {
        use claimdb_store::Condition;
        let leaf = |name: &str, v: i64| Condition::Filter(filter(name, Op::Eq, Value::Int(v)));
        let mut q = query();
        q.filters = vec![filter("year", Op::Eq, Value::Int(2000))];
        q.condition = Some(Condition::Or(vec![leaf("a", 1), leaf("b", 2)]));
        let now = claimdb_model::Timestamp::from_micros(0).unwrap();
        let r = rules_request(&q, None, now).unwrap().query.unwrap();
        assert!(r.filters.is_empty());
        let fields: Vec<Vec<String>> = r
            .disjunctions
            .iter()
            .map(|c| c.iter().map(|f| f.field.clone()).collect())
            .collect();
        assert_eq!(fields, [["year", "a"], ["year", "b"]]);
        q.condition = Some(Condition::And(vec![leaf("a", 1), leaf("b", 2)]));
        let r = rules_request(&q, None, now).unwrap().query.unwrap();
        assert_eq!(r.filters.len(), 3);
        assert!(r.disjunctions.is_empty());
    }
}
