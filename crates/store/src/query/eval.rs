//! Query evaluation on documents, shared by every backend: matching a document against the
//! compiled filters, the comparator over the effective order, cursor positions, offset and
//! limit, both for an unordered candidate set ([`PreparedQuery::finish`]) and for documents
//! streamed in the order of the plan's first key ([`Stream`]). Does no IO.

use std::cmp::Ordering;

use claimdb_model::{FieldPath, Value, key};

use super::Direction;
use super::prepare::{CompiledCursor, PreparedQuery, Test, in_scope};
use crate::Document;

/// The index keys of a document's values for each field of the effective order.
type SortKeys = Vec<Vec<u8>>;

impl PreparedQuery {
    /// Whether `doc` is in scope, passes every filter and has every ordered field.
    pub fn matches(&self, doc: &Document) -> bool {
        self.sort_keys(doc).is_some()
    }

    /// The document's sort keys if it matches.
    fn sort_keys(&self, doc: &Document) -> Option<SortKeys> {
        if !in_scope(&self.scope, &doc.path) {
            return None;
        }
        for filter in &self.filters {
            let name;
            let value = if filter.field.is_document_id() {
                name = Value::Reference(doc.path.clone());
                &name
            } else {
                filter.field.get(&doc.data)?
            };
            if !test(&filter.test, value) {
                return None;
            }
        }
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

    fn before_start(&self, keys: &[Vec<u8>]) -> bool {
        self.start.as_ref().is_some_and(|c| {
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

    /// Evaluates the query over an unordered set of candidates (each at most once): filters,
    /// order, cursors, offset and limit.
    pub fn finish(&self, candidates: Vec<Document>) -> Vec<Document> {
        let mut keyed: Vec<(SortKeys, Document)> = candidates
            .into_iter()
            .filter_map(|d| self.sort_keys(&d).map(|k| (k, d)))
            .filter(|(k, _)| !self.before_start(k) && !self.after_end(k))
            .collect();
        keyed.sort_by(|a, b| self.compare_keys(&a.0, &b.0));
        let take = self.limit.unwrap_or(usize::MAX);
        keyed
            .into_iter()
            .skip(self.offset)
            .take(take)
            .map(|(_, d)| d)
            .collect()
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
            presorted,
            skipped: 0,
            out: Vec::new(),
            done: false,
        }
    }
}

/// Collects documents fed in the order of the first effective-order key (as [`super::Plan::Range`]
/// and [`super::Plan::ScanNames`] produce them), sorting runs of equal first keys by the rest of
/// the order, and says when nothing more can be returned.
pub struct Stream<'q> {
    query: &'q PreparedQuery,
    run: Vec<(SortKeys, Document)>,
    /// The input arrives in the full effective order: emit each document as it comes.
    presorted: bool,
    skipped: usize,
    out: Vec<Document>,
    done: bool,
}

impl Stream<'_> {
    /// Offers the next document; returns false once the result is complete (stop scanning).
    pub fn push(&mut self, doc: Document) -> bool {
        if self.done {
            return false;
        }
        let Some(keys) = self.query.sort_keys(&doc) else {
            return true;
        };
        if self.presorted
            || self
                .run
                .first()
                .is_some_and(|(k, _)| k.first() != keys.first())
        {
            self.flush();
            if self.done {
                return false;
            }
        }
        self.run.push((keys, doc));
        if self.presorted {
            self.flush();
            return !self.done;
        }
        true
    }

    /// The query's result.
    pub fn finish(mut self) -> Vec<Document> {
        self.flush();
        self.out
    }

    fn flush(&mut self) {
        let mut run = std::mem::take(&mut self.run);
        run.sort_by(|a, b| self.query.compare_keys(&a.0, &b.0));
        for (keys, doc) in run {
            if self.done {
                return;
            }
            if self.query.before_start(&keys) {
                continue;
            }
            if self.query.after_end(&keys) {
                self.done = true;
                return;
            }
            if self.skipped < self.query.offset {
                self.skipped += 1;
                continue;
            }
            self.out.push(doc);
            if self.query.limit.is_some_and(|l| self.out.len() >= l) {
                self.done = true;
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
    use crate::query::{Filter, Op, Order, Query};

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
        PreparedQuery::new(&q).unwrap()
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
        let p = PreparedQuery::new(&q).unwrap();
        let mut s = p.stream();
        assert!(s.push(doc("z", Some(Value::Int(2)))));
        assert!(s.push(doc("m", Some(Value::Int(2)))));
        assert!(s.push(doc("b", Some(Value::Int(2)))));
        assert!(
            !s.push(doc("a", Some(Value::Int(1)))),
            "two results are enough"
        );
        let ids: Vec<String> = s.finish().iter().map(|d| d.path.id().to_string()).collect();
        assert_eq!(ids, vec!["b", "m"]);
        // One field then names in its direction: the scan order is the full order, so the
        // stream stops as soon as it has the limit, inside a run of equal values.
        q.order_by = vec![by("v", Direction::Desc)];
        let p = PreparedQuery::new(&q).unwrap();
        let mut s = p.stream();
        assert!(s.push(doc("z", Some(Value::Int(2)))));
        assert!(
            !s.push(doc("m", Some(Value::Int(2)))),
            "stops within the run"
        );
        let ids: Vec<String> = s.finish().iter().map(|d| d.path.id().to_string()).collect();
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
        let p = PreparedQuery::new(&q).unwrap();
        let out = p.finish(vec![
            doc("c", Some(Value::Int(3))),
            doc("a", Some(Value::Int(1))),
            doc("b", Some(Value::Int(2))),
            doc("d", Some(Value::Int(2))),
            doc("e", Some(Value::Int(4))),
        ]);
        let ids: Vec<&str> = out.iter().map(|d| d.path.id()).collect();
        assert_eq!(ids, vec!["d", "c"]);
    }
}
