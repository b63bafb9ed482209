//! Methods on values (`s.lower()`, `l.hasOnly([...])`, `m.diff(n).affectedKeys()`, …), with
//! dispatch on the receiver's runtime type, and the bounded regex cache behind `matches`,
//! `replace` and `split` (RE2 syntax, linear time, compiled-size limits).
//!
//! Arity was checked at compile time; types are checked here and a mismatch is an error value.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use regex::{Regex, RegexBuilder};

use crate::error::EvalError;
use crate::ops::contains;
use crate::value::{
    BytesV, ListV, MAX_LIST_LEN, MAX_STRING_BYTES, MapV, StrV, Val, check_size, equals, short,
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

/// Patterns compiled while evaluating one request.
#[derive(Default)]
pub struct RegexCache(HashMap<(String, bool), Arc<Regex>>);

impl RegexCache {
    pub fn get(&mut self, pattern: &str, anchored: bool) -> Result<Arc<Regex>, EvalError> {
        let key = (pattern.to_string(), anchored);
        if let Some(re) = self.0.get(&key) {
            return Ok(re.clone());
        }
        if self.0.len() >= MAX_DYNAMIC_REGEXES {
            return Err(EvalError::Limit(format!(
                "more than {MAX_DYNAMIC_REGEXES} distinct regular expressions in one request"
            )));
        }
        let re = Arc::new(compile(pattern, anchored).map_err(EvalError::Invalid)?);
        self.0.insert(key, re.clone());
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

fn no_method(recv: &Val<'_>, name: &str) -> EvalError {
    EvalError::ty(format!("{} has no method {name}()", recv.type_name()))
}

fn key_set<'a>(keys: Vec<&str>) -> Val<'a> {
    Val::set(keys.into_iter().map(Val::str).collect())
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
        // Membership goes through a sorted set so that two large lists cost n·log n, not n·m.
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
            let allowed = as_set(&arg(0))?;
            let mine = elements(&recv, "hasOnly()")?;
            Ok(Val::Bool(
                mine.iter().all(|m| contains(&allowed, m).unwrap_or(false)),
            ))
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
        (Val::Map(m), "keys") => Ok(Val::list(m.keys().into_iter().map(Val::str).collect())),
        (Val::Map(m), "values") => Ok(Val::list(m.entries().into_iter().map(|(_, v)| v).collect())),
        (Val::Map(m), "get") => map_get(m, &arg(0), arg(1)),
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
    let keys: Vec<String> = match key {
        Val::Str(s) => vec![s.as_str().to_string()],
        Val::List(l) => l
            .iter()
            .map(|k| match k {
                Val::Str(s) => Ok(s.as_str().to_string()),
                other => Err(EvalError::ty(format!(
                    "get() key path must hold strings, found {}",
                    other.type_name()
                ))),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(EvalError::ty(format!(
                "get() key must be a string or list, found {}",
                other.type_name()
            )));
        }
    };
    let mut current = Val::Map(m.clone());
    for k in keys {
        match &current {
            Val::Map(inner) => match inner.get(&k) {
                Some(v) => current = v,
                None => return Ok(default),
            },
            _ => return Ok(default),
        }
    }
    Ok(current)
}

fn map_diff<'a>(a: &MapV<'a>, b: &MapV<'a>, name: &str) -> Option<Val<'a>> {
    let ka = a.keys();
    let added = || {
        ka.iter()
            .copied()
            .filter(|k| !b.contains(k))
            .collect::<Vec<_>>()
    };
    let removed = || {
        b.keys()
            .into_iter()
            .filter(|k| !a.contains(k))
            .collect::<Vec<_>>()
    };
    let changed = |want_changed: bool| {
        ka.iter()
            .copied()
            .filter(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => equals(&x, &y) != want_changed,
                _ => false,
            })
            .collect::<Vec<_>>()
    };
    Some(match name {
        "addedKeys" => key_set(added()),
        "removedKeys" => key_set(removed()),
        "changedKeys" => key_set(changed(true)),
        "unchangedKeys" => key_set(changed(false)),
        "affectedKeys" => {
            let mut all = added();
            all.extend(removed());
            all.extend(changed(true));
            key_set(all)
        }
        _ => return None,
    })
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
