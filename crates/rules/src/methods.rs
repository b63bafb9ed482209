//! Methods on values (`s.lower()`, `l.hasOnly([...])`, `m.diff(n).affectedKeys()`, …), with
//! dispatch on the receiver's runtime type, and the bounded regex cache behind `matches`,
//! `replace` and `split` (RE2 syntax, linear time, compiled-size limits).
//!
//! Arity was checked at compile time; types are checked here and a mismatch is an error value.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use claimdb_model::Value;
use regex::{Regex, RegexBuilder};

use crate::error::EvalError;
use crate::ops::contains;
use crate::value::{
    BytesV, ListV, MAX_LIST_LEN, MAX_STRING_BYTES, MapKey, MapV, StrV, Val, check_size, equals,
    short, total_cmp,
};

/// Longest regex pattern accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 4_096;
/// Compiled-program and lazy-DFA size limits for one regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Distinct dynamic patterns compiled per request.
const MAX_DYNAMIC_REGEXES: usize = 16;

/// Compiles a pattern for a whole-string match, within the size limits.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    compile(pattern, true)
}

fn compile(pattern: &str, anchored: bool) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!(
            "regular expression is {} bytes; the limit is {MAX_REGEX_LEN}",
            pattern.len()
        ));
    }
    let full = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    RegexBuilder::new(&full)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(100)
        .build()
        .map_err(|e| format!("invalid regular expression: {}", first_line(&e.to_string())))
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// Patterns compiled while evaluating one request (at most [`MAX_DYNAMIC_REGEXES`], so a list
/// searched in order; empty, it costs nothing to create or drop).
#[derive(Default)]
pub struct RegexCache(Vec<(String, bool, Arc<Regex>)>);

impl RegexCache {
    pub fn get(&mut self, pattern: &str, anchored: bool) -> Result<Arc<Regex>, EvalError> {
        if let Some((_, _, re)) = self
            .0
            .iter()
            .find(|(p, a, _)| *a == anchored && p == pattern)
        {
            return Ok(re.clone());
        }
        if self.0.len() >= MAX_DYNAMIC_REGEXES {
            return Err(EvalError::Limit(format!(
                "more than {MAX_DYNAMIC_REGEXES} distinct regular expressions in one request"
            )));
        }
        let re = Arc::new(compile(pattern, anchored).map_err(EvalError::Invalid)?);
        self.0.push((pattern.to_string(), anchored, re.clone()));
        Ok(re)
    }
}

fn want_str<'v>(v: &'v Val<'_>, what: &str) -> Result<&'v str, EvalError> {
    match v {
        Val::Str(s) => Ok(s.as_str()),
        other => Err(EvalError::ty(format!(
            "{what} must be a string, found {}",
            other.type_name()
        ))),
    }
}

fn elements<'a>(v: &Val<'a>, what: &str) -> Result<Vec<Val<'a>>, EvalError> {
    v.elements().ok_or_else(|| {
        EvalError::ty(format!(
            "{what} needs a list or set, found {}",
            v.type_name()
        ))
    })
}

/// A list or set argument as a set, for fast membership.
fn as_set<'a>(v: &Val<'a>) -> Result<Val<'a>, EvalError> {
    match v {
        Val::Set(_) => Ok(v.clone()),
        Val::List(l) => Ok(Val::set(l.to_vec())),
        other => Err(EvalError::ty(format!(
            "expected a list or set, found {}",
            other.type_name()
        ))),
    }
}

/// Up to this many element comparisons, list/set membership tests scan instead of building a
/// sorted set (the same answer: set membership is `total_cmp` equality, and NaN is in nothing).
const SCAN_LIMIT: usize = 64;

fn seq_len(v: &Val<'_>) -> usize {
    match v {
        Val::List(l) => l.len(),
        Val::Set(s) => s.len(),
        _ => 0,
    }
}

/// Whether `pred` holds for every element of a list or set (vacuously for anything else).
fn all_elements<'a>(v: &Val<'a>, mut pred: impl FnMut(&Val<'a>) -> bool) -> bool {
    match v {
        Val::List(ListV::B(items)) => items.iter().all(|x| pred(&Val::from_value(x))),
        Val::List(ListV::O(items)) | Val::Set(items) => items.iter().all(pred),
        _ => true,
    }
}

/// Whether `needle` is a member of the list or set `hay` taken as a set, by scanning.
fn scan_member(hay: &Val<'_>, needle: &Val<'_>) -> bool {
    !matches!(needle, Val::Float(f) if f.is_nan())
        && !all_elements(hay, |v| match (v, needle) {
            // Strings are equal in the total order exactly when their bytes are.
            (Val::Str(x), Val::Str(y)) => x.as_str() != y.as_str(),
            _ => total_cmp(v, needle) != Ordering::Equal,
        })
}

fn not_a_sequence(v: &Val<'_>) -> EvalError {
    EvalError::ty(format!("expected a list or set, found {}", v.type_name()))
}

fn no_method(recv: &Val<'_>, name: &str) -> EvalError {
    EvalError::ty(format!("{} has no method {name}()", recv.type_name()))
}

/// Calls `recv.name(args)`.
pub fn call<'a>(
    recv: Val<'a>,
    name: &str,
    args: &[Val<'a>],
    regexes: &mut RegexCache,
) -> Result<Val<'a>, EvalError> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Null);
    match (&recv, name) {
        (Val::Null, _) => Err(EvalError::Null(format!("cannot call {name}() on null"))),
        (Val::QueryData(m), "get") => match arg(0) {
            Val::Str(k) if m.contains(k.as_str()) => Ok(m.get(k.as_str()).unwrap_or(Val::Null)),
            other => Err(EvalError::Unprovable(format!(
                "resource.data.get({}, …) (the query does not fix that field)",
                short(&other)
            ))),
        },
        (Val::QueryData(_), _) => Err(EvalError::Unprovable(format!(
            "resource.data.{name}() depends on fields the query does not fix"
        ))),
        (Val::Str(s), "size") => Ok(Val::Int(s.as_str().chars().count() as i64)),
        (Val::Bytes(b), "size") => Ok(Val::Int(b.as_slice().len() as i64)),
        (Val::List(l), "size") => Ok(Val::Int(l.len() as i64)),
        (Val::Set(s), "size") => Ok(Val::Int(s.len() as i64)),
        (Val::Map(m), "size") => Ok(Val::Int(m.len() as i64)),
        (Val::Path(p), "size") => Ok(Val::Int(p.len() as i64)),
        (Val::Str(s), "lower") => Ok(Val::str(&s.as_str().to_lowercase())),
        (Val::Str(s), "upper") => Ok(Val::str(&s.as_str().to_uppercase())),
        (Val::Str(s), "trim") => Ok(match s {
            StrV::B(b) => Val::Str(StrV::B(b.trim())),
            StrV::O(o) => Val::str(o.trim()),
        }),
        (Val::Str(s), "toUtf8") => Ok(Val::Bytes(BytesV::O(Arc::from(s.as_str().as_bytes())))),
        (Val::Str(s), "matches") => {
            let re = regexes.get(want_str(&arg(0), "the pattern")?, true)?;
            Ok(Val::Bool(re.is_match(s.as_str())))
        }
        (Val::Str(s), "replace") => {
            let re = regexes.get(want_str(&arg(0), "the pattern")?, false)?;
            let sub = arg(1);
            let sub = want_str(&sub, "the replacement")?;
            let matches = re.find_iter(s.as_str()).count();
            check_size(
                "string",
                s.as_str()
                    .len()
                    .saturating_add(matches.saturating_mul(sub.len())),
                MAX_STRING_BYTES,
            )?;
            Ok(Val::str(&re.replace_all(s.as_str(), regex::NoExpand(sub))))
        }
        (Val::Str(s), "split") => {
            let re = regexes.get(want_str(&arg(0), "the pattern")?, false)?;
            Ok(Val::list(re.split(s.as_str()).map(Val::str).collect()))
        }
        // Membership goes through a sorted set so that two large lists cost n·log n, not n·m;
        // small ones are scanned in place.
        (Val::List(_) | Val::Set(_), "hasAll" | "hasAny")
            if matches!(args.first(), Some(Val::List(_) | Val::Set(_)))
                && seq_len(&recv).saturating_mul(seq_len(&args[0])) <= SCAN_LIMIT =>
        {
            let want = &args[0];
            Ok(Val::Bool(if name == "hasAll" {
                all_elements(want, |w| scan_member(&recv, w))
            } else {
                !all_elements(want, |w| !scan_member(&recv, w))
            }))
        }
        (Val::List(_) | Val::Set(_), "hasAll") => {
            let want = elements(&arg(0), "hasAll()")?;
            let mine = as_set(&recv)?;
            Ok(Val::Bool(
                want.iter().all(|w| contains(&mine, w).unwrap_or(false)),
            ))
        }
        (Val::List(_) | Val::Set(_), "hasAny") => {
            let want = elements(&arg(0), "hasAny()")?;
            let mine = as_set(&recv)?;
            Ok(Val::Bool(
                want.iter().any(|w| contains(&mine, w).unwrap_or(false)),
            ))
        }
        (Val::List(_) | Val::Set(_), "hasOnly") => {
            let allowed = args.first().unwrap_or(&Val::Null);
            if !matches!(allowed, Val::List(_) | Val::Set(_)) {
                return Err(not_a_sequence(allowed));
            }
            if seq_len(&recv).saturating_mul(seq_len(allowed)) <= SCAN_LIMIT {
                return Ok(Val::Bool(all_elements(&recv, |m| scan_member(allowed, m))));
            }
            let allowed = as_set(allowed)?;
            Ok(Val::Bool(all_elements(&recv, |m| {
                contains(&allowed, m).unwrap_or(false)
            })))
        }
        (Val::List(l), "join") => {
            let sep = arg(0);
            let sep = want_str(&sep, "the separator")?;
            let mut parts = Vec::with_capacity(l.len());
            let mut total = 0usize;
            for v in l.iter() {
                match v {
                    Val::Str(s) => {
                        total = total.saturating_add(s.as_str().len() + sep.len());
                        check_size("string", total, MAX_STRING_BYTES)?;
                        parts.push(s.as_str().to_string());
                    }
                    other => {
                        return Err(EvalError::ty(format!(
                            "join() needs a list of strings, found a {}",
                            other.type_name()
                        )));
                    }
                }
            }
            Ok(Val::str(&parts.join(sep)))
        }
        (Val::List(l), "concat") => {
            let more = elements(&arg(0), "concat()")?;
            check_size("list", l.len() + more.len(), MAX_LIST_LEN)?;
            let mut v = l.to_vec();
            v.extend(more);
            Ok(Val::list(v))
        }
        (Val::List(l), "removeAll") => {
            let drop = as_set(&arg(0))?;
            Ok(Val::list(
                l.iter()
                    .filter(|v| !contains(&drop, v).unwrap_or(false))
                    .collect(),
            ))
        }
        (Val::List(l), "toSet") => Ok(Val::set(l.to_vec())),
        (Val::Set(s), "union") => {
            let more = elements(&arg(0), "union()")?;
            check_size("set", s.len() + more.len(), MAX_LIST_LEN)?;
            let mut v = s.to_vec();
            v.extend(more);
            Ok(Val::set(v))
        }
        (Val::Set(s), "intersection") => {
            let other = Val::set(elements(&arg(0), "intersection()")?);
            Ok(Val::set(
                s.iter()
                    .filter(|v| contains(&other, v).unwrap_or(false))
                    .cloned()
                    .collect(),
            ))
        }
        (Val::Set(s), "difference") => {
            let other = Val::set(elements(&arg(0), "difference()")?);
            Ok(Val::set(
                s.iter()
                    .filter(|v| !contains(&other, v).unwrap_or(false))
                    .cloned()
                    .collect(),
            ))
        }
        (Val::Map(m), "keys") => {
            let mut keys = Vec::with_capacity(m.len());
            m.push_keys(&mut keys, |_, _| true);
            Ok(Val::list(keys))
        }
        (Val::Map(m), "values") => Ok(Val::list(m.entries().into_iter().map(|(_, v)| v).collect())),
        (Val::Map(m), "get") => map_get(m, args.first().unwrap_or(&Val::Null), arg(1)),
        (Val::Map(m), "diff") => match arg(0) {
            Val::Map(other) => Ok(Val::MapDiff(Arc::new((m.clone(), other)))),
            other => Err(EvalError::ty(format!(
                "diff() needs a map, found {}",
                other.type_name()
            ))),
        },
        (Val::MapDiff(d), _) => map_diff(&d.0, &d.1, name).ok_or_else(|| no_method(&recv, name)),
        (Val::Timestamp(ns), _) => {
            crate::time::component(*ns, name).map_err(|_| no_method(&recv, name))
        }
        (Val::Duration(ns), "seconds") => Ok(Val::Int(
            i64::try_from(ns / crate::time::NANOS_PER_SEC)
                .map_err(|_| EvalError::Overflow("seconds()".into()))?,
        )),
        (Val::Duration(ns), "nanos") => Ok(Val::Int((ns % crate::time::NANOS_PER_SEC) as i64)),
        (Val::LatLng(lat, _), "latitude") => Ok(Val::Float(*lat)),
        (Val::LatLng(_, lng), "longitude") => Ok(Val::Float(*lng)),
        (Val::LatLng(a1, o1), "distance") => match arg(0) {
            Val::LatLng(a2, o2) => Ok(Val::Float(haversine(*a1, *o1, a2, o2))),
            other => Err(EvalError::ty(format!(
                "distance() needs a latlng, found {}",
                other.type_name()
            ))),
        },
        (Val::Bytes(b), "toBase64") => Ok(Val::str(
            &base64::engine::general_purpose::URL_SAFE.encode(b.as_slice()),
        )),
        (Val::Bytes(b), "toHexString") => Ok(Val::str(
            &b.as_slice()
                .iter()
                .map(|x| format!("{x:02X}"))
                .collect::<String>(),
        )),
        (Val::Path(p), "bind") => match arg(0) {
            Val::Map(m) => bind(p, &m),
            other => Err(EvalError::ty(format!(
                "bind() needs a map, found {}",
                other.type_name()
            ))),
        },
        _ => Err(no_method(&recv, name)),
    }
}

/// `m.get(key, default)`; a list key walks nested maps.
fn map_get<'a>(m: &MapV<'a>, key: &Val<'a>, default: Val<'a>) -> Result<Val<'a>, EvalError> {
    match key {
        Val::Str(s) => Ok(m.get(s.as_str()).unwrap_or(default)),
        Val::List(l) => {
            // Every key must be a string, even past the point where the walk stops.
            for k in l.iter() {
                if !matches!(k, Val::Str(_)) {
                    return Err(EvalError::ty(format!(
                        "get() key path must hold strings, found {}",
                        k.type_name()
                    )));
                }
            }
            let mut current = Val::Map(m.clone());
            for k in l.iter() {
                let (Val::Str(k), Val::Map(inner)) = (&k, &current) else {
                    return Ok(default);
                };
                match inner.get(k.as_str()) {
                    Some(v) => current = v,
                    None => return Ok(default),
                }
            }
            Ok(current)
        }
        other => Err(EvalError::ty(format!(
            "get() key must be a string or list, found {}",
            other.type_name()
        ))),
    }
}

/// Whether `name` is a method of map_diff (each gives a set of keys).
pub fn is_diff_keys(name: &str) -> bool {
    matches!(
        name,
        "addedKeys" | "removedKeys" | "changedKeys" | "unchangedKeys" | "affectedKeys"
    )
}

/// `a.diff(b).<name>()`; `None` if `name` is not a map_diff method.
pub fn map_diff<'a>(a: &MapV<'a>, b: &MapV<'a>, name: &str) -> Option<Val<'a>> {
    let mut keys = Vec::new();
    each_diff_key(a, b, name, |k| keys.push(k.to_val()))?;
    // Keys come out in byte order without repeats, which is the set's order: no sorting.
    debug_assert!(keys.is_sorted_by(|p, q| total_cmp(p, q) == Ordering::Less));
    Some(Val::Set(Arc::new(keys)))
}

/// `a.diff(b).<name>().hasOnly(allowed)` without building the key set, when that is cheap:
/// `None` if `name` is not a map_diff method, `allowed` is not a list or set, or the operands
/// are too large to scan (the caller then builds the set and calls `hasOnly`).
pub fn diff_has_only(a: &MapV<'_>, b: &MapV<'_>, name: &str, allowed: &Val<'_>) -> Option<bool> {
    if !matches!(allowed, Val::List(_) | Val::Set(_))
        || (a.len() + b.len()).saturating_mul(seq_len(allowed)) > SCAN_LIMIT
    {
        return None;
    }
    let mut all = true;
    each_diff_key(a, b, name, |k| {
        all = all && scan_member(allowed, &Val::Str(StrV::B(k.as_str())));
    })?;
    Some(all)
}

/// Calls `emit` with each key `a.diff(b).<name>()` holds, in key order; `None` if `name` is
/// not a map_diff method.
fn each_diff_key<'m, 'a>(
    a: &'m MapV<'a>,
    b: &'m MapV<'a>,
    name: &str,
    emit: impl FnMut(MapKey<'m, 'a>),
) -> Option<()> {
    // Which keys of `a` (by whether `b` has them and holds an equal value) and of `b` count.
    let (added, changed, unchanged, removed) = match name {
        "addedKeys" => (true, false, false, false),
        "removedKeys" => (false, false, false, true),
        "changedKeys" => (false, true, false, false),
        "unchangedKeys" => (false, false, true, false),
        "affectedKeys" => (true, true, false, true),
        _ => return None,
    };
    let pick = DiffPick {
        added,
        changed,
        unchanged,
        removed,
    };
    match (a, b) {
        // Two document maps (the usual `request.resource.data.diff(resource.data)`): compare
        // the stored values in place.
        (MapV::B(x), MapV::B(y)) => merge_keys(
            x.iter().map(|(k, v)| (MapKey::B(k.as_str()), v)),
            y.iter().map(|(k, v)| (MapKey::B(k.as_str()), v)),
            |p, q| match (p, q) {
                // What `equals` answers for these, without making values.
                (Value::String(s), Value::String(t)) => s == t,
                (Value::Bool(s), Value::Bool(t)) => s == t,
                (Value::Int(s), Value::Int(t)) => s == t,
                (Value::Null, Value::Null) => true,
                _ => equals(&Val::from_value(p), &Val::from_value(q)),
            },
            pick,
            emit,
        ),
        _ => merge_keys(a.iter(), b.iter(), |p, q| equals(p, q), pick, emit),
    }
    Some(())
}

/// Which keys a map_diff method reports.
#[derive(Clone, Copy)]
struct DiffPick {
    /// Only in the first map.
    added: bool,
    /// In both, with unequal values.
    changed: bool,
    /// In both, with equal values.
    unchanged: bool,
    /// Only in the second map.
    removed: bool,
}

/// Walks two key-sorted entry sequences together (one pass, no lookups) and emits the keys
/// `pick` asks for, in key order.
fn merge_keys<'m, 'a, V>(
    a: impl Iterator<Item = (MapKey<'m, 'a>, V)>,
    b: impl Iterator<Item = (MapKey<'m, 'a>, V)>,
    eq: impl Fn(&V, &V) -> bool,
    pick: DiffPick,
    mut emit: impl FnMut(MapKey<'m, 'a>),
) {
    let (mut ia, mut ib) = (a.peekable(), b.peekable());
    loop {
        let order = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.as_str().cmp(kb.as_str()),
        };
        match order {
            Ordering::Less => {
                if let Some((k, _)) = ia.next()
                    && pick.added
                {
                    emit(k);
                }
            }
            Ordering::Greater => {
                if let Some((k, _)) = ib.next()
                    && pick.removed
                {
                    emit(k);
                }
            }
            Ordering::Equal => {
                if let (Some((k, x)), Some((_, y))) = (ia.next(), ib.next())
                    && (if eq(&x, &y) {
                        pick.unchanged
                    } else {
                        pick.changed
                    })
                {
                    emit(k);
                }
            }
        }
    }
}

fn bind<'a>(p: &[String], m: &MapV<'a>) -> Result<Val<'a>, EvalError> {
    let mut out = Vec::with_capacity(p.len());
    for seg in p {
        let name = seg
            .strip_prefix("$(")
            .and_then(|s| s.strip_suffix(')'))
            .or_else(|| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
        match name.and_then(|n| m.get(n)) {
            Some(Val::Str(s)) => out.push(s.as_str().to_string()),
            Some(other) => out.push(other.to_string()),
            None => out.push(seg.clone()),
        }
    }
    Ok(Val::path(out))
}

/// Great-circle distance in metres (mean Earth radius).
fn haversine(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().min(1.0).asin()
}

/// Builds a map value from evaluated entries (keys must be strings).
pub fn make_map<'a>(entries: Vec<(Val<'a>, Val<'a>)>) -> Result<Val<'a>, EvalError> {
    let mut m = BTreeMap::new();
    for (k, v) in entries {
        match k {
            Val::Str(s) => {
                m.insert(s.as_str().to_string(), v);
            }
            other => {
                return Err(EvalError::ty(format!(
                    "map keys must be strings, found {}",
                    other.type_name()
                )));
            }
        }
    }
    Ok(Val::Map(MapV::O(Arc::new(m))))
}

/// A list value from evaluated items.
pub fn make_list(items: Vec<Val<'_>>) -> Val<'_> {
    Val::List(ListV::O(Arc::new(items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tricky() -> Vec<Val<'static>> {
        vec![
            Val::Null,
            Val::Bool(true),
            Val::Int(0),
            Val::Int(1),
            Val::Float(1.0),
            Val::Float(-0.0),
            Val::Float(f64::NAN),
            Val::Float(1.5),
            Val::str("a"),
            Val::str("b"),
            Val::list(vec![Val::Int(1)]),
            Val::list(vec![Val::Float(1.0)]),
            Val::set(vec![Val::str("a"), Val::Int(2)]),
        ]
    }

    /// The scan used for small lists answers exactly as the sorted set used for large ones.
    #[test]
    fn scanning_agrees_with_the_sorted_set() {
        let vals = tricky();
        let mut hays = vec![Vec::new()];
        for a in &vals {
            hays.push(vec![a.clone()]);
            for b in &vals {
                hays.push(vec![a.clone(), b.clone()]);
                hays.push(vec![b.clone(), a.clone(), b.clone()]);
            }
        }
        for items in &hays {
            for hay in [Val::list(items.clone()), Val::set(items.clone())] {
                let set = as_set(&hay).unwrap_or(Val::Null);
                for needle in &vals {
                    assert_eq!(
                        scan_member(&hay, needle),
                        contains(&set, needle).unwrap_or(false),
                        "{needle} in {hay}"
                    );
                }
            }
        }
    }
}
