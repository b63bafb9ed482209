//! Query validation and planning: turns a [`Query`] and a [`PageRequest`] into a
//! [`PreparedQuery`] (limits checked, filters compiled to key tests, the effective order,
//! cursors and the resume position as keys) and a [`Plan`] saying how a backend should reach the
//! candidate documents through its indexes. Does no IO; evaluation lives in `eval`.

use std::collections::BTreeSet;

use claimdb_model::key;
use claimdb_model::limits::MAX_INDEX_KEY_BYTES;
use claimdb_model::{DocPath, FieldPath, Value};

use super::{Cursor, Direction, Filter, Op, Order, PageRequest, Position, Query, Scope, limits};
use crate::StoreError;

/// How a backend reaches the candidate documents of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Read these documents by name (a `__name__ ==` or `in` filter). Names outside the scope
    /// may appear; evaluation drops them.
    Names(Vec<DocPath>),
    /// The union of the candidates of several [`Plan::Names`] and [`Plan::Lookup`] plans, one
    /// per disjunction of an or query, each document once; like a lookup, run
    /// [`PreparedQuery::scan_plan`] instead when they are more than
    /// [`PreparedQuery::max_examined`].
    Union(Vec<Plan>),
    /// Exact-key lookups in one field's single-field index: value entries, or "contains" entries
    /// of arrays when `contains` is set. The candidates are the union over `keys`; they arrive in
    /// no useful order, so the evaluator sorts them ([`PreparedQuery::finish`]). A backend that
    /// finds more candidates than [`PreparedQuery::max_examined`] runs
    /// [`PreparedQuery::scan_plan`] instead, which can stop early.
    Lookup {
        field: FieldPath,
        contains: bool,
        keys: Vec<Vec<u8>>,
    },
    /// The entries of one exact key of one field's index, which are in document-key order:
    /// used when the query is ordered by name only, so a page of a large match streams from
    /// the cursor (inclusive document-key bounds `lo`/`hi`) and stops at the limit. Feed the
    /// documents to a [`super::Stream`].
    LookupByName {
        field: FieldPath,
        contains: bool,
        key: Vec<u8>,
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        descending: bool,
    },
    /// An ordered scan of the value entries of `field` (the first field of the effective order)
    /// with keys in `[lo, hi)`, ascending or descending, ties by document key in the same
    /// direction. Feed the documents in that order to a [`super::Stream`], stopping when it says so.
    Range {
        field: FieldPath,
        lo: Vec<u8>,
        hi: Vec<u8>,
        descending: bool,
        /// Where an earlier page of a query ordered by this field then the name (in the same
        /// direction) stopped: a (value key, document key) entry. The scan begins strictly
        /// after it in its direction, in place of `lo` (ascending) or `hi` (descending), so a
        /// long run of equal values is not read again page after page.
        after: Option<(Vec<u8>, Vec<u8>)>,
    },
    /// An ordered scan of the scope's documents by key ([`DocPath::sort_key`]), within the
    /// inclusive bounds when given, fed to a [`super::Stream`].
    ScanNames {
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        descending: bool,
    },
}

/// A validated query, ready to plan and evaluate one page.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    pub(super) scope: Scope,
    /// The query's disjunctive normal form: a document matches when it passes every filter
    /// of one conjunction (always at least one conjunction, maybe empty).
    pub(super) conjunctions: Vec<Vec<CompiledFilter>>,
    pub(super) order: Vec<Order>,
    pub(super) start: Option<CompiledCursor>,
    pub(super) end: Option<CompiledCursor>,
    /// Where the previous page ended (always exclusive).
    pub(super) resume: Option<CompiledCursor>,
    pub(super) offset: usize,
    /// Documents of the offset earlier pages skipped.
    pub(super) skipped: usize,
    /// Documents earlier pages returned.
    pub(super) returned: usize,
    pub(super) limit: Option<usize>,
    /// Most documents this page returns (the page size, within what the limit leaves).
    pub(super) take: usize,
    pub(super) max_examined: usize,
    pub(super) plan: Plan,
    scan_plan: Plan,
    /// Set when the query reads at a past time ([`PreparedQuery::at`]).
    pub(super) past: Option<super::eval::Past>,
}

#[derive(Debug, Clone)]
pub(super) struct CompiledFilter {
    pub(super) field: FieldPath,
    pub(super) test: Test,
}

/// A filter as a test on the index key of the field's value (see `eval`).
#[derive(Debug, Clone)]
pub(super) enum Test {
    Eq(Vec<u8>),
    In(BTreeSet<Vec<u8>>),
    /// The key lies in `[lo, hi)`.
    Range(Vec<u8>, Vec<u8>),
    Ne(Vec<u8>),
    NotIn(BTreeSet<Vec<u8>>),
    Contains(Vec<u8>),
    ContainsAny(BTreeSet<Vec<u8>>),
    /// Matches nothing (a range filter on NaN).
    Never,
}

#[derive(Debug, Clone)]
pub(super) struct CompiledCursor {
    pub(super) keys: Vec<Vec<u8>>,
    pub(super) inclusive: bool,
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::InvalidArgument(message.into())
}

/// The smallest key greater than `k`.
fn successor(k: &[u8]) -> Vec<u8> {
    let mut out = k.to_vec();
    out.push(0);
    out
}

impl PreparedQuery {
    /// Validates `query` (shape and [`limits`]) and the page's resume position, computes the
    /// effective order and chooses a plan.
    pub fn new(query: &Query, page: &PageRequest) -> Result<Self, StoreError> {
        validate_scope(&query.scope)?;
        limits::check(query)?;
        if query.limit == Some(0) {
            return Err(invalid("limit must be at least 1 (or absent)"));
        }
        if query
            .limit
            .is_some_and(|l| l.checked_add(query.offset).is_none())
        {
            return Err(invalid("offset plus limit is too large"));
        }
        if page.size == 0 || page.max_examined == 0 {
            return Err(invalid(
                "a page must be allowed at least one document and one examined document",
            ));
        }
        let raw = query.conjunctions()?;
        let mut not_in = 0;
        let mut ne = 0;
        for f in query
            .filters
            .iter()
            .chain(query.condition.iter().flat_map(super::Condition::leaves))
        {
            match f.op {
                Op::NotIn => not_in += 1,
                Op::Ne => ne += 1,
                _ => {}
            }
        }
        if not_in > 1 {
            return Err(invalid("a query may have at most one not-in filter"));
        }
        if not_in > 0 && ne > 0 {
            return Err(invalid(
                "a not-in filter cannot be combined with a != filter",
            ));
        }
        if not_in > 0
            && query
                .condition
                .as_ref()
                .is_some_and(super::Condition::has_or)
        {
            return Err(invalid(
                "a not-in filter cannot be combined with an or filter",
            ));
        }
        let mut conjunctions = Vec::with_capacity(raw.len());
        for conjunction in &raw {
            let array_filters = conjunction
                .iter()
                .filter(|f| matches!(f.op, Op::ArrayContains | Op::ArrayContainsAny))
                .count();
            if array_filters > 1 {
                return Err(invalid(
                    "a query may have at most one array-contains or array-contains-any filter \
                     (in each disjunction of an or)",
                ));
            }
            conjunctions.push(
                conjunction
                    .iter()
                    .map(|f| compile_filter(&query.scope, f))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
        let order = query.effective_order();
        let start = compile_cursor(&query.scope, &order, query.start.as_ref(), "start")?;
        let end = compile_cursor(&query.scope, &order, query.end.as_ref(), "end")?;
        let (resume, skipped, returned) = match &page.resume {
            None => (None, 0, 0),
            Some(p) => {
                check_position(p, &order, query)?;
                let cursor = CompiledCursor {
                    keys: p.keys.clone(),
                    inclusive: false,
                };
                (Some(cursor), p.skipped, p.returned)
            }
        };
        let take = match query.limit {
            Some(l) => page.size.min(l - returned),
            None => page.size,
        };
        let bounds = Bounds {
            start: start.as_ref(),
            end: end.as_ref(),
            resume: resume.as_ref(),
        };
        let scan_plan = ordered_plan(&conjunctions, &order, bounds);
        let plan = match (raw.as_slice(), conjunctions.as_slice()) {
            ([raw], [compiled]) => choose_plan(raw, compiled, &conjunctions, &order, bounds),
            _ => union_plan(&raw, &conjunctions).unwrap_or_else(|| scan_plan.clone()),
        };
        Ok(PreparedQuery {
            scope: query.scope.clone(),
            conjunctions,
            order,
            start,
            end,
            resume,
            offset: query.offset,
            skipped,
            returned,
            limit: query.limit,
            take,
            max_examined: page.max_examined,
            plan,
            scan_plan,
            past: None,
        })
    }

    /// How to reach the candidates.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The ordered scan ([`Plan::Range`] or [`Plan::ScanNames`]) over the first order field,
    /// for a [`Plan::Lookup`] whose candidates outnumber [`PreparedQuery::max_examined`]: it
    /// stops at the work bound with a position to continue from.
    pub fn scan_plan(&self) -> &Plan {
        &self.scan_plan
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The effective order ([`Query::effective_order`]).
    pub fn order(&self) -> &[Order] {
        &self.order
    }

    /// How many documents this page may examine before it ends early.
    pub fn max_examined(&self) -> usize {
        self.max_examined
    }

    /// How many matching documents an ordered scan must produce for this page to be complete:
    /// what is left of the offset, the page, and one more that tells whether another page
    /// follows — never more than the work bound.
    pub fn wanted(&self) -> usize {
        (self.offset - self.skipped)
            .saturating_add(self.take)
            .saturating_add(1)
            .min(self.max_examined)
    }
}

/// The cursors bounding a scan, in query order: `start` and `resume` where results begin,
/// `end` where they stop.
#[derive(Debug, Clone, Copy)]
struct Bounds<'a> {
    start: Option<&'a CompiledCursor>,
    end: Option<&'a CompiledCursor>,
    resume: Option<&'a CompiledCursor>,
}

/// A resume position is untrusted input (it travels through clients): it must be a prefix of
/// the order made of index keys, and its counts must fit the query's offset and limit.
fn check_position(p: &Position, order: &[Order], query: &Query) -> Result<(), StoreError> {
    let why = if p.keys.is_empty() || p.keys.len() > order.len() {
        Some("its position does not fit the query's order")
    } else if p.keys.iter().any(|k| k.len() > MAX_INDEX_KEY_BYTES) {
        Some("its position holds a key longer than any index key")
    } else if p.skipped > query.offset || (p.skipped < query.offset && p.returned > 0) {
        Some("it does not fit the query's offset")
    } else if query.limit.is_some_and(|l| p.returned >= l) {
        Some("it does not fit the query's limit")
    } else {
        None
    };
    match why {
        Some(why) => Err(invalid(format!(
            "the page token does not belong to this query ({why}); pass the next_page_token \
             of the previous page together with the same query"
        ))),
        None => Ok(()),
    }
}

fn validate_scope(scope: &Scope) -> Result<(), StoreError> {
    if let Scope::Group { collection_id, .. } = scope
        && (collection_id.is_empty() || collection_id.contains('/'))
    {
        return Err(invalid(format!(
            "collection group id {collection_id:?} must be one non-empty segment"
        )));
    }
    Ok(())
}
/// Whether a document path lies in the scope.
pub(super) fn in_scope(scope: &Scope, path: &DocPath) -> bool {
    match scope {
        Scope::Collection(c) => {
            let p = path.as_str();
            p.len() > c.as_str().len() + 1
                && p.starts_with(c.as_str())
                && p.as_bytes()[c.as_str().len()] == b'/'
                && !p[c.as_str().len() + 1..].contains('/')
        }
        Scope::Group {
            collection_id,
            under,
        } => {
            path.collection_id() == collection_id
                && under.as_ref().is_none_or(|u| {
                    let p = path.as_str();
                    p.len() > u.as_str().len() + 1
                        && p.starts_with(u.as_str())
                        && p.as_bytes()[u.as_str().len()] == b'/'
                })
        }
    }
}

/// A `__name__` operand as a document path: a reference, or in a collection scope a bare id.
fn name_value(scope: &Scope, value: &Value) -> Option<DocPath> {
    match value {
        Value::Reference(p) => Some(p.clone()),
        Value::String(s) => match scope {
            Scope::Collection(c) if !s.contains('/') => c.doc(s).ok(),
            Scope::Group { .. } => DocPath::parse(s).ok(),
            Scope::Collection(_) => None,
        },
        _ => None,
    }
}

fn name_key(path: &DocPath) -> Vec<u8> {
    key::index_key(&Value::Reference(path.clone()))
}

fn compile_filter(scope: &Scope, filter: &Filter) -> Result<CompiledFilter, StoreError> {
    let field = &filter.field;
    let op = filter.op.as_str();
    let is_name = field.is_document_id();
    // The key of one operand value; `__name__` operands are normalized to references.
    let operand_key = |v: &Value| -> Result<Vec<u8>, StoreError> {
        if is_name {
            let path = name_value(scope, v).ok_or_else(|| {
                invalid(format!(
                    "a filter on __name__ takes a document reference (or, on a collection, a document id), not a {}",
                    v.type_name()
                ))
            })?;
            Ok(name_key(&path))
        } else {
            Ok(key::index_key(v))
        }
    };
    // Operand sizes were checked against the limits before compiling.
    let list = || -> Result<BTreeSet<Vec<u8>>, StoreError> {
        let Value::Array(items) = &filter.value else {
            return Err(invalid(format!(
                "the operand of {op} on {field} must be an array, not a {}",
                filter.value.type_name()
            )));
        };
        items.iter().map(operand_key).collect()
    };
    let test = match filter.op {
        Op::Eq => Test::Eq(operand_key(&filter.value)?),
        Op::Ne => Test::Ne(operand_key(&filter.value)?),
        Op::In => Test::In(list()?),
        Op::NotIn => Test::NotIn(list()?),
        Op::ArrayContains | Op::ArrayContainsAny if is_name => {
            return Err(invalid(format!("{op} cannot filter on __name__")));
        }
        Op::ArrayContains => Test::Contains(key::index_key(&filter.value)),
        Op::ArrayContainsAny => Test::ContainsAny(list()?),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => match &filter.value {
            Value::Null => {
                return Err(invalid(format!(
                    "null only supports == and != filters, not {op} (on {field})"
                )));
            }
            Value::Double(d) if d.is_nan() => Test::Never,
            value => {
                let k = operand_key(value)?;
                let (type_lo, type_hi) = if is_name {
                    reference_range()
                } else {
                    key::type_range(value)
                };
                match filter.op {
                    Op::Lt => Test::Range(type_lo, k),
                    Op::Le => Test::Range(type_lo, successor(&k)),
                    Op::Gt => Test::Range(successor(&k), type_hi),
                    _ => Test::Range(k, type_hi),
                }
            }
        },
    };
    Ok(CompiledFilter {
        field: field.clone(),
        test,
    })
}

fn compile_cursor(
    scope: &Scope,
    order: &[Order],
    cursor: Option<&Cursor>,
    which: &str,
) -> Result<Option<CompiledCursor>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    if cursor.values.len() > order.len() {
        return Err(invalid(format!(
            "{which} cursor does not match the order: it has {} values but the query orders by {} fields ({})",
            cursor.values.len(),
            order.len(),
            order
                .iter()
                .map(|o| o.field.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut keys = Vec::with_capacity(cursor.values.len());
    for (value, o) in cursor.values.iter().zip(order) {
        if o.field.is_document_id() {
            let path = name_value(scope, value)
                .filter(|p| in_scope(scope, p))
                .ok_or_else(|| {
                    invalid(format!(
                        "{which} cursor does not match the order: its __name__ value must be a document in the query's scope, not {}",
                        describe(value)
                    ))
                })?;
            keys.push(name_key(&path));
        } else {
            keys.push(key::index_key(value));
        }
    }
    Ok(Some(CompiledCursor {
        keys,
        inclusive: cursor.inclusive,
    }))
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Reference(p) => format!("reference {p}"),
        other => format!("a {}", other.type_name()),
    }
}

/// An or query's plan: the union of one candidate plan per conjunction, when every conjunction
/// has a `__name__` or equality-like filter to reach its candidates by (else `None`: an ordered
/// scan with every conjunction tested in memory).
fn union_plan(raw: &[Vec<&Filter>], conjunctions: &[Vec<CompiledFilter>]) -> Option<Plan> {
    let mut members = Vec::with_capacity(conjunctions.len());
    for (raw, compiled) in raw.iter().zip(conjunctions) {
        let member = names_plan(raw, compiled).or_else(|| lookup_plan(compiled))?;
        members.push(member);
    }
    Some(Plan::Union(members))
}

/// Names from a `__name__ ==`/`in` filter.
fn names_plan(raw: &[&Filter], filters: &[CompiledFilter]) -> Option<Plan> {
    for (f, c) in raw.iter().zip(filters) {
        if f.field.is_document_id() {
            let names: Option<Vec<DocPath>> = match (&f.value, f.op) {
                (Value::Array(items), Op::In) => items
                    .iter()
                    .map(|v| match v {
                        Value::Reference(p) => Some(p.clone()),
                        _ => None,
                    })
                    .collect(),
                (Value::Reference(p), Op::Eq) => Some(vec![p.clone()]),
                _ => None,
            };
            // Bare ids were normalized in the compiled keys; rebuild names from those.
            let names = names.or_else(|| match &c.test {
                Test::Eq(k) => name_from_key(k).map(|p| vec![p]),
                Test::In(ks) => ks.iter().map(|k| name_from_key(k)).collect(),
                _ => None,
            });
            if let Some(names) = names
                && matches!(f.op, Op::Eq | Op::In)
            {
                return Some(Plan::Names(names));
            }
        }
    }
    None
}

/// The most selective equality-like filter of a conjunction, as its index field, whether it
/// looks up "contains" entries, and its keys.
fn best_lookup(filters: &[CompiledFilter]) -> Option<(&FieldPath, bool, Vec<Vec<u8>>)> {
    let rank = |t: &Test| match t {
        Test::Eq(_) => Some(0),
        Test::Contains(_) => Some(1),
        Test::In(_) => Some(2),
        Test::ContainsAny(_) => Some(3),
        _ => None,
    };
    let (_, f) = filters
        .iter()
        .filter(|f| !f.field.is_document_id())
        .filter_map(|f| rank(&f.test).map(|r| (r, f)))
        .min_by_key(|(r, _)| *r)?;
    let (contains, keys) = match &f.test {
        Test::Eq(k) => (false, vec![k.clone()]),
        Test::In(ks) => (false, ks.iter().cloned().collect()),
        Test::Contains(k) => (true, vec![k.clone()]),
        Test::ContainsAny(ks) => (true, ks.iter().cloned().collect()),
        _ => (false, Vec::new()),
    };
    Some((&f.field, contains, keys))
}

fn lookup_plan(filters: &[CompiledFilter]) -> Option<Plan> {
    best_lookup(filters).map(|(field, contains, keys)| Plan::Lookup {
        field: field.clone(),
        contains,
        keys,
    })
}

/// The plan of a query of one conjunction, `filters` (`conjunctions` holding just it).
fn choose_plan(
    raw: &[&Filter],
    filters: &[CompiledFilter],
    conjunctions: &[Vec<CompiledFilter>],
    order: &[Order],
    bounds: Bounds<'_>,
) -> Plan {
    // 1. Names from a `__name__ ==`/`in` filter.
    if let Some(plan) = names_plan(raw, filters) {
        return plan;
    }
    // 2. An equality-like filter: the most selective kind first.
    if let Some((field, contains, keys)) = best_lookup(filters) {
        // One key and name order: the index entries of that key are already in name order.
        if let ([key], [only]) = (keys.as_slice(), order)
            && only.field.is_document_id()
        {
            let (lo, hi, descending) = first_field_bounds(conjunctions, only, bounds);
            return Plan::LookupByName {
                field: field.clone(),
                contains,
                key: key.clone(),
                lo: name_bound(&lo).map(|p| p.sort_key()),
                hi: name_bound(&hi).map(|p| p.sort_key()),
                descending,
            };
        }
        return Plan::Lookup {
            field: field.clone(),
            contains,
            keys,
        };
    }
    // 3. An ordered scan of the first order field.
    ordered_plan(conjunctions, order, bounds)
}

/// An ordered scan of the first order field, bounded by its range filters (of every
/// conjunction), the cursors and the resume position.
fn ordered_plan(conjunctions: &[Vec<CompiledFilter>], order: &[Order], bounds: Bounds<'_>) -> Plan {
    let Some(first) = order.first() else {
        return Plan::ScanNames {
            lo: None,
            hi: None,
            descending: false,
        };
    };
    let (lo, hi, descending) = first_field_bounds(conjunctions, first, bounds);
    if first.field.is_document_id() {
        return Plan::ScanNames {
            lo: name_bound(&lo).map(|p| p.sort_key()),
            hi: name_bound(&hi).map(|p| p.sort_key()),
            descending,
        };
    }
    // Ordered by this field then the name, in one direction: the scan order is the full order,
    // so an earlier page's last (value, name) is an exact place to continue from.
    let after = match (order, bounds.resume) {
        ([_, name], Some(resume))
            if name.field.is_document_id()
                && name.direction == first.direction
                && resume.keys.len() == 2 =>
        {
            let k = &resume.keys[0];
            name_from_key(&resume.keys[1])
                .filter(|_| *k >= lo && *k < hi)
                .map(|doc| (k.clone(), doc.sort_key()))
        }
        _ => None,
    };
    Plan::Range {
        field: first.field.clone(),
        lo,
        hi,
        descending,
        after,
    }
}

/// The key range `[lo, hi)` of the first order field allowed by its range filters, the cursors'
/// and the resume position's first values (evaluation is exact, so these only need to hold
/// every result), and whether it runs descending. With several conjunctions (an or), the
/// range spans each one's.
fn first_field_bounds(
    conjunctions: &[Vec<CompiledFilter>],
    first: &Order,
    bounds: Bounds<'_>,
) -> (Vec<u8>, Vec<u8>, bool) {
    let descending = first.direction == Direction::Desc;
    let mut span: Option<(Vec<u8>, Vec<u8>)> = None;
    for filters in conjunctions {
        let (mut lo, mut hi) = key::full_range();
        for f in filters.iter().filter(|f| f.field == first.field) {
            if let Test::Range(l, h) = &f.test {
                if *l > lo {
                    lo = l.clone();
                }
                if *h < hi {
                    hi = h.clone();
                }
            }
        }
        span = Some(match span {
            None => (lo, hi),
            Some((slo, shi)) => (slo.min(lo), shi.max(hi)),
        });
    }
    let (mut lo, mut hi) = span.unwrap_or_else(key::full_range);
    // In key order, a cursor where results begin bounds from below when ascending; one where
    // they stop bounds from above. A cursor of one exclusive value excludes that value itself.
    let mut narrow = |cursor: &CompiledCursor, begins: bool| {
        let Some(k) = cursor.keys.first() else {
            return;
        };
        let excludes_k = cursor.keys.len() == 1 && !cursor.inclusive;
        if begins != descending {
            let bound = if excludes_k { successor(k) } else { k.clone() };
            if bound > lo {
                lo = bound;
            }
        } else {
            let bound = if excludes_k { k.clone() } else { successor(k) };
            if bound < hi {
                hi = bound;
            }
        }
    };
    for begin in [bounds.start, bounds.resume].into_iter().flatten() {
        narrow(begin, true);
    }
    if let Some(end) = bounds.end {
        narrow(end, false);
    }
    (lo, hi, descending)
}

/// A bound on reference keys (a reference key or its successor `k ++ [0]`) as the document
/// it names, usable as an inclusive bound since evaluation is exact; `None` for a type bound.
fn name_bound(k: &[u8]) -> Option<DocPath> {
    name_from_key(k).or_else(|| k.strip_suffix(&[0]).and_then(name_from_key))
}

/// The key range of every reference.
fn reference_range() -> (Vec<u8>, Vec<u8>) {
    match DocPath::parse("a/b") {
        Ok(any) => key::type_range(&Value::Reference(any)),
        // Unreachable ("a/b" is a valid path); an empty range keeps this total.
        Err(_) => (Vec::new(), Vec::new()),
    }
}

/// Decodes a reference index key back into its path.
fn name_from_key(k: &[u8]) -> Option<DocPath> {
    let (lo, hi) = reference_range();
    if k.len() < 3 || k[0] != lo[0] || k[0] >= hi[0] {
        return None;
    }
    let body = k.get(1..k.len() - 2)?;
    if k[k.len() - 2..] != [0, 0] {
        return None;
    }
    DocPath::from_sort_key(body).ok()
}

#[cfg(test)]
mod tests;
