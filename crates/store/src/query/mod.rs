//! Queries: the domain types, and (below) the backend-independent planner and evaluator that
//! every backend shares so they agree on semantics.
//!
//! Semantics (Firestore's):
//! - `filters` are ANDed, and with them the query's [`Condition`] when it has one: filters
//!   combined with and / or, nested freely (an OR query). A document matching several
//!   branches of an or is one result. `==`/`in` use query equality (`1 == 1.0`); range filters (`<`, `<=`,
//!   `>`, `>=`) only match values of the operand's type class (numbers, strings, …);
//!   `!=`/`not-in` never match a document lacking the field (and `not-in` never matches null);
//!   `array-contains`/`array-contains-any` match arrays holding an equal element.
//! - The effective order ([`Query::effective_order`]) is the explicit `order_by`, then the
//!   fields of range and inequality filters not already ordered (in field order), then
//!   `__name__` unless ordered explicitly, the implicit ones in the direction of the last
//!   explicit order (ascending by default). A document lacking an ordered field is not returned.
//! - Cursors hold values for a prefix of the effective order; `__name__` cursor values are
//!   references (or, for a collection scope, a bare document id).
//! - A query is answered a page at a time ([`PageRequest`] → [`QueryPage`]): at most a page
//!   size of documents, after examining at most a bound of documents; a page that stops early
//!   says where the next one continues ([`Position`]). The limits every query must respect are
//!   in [`limits`].

mod eval;
pub mod limits;
mod prepare;

pub use eval::Stream;
pub use prepare::{Plan, PreparedQuery};

pub use claimdb_model::Op;
use claimdb_model::{CollectionPath, DocPath, FieldPath, Value};

use crate::Document;

/// What a query ranges over.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// The documents directly in one collection.
    Collection(CollectionPath),
    /// Every collection with this id, anywhere (or only below `under`).
    Group {
        collection_id: String,
        under: Option<DocPath>,
    },
}

/// Exclusive bounds on document keys.
pub type KeyRange = (Vec<u8>, Vec<u8>);

impl Scope {
    /// For a group below a document: the exclusive key range of the documents below it.
    pub fn under_range(&self) -> Option<KeyRange> {
        match self {
            Scope::Group { under: Some(u), .. } => {
                let k = u.sort_key();
                let end = claimdb_model::key::prefix_successor(&k);
                Some((k, end))
            }
            _ => None,
        }
    }
}

/// Inclusive document-key bounds for a backend's range scan, from a plan's optional ones and a
/// group's [`Scope::under_range`].
pub fn doc_bounds(
    lo: &Option<Vec<u8>>,
    hi: &Option<Vec<u8>>,
    under: Option<KeyRange>,
) -> (Vec<u8>, Vec<u8>) {
    // Every document key is below 0xFF (UTF-8 never holds that byte).
    let mut lo = lo.clone().unwrap_or_default();
    let mut hi = hi.clone().unwrap_or_else(|| vec![0xFF]);
    if let Some((ulo, uhi)) = under {
        lo = lo.max(ulo);
        hi = hi.min(uhi);
    }
    (lo, hi)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: FieldPath,
    pub op: Op,
    pub value: Value,
}

/// Filters combined with and / or, nested freely: a query's `where` beyond its plain list of
/// filters (Firestore's composite filters). Composites hold at least one condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Filter(Filter),
    /// Every condition holds.
    And(Vec<Condition>),
    /// At least one condition holds.
    Or(Vec<Condition>),
}

impl Condition {
    /// Every filter of the condition, depth first.
    pub fn leaves(&self) -> Vec<&Filter> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Filter>) {
        match self {
            Condition::Filter(f) => out.push(f),
            Condition::And(children) | Condition::Or(children) => {
                for child in children {
                    child.collect_leaves(out);
                }
            }
        }
    }

    /// Whether an or appears anywhere in it.
    pub fn has_or(&self) -> bool {
        match self {
            Condition::Filter(_) => false,
            Condition::Or(_) => true,
            Condition::And(children) => children.iter().any(Condition::has_or),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub field: FieldPath,
    pub direction: Direction,
}

/// A position in the effective order. `inclusive` is true for start-at / end-at and false for
/// start-after / end-before.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub values: Vec<Value>,
    pub inclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub scope: Scope,
    /// Filters every result passes (ANDed).
    pub filters: Vec<Filter>,
    /// A further condition every result meets as well, with ors (`None`: the `filters` are
    /// the whole `where`). Its disjunctive normal form ([`Query::conjunctions`]) is what the
    /// limits count, the planner plans and the rules decide.
    pub condition: Option<Condition>,
    pub order_by: Vec<Order>,
    pub start: Option<Cursor>,
    pub end: Option<Cursor>,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl Scope {
    /// Whether a document at `path` lies in the scope (a listener's test for a change).
    pub fn contains(&self, path: &DocPath) -> bool {
        prepare::in_scope(self, path)
    }
}

impl Query {
    /// Every document of one collection, in id order.
    pub fn collection(collection: CollectionPath) -> Self {
        Query {
            scope: Scope::Collection(collection),
            filters: Vec::new(),
            condition: None,
            order_by: Vec::new(),
            start: None,
            end: None,
            offset: 0,
            limit: None,
        }
    }
}

impl Query {
    /// The order the query's results come in, Firestore's normalized order: the explicit
    /// `order_by` as given; then every field with a range or inequality filter (`<`, `<=`, `>`,
    /// `>=`, `!=`, `not-in`; `__name__` excepted) not explicitly ordered, in field-path order;
    /// then `__name__` unless explicitly ordered. Implicit orders take the direction of the last
    /// explicit order (ascending without one). The one definition used by the planner, the
    /// evaluator, cursor checks and the engine.
    pub fn effective_order(&self) -> Vec<Order> {
        let mut order = self.order_by.clone();
        let direction = order.last().map(|o| o.direction).unwrap_or_default();
        let inequality_fields: std::collections::BTreeSet<&FieldPath> = self
            .filters
            .iter()
            .chain(self.condition.iter().flat_map(Condition::leaves))
            .filter(|f| limits::is_inequality(f.op) && !f.field.is_document_id())
            .map(|f| &f.field)
            .collect();
        for field in inequality_fields {
            if !self.order_by.iter().any(|o| &o.field == field) {
                order.push(Order {
                    field: field.clone(),
                    direction,
                });
            }
        }
        if !self.order_by.iter().any(|o| o.field.is_document_id()) {
            order.push(Order {
                field: FieldPath::single(claimdb_model::field::DOCUMENT_ID),
                direction,
            });
        }
        order
    }
}

impl Query {
    /// The query's `where` in disjunctive normal form: a list of conjunctions (each the plain
    /// `filters` and one way through the [`Condition`]), a document matching when it passes
    /// every filter of one of them. Without a condition, the one conjunction of `filters`.
    /// `in` and `array-contains-any` stay single filters here (the limits count their values
    /// as disjunctions too). Conjunctions with the same filters are kept once. Fails when a
    /// composite is empty or the form would have more than [`limits::MAX_DISJUNCTIONS`]
    /// conjunctions (computing no more than that).
    pub fn conjunctions(&self) -> Result<Vec<Vec<&Filter>>, crate::StoreError> {
        let base: Vec<&Filter> = self.filters.iter().collect();
        let Some(condition) = &self.condition else {
            return Ok(vec![base]);
        };
        let mut out = Vec::new();
        for conjunction in dnf(condition)? {
            let mut all = base.clone();
            all.extend(conjunction);
            push_unique(&mut out, all);
        }
        Ok(out)
    }
}

/// Adds a conjunction unless one with the same filters (as a set) is there already.
fn push_unique<'a>(out: &mut Vec<Vec<&'a Filter>>, conjunction: Vec<&'a Filter>) {
    let same = |a: &[&Filter], b: &[&Filter]| {
        a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
    };
    if !out.iter().any(|seen| same(seen, &conjunction)) {
        out.push(conjunction);
    }
}

fn too_many_disjunctions() -> crate::StoreError {
    crate::StoreError::InvalidArgument(format!(
        "the query's or filters make more than {max} disjunctions in disjunctive normal form, \
         over the limit of {max}",
        max = limits::MAX_DISJUNCTIONS,
    ))
}

fn dnf(condition: &Condition) -> Result<Vec<Vec<&Filter>>, crate::StoreError> {
    match condition {
        Condition::Filter(f) => Ok(vec![vec![f]]),
        Condition::And(children) | Condition::Or(children) if children.is_empty() => {
            Err(crate::StoreError::InvalidArgument(
                "a composite filter (and / or) must hold at least one filter".into(),
            ))
        }
        Condition::Or(children) => {
            let mut out = Vec::new();
            for child in children {
                for conjunction in dnf(child)? {
                    push_unique(&mut out, conjunction);
                }
                if out.len() > limits::MAX_DISJUNCTIONS {
                    return Err(too_many_disjunctions());
                }
            }
            Ok(out)
        }
        Condition::And(children) => {
            let mut out: Vec<Vec<&Filter>> = vec![Vec::new()];
            for child in children {
                let terms = dnf(child)?;
                let mut product = Vec::with_capacity(out.len() * terms.len());
                for left in &out {
                    for right in &terms {
                        let mut conjunction = left.clone();
                        conjunction.extend(right.iter().copied());
                        push_unique(&mut product, conjunction);
                    }
                }
                if product.len() > limits::MAX_DISJUNCTIONS {
                    return Err(too_many_disjunctions());
                }
                out = product;
            }
            Ok(out)
        }
    }
}

/// What one call of [`crate::Store::query`] may return and do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most documents in the page (the query's `limit` still bounds the whole result).
    pub size: usize,
    /// Most documents the page may examine (read and test against the filters) before it ends
    /// early with a [`Position`] to continue from.
    pub max_examined: usize,
    /// Where the previous page of the same query ended.
    pub resume: Option<Position>,
}

impl PageRequest {
    /// The first page, of at most `size` documents, with the default work bound.
    pub fn first(size: usize) -> Self {
        PageRequest {
            size,
            max_examined: limits::DEFAULT_MAX_EXAMINED,
            resume: None,
        }
    }
}

/// Where a page ended, in the query's effective order: every document up to this point has
/// been returned, skipped by the offset, or passed over. Positions handed to clients come back
/// untrusted; a backend validates one against the query before using it, and a position can
/// only narrow the documents a query returns, never widen them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Index keys ([`claimdb_model::key::index_key`]) of a prefix of the effective order's
    /// fields; the next page begins strictly after them.
    pub keys: Vec<Vec<u8>>,
    /// How many documents of the query's `offset` have been skipped so far.
    pub skipped: usize,
    /// How many documents earlier pages returned (counted against the query's `limit`).
    pub returned: usize,
}

/// One page of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    pub documents: Vec<Document>,
    /// Present when the result may go on: pass it as the next [`PageRequest::resume`]. A page
    /// that reached its work bound may hold fewer documents than asked, or none.
    pub next: Option<Position>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(q: &Query) -> Vec<(String, Direction)> {
        q.effective_order()
            .into_iter()
            .map(|o| (o.field.to_string(), o.direction))
            .collect()
    }

    fn f(field: &str, op: Op) -> Filter {
        Filter {
            field: FieldPath::parse(field).unwrap(),
            op,
            value: Value::Int(1),
        }
    }

    fn by(field: &str, direction: Direction) -> Order {
        Order {
            field: FieldPath::parse(field).unwrap(),
            direction,
        }
    }

    /// Firestore's normalized order, on each point where the engine's former copy and the
    /// store's disagreed: inequality fields in field order (not filter order), kept after an
    /// explicit `__name__`, a `__name__` inequality not moving the name forward, and implicit
    /// orders in the last explicit direction.
    #[test]
    fn the_effective_order_is_firestores() {
        use Direction::{Asc, Desc};
        let mut q = Query::collection(CollectionPath::parse("c").unwrap());
        assert_eq!(order(&q), [("__name__".into(), Asc)]);
        q.filters = vec![
            f("x", Op::Gt),
            f("a", Op::Ne),
            f("e", Op::Eq),
            f("x", Op::Lt),
        ];
        assert_eq!(
            order(&q),
            [
                ("a".into(), Asc),
                ("x".into(), Asc),
                ("__name__".into(), Asc)
            ]
        );
        q.order_by = vec![by("__name__", Desc)];
        assert_eq!(
            order(&q),
            [
                ("__name__".into(), Desc),
                ("a".into(), Desc),
                ("x".into(), Desc)
            ]
        );
        q.order_by = vec![by("x", Desc), by("y", Asc)];
        q.filters = vec![f("__name__", Op::Gt), f("b", Op::NotIn), f("x", Op::Ge)];
        assert_eq!(
            order(&q),
            [
                ("x".into(), Desc),
                ("y".into(), Asc),
                ("b".into(), Asc),
                ("__name__".into(), Asc)
            ]
        );
    }
}
