//! Query evaluation on documents, shared by every backend: matching a document against the
//! compiled filters, the comparator over the effective order, cursor and resume positions,
//! offset, limit, page size and the work bound, both for an unordered candidate set
//! ([`PreparedQuery::finish`]) and for documents streamed in the order of the plan's first key
//! ([`Stream`]). Does no IO.

use std::cmp::Ordering;

use claimdb_model::{FieldPath, Timestamp, Value, key};

use super::prepare::{CompiledCursor, PreparedQuery, Test, in_scope};
use super::{Direction, Position, QueryPage};
use crate::{Document, StoreError};

/// The index keys of a document's values for each field of the effective order.
type SortKeys = Vec<Vec<u8>>;

/// Where a document comes in a plan's scan: the key of its first order field, then its
/// document key ([`claimdb_model::DocPath::sort_key`]), both in the first order's direction —
/// the order in which every ordered plan ([`super::Plan::Range`], [`super::Plan::LookupByName`],
/// [`super::Plan::ScanNames`]) yields documents.
type ScanPlace = (Vec<u8>, Vec<u8>);

/// A query read at a past time ([`PreparedQuery::at`]).
#[derive(Debug, Clone)]
pub(super) struct Past {
    /// The read time: live documents updated after it are passed over.
    pub(super) time: Timestamp,
    /// The versions valid at `time` of documents changed since, that match the query and lie
    /// within its cursors and resume position, in scan order.
    pub(super) history: Vec<(ScanPlace, SortKeys, Document)>,
}

impl PreparedQuery {
    /// Makes this query read the database as it was at `time`. A backend runs its plan over
    /// the live documents as always; the evaluator then passes over every live document
    /// updated after `time` (it counts as examined, like one that does not match) and takes
    /// `history` in its place: the versions valid at `time` of the documents in the scope
    /// changed since (any order, each document at most once; the backend reads them from its
    /// history in the same snapshot). An ordered plan's [`Stream`] merges them into the scan in
    /// scan order, an unordered plan's [`PreparedQuery::finish`] adds them to the candidates, so
    /// filters, order, cursors, offset, limit, pages and the work bound are the live query's,
    /// defined once. The backend checks `time` first
    /// ([`crate::history::check_read_time`]).
    pub fn at(&mut self, time: Timestamp, history: Vec<Document>) {
        let mut kept: Vec<(ScanPlace, SortKeys, Document)> = history
            .into_iter()
            .filter_map(|doc| {
                let keys = self.sort_keys(&doc)?;
                if self.before_start(&keys) || self.after_end(&keys) {
                    return None;
                }
                let place = (keys.first()?.clone(), doc.path.sort_key());
                Some((place, keys, doc))
            })
            .collect();
        kept.sort_by(|a, b| self.scan_compare(&a.0, &b.0));
        self.past = Some(Past {
            time,
            history: kept,
        });
    }

    /// The time the query reads at, if not the present.
    pub fn read_time(&self) -> Option<Timestamp> {
        self.past.as_ref().map(|p| p.time)
    }

    /// Where `doc` comes in the plan's scan, if it has the first order field.
    fn scan_place(&self, doc: &Document) -> Option<ScanPlace> {
        let first = self.order.first()?;
        Some((field_key(&first.field, doc)?, doc.path.sort_key()))
    }

    /// The plan's scan order: by the first order key, then by document key, both in the first
    /// order's direction.
    fn scan_compare(&self, a: &ScanPlace, b: &ScanPlace) -> Ordering {
        let c = a.cmp(b);
        match self.order.first() {
            Some(o) if o.direction == Direction::Desc => c.reverse(),
            _ => c,
        }
    }

    /// Whether `doc` is a live document the query must pass over: it was updated after the
    /// past time the query reads at.
    fn too_new(&self, doc: &Document) -> bool {
        self.past.as_ref().is_some_and(|p| doc.update_time > p.time)
    }

    /// Whether `doc` is in scope, passes every filter of one conjunction and has every ordered
    /// field.
    pub fn matches(&self, doc: &Document) -> bool {
        self.sort_keys(doc).is_some()
    }

    /// The document's sort keys if it matches.
    fn sort_keys(&self, doc: &Document) -> Option<SortKeys> {
        if !in_scope(&self.scope, &doc.path) {
            return None;
        }
        let passes = |filter: &super::prepare::CompiledFilter| {
            if filter.field.is_document_id() {
                test(&filter.test, &Value::Reference(doc.path.clone()))
            } else {
                filter
                    .field
                    .get(&doc.data)
                    .is_some_and(|value| test(&filter.test, value))
            }
        };
        // One conjunction of the disjunctive normal form is enough (a document matching
        // several is still one result).
        if !self
            .conjunctions
            .iter()
            .any(|conjunction| conjunction.iter().all(passes))
        {
            return None;
        }
        self.order_keys(doc)
    }

    /// The document's keys for every order field, whether or not it matches the filters: its
    /// place in the order.
    fn order_keys(&self, doc: &Document) -> Option<SortKeys> {
        let mut keys = Vec::with_capacity(self.order.len());
        for o in &self.order {
            keys.push(field_key(&o.field, doc)?);
        }
        Some(keys)
    }

    fn compare_keys(&self, a: &[Vec<u8>], b: &[Vec<u8>]) -> Ordering {
        for ((x, y), o) in a.iter().zip(b).zip(&self.order) {
            let c = x.cmp(y);
            let c = if o.direction == Direction::Desc {
                c.reverse()
            } else {
                c
            };
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    }

    /// Compares a document's sort keys with a cursor on the cursor's prefix of the order.
    fn compare_cursor(&self, keys: &[Vec<u8>], cursor: &CompiledCursor) -> Ordering {
        self.compare_keys(&keys[..cursor.keys.len().min(keys.len())], &cursor.keys)
    }

    /// Whether "everything up to `a`" covers more than "everything up to `b`" (both prefixes of
    /// the order, exclusive): `a` is further, or equal on its length and shorter (a shorter
    /// prefix covers every extension of itself).
    fn beyond(&self, a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
        let n = a.len().min(b.len());
        match self.compare_keys(&a[..n], &b[..n]) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => a.len() < b.len(),
        }
    }

    /// Before the start cursor, or at or before where the previous page ended.
    fn before_start(&self, keys: &[Vec<u8>]) -> bool {
        [self.start.as_ref(), self.resume.as_ref()]
            .into_iter()
            .flatten()
            .any(|c| {
                let ord = self.compare_cursor(keys, c);
                ord == Ordering::Less || (ord == Ordering::Equal && !c.inclusive)
            })
    }

    fn after_end(&self, keys: &[Vec<u8>]) -> bool {
        self.end.as_ref().is_some_and(|c| {
            let ord = self.compare_cursor(keys, c);
            ord == Ordering::Greater || (ord == Ordering::Equal && !c.inclusive)
        })
    }

    /// Evaluates one page over an unordered set of candidates (each at most once): filters,
    /// order, cursors, the resume position, offset, limit and page size.
    pub fn finish(&self, candidates: Vec<Document>) -> QueryPage {
        let mut keyed: Vec<(SortKeys, Document)> = candidates
            .into_iter()
            .filter(|d| !self.too_new(d))
            .filter_map(|d| self.sort_keys(&d).map(|k| (k, d)))
            .collect();
        if let Some(past) = &self.past {
            keyed.extend(
                past.history
                    .iter()
                    .map(|(_, keys, doc)| (keys.clone(), doc.clone())),
            );
        }
        keyed.sort_by(|a, b| self.compare_keys(&a.0, &b.0));
        let mut page = Emitter::new(self);
        for (keys, doc) in keyed {
            if page.offer(self, keys, doc) != Flow::Continue {
                break;
            }
        }
        page.into_page(self, None)
    }

    /// A collector for documents arriving in the order of the plan's first key.
    pub fn stream(&self) -> Stream<'_> {
        // Ordered by one field then the name in the same direction (or by name alone): the
        // input, which breaks ties by document key in the scan's direction, is already in the
        // full order, so nothing needs buffering however long a run of equal values is.
        let presorted = match &self.order[..] {
            [_] => true,
            [first, name] => name.field.is_document_id() && name.direction == first.direction,
            _ => false,
        };
        Stream {
            query: self,
            run: Vec::new(),
            run_key: None,
            presorted,
            page: Emitter::new(self),
            examined: 0,
            position: None,
            state: State::Open,
            next_past: 0,
        }
    }
}

/// What to do after offering a document to a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Nothing more can be returned (the end cursor or the limit was reached).
    Complete,
    /// The page is full and another document follows it.
    More,
}

/// The documents of one page, taken in order from matching documents: cursors, the resume
/// position, what is left of the offset, the page size and the limit.
struct Emitter {
    skipped: usize,
    out: Vec<Document>,
    /// The sort keys of the last document in `out`.
    last: Option<SortKeys>,
    /// A document was found after a full page.
    more: bool,
}

impl Emitter {
    fn new(q: &PreparedQuery) -> Self {
        Emitter {
            skipped: q.skipped,
            out: Vec::new(),
            last: None,
            more: false,
        }
    }

    fn offer(&mut self, q: &PreparedQuery, keys: SortKeys, doc: Document) -> Flow {
        if q.before_start(&keys) {
            return Flow::Continue;
        }
        if q.after_end(&keys) {
            return Flow::Complete;
        }
        if self.skipped < q.offset {
            self.skipped += 1;
            return Flow::Continue;
        }
        if self.full(q) {
            self.more = true;
            return Flow::More;
        }
        self.out.push(doc);
        self.last = Some(keys);
        if q.limit
            .is_some_and(|l| q.returned.saturating_add(self.out.len()) >= l)
        {
            return Flow::Complete;
        }
        Flow::Continue
    }

    fn full(&self, q: &PreparedQuery) -> bool {
        self.out.len() >= q.take
    }

    /// The page: it continues after its last document when another was found, else after
    /// `stopped_at` when the work bound ended it there, else the result is complete.
    fn into_page(mut self, q: &PreparedQuery, stopped_at: Option<SortKeys>) -> QueryPage {
        let after = if self.more {
            self.last.take()
        } else {
            stopped_at
        };
        QueryPage {
            next: after.map(|keys| Position {
                keys,
                skipped: self.skipped,
                returned: q.returned.saturating_add(self.out.len()),
            }),
            documents: self.out,
        }
    }
}

/// Where a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// The page is decided (complete, or full with more to follow): stop scanning.
    Decided,
    /// The work bound was reached first.
    Spent,
}

/// Collects documents fed in the order of the first effective-order key (as [`super::Plan::Range`],
/// [`super::Plan::LookupByName`] and [`super::Plan::ScanNames`] produce them) into one page:
/// sorts runs of equal first keys by the rest of the order, counts every document fed against
/// the work bound, and says when to stop scanning.
pub struct Stream<'q> {
    query: &'q PreparedQuery,
    /// Matching documents sharing the first key `run_key`, not yet in the page.
    run: Vec<(SortKeys, Document)>,
    /// The first key of the last document fed (matching or not).
    run_key: Option<Vec<u8>>,
    /// The input arrives in the full effective order: each document goes to the page at once.
    presorted: bool,
    page: Emitter,
    examined: usize,
    /// The furthest place in the order up to which every document fed is accounted for (a
    /// prefix of the order's keys): where a page cut short by the work bound continues.
    position: Option<SortKeys>,
    state: State,
    /// For a query at a past time: how many of its history versions have been fed.
    next_past: usize,
}

impl Stream<'_> {
    /// Offers the next document; returns false once the page is decided or the work bound is
    /// reached (stop scanning). For a query at a past time, the history versions that come
    /// before `doc` in the scan are fed first, and `doc` is passed over if it is newer than
    /// the read time.
    pub fn push(&mut self, doc: Document) -> bool {
        if self.state != State::Open {
            return false;
        }
        let q = self.query;
        if let Some(past) = &q.past
            && let Some(place) = q.scan_place(&doc)
        {
            while let Some((before, keys, version)) = past.history.get(self.next_past)
                && q.scan_compare(before, &place) == Ordering::Less
            {
                self.next_past += 1;
                if !self.feed(Some(keys.clone()), version.clone()) {
                    return false;
                }
            }
        }
        let keys = if q.too_new(&doc) {
            None
        } else {
            q.sort_keys(&doc)
        };
        self.feed(keys, doc)
    }

    /// Feeds the history versions not fed yet (the scan ended: they all come after it).
    fn feed_rest_of_history(&mut self) {
        let Some(past) = &self.query.past else {
            return;
        };
        while self.state == State::Open
            && let Some((_, keys, version)) = past.history.get(self.next_past)
        {
            self.next_past += 1;
            self.feed(Some(keys.clone()), version.clone());
        }
    }

    /// Takes one document of the scan, with its sort keys when it is to be returned (`None`:
    /// it does not match, or is newer than a past read time).
    fn feed(&mut self, keys: Option<SortKeys>, doc: Document) -> bool {
        let q = self.query;
        self.examined += 1;
        if self.presorted {
            match keys {
                Some(keys) => {
                    self.position = Some(keys.clone());
                    if self.page.offer(q, keys, doc) != Flow::Continue {
                        self.state = State::Decided;
                    }
                }
                None => {
                    if let Some(place) = q.order_keys(&doc) {
                        self.position = Some(place);
                    }
                }
            }
        } else {
            let first = match &keys {
                Some(k) => k.first().cloned(),
                None => q.order.first().and_then(|o| field_key(&o.field, &doc)),
            };
            if first.is_some() && self.run_key != first {
                // Every document with the previous first key has arrived: its run is whole.
                self.flush();
                if let Some(done) = self.run_key.take()
                    && self.state == State::Open
                {
                    self.position = Some(vec![done]);
                }
                self.run_key = first;
            }
            if let Some(keys) = keys
                && self.state == State::Open
            {
                self.run.push((keys, doc));
            }
        }
        if self.state == State::Open && self.examined >= q.max_examined {
            self.state = State::Spent;
        }
        self.state == State::Open
    }

    /// The page. Fails with `ResourceExhausted` when the work bound ended the page before it
    /// got anywhere: a run of equal first keys longer than the bound (which must be sorted
    /// whole) or a resume position the scan cannot seek to.
    pub fn finish(mut self) -> Result<QueryPage, StoreError> {
        let q = self.query;
        if self.state == State::Open {
            self.feed_rest_of_history();
        }
        match self.state {
            State::Open => {
                // The input ended: the last run is whole.
                self.flush();
                Ok(self.page.into_page(q, None))
            }
            State::Decided => Ok(self.page.into_page(q, None)),
            State::Spent if self.page.full(q) => {
                let last = self.page.last.clone();
                Ok(self.page.into_page(q, last))
            }
            State::Spent => {
                let progressed = match (&self.position, &q.resume) {
                    (Some(p), Some(r)) => q.beyond(p, &r.keys),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if !progressed {
                    let field = q
                        .order
                        .first()
                        .map(|o| o.field.to_string())
                        .unwrap_or_default();
                    return Err(StoreError::ResourceExhausted(format!(
                        "the query examined {} documents (its work bound) without getting \
                         past one value of {field}: ordered by more fields after {field}, all \
                         documents sharing a value of it are sorted together; narrow the query \
                         with a filter, or order by {field} alone",
                        q.max_examined
                    )));
                }
                let position = self.position.take();
                Ok(self.page.into_page(q, position))
            }
        }
    }

    /// Puts the buffered run, sorted, into the page.
    fn flush(&mut self) {
        let mut run = std::mem::take(&mut self.run);
        run.sort_by(|a, b| self.query.compare_keys(&a.0, &b.0));
        for (keys, doc) in run {
            if self.page.offer(self.query, keys, doc) != Flow::Continue {
                self.state = State::Decided;
                return;
            }
        }
    }
}

fn field_key(field: &FieldPath, doc: &Document) -> Option<Vec<u8>> {
    if field.is_document_id() {
        Some(key::index_key(&Value::Reference(doc.path.clone())))
    } else {
        field.get(&doc.data).map(key::index_key)
    }
}

fn test(test: &Test, value: &Value) -> bool {
    match test {
        Test::Eq(k) => key::index_key(value) == *k,
        Test::In(ks) => ks.contains(&key::index_key(value)),
        Test::Range(lo, hi) => {
            let k = key::index_key(value);
            k >= *lo && k < *hi
        }
        Test::Ne(k) => key::index_key(value) != *k,
        Test::NotIn(ks) => !matches!(value, Value::Null) && !ks.contains(&key::index_key(value)),
        Test::Contains(k) => match value {
            Value::Array(items) => items.iter().any(|i| key::index_key(i) == *k),
            _ => false,
        },
        Test::ContainsAny(ks) => match value {
            Value::Array(items) => items.iter().any(|i| ks.contains(&key::index_key(i))),
            _ => false,
        },
        Test::Never => false,
    }
}

#[cfg(test)]
mod tests {
    use claimdb_model::{CollectionPath, DocPath, Map, Timestamp};

    use super::*;
    use crate::query::{Filter, Op, Order, PageRequest, Query};

    fn doc(id: &str, v: Option<Value>) -> Document {
        let mut data = Map::new();
        if let Some(v) = v {
            data.insert("v".into(), v);
        }
        Document {
            path: DocPath::parse(&format!("c/{id}")).unwrap(),
            data,
            create_time: Timestamp::from_micros(0).unwrap(),
            update_time: Timestamp::from_micros(0).unwrap(),
            version: 1,
        }
    }

    fn query(filters: Vec<Filter>, order: Vec<Order>) -> PreparedQuery {
        let mut q = Query::collection(CollectionPath::parse("c").unwrap());
        q.filters = filters;
        q.order_by = order;
        PreparedQuery::new(&q, &PageRequest::first(1_000)).unwrap()
    }

    fn v(op: Op, value: Value) -> Filter {
        Filter {
            field: FieldPath::single("v"),
            op,
            value,
        }
    }

    #[test]
    fn filters_compare_index_keys() {
        let ne = query(vec![v(Op::Ne, Value::Int(1))], vec![]);
        assert!(!ne.matches(&doc("a", None)), "!= needs the field");
        assert!(!ne.matches(&doc("a", Some(Value::Double(1.0)))));
        assert!(ne.matches(&doc("a", Some(Value::Null))));
        let not_in = query(
            vec![v(Op::NotIn, Value::Array(vec![Value::Int(1)]))],
            vec![],
        );
        assert!(
            !not_in.matches(&doc("a", Some(Value::Null))),
            "not-in excludes null"
        );
        assert!(not_in.matches(&doc("a", Some(Value::Int(2)))));
        let gt = query(vec![v(Op::Gt, Value::Int(1))], vec![]);
        assert!(gt.matches(&doc("a", Some(Value::Double(1.5)))));
        assert!(
            !gt.matches(&doc("a", Some(Value::String("2".into())))),
            "type-bounded"
        );
        let nan = query(vec![v(Op::Gt, Value::Double(f64::NAN))], vec![]);
        assert!(!nan.matches(&doc("a", Some(Value::Int(1)))));
        let other = query(vec![], vec![]);
        let mut outside = doc("a", None);
        outside.path = DocPath::parse("d/a").unwrap();
        assert!(!other.matches(&outside), "out of scope");
    }

    #[test]
    fn stream_sorts_ties_by_name_and_stops_at_the_limit() {
        let mut q = Query::collection(CollectionPath::parse("c").unwrap());
        let by = |field: &str, direction| Order {
            field: FieldPath::single(field),
            direction,
        };
        // Names ascending under a descending value: the scan's ties (names descending) need
        // sorting, so runs of equal values are buffered.
        q.order_by = vec![by("v", Direction::Desc), by("__name__", Direction::Asc)];
        q.limit = Some(2);
        let p = PreparedQuery::new(&q, &PageRequest::first(1_000)).unwrap();
        let mut s = p.stream();
        assert!(s.push(doc("z", Some(Value::Int(2)))));
        assert!(s.push(doc("m", Some(Value::Int(2)))));
        assert!(s.push(doc("b", Some(Value::Int(2)))));
        assert!(
            !s.push(doc("a", Some(Value::Int(1)))),
            "two results are enough"
        );
        let ids: Vec<String> = s
            .finish()
            .unwrap()
            .documents
            .iter()
            .map(|d| d.path.id().to_string())
            .collect();
        assert_eq!(ids, vec!["b", "m"]);
        // One field then names in its direction: the scan order is the full order, so the
        // stream stops as soon as it has the limit, inside a run of equal values.
        q.order_by = vec![by("v", Direction::Desc)];
        let p = PreparedQuery::new(&q, &PageRequest::first(1_000)).unwrap();
        let mut s = p.stream();
        assert!(s.push(doc("z", Some(Value::Int(2)))));
        assert!(
            !s.push(doc("m", Some(Value::Int(2)))),
            "stops within the run"
        );
        let ids: Vec<String> = s
            .finish()
            .unwrap()
            .documents
            .iter()
            .map(|d| d.path.id().to_string())
            .collect();
        assert_eq!(ids, vec!["z", "m"]);
    }

    #[test]
    fn finish_sorts_and_applies_cursors_and_offset() {
        let mut q = Query::collection(CollectionPath::parse("c").unwrap());
        q.filters = vec![v(
            Op::In,
            Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
        )];
        q.order_by = vec![Order {
            field: FieldPath::single("v"),
            direction: Direction::Asc,
        }];
        q.start = Some(crate::query::Cursor {
            values: vec![Value::Int(1)],
            inclusive: false,
        });
        q.offset = 1;
        let p = PreparedQuery::new(&q, &PageRequest::first(1_000)).unwrap();
        let out = p.finish(vec![
            doc("c", Some(Value::Int(3))),
            doc("a", Some(Value::Int(1))),
            doc("b", Some(Value::Int(2))),
            doc("d", Some(Value::Int(2))),
            doc("e", Some(Value::Int(4))),
        ]);
        let ids: Vec<&str> = out.documents.iter().map(|d| d.path.id()).collect();
        assert_eq!(ids, vec!["d", "c"]);
    }
}
