//! Runtime values of the rules language: the document model's types plus set, duration, path,
//! map-diff, constraint and resource, with the emulator's equalities, ordering and printing.
//!
//! Values borrow from the request and its documents (`'a`) wherever they can, so reading
//! `request.resource.data.title` copies nothing; computed values are reference-counted (`Arc`,
//! so compiled constants can live in a `Send + Sync` ruleset). Operators and methods are in
//! `ops.rs` and `methods.rs`.
//!
//! Semantics worth knowing (Java underneath the emulator):
//! - Strings are measured, indexed and ordered in UTF-16 code units.
//! - `==` compares an int and a float by value, but inside lists and maps types must match
//!   (`[1] == [1.0]` is false); sets (and map diffs) compare numbers by value at any depth.
//! - Maps built by rules keep their keys in the order written; documents' maps come in key
//!   order (claimdb stores them sorted).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use claimdb_model::{CollectionPath, DocPath, Map, Value};

use crate::constraint::Simple;
use crate::request::{Request, Target};

/// Largest string or bytes value an expression may build (documents are at most 1 MiB).
pub(crate) const MAX_STRING_BYTES: usize = 2 << 20;
/// Longest list or set an expression may build.
pub(crate) const MAX_LIST_LEN: usize = 100_000;

/// Refuses a computed string, bytes or list that would exceed the limits above.
pub(crate) fn check_size(
    what: &str,
    len: usize,
    limit: usize,
) -> Result<(), crate::error::EvalError> {
    if len > limit {
        Err(crate::error::EvalError::Limit(format!(
            "a computed {what} would hold {len} items; the limit is {limit}"
        )))
    } else {
        Ok(())
    }
}

/// A string, borrowed or shared.
#[derive(Debug, Clone)]
pub(crate) enum StrV<'a> {
    B(&'a str),
    O(Arc<str>),
}

impl StrV<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            StrV::B(s) => s,
            StrV::O(s) => s,
        }
    }
}

/// A byte string, borrowed or shared.
#[derive(Debug, Clone)]
pub(crate) enum BytesV<'a> {
    B(&'a [u8]),
    O(Arc<[u8]>),
}

impl BytesV<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            BytesV::B(s) => s,
            BytesV::O(s) => s,
        }
    }
}

/// A list: a borrowed document array or a computed one.
#[derive(Debug, Clone)]
pub(crate) enum ListV<'a> {
    B(&'a [Value]),
    O(Arc<Vec<Val<'a>>>),
}

impl<'a> ListV<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            ListV::B(s) => s.len(),
            ListV::O(v) => v.len(),
        }
    }
    pub(crate) fn get(&self, i: usize) -> Option<Val<'a>> {
        match self {
            ListV::B(s) => s.get(i).map(Val::from_value),
            ListV::O(v) => v.get(i).cloned(),
        }
    }
    pub(crate) fn iter(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
    pub(crate) fn to_vec(&self) -> Vec<Val<'a>> {
        self.iter().collect()
    }
}

/// A map built by rules: keys in the order they were first written (a repeated key keeps its
/// place and takes the last value). Small maps are a list searched in order; past
/// [`INDEXED_MAP`] entries a key index is kept too.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedMap<'a> {
    /// Keys borrow the request's or the rules' strings where they can.
    entries: Vec<(Cow<'a, str>, Val<'a>)>,
    index: Option<std::collections::HashMap<String, usize>>,
}

/// Maps with more entries than this keep a key index.
const INDEXED_MAP: usize = 16;

impl<'a> OwnedMap<'a> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with_capacity(n: usize) -> Self {
        OwnedMap {
            entries: Vec::with_capacity(n),
            index: None,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(key).copied(),
            None => self.entries.iter().position(|(k, _)| k == key),
        }
    }

    pub(crate) fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Val<'a>) {
        let key = key.into();
        if let Some(i) = self.position(&key) {
            if let Some(e) = self.entries.get_mut(i) {
                e.1 = value;
            }
            return;
        }
        if let Some(ix) = &mut self.index {
            ix.insert(key.to_string(), self.entries.len());
        } else if self.entries.len() >= INDEXED_MAP {
            let mut ix: std::collections::HashMap<String, usize> = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.to_string(), i))
                .collect();
            ix.insert(key.to_string(), self.entries.len());
            self.index = Some(ix);
        }
        self.entries.push((key, value));
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.position(key)
            .and_then(|i| self.entries.get(i))
            .map(|(_, v)| v)
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, (Cow<'a, str>, Val<'a>)> {
        self.entries.iter()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Val<'a>> {
        self.entries.iter().map(|(_, v)| v)
    }
}

impl<'a, K: Into<Cow<'a, str>>> FromIterator<(K, Val<'a>)> for OwnedMap<'a> {
    fn from_iter<I: IntoIterator<Item = (K, Val<'a>)>>(iter: I) -> Self {
        let mut m = OwnedMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

/// A map: a borrowed document map (key order) or a computed one (insertion order).
#[derive(Debug, Clone)]
pub(crate) enum MapV<'a> {
    B(&'a Map),
    O(Arc<OwnedMap<'a>>),
}

impl<'a> MapV<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            MapV::B(m) => m.len(),
            MapV::O(m) => m.len(),
        }
    }
    pub(crate) fn get(&self, key: &str) -> Option<Val<'a>> {
        match self {
            MapV::B(m) => m.get(key).map(Val::from_value),
            MapV::O(m) => m.get(key).cloned(),
        }
    }
    pub(crate) fn contains(&self, key: &str) -> bool {
        match self {
            MapV::B(m) => m.contains_key(key),
            MapV::O(m) => m.contains_key(key),
        }
    }
    /// The entries in the map's order.
    pub(crate) fn iter(&self) -> MapIter<'_, 'a> {
        match self {
            MapV::B(m) => MapIter::B(m.iter()),
            MapV::O(m) => MapIter::O(m.iter()),
        }
    }

    pub(crate) fn entries(&self) -> Vec<(&str, Val<'a>)> {
        match self {
            MapV::B(m) => m
                .iter()
                .map(|(k, v)| (k.as_str(), Val::from_value(v)))
                .collect(),
            MapV::O(m) => m.iter().map(|(k, v)| (k.as_ref(), v.clone())).collect(),
        }
    }

    /// The entries sorted by key (for comparisons that ignore order).
    pub(crate) fn sorted_entries(&self) -> Vec<(&str, Val<'a>)> {
        let mut e = self.entries();
        if let MapV::O(_) = self {
            e.sort_by(|a, b| a.0.cmp(b.0));
        }
        e
    }
}

/// The entries of a [`MapV`], in its order.
pub(crate) enum MapIter<'m, 'a> {
    B(std::collections::btree_map::Iter<'a, String, Value>),
    O(std::slice::Iter<'m, (Cow<'a, str>, Val<'a>)>),
}

/// A key of a [`MapV`]: borrowed from a document map, or from a computed one.
#[derive(Clone, Copy)]
pub(crate) enum MapKey<'m, 'a> {
    B(&'a str),
    O(&'m str),
}

impl<'a> MapKey<'_, 'a> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            MapKey::B(k) => k,
            MapKey::O(k) => k,
        }
    }

    /// The key as a string value (a copy only for a computed map's key).
    pub(crate) fn to_val(self) -> Val<'a> {
        match self {
            MapKey::B(k) => Val::Str(StrV::B(k)),
            MapKey::O(k) => Val::str(k),
        }
    }
}

impl<'m, 'a> Iterator for MapIter<'m, 'a> {
    type Item = (MapKey<'m, 'a>, Val<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            MapIter::B(it) => it
                .next()
                .map(|(k, v)| (MapKey::B(k.as_str()), Val::from_value(v))),
            MapIter::O(it) => it.next().map(|(k, v)| (MapKey::O(k.as_ref()), v.clone())),
        }
    }
}

/// A document's full name, built only when a rule asks for `__name__`.
#[derive(Debug, Clone)]
pub(crate) enum NameV<'a> {
    /// A document of the request: the database id and the document path.
    Doc(&'a str, &'a DocPath),
    /// `databases/<db>/documents/<coll>/<id>…` as segments.
    Owned(Arc<[String]>),
}

impl NameV<'_> {
    pub(crate) fn segments(&self) -> Arc<[String]> {
        match self {
            NameV::Doc(db, p) => doc_name(db, p),
            NameV::Owned(s) => s.clone(),
        }
    }
}

/// `databases/<db>/documents/<collection…>` as segments.
pub(crate) fn collection_name(database: &str, c: &CollectionPath) -> Vec<String> {
    let mut segs = vec![
        "databases".to_string(),
        database.to_string(),
        "documents".to_string(),
    ];
    segs.extend(c.as_str().split('/').map(str::to_string));
    segs
}

/// The path a request is checked on (`request.path`): the document, or for a list its
/// collection; for a collection group, the document (or root) below which it looks.
pub(crate) fn target_segments(req: &Request) -> Vec<String> {
    match &req.target {
        Target::Doc(p) => doc_name(&req.database, p).to_vec(),
        Target::Collection(c) => collection_name(&req.database, c),
        Target::Group { under, .. } => {
            let mut segs = vec![
                "databases".to_string(),
                req.database.clone(),
                "documents".to_string(),
            ];
            if let Some(u) = under {
                segs.extend(u.segments().map(str::to_string));
            }
            segs
        }
    }
}

/// A `resource` value: the request's own document (stored, or as it would be after the
/// write), viewed in place; or a document read by `get()`, shared. Rules see it as the map
/// `{data, __name__, id}`.
#[derive(Debug, Clone)]
pub(crate) enum ResourceRef<'a> {
    /// A document of the request (its target is a document).
    Request {
        req: &'a Request,
        data: &'a Map,
    },
    Shared(Arc<ResourceV<'a>>),
}

impl<'a> ResourceRef<'a> {
    pub(crate) fn name(&self) -> NameV<'a> {
        match self {
            ResourceRef::Request { req, .. } => match &req.target {
                Target::Doc(p) => NameV::Doc(&req.database, p),
                _ => NameV::Owned(Arc::from(target_segments(req))),
            },
            ResourceRef::Shared(r) => r.name.clone(),
        }
    }

    pub(crate) fn data(&self) -> MapV<'a> {
        match self {
            ResourceRef::Request { data, .. } => MapV::B(data),
            ResourceRef::Shared(r) => r.data.clone(),
        }
    }

    /// The resource as the map rules see.
    pub(crate) fn to_map(&self) -> MapV<'a> {
        let name = self.name();
        let mut m = OwnedMap::with_capacity(3);
        m.insert("data", Val::Map(self.data()));
        let segs = name.segments();
        let id = segs.last().map_or("", String::as_str).to_string();
        m.insert("__name__", Val::Path(segs));
        m.insert("id", Val::str(&id));
        MapV::O(Arc::new(m))
    }
}

/// A document read by `get()`: `data`, `id` and `__name__`.
#[derive(Debug, Clone)]
pub(crate) struct ResourceV<'a> {
    pub name: NameV<'a>,
    pub data: MapV<'a>,
}

/// One runtime value.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(StrV<'a>),
    Bytes(BytesV<'a>),
    List(ListV<'a>),
    Map(MapV<'a>),
    /// Distinct elements (by value, numbers across int and float), sorted by [`set_cmp`];
    /// elements that equal nothing (holding NaN) are kept as they come.
    Set(Arc<Vec<Val<'a>>>),
    /// Nanoseconds since the Unix epoch.
    Timestamp(i128),
    /// Nanoseconds.
    Duration(i128),
    LatLng(f64, f64),
    /// Segments, without a leading `/`.
    Path(Arc<[String]>),
    /// `a.diff(b)`.
    MapDiff(Arc<(MapV<'a>, MapV<'a>)>),
    /// What a list query's filters tell of a field they do not pin to one value.
    Constraint(Arc<[Simple<'a>]>),
    /// What the emulator cannot know (a collection group's `request.path`): reading it fails.
    Unknown,
    /// The `request` variable (a map to rules; built only when a rule needs all of it).
    Request,
    Resource(ResourceRef<'a>),
}

impl<'a> Val<'a> {
    /// Views a stored value without copying it.
    pub(crate) fn from_value(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Double(d) => Val::Float(*d),
            Value::Timestamp(t) => Val::Timestamp(i128::from(t.micros()) * 1_000),
            Value::String(s) => Val::Str(StrV::B(s)),
            Value::Bytes(b) => Val::Bytes(BytesV::B(b)),
            Value::Reference(p) => Val::Path(doc_name("(default)", p)),
            Value::GeoPoint { lat, lng } => Val::LatLng(*lat, *lng),
            Value::Array(items) => Val::List(ListV::B(items)),
            Value::Map(m) => Val::Map(MapV::B(m)),
        }
    }

    pub(crate) fn str(s: &str) -> Val<'a> {
        Val::Str(StrV::O(Arc::from(s)))
    }

    pub(crate) fn list(items: Vec<Val<'a>>) -> Val<'a> {
        Val::List(ListV::O(Arc::new(items)))
    }

    /// A set from any values: duplicates (by value) dropped.
    pub(crate) fn set(mut items: Vec<Val<'a>>) -> Val<'a> {
        items.sort_by(set_cmp);
        let mut out: Vec<Val<'a>> = Vec::with_capacity(items.len());
        for v in items {
            let dup = out
                .last()
                .is_some_and(|last| set_cmp(last, &v) == Ordering::Equal && !never_equal(&v));
            if !dup {
                out.push(v);
            }
        }
        Val::Set(Arc::new(out))
    }

    pub(crate) fn path(segments: Vec<String>) -> Val<'a> {
        Val::Path(Arc::from(segments))
    }

    /// The name used by `is`, method dispatch and error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::List(_) => "list",
            Val::Map(_) | Val::Request | Val::Resource(_) => "map",
            Val::Set(_) => "set",
            Val::Timestamp(_) => "timestamp",
            Val::Duration(_) => "duration",
            Val::LatLng(..) => "latlng",
            Val::Path(_) => "path",
            Val::MapDiff(_) => "map_diff",
            Val::Constraint(_) => "constraint",
            Val::Unknown => "unknown",
        }
    }

    /// Elements of a list or set, for methods that take either.
    pub(crate) fn elements(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::List(l) => Some(l.to_vec()),
            Val::Set(s) => Some(s.to_vec()),
            _ => None,
        }
    }
}

/// `databases/<db>/documents/<path…>` as path segments.
pub(crate) fn doc_name(database: &str, path: &DocPath) -> Arc<[String]> {
    let mut segs = vec![
        "databases".to_string(),
        database.to_string(),
        "documents".to_string(),
    ];
    segs.extend(path.segments().map(str::to_string));
    Arc::from(segs)
}

// ----- equality and order

/// Whether a value equals nothing, itself included: a NaN, a map diff, a constraint, or a
/// container holding one.
pub(crate) fn never_equal(v: &Val<'_>) -> bool {
    match v {
        Val::Float(f) => f.is_nan(),
        Val::MapDiff(_) | Val::Constraint(_) | Val::Unknown => true,
        Val::List(ListV::B(items)) => items.iter().any(value_never_equal),
        Val::List(ListV::O(items)) | Val::Set(items) => items.iter().any(never_equal),
        Val::Map(MapV::B(m)) => m.values().any(value_never_equal),
        Val::Map(MapV::O(m)) => m.values().any(never_equal),
        Val::LatLng(a, b) => a.is_nan() || b.is_nan(),
        _ => false,
    }
}

fn value_never_equal(v: &Value) -> bool {
    match v {
        Value::Double(d) => d.is_nan(),
        Value::Array(items) => items.iter().any(value_never_equal),
        Value::Map(m) => m.values().any(value_never_equal),
        Value::GeoPoint { lat, lng } => lat.is_nan() || lng.is_nan(),
        _ => false,
    }
}

/// `request` and resources are maps to rules: their map, for comparisons.
fn as_plain<'v, 'a>(v: &'v Val<'a>) -> std::borrow::Cow<'v, Val<'a>> {
    match v {
        Val::Resource(r) => std::borrow::Cow::Owned(Val::Map(r.to_map())),
        _ => std::borrow::Cow::Borrowed(v),
    }
}

/// `==` of the language: an int equals a float of the same value, values of different types
/// are unequal, NaN equals nothing, and inside lists and maps types must match.
pub(crate) fn equals(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Int(x), Val::Float(y)) | (Val::Float(y), Val::Int(x)) => (*x as f64) == *y,
        _ => same(a, b, false),
    }
}

/// Equality without int/float conversion (list items, map values, `in` a list, the list
/// methods), or with it at every depth (`loose`: sets and map diffs).
pub(crate) fn same(a: &Val<'_>, b: &Val<'_>, loose: bool) -> bool {
    let inner = |x: &Val<'_>, y: &Val<'_>| {
        if loose {
            loose_eq(x, y)
        } else {
            same(x, y, false)
        }
    };
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Float(x), Val::Float(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x.as_str() == y.as_str(),
        (Val::Bytes(x), Val::Bytes(y)) => x.as_slice() == y.as_slice(),
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| inner(&p, &q))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k.as_str()).is_some_and(|w| inner(&v, &w)))
        }
        (Val::Set(x), Val::Set(y)) => {
            x.len() == y.len() && x.iter().all(|v| !never_equal(v) && set_contains(y, v))
        }
        (Val::Timestamp(x), Val::Timestamp(y)) | (Val::Duration(x), Val::Duration(y)) => x == y,
        (Val::LatLng(a1, o1), Val::LatLng(a2, o2)) => a1 == a2 && o1 == o2,
        (Val::Path(x), Val::Path(y)) => x == y,
        (Val::Request, Val::Request) => true,
        (Val::Resource(_), _) | (_, Val::Resource(_)) => {
            let (x, y) = (as_plain(a), as_plain(b));
            matches!((&*x, &*y), (Val::Map(_), Val::Map(_))) && same(&x, &y, loose)
        }
        _ => false,
    }
}

/// Equality with numbers compared by value at any depth (sets, map diffs).
pub(crate) fn loose_eq(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Int(x), Val::Float(y)) | (Val::Float(y), Val::Int(x)) => (*x as f64) == *y,
        _ => same(a, b, true),
    }
}

/// Whether a set (sorted by [`set_cmp`]) holds `v` (by value).
pub(crate) fn set_contains(set: &[Val<'_>], v: &Val<'_>) -> bool {
    if never_equal(v) {
        return false;
    }
    set.binary_search_by(|probe| set_cmp(probe, v)).is_ok()
}

fn rank(v: &Val<'_>, strict: bool) -> u8 {
    match v {
        Val::Null => 0,
        Val::Bool(_) => 1,
        Val::Int(_) => 2,
        Val::Float(_) => 2 + u8::from(strict),
        Val::Timestamp(_) => 4,
        Val::Duration(_) => 5,
        Val::Str(_) => 6,
        Val::Bytes(_) => 7,
        Val::Path(_) => 8,
        Val::LatLng(..) => 9,
        Val::List(_) => 10,
        Val::Set(_) => 11,
        Val::Map(_) | Val::Resource(_) => 12,
        Val::MapDiff(_) => 13,
        Val::Request => 14,
        Val::Constraint(_) => 15,
        Val::Unknown => 16,
    }
}

fn num_cmp(a: f64, b: f64) -> Ordering {
    // NaN sorts first and equals itself, so sorting stays total.
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn int_float_cmp(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= 9.3e18 {
        return Ordering::Less;
    }
    if f <= -9.3e18 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => num_cmp(0.0, f - t),
        o => o,
    }
}

/// The order of set elements: by type, then value, numbers across int and float (values that
/// compare equal are equal by [`loose_eq`], unless one of them [`never_equal`]s).
pub(crate) fn set_cmp(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    order(a, b, false)
}

/// A total order in which values compare equal exactly when they are the same without
/// int/float conversion (unless one of them [`never_equal`]s): for membership tests on
/// large lists.
pub(crate) fn strict_cmp(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    order(a, b, true)
}

fn order(a: &Val<'_>, b: &Val<'_>, strict: bool) -> Ordering {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(x), Val::Float(y)) if !strict => int_float_cmp(*x, *y),
        (Val::Float(x), Val::Int(y)) if !strict => int_float_cmp(*y, *x).reverse(),
        (Val::Float(x), Val::Float(y)) => num_cmp(*x, *y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.as_str().cmp(y.as_str()),
        (Val::Bytes(x), Val::Bytes(y)) => x.as_slice().cmp(y.as_slice()),
        (Val::Timestamp(x), Val::Timestamp(y)) | (Val::Duration(x), Val::Duration(y)) => x.cmp(y),
        (Val::Path(x), Val::Path(y)) => x.cmp(y),
        (Val::LatLng(a1, o1), Val::LatLng(a2, o2)) => {
            num_cmp(*a1, *a2).then_with(|| num_cmp(*o1, *o2))
        }
        (Val::List(x), Val::List(y)) => seq_order(&x.to_vec(), &y.to_vec(), strict),
        // Set elements compare by value whatever the outer equality.
        (Val::Set(x), Val::Set(y)) => seq_order(x, y, false),
        (Val::Map(_) | Val::Resource(_), Val::Map(_) | Val::Resource(_)) => {
            let (x, y) = (as_plain(a), as_plain(b));
            let (Val::Map(x), Val::Map(y)) = (&*x, &*y) else {
                return Ordering::Equal;
            };
            let (ex, ey) = (x.sorted_entries(), y.sorted_entries());
            for ((kx, vx), (ky, vy)) in ex.iter().zip(ey.iter()) {
                let o = kx.cmp(ky).then_with(|| order(vx, vy, strict));
                if o != Ordering::Equal {
                    return o;
                }
            }
            ex.len().cmp(&ey.len())
        }
        _ => rank(a, strict).cmp(&rank(b, strict)),
    }
}

fn seq_order(x: &[Val<'_>], y: &[Val<'_>], strict: bool) -> Ordering {
    for (a, b) in x.iter().zip(y.iter()) {
        let o = order(a, b, strict);
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

// ----- strings as Java sees them

/// A string's length in UTF-16 code units.
pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Code units `from..to` of `s`; a surrogate pair cut in half becomes U+FFFD.
pub(crate) fn utf16_slice(s: &str, from: usize, to: usize) -> String {
    if s.is_ascii() {
        return s.get(from..to).unwrap_or("").to_string();
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    String::from_utf16_lossy(units.get(from..to).unwrap_or(&[]))
}

/// Java's `String.compareTo`: UTF-16 code unit order.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    // UTF-8 byte order is code point order, which differs from UTF-16 order only where a
    // character at or above U+E000 meets a supplementary one.
    let tricky = |s: &str| s.bytes().any(|b| b >= 0xEE);
    if tricky(a) && tricky(b) {
        a.encode_utf16().cmp(b.encode_utf16())
    } else {
        a.cmp(b)
    }
}

/// A float as Java's `Double.toString` writes it: `1.0`, `0.001`, `1.0E7`, `1.0E-4`,
/// `Infinity`, `NaN`, with the shortest digits that read back the same.
pub(crate) fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    let sign = if f < 0.0 { "-" } else { "" };
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (1e-3..1e7).contains(&f.abs()) {
        let point = exponent + 1;
        let (int, frac) = if point <= 0 {
            (
                "0".to_owned(),
                format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
            )
        } else {
            let point = point as usize;
            let padded = format!("{digits:0<point$}");
            (
                padded.get(..point).unwrap_or("").to_owned(),
                padded.get(point..).unwrap_or("").to_owned(),
            )
        };
        let frac = if frac.is_empty() {
            "0".to_owned()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exponent}")
    }
}

/// Java's `Double.parseDouble`: surrounding control characters and spaces are ignored, and
/// `NaN`, `Infinity` and a trailing `d` or `f` are accepted.
pub(crate) fn parse_java_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    match body {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    let body = body.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(body);
    let bytes = body.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && bytes[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut count = digits(&mut i);
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        count += digits(&mut i);
    }
    if count == 0 {
        return None;
    }
    if i < bytes.len() && matches!(bytes[i], b'e' | b'E') {
        i += 1;
        if i < bytes.len() && matches!(bytes[i], b'+' | b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    body.parse::<f64>().ok().map(|f| sign * f)
}

/// Java's `Long.parseLong`: an optional sign and decimal digits, nothing else (no spaces).
pub(crate) fn parse_java_long(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

// ----- printing

/// A value rendered for an error message, cut to a readable length (values can be 1 MiB).
pub(crate) fn short(v: &Val<'_>) -> String {
    shorten_text(&v.to_string())
}

/// Cuts text to 100 characters for messages.
pub(crate) fn shorten_text(s: &str) -> String {
    if s.chars().count() > 100 {
        let mut t: String = s.chars().take(100).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

impl fmt::Display for Val<'_> {
    /// A readable, rules-like rendering used by `debug()`, traces and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => f.write_str("null"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Float(x) => f.write_str(&java_double(*x)),
            Val::Str(s) => write!(f, "{:?}", s.as_str()),
            Val::Bytes(b) => {
                f.write_str("b'")?;
                for byte in b.as_slice() {
                    write!(f, "\\x{byte:02x}")?;
                }
                f.write_str("'")
            }
            Val::List(l) => write_seq(f, "[", "]", l.iter()),
            Val::Set(s) => write_seq(f, "set([", "])", s.iter().cloned()),
            Val::Map(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.entries().into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
            Val::Timestamp(ns) => f.write_str(&crate::time::format_timestamp(*ns)),
            Val::Duration(ns) => write!(
                f,
                "duration({}s, {}ns)",
                ns.div_euclid(1_000_000_000),
                ns.rem_euclid(1_000_000_000)
            ),
            Val::LatLng(a, o) => write!(f, "latlng({a}, {o})"),
            Val::Path(p) => write!(f, "/{}", p.join("/")),
            Val::MapDiff(_) => f.write_str("map_diff"),
            Val::Constraint(c) => {
                f.write_str("constraint(")?;
                for (i, s) in c.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{} {}", s.comparator.name(), s.value)?;
                }
                f.write_str(")")
            }
            Val::Unknown => f.write_str("(unknown)"),
            Val::Request => f.write_str("request"),
            Val::Resource(r) => write!(f, "resource(/{})", r.name().segments().join("/")),
        }
    }
}

fn write_seq<'v>(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    close: &str,
    items: impl Iterator<Item = Val<'v>>,
) -> fmt::Result {
    f.write_str(open)?;
    for (i, v) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_doubles() {
        for (f, s) in [
            (1.0, "1.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (1_000_000.0, "1000000.0"),
            (10_000_000.0, "1.0E7"),
            (123_456_789.0, "1.23456789E8"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(java_double(f), s, "{f}");
        }
    }

    #[test]
    fn java_parsing() {
        assert_eq!(parse_java_double(" 1.5 "), Some(1.5));
        assert_eq!(parse_java_double("1e3"), Some(1000.0));
        assert_eq!(parse_java_double("-.5"), Some(-0.5));
        assert_eq!(parse_java_double("2."), Some(2.0));
        assert_eq!(parse_java_double("1.5d"), Some(1.5));
        for bad in ["inf", "abc", "", ".", "1e", "0x10", "nan"] {
            assert_eq!(parse_java_double(bad), None, "{bad}");
        }
        assert_eq!(parse_java_long("+12"), Some(12));
        for bad in [" 12", "1.5", "", "+", "9223372036854775808"] {
            assert_eq!(parse_java_long(bad), None, "{bad}");
        }
    }

    #[test]
    fn utf16_strings() {
        assert_eq!(utf16_len("😀"), 2);
        assert_eq!(utf16_slice("a😀b", 1, 3), "😀");
        assert_eq!(utf16_slice("a😀b", 1, 2), "\u{fffd}");
        // U+FF21 sorts after U+1F600 in code points, before it in UTF-16.
        assert_eq!(utf16_cmp("\u{ff21}", "😀"), Ordering::Greater);
    }
}
