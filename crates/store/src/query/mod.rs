//! Queries: the domain types, and (below) the backend-independent planner and evaluator that
//! every backend shares so they agree on semantics.
//!
//! Semantics (Firestore's):
//! - Filters are ANDed. `==`/`in` use query equality (`1 == 1.0`); range filters (`<`, `<=`,
//!   `>`, `>=`) only match values of the operand's type class (numbers, strings, …);
//!   `!=`/`not-in` never match a document lacking the field (and `not-in` never matches null);
//!   `array-contains`/`array-contains-any` match arrays holding an equal element.
//! - The effective order is the explicit `order_by`, then any inequality-filtered fields not
//!   already ordered, then `__name__` in the direction of the last explicit order (ascending by
//!   default). A document lacking an ordered field is not returned.
//! - Cursors hold values for a prefix of the effective order; `__name__` cursor values are
//!   references (or, for a collection scope, a bare document id).

mod eval;
mod prepare;

pub use eval::Stream;
pub use prepare::{MAX_IN_VALUES, MAX_NOT_IN_VALUES, Plan, PreparedQuery};

pub use claimdb_model::Op;
use claimdb_model::{CollectionPath, DocPath, FieldPath, Value};

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
    pub filters: Vec<Filter>,
    pub order_by: Vec<Order>,
    pub start: Option<Cursor>,
    pub end: Option<Cursor>,
    pub offset: usize,
    pub limit: Option<usize>,
}

impl Query {
    /// Every document of one collection, in id order.
    pub fn collection(collection: CollectionPath) -> Self {
        Query {
            scope: Scope::Collection(collection),
            filters: Vec::new(),
            order_by: Vec::new(),
            start: None,
            end: None,
            offset: 0,
            limit: None,
        }
    }
}
