//! Runtime values of the rules language: the document model's types plus set, duration, path,
//! map-diff and resource, with equality, ordering and printing.
//!
//! Values borrow from the request and its documents (`'a`) wherever they can, so reading
//! `request.resource.data.title` copies nothing; computed values are reference-counted (`Arc`,
//! so compiled constants can live in a `Send + Sync` ruleset). Operators and methods are in
//! `ops.rs` and `methods.rs`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use claimdb_model::{CollectionPath, DocPath, Map, Value};

use crate::request::{Request, Target};

/// Largest string or bytes value an expression may build (documents are at most 1 MiB).
pub const MAX_STRING_BYTES: usize = 2 << 20;
/// Longest list or set an expression may build.
pub const MAX_LIST_LEN: usize = 100_000;

/// Refuses a computed string, bytes or list that would exceed the limits above.
pub fn check_size(what: &str, len: usize, limit: usize) -> Result<(), crate::error::EvalError> {
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
pub enum StrV<'a> {
    B(&'a str),
    O(Arc<str>),
}

impl StrV<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            StrV::B(s) => s,
            StrV::O(s) => s,
        }
    }
}

/// A byte string, borrowed or shared.
#[derive(Debug, Clone)]
pub enum BytesV<'a> {
    B(&'a [u8]),
    O(Arc<[u8]>),
}

impl BytesV<'_> {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            BytesV::B(s) => s,
            BytesV::O(s) => s,
        }
    }
}

/// A list: a borrowed document array or a computed one.
#[derive(Debug, Clone)]
pub enum ListV<'a> {
    B(&'a [Value]),
    O(Arc<Vec<Val<'a>>>),
}

impl<'a> ListV<'a> {
    pub fn len(&self) -> usize {
        match self {
            ListV::B(s) => s.len(),
            ListV::O(v) => v.len(),
        }
    }
    pub fn get(&self, i: usize) -> Option<Val<'a>> {
        match self {
            ListV::B(s) => s.get(i).map(Val::from_value),
            ListV::O(v) => v.get(i).cloned(),
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
    pub fn to_vec(&self) -> Vec<Val<'a>> {
        self.iter().collect()
    }
}

/// A map: a borrowed document map or a computed one. Keys are strings.
#[derive(Debug, Clone)]
pub enum MapV<'a> {
    B(&'a Map),
    O(Arc<BTreeMap<String, Val<'a>>>),
}

impl<'a> MapV<'a> {
    pub fn len(&self) -> usize {
        match self {
            MapV::B(m) => m.len(),
            MapV::O(m) => m.len(),
        }
    }
    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        match self {
            MapV::B(m) => m.get(key).map(Val::from_value),
            MapV::O(m) => m.get(key).cloned(),
        }
    }
    pub fn contains(&self, key: &str) -> bool {
        match self {
            MapV::B(m) => m.contains_key(key),
            MapV::O(m) => m.contains_key(key),
        }
    }
    /// The entries in key order (both kinds of map are sorted by key bytes).
    pub fn iter(&self) -> MapIter<'_, 'a> {
        match self {
            MapV::B(m) => MapIter::B(m.iter()),
            MapV::O(m) => MapIter::O(m.iter()),
        }
    }

    /// Appends the keys `keep` accepts (given each key and its value), in key order, as string
    /// values: borrowed from a document map, shared copies from a computed one.
    pub fn push_keys(&self, out: &mut Vec<Val<'a>>, mut keep: impl FnMut(&str, Val<'a>) -> bool) {
        match self {
            MapV::B(m) => {
                for (k, v) in m.iter() {
                    if keep(k, Val::from_value(v)) {
                        out.push(Val::Str(StrV::B(k)));
                    }
                }
            }
            MapV::O(m) => {
                for (k, v) in m.iter() {
                    if keep(k, v.clone()) {
                        out.push(Val::str(k));
                    }
                }
            }
        }
    }

    pub fn entries(&self) -> Vec<(&str, Val<'a>)> {
        match self {
            MapV::B(m) => m
                .iter()
                .map(|(k, v)| (k.as_str(), Val::from_value(v)))
                .collect(),
            MapV::O(m) => m.iter().map(|(k, v)| (k.as_str(), v.clone())).collect(),
        }
    }
}

/// The entries of a [`MapV`], in key order.
pub enum MapIter<'m, 'a> {
    B(std::collections::btree_map::Iter<'a, String, Value>),
    O(std::collections::btree_map::Iter<'m, String, Val<'a>>),
}

/// A key of a [`MapV`]: borrowed from a document map, or from a computed one.
#[derive(Clone, Copy)]
pub enum MapKey<'m, 'a> {
    B(&'a str),
    O(&'m str),
}

impl<'a> MapKey<'_, 'a> {
    pub fn as_str(&self) -> &str {
        match self {
            MapKey::B(k) => k,
            MapKey::O(k) => k,
        }
    }

    /// The key as a string value (a copy only for a computed map's key).
    pub fn to_val(self) -> Val<'a> {
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
            MapIter::O(it) => it.next().map(|(k, v)| (MapKey::O(k.as_str()), v.clone())),
        }
    }
}

/// A document's full name, built only when a rule asks for `__name__`.
#[derive(Debug, Clone)]
pub enum NameV<'a> {
    /// A document of the request: the database id and the document path.
    Doc(&'a str, &'a DocPath),
    /// The collection of a list request (the document id is unknown).
    Collection(&'a str, &'a CollectionPath),
    /// `databases/<db>/documents/<coll>/<id>…` as segments.
    Owned(Arc<[String]>),
}

impl NameV<'_> {
    pub fn segments(&self) -> Arc<[String]> {
        match self {
            NameV::Doc(db, p) => doc_name(db, p),
            NameV::Collection(db, c) => {
                let mut segs = vec![
                    "databases".to_string(),
                    db.to_string(),
                    "documents".to_string(),
                ];
                segs.extend(c.as_str().split('/').map(str::to_string));
                Arc::from(segs)
            }
            NameV::Owned(s) => s.clone(),
        }
    }
}

impl<'a> NameV<'a> {
    /// The name of the document (or, for a list, the collection) a request targets.
    pub fn of_target(req: &'a Request) -> NameV<'a> {
        match &req.target {
            Target::Doc(p) => NameV::Doc(&req.database, p),
            Target::Collection(c) => NameV::Collection(&req.database, c),
            Target::Group {
                under,
                collection_id,
            } => {
                let mut segs = vec![
                    "databases".to_string(),
                    req.database.clone(),
                    "documents".to_string(),
                ];
                if let Some(u) = under {
                    segs.extend(u.segments().map(str::to_string));
                }
                segs.push(collection_id.clone());
                NameV::Owned(Arc::from(segs))
            }
        }
    }

    /// The document id (last segment) as a value, `null` if unknown.
    pub fn id_val(&self) -> Val<'a> {
        match self {
            NameV::Doc(_, p) => Val::Str(StrV::B(p.id())),
            NameV::Collection(..) => Val::Null,
            NameV::Owned(s) => s.last().map_or(Val::Null, |id| Val::str(id)),
        }
    }
}

/// A `resource` value: the request's own document (stored, or as it would be after the
/// write), viewed in place; or a document read by `get()` or a list's stand-in, shared.
#[derive(Debug, Clone)]
pub enum ResourceRef<'a> {
    Request { req: &'a Request, data: &'a Map },
    Shared(Arc<ResourceV<'a>>),
}

impl<'a> ResourceRef<'a> {
    pub fn name(&self) -> NameV<'a> {
        match self {
            ResourceRef::Request { req, .. } => NameV::of_target(req),
            ResourceRef::Shared(r) => r.name.clone(),
        }
    }

    pub fn data(&self) -> MapV<'a> {
        match self {
            ResourceRef::Request { data, .. } => MapV::B(data),
            ResourceRef::Shared(r) => r.data.clone(),
        }
    }

    pub fn in_query(&self) -> bool {
        match self {
            ResourceRef::Request { .. } => false,
            ResourceRef::Shared(r) => r.in_query,
        }
    }
}

/// A document as rules see it: `data`, `id` and `__name__`.
#[derive(Debug, Clone)]
pub struct ResourceV<'a> {
    pub name: NameV<'a>,
    pub data: MapV<'a>,
    /// A stand-in for "any document a list query could return": its id is unknown and its data
    /// holds only what the query's equality constraints pin down.
    pub in_query: bool,
}

/// One runtime value.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(StrV<'a>),
    Bytes(BytesV<'a>),
    List(ListV<'a>),
    Map(MapV<'a>),
    /// Distinct elements, sorted by [`total_cmp`].
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
    /// `resource.data` in a list request: only the fields the query's equality filters fix are
    /// known; anything that depends on the rest of the document cannot be proven.
    QueryData(MapV<'a>),
    /// The `request` variable.
    Request,
    Resource(ResourceRef<'a>),
}

impl<'a> Val<'a> {
    /// Views a stored value without copying it.
    pub fn from_value(v: &'a Value) -> Val<'a> {
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

    pub fn str(s: &str) -> Val<'a> {
        Val::Str(StrV::O(Arc::from(s)))
    }

    pub fn list(items: Vec<Val<'a>>) -> Val<'a> {
        Val::List(ListV::O(Arc::new(items)))
    }

    /// A set from any values (sorted, duplicates dropped).
    pub fn set(mut items: Vec<Val<'a>>) -> Val<'a> {
        items.sort_by(total_cmp);
        items.dedup_by(|a, b| total_cmp(a, b) == Ordering::Equal);
        Val::Set(Arc::new(items))
    }

    pub fn path(segments: Vec<String>) -> Val<'a> {
        Val::Path(Arc::from(segments))
    }

    /// The name used by `is` and in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::List(_) => "list",
            Val::Map(_) => "map",
            Val::Set(_) => "set",
            Val::Timestamp(_) => "timestamp",
            Val::Duration(_) => "duration",
            Val::LatLng(..) => "latlng",
            Val::Path(_) => "path",
            Val::MapDiff(_) => "map_diff",
            Val::Request => "request",
            Val::Resource(_) => "resource",
            Val::QueryData(_) => "map",
        }
    }

    /// Elements of a list or set, for methods that take either.
    pub fn elements(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Val::List(l) => Some(l.to_vec()),
            Val::Set(s) => Some(s.to_vec()),
            _ => None,
        }
    }
}

/// `databases/<db>/documents/<path…>` as path segments.
pub fn doc_name(database: &str, path: &DocPath) -> Arc<[String]> {
    let mut segs = vec![
        "databases".to_string(),
        database.to_string(),
        "documents".to_string(),
    ];
    segs.extend(path.segments().map(str::to_string));
    Arc::from(segs)
}

fn rank(v: &Val<'_>) -> u8 {
    match v {
        Val::Null => 0,
        Val::Bool(_) => 1,
        Val::Int(_) | Val::Float(_) => 2,
        Val::Timestamp(_) => 3,
        Val::Duration(_) => 4,
        Val::Str(_) => 5,
        Val::Bytes(_) => 6,
        Val::Path(_) => 7,
        Val::LatLng(..) => 8,
        Val::List(_) => 9,
        Val::Set(_) => 10,
        Val::Map(_) => 11,
        Val::MapDiff(_) => 12,
        Val::Resource(_) => 13,
        Val::Request => 14,
        Val::QueryData(_) => 15,
    }
}

fn num_cmp(a: f64, b: f64) -> Ordering {
    // NaN sorts first and equals itself, so sets stay well-formed.
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

/// A total order over all values: by type, then by value. Used for sets and sorting; numbers
/// compare numerically across int and float.
pub fn total_cmp(a: &Val<'_>, b: &Val<'_>) -> Ordering {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(x), Val::Float(y)) => int_float_cmp(*x, *y),
        (Val::Float(x), Val::Int(y)) => int_float_cmp(*y, *x).reverse(),
        (Val::Float(x), Val::Float(y)) => num_cmp(*x, *y),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.as_str().cmp(y.as_str()),
        (Val::Bytes(x), Val::Bytes(y)) => x.as_slice().cmp(y.as_slice()),
        (Val::Timestamp(x), Val::Timestamp(y)) | (Val::Duration(x), Val::Duration(y)) => x.cmp(y),
        (Val::Path(x), Val::Path(y)) => x.cmp(y),
        (Val::LatLng(a1, o1), Val::LatLng(a2, o2)) => {
            num_cmp(*a1, *a2).then_with(|| num_cmp(*o1, *o2))
        }
        (Val::List(x), Val::List(y)) => seq_cmp(&x.to_vec(), &y.to_vec()),
        (Val::Set(x), Val::Set(y)) => seq_cmp(x, y),
        (Val::Map(x), Val::Map(y)) => {
            let (ex, ey) = (x.entries(), y.entries());
            for ((kx, vx), (ky, vy)) in ex.iter().zip(ey.iter()) {
                let o = kx.cmp(ky).then_with(|| total_cmp(vx, vy));
                if o != Ordering::Equal {
                    return o;
                }
            }
            ex.len().cmp(&ey.len())
        }
        (Val::Resource(x), Val::Resource(y)) => x
            .name()
            .segments()
            .cmp(&y.name().segments())
            .then_with(|| total_cmp(&Val::Map(x.data()), &Val::Map(y.data()))),
        _ => rank(a).cmp(&rank(b)),
    }
}

fn seq_cmp(x: &[Val<'_>], y: &[Val<'_>]) -> Ordering {
    for (a, b) in x.iter().zip(y.iter()) {
        let o = total_cmp(a, b);
        if o != Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// `==` of the language: numbers compare numerically, NaN equals nothing, values of different
/// types are simply unequal.
pub fn equals(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        // The common cases first, without ranking and ordering.
        (Val::Str(x), Val::Str(y)) => x.as_str() == y.as_str(),
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Null, Val::Null) => true,
        (Val::Float(x), _) if x.is_nan() => false,
        (_, Val::Float(y)) if y.is_nan() => false,
        (Val::List(x), Val::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| equals(&p, &q))
        }
        (Val::Map(x), Val::Map(y)) => {
            x.len() == y.len()
                && x.entries()
                    .iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| equals(v, &w)))
        }
        (Val::MapDiff(_), _) | (_, Val::MapDiff(_)) => false,
        _ => rank(a) == rank(b) && total_cmp(a, b) == Ordering::Equal,
    }
}

/// A value rendered for an error message, cut to a readable length (values can be 1 MiB).
pub fn short(v: &Val<'_>) -> String {
    shorten_text(&v.to_string())
}

/// Cuts text to 100 characters for messages.
pub fn shorten_text(s: &str) -> String {
    if s.chars().count() > 100 {
        let mut t: String = s.chars().take(100).collect();
        t.push('…');
        t
    } else {
        s.to_string()
    }
}

/// Formats a float the way people expect to read it: `1.0`, `0.5`, `1e+100`.
pub fn fmt_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

impl fmt::Display for Val<'_> {
    /// A readable, rules-like rendering used by `debug()`, traces and messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Null => f.write_str("null"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(i) => write!(f, "{i}"),
            Val::Float(x) => f.write_str(&fmt_float(*x)),
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
            Val::Request => f.write_str("request"),
            Val::Resource(r) => write!(f, "resource(/{})", r.name().segments().join("/")),
            Val::QueryData(m) => {
                f.write_str("{")?;
                for (k, v) in m.entries() {
                    write!(f, "{k:?}: {v}, ")?;
                }
                f.write_str("…}")
            }
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
