//! Methods on values (`s.lower()`, `l.hasOnly([...])`, `m.diff(n).affectedKeys()`, …), with
//! dispatch on the receiver's runtime type as the Firestore emulator has them, and the bounded
//! regex cache behind `matches`, `replace` and `split` (RE2 syntax, linear time, compiled-size
//! limits).
//!
//! Each type has a fixed set of methods with fixed argument types: calling another is an error,
//! and so are arguments of other types (`list.hasAll()` takes a list, `set.union()` a set).
//! Strings are Java strings (sizes in UTF-16 units, `lower()`/`upper()`/`trim()` ASCII-only,
//! `replace()` with `replaceAll`'s `$1` syntax, `split()` dropping trailing empty strings);
//! list methods compare items without int/float conversion, set methods with it.

use std::cmp::Ordering;
use std::sync::Arc;

use base64::Engine;
use regex::{Regex, RegexBuilder};

use crate::constraint;
use crate::error::EvalError;
use crate::value::{
    BytesV, ListV, MAX_LIST_LEN, MAX_STRING_BYTES, MapKey, MapV, OwnedMap, StrV, Val, check_size,
    loose_eq, never_equal, same, set_contains, strict_cmp, utf16_cmp, utf16_len,
};

/// Longest regex pattern accepted, in bytes.
pub(crate) const MAX_REGEX_LEN: usize = 4_096;
/// Compiled-program and lazy-DFA size limits for one regex.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Distinct dynamic patterns compiled per request.
const MAX_DYNAMIC_REGEXES: usize = 16;

/// Compiles a pattern for a whole-string match, within the size limits.
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    compile(pattern, true)
}

fn compile(pattern: &str, anchored: bool) -> Result<Regex, String> {
    if pattern.len() > MAX_REGEX_LEN {
        return Err(format!(
            "regular expression is {} bytes; the limit is {MAX_REGEX_LEN}",
            pattern.len()
        ));
    }
    if repeated_repetition(pattern) {
        return Err(format!(
            "invalid regular expression (a repetition of a repetition): {}",
            crate::value::shorten_text(pattern)
        ));
    }
    let rust = re2_to_rust(pattern);
    let full = if anchored {
        format!("^(?:{rust})$")
    } else {
        rust
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

/// An RE2 pattern in the `regex` crate's syntax: `\d`, `\w`, `\s` and `\b` are ASCII-only in
/// RE2 (`'é'.matches('\\w')` is false), and a bracket, `&` or `~` inside a class is a literal.
fn re2_to_rust(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars().peekable();
    let mut class = false;
    let mut first = false;
    while let Some(c) = chars.next() {
        let at_first = std::mem::take(&mut first);
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let ascii = match (class, e) {
                    (false, 'd') => "[0-9]",
                    (false, 'D') => "[^0-9]",
                    (false, 'w') => "[0-9A-Za-z_]",
                    (false, 'W') => "[^0-9A-Za-z_]",
                    (false, 's') => "[\\t\\n\\f\\r ]",
                    (false, 'S') => "[^\\t\\n\\f\\r ]",
                    (false, 'b') => "(?-u:\\b)",
                    (false, 'B') => "(?-u:\\B)",
                    (true, 'd') => "0-9",
                    (true, 'w') => "0-9A-Za-z_",
                    (true, 's') => "\\t\\n\\f\\r ",
                    _ => {
                        out.push('\\');
                        out.push(e);
                        continue;
                    }
                };
                out.push_str(ascii);
            }
            '[' if !class => {
                out.push('[');
                class = true;
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                first = true;
            }
            // `[]a]`: a bracket first in a class is a literal.
            ']' if class && at_first => out.push_str("\\]"),
            ']' if class => {
                out.push(']');
                class = false;
            }
            '[' if class && chars.peek() == Some(&':') => {
                // A POSIX class, `[:alpha:]`, as both read it.
                out.push('[');
                for c in chars.by_ref() {
                    out.push(c);
                    if c == ']' {
                        break;
                    }
                }
            }
            '[' | '&' | '~' if class => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether a repetition operator repeats another (`a**`, `a++`, `a*{2}`), which RE2 refuses
/// and the `regex` crate accepts. One `?` after an operator makes it lazy and is fine.
pub(crate) fn repeated_repetition(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut after_repetition = false;
    let mut lazy = false;
    let mut in_class = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            i += 2;
            after_repetition = false;
            continue;
        }
        if in_class {
            in_class = c != ']';
            i += 1;
            continue;
        }
        let repetition = match c {
            '*' | '+' | '?' => Some(1),
            '{' => counted_repetition(&chars[i..]),
            _ => None,
        };
        match repetition {
            Some(_) if after_repetition && c == '?' && lazy => {
                lazy = false;
                i += 1;
            }
            Some(_) if after_repetition => return true,
            Some(len) => {
                after_repetition = true;
                lazy = true;
                i += len;
            }
            None => {
                after_repetition = false;
                lazy = false;
                i += 1;
                if c == '[' {
                    in_class = true;
                    if chars.get(i) == Some(&'^') {
                        i += 1;
                    }
                    if chars.get(i) == Some(&']') {
                        i += 1;
                    }
                }
            }
        }
    }
    false
}

/// The length of `{n}`, `{n,}` or `{n,m}` at the start of `chars`.
fn counted_repetition(chars: &[char]) -> Option<usize> {
    let close = chars.iter().position(|&c| c == '}')?;
    let inner: String = chars.get(1..close)?.iter().collect();
    let (min, max) = inner.split_once(',').unwrap_or((&inner, "0"));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    (!min.is_empty() && digits(min) && digits(max)).then_some(close + 1)
}

/// Patterns compiled while evaluating one request (at most [`MAX_DYNAMIC_REGEXES`], so a list
/// searched in order; empty, it costs nothing to create or drop).
#[derive(Default)]
pub(crate) struct RegexCache(Vec<(String, bool, Arc<Regex>)>);

impl RegexCache {
    pub(crate) fn get(&mut self, pattern: &str, anchored: bool) -> Result<Arc<Regex>, EvalError> {
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

/// The argument types each method of each type takes ("any" matches anything); `None` if the
/// type has no such method.
fn signatures(type_name: &str, method: &str) -> Option<&'static [&'static [&'static str]]> {
    const NONE: &[&[&str]] = &[&[]];
    Some(match (type_name, method) {
        ("string", "size" | "lower" | "upper" | "trim" | "toUtf8") => NONE,
        ("string", "matches" | "split") => &[&["string"]],
        ("string", "replace") => &[&["string", "string"]],
        ("bytes", "size" | "toBase64" | "toHexString") => NONE,
        ("list", "size" | "toSet") => NONE,
        ("list", "hasAll" | "concat" | "removeAll" | "hasAny" | "hasOnly") => &[&["list"]],
        ("list", "join") => &[&["string"]],
        ("map", "get") => &[&["string", "any"], &["list", "any"]],
        ("map", "size" | "keys" | "values") => NONE,
        ("map", "diff") => &[&["map"]],
        ("set", "size") => NONE,
        ("set", "hasAll" | "hasAny" | "hasOnly") => &[&["set"], &["list"]],
        ("set", "difference" | "intersection" | "union") => &[&["set"]],
        (
            "map_diff",
            "addedKeys" | "affectedKeys" | "changedKeys" | "removedKeys" | "unchangedKeys",
        ) => NONE,
        (
            "timestamp",
            "date" | "time" | "toMillis" | "year" | "month" | "day" | "hours" | "minutes"
            | "seconds" | "nanos" | "dayOfWeek" | "dayOfYear",
        ) => NONE,
        ("duration", "seconds" | "nanos") => NONE,
        ("latlng", "distance") => &[&["latlng"]],
        ("latlng", "latitude" | "longitude") => NONE,
        ("path", "bind") => &[&["map"]],
        ("constraint", "hasAny") => &[&["list"]],
        _ => return None,
    })
}

/// Whether some type has a method of this name.
pub(crate) fn is_method(name: &str) -> bool {
    [
        "string",
        "bytes",
        "list",
        "map",
        "set",
        "map_diff",
        "timestamp",
        "duration",
        "latlng",
        "path",
        "constraint",
    ]
    .iter()
    .any(|t| signatures(t, name).is_some())
}

fn no_method(recv: &Val<'_>, name: &str) -> EvalError {
    EvalError::ty(format!("{} has no method {name}()", recv.type_name()))
}

fn str_arg<'v>(args: &'v [Val<'_>], i: usize) -> &'v str {
    match args.get(i) {
        Some(Val::Str(s)) => s.as_str(),
        _ => "",
    }
}

/// Up to this many element comparisons, list membership tests scan instead of sorting.
const SCAN_LIMIT: usize = 64;

fn seq_len(v: &Val<'_>) -> usize {
    match v {
        Val::List(l) => l.len(),
        Val::Set(s) => s.len(),
        _ => 0,
    }
}

/// Membership in a list (types matching exactly): a scan for small inputs, a sorted copy for
/// large ones.
struct ListLookup<'v, 'a> {
    list: &'v ListV<'a>,
    sorted: Option<Vec<Val<'a>>>,
}

impl<'v, 'a> ListLookup<'v, 'a> {
    fn new(list: &'v ListV<'a>, probes: usize) -> Self {
        let sorted = (list.len().saturating_mul(probes) > SCAN_LIMIT).then(|| {
            let mut v: Vec<Val<'a>> = list.iter().filter(|x| !never_equal(x)).collect();
            v.sort_by(strict_cmp);
            v
        });
        ListLookup { list, sorted }
    }

    fn contains(&self, x: &Val<'_>) -> bool {
        match &self.sorted {
            Some(v) => !never_equal(x) && v.binary_search_by(|probe| strict_cmp(probe, x)).is_ok(),
            None => self.list.iter().any(|v| same(&v, x, false)),
        }
    }
}

fn items<'a>(v: &Val<'a>) -> Vec<Val<'a>> {
    v.elements().unwrap_or_default()
}

/// Calls `recv.name(args)` (receiver and arguments already evaluated, `request` and resources
/// already turned into maps).
pub(crate) fn call<'a>(
    recv: Val<'a>,
    name: &str,
    args: &[Val<'a>],
    regexes: &mut RegexCache,
) -> Result<Val<'a>, EvalError> {
    if let Val::Null = recv {
        return Err(EvalError::Null(format!("cannot call {name}() on null")));
    }
    let type_name = recv.type_name();
    let Some(forms) = signatures(type_name, name) else {
        return Err(no_method(&recv, name));
    };
    let fits = |params: &&[&str]| {
        params.len() == args.len()
            && params
                .iter()
                .zip(args)
                .all(|(p, a)| *p == "any" || *p == a.type_name())
    };
    if !forms.iter().any(fits) {
        let given: Vec<&str> = args.iter().map(Val::type_name).collect();
        let wanted: Vec<String> = forms
            .iter()
            .map(|p| format!("{type_name}.{name}({})", p.join(", ")))
            .collect();
        return Err(EvalError::ty(format!(
            "{type_name}.{name}({}) is not defined; use {}",
            given.join(", "),
            wanted.join(" or ")
        )));
    }
    match &recv {
        Val::Str(s) => string_method(s, name, args, regexes),
        Val::Bytes(b) => Ok(match name {
            "size" => Val::Int(b.as_slice().len() as i64),
            "toBase64" => Val::str(&base64::engine::general_purpose::URL_SAFE.encode(b.as_slice())),
            _ => Val::str(
                &b.as_slice()
                    .iter()
                    .map(|x| format!("{x:02X}"))
                    .collect::<String>(),
            ),
        }),
        Val::List(l) => list_method(l, name, args),
        Val::Map(m) => map_method(m, name, args),
        Val::Set(s) => set_method(s, name, args),
        Val::MapDiff(d) => Ok(map_diff(&d.0, &d.1, name)),
        Val::Timestamp(ns) => crate::time::component(*ns, name).map_err(|_| no_method(&recv, name)),
        Val::Duration(ns) => Ok(Val::Int(match name {
            "seconds" => (ns / crate::time::NANOS_PER_SEC) as i64,
            _ => (ns % crate::time::NANOS_PER_SEC) as i64,
        })),
        Val::LatLng(lat, lng) => Ok(match (name, args) {
            ("latitude", _) => Val::Float(*lat),
            ("longitude", _) => Val::Float(*lng),
            (_, [Val::LatLng(lat2, lng2)]) => Val::Float(haversine(*lat, *lng, *lat2, *lng2)),
            _ => return Err(no_method(&recv, name)),
        }),
        Val::Path(p) => match args.first() {
            Some(Val::Map(m)) if m.len() == 0 => Ok(Val::Path(p.clone())),
            Some(Val::Map(m)) => {
                let names: Vec<&str> = m.entries().into_iter().map(|(k, _)| k).collect();
                Err(EvalError::invalid(format!(
                    "bind(): {} {} not a variable of this path (paths written in rules have none)",
                    names.join(", "),
                    if names.len() == 1 { "is" } else { "are" }
                )))
            }
            _ => Err(no_method(&recv, name)),
        },
        Val::Constraint(c) => match args.first() {
            Some(Val::List(l)) => Ok(Val::Bool(constraint::has_any(c, &l.to_vec()))),
            _ => Err(no_method(&recv, name)),
        },
        _ => Err(no_method(&recv, name)),
    }
}

fn string_method<'a>(
    s: &StrV<'a>,
    name: &str,
    args: &[Val<'a>],
    regexes: &mut RegexCache,
) -> Result<Val<'a>, EvalError> {
    let text = s.as_str();
    Ok(match name {
        "size" => Val::Int(utf16_len(text) as i64),
        // Only ASCII letters change case.
        "lower" => Val::str(&text.to_ascii_lowercase()),
        "upper" => Val::str(&text.to_ascii_uppercase()),
        // Java's `trim`: control characters and spaces, not other Unicode whitespace.
        "trim" => match s {
            StrV::B(b) => Val::Str(StrV::B(b.trim_matches(|c: char| c <= ' '))),
            StrV::O(o) => Val::str(o.trim_matches(|c: char| c <= ' ')),
        },
        "toUtf8" => Val::Bytes(BytesV::O(Arc::from(text.as_bytes()))),
        "matches" => Val::Bool(regexes.get(str_arg(args, 0), true)?.is_match(text)),
        "split" => {
            let re = regexes.get(str_arg(args, 0), false)?;
            let mut parts: Vec<&str> = re.split(text).collect();
            // Java's `split`: trailing empty strings are dropped (one stays for an empty result).
            while parts.len() > 1 && parts.last() == Some(&"") {
                parts.pop();
            }
            check_size("list", parts.len(), MAX_LIST_LEN)?;
            Val::list(parts.into_iter().map(Val::str).collect())
        }
        _ => {
            let re = regexes.get(str_arg(args, 0), false)?;
            Val::str(&replace_all(&re, text, str_arg(args, 1))?)
        }
    })
}

/// `replace()`, with Java's `replaceAll` replacement syntax: `$1`, `${name}` and `\` escapes;
/// a `$` not followed by a group is an error.
fn replace_all(re: &Regex, s: &str, replacement: &str) -> Result<String, EvalError> {
    let invalid = || {
        EvalError::invalid(format!(
            "invalid replacement string {:?} ($ must name a group of the pattern; write \\$ for a dollar sign)",
            crate::value::shorten_text(replacement)
        ))
    };
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for caps in re.captures_iter(s) {
        let Some(m) = caps.get(0) else {
            continue;
        };
        out.push_str(s.get(last..m.start()).unwrap_or(""));
        let mut chars = replacement.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next().ok_or_else(invalid)?),
                '$' => {
                    let group = if chars.peek() == Some(&'{') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                        caps.name(&name).ok_or_else(invalid)?.as_str()
                    } else {
                        // The longest group number that exists, as Java reads it.
                        let first = chars
                            .next()
                            .and_then(|c| c.to_digit(10))
                            .ok_or_else(invalid)?;
                        let mut number = first as usize;
                        while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                            let longer = number * 10 + d as usize;
                            if longer >= caps.len() {
                                break;
                            }
                            number = longer;
                            chars.next();
                        }
                        if number >= caps.len() {
                            return Err(invalid());
                        }
                        caps.get(number).map_or("", |g| g.as_str())
                    };
                    out.push_str(group);
                }
                c => out.push(c),
            }
            check_size("string", out.len(), MAX_STRING_BYTES)?;
        }
        last = m.end();
    }
    out.push_str(s.get(last..).unwrap_or(""));
    check_size("string", out.len(), MAX_STRING_BYTES)?;
    Ok(out)
}

/// `string(v)`: ints, floats (as Java prints them), null, strings, bools and paths.
pub(crate) fn to_string(v: &Val<'_>) -> Result<String, EvalError> {
    Ok(match v {
        Val::Int(i) => i.to_string(),
        Val::Float(f) => crate::value::java_double(*f),
        Val::Null => "null".to_owned(),
        Val::Str(s) => s.as_str().to_string(),
        Val::Bool(b) => b.to_string(),
        Val::Path(p) if p.is_empty() => "/".to_string(),
        Val::Path(p) => p.iter().map(|s| format!("/{s}")).collect(),
        other => {
            return Err(EvalError::ty(format!(
                "string() converts an int, float, null, string, bool or path, not a {}",
                other.type_name()
            )));
        }
    })
}

fn list_method<'a>(l: &ListV<'a>, name: &str, args: &[Val<'a>]) -> Result<Val<'a>, EvalError> {
    let other = args.first().map(items).unwrap_or_default();
    Ok(match name {
        "size" => Val::Int(l.len() as i64),
        "toSet" => Val::set(l.to_vec()),
        "hasAll" => {
            let mine = ListLookup::new(l, other.len());
            Val::Bool(other.iter().all(|x| mine.contains(x)))
        }
        "hasAny" => {
            let mine = ListLookup::new(l, other.len());
            Val::Bool(other.iter().any(|x| mine.contains(x)))
        }
        "hasOnly" | "removeAll" => {
            let allowed = match args.first() {
                Some(Val::List(a)) => a.clone(),
                _ => ListV::O(Arc::new(Vec::new())),
            };
            let lookup = ListLookup::new(&allowed, l.len());
            if name == "hasOnly" {
                Val::Bool(l.iter().all(|x| lookup.contains(&x)))
            } else {
                Val::list(l.iter().filter(|x| !lookup.contains(x)).collect())
            }
        }
        "concat" => {
            check_size("list", l.len() + other.len(), MAX_LIST_LEN)?;
            let mut v = l.to_vec();
            v.extend(other);
            Val::list(v)
        }
        _ => {
            let sep = str_arg(args, 0);
            let mut out = String::new();
            for (i, v) in l.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                out.push_str(&to_string(&v)?);
                check_size("string", out.len(), MAX_STRING_BYTES)?;
            }
            Val::str(&out)
        }
    })
}

fn set_method<'a>(
    s: &Arc<Vec<Val<'a>>>,
    name: &str,
    args: &[Val<'a>],
) -> Result<Val<'a>, EvalError> {
    // The argument as a set (a list argument of hasAll/hasAny/hasOnly is taken as one).
    let other = match args.first() {
        Some(Val::Set(o)) => o.clone(),
        Some(Val::List(l)) => match Val::set(l.to_vec()) {
            Val::Set(o) => o,
            _ => Arc::new(Vec::new()),
        },
        _ => Arc::new(Vec::new()),
    };
    Ok(match name {
        "size" => Val::Int(s.len() as i64),
        "hasAll" => Val::Bool(other.iter().all(|x| set_contains(s, x))),
        "hasAny" => Val::Bool(other.iter().any(|x| set_contains(s, x))),
        "hasOnly" => Val::Bool(s.iter().all(|x| set_contains(&other, x))),
        "union" => {
            check_size("set", s.len() + other.len(), MAX_LIST_LEN)?;
            let mut v = s.to_vec();
            v.extend(other.iter().cloned());
            Val::set(v)
        }
        "intersection" => Val::set(
            s.iter()
                .filter(|x| set_contains(&other, x))
                .cloned()
                .collect(),
        ),
        _ => Val::set(
            s.iter()
                .filter(|x| !set_contains(&other, x))
                .cloned()
                .collect(),
        ),
    })
}

fn map_method<'a>(m: &MapV<'a>, name: &str, args: &[Val<'a>]) -> Result<Val<'a>, EvalError> {
    Ok(match name {
        "size" => Val::Int(m.len() as i64),
        "keys" => {
            let mut keys: Vec<MapKey<'_, 'a>> = m.iter().map(|(k, _)| k).collect();
            // Keys come sorted (UTF-16 order); a document map is in byte order already.
            let sorted = matches!(m, MapV::B(_))
                && !keys.iter().any(|k| k.as_str().bytes().any(|b| b >= 0xEE));
            if !sorted {
                keys.sort_by(|a, b| utf16_cmp(a.as_str(), b.as_str()));
            }
            Val::list(keys.into_iter().map(MapKey::to_val).collect())
        }
        "values" => Val::list(m.iter().map(|(_, v)| v).collect()),
        "get" => {
            let default = args.get(1).cloned().unwrap_or(Val::Null);
            match args.first() {
                Some(Val::Str(k)) => m.get(k.as_str()).unwrap_or(default),
                Some(Val::List(path)) => {
                    let mut current = Val::Map(m.clone());
                    for k in path.iter() {
                        let Val::Str(k) = k else {
                            return Err(EvalError::ty(format!(
                                "get() key path must hold strings, found {}",
                                k.type_name()
                            )));
                        };
                        let next = match &current {
                            Val::Map(inner) => inner.get(k.as_str()),
                            _ => None,
                        };
                        match next {
                            Some(v) => current = v,
                            None => return Ok(default),
                        }
                    }
                    current
                }
                _ => default,
            }
        }
        _ => match args.first() {
            Some(Val::Map(other)) => Val::MapDiff(Arc::new((m.clone(), other.clone()))),
            _ => return Err(EvalError::ty("diff() needs a map")),
        },
    })
}

/// Whether `name` is a method of map_diff (each gives a set of keys).
pub(crate) fn is_diff_keys(name: &str) -> bool {
    matches!(
        name,
        "addedKeys" | "removedKeys" | "changedKeys" | "unchangedKeys" | "affectedKeys"
    )
}

/// `a.diff(b).<name>()` (`name` one of the map_diff methods): values compare by value
/// (numbers across int and float, at any depth).
pub(crate) fn map_diff<'a>(a: &MapV<'a>, b: &MapV<'a>, name: &str) -> Val<'a> {
    let mut keys = Vec::new();
    each_diff_key(a, b, name, |k| keys.push(k));
    Val::set(keys)
}

/// `a.diff(b).<name>().hasOnly(allowed)` without building the key set when that is cheap:
/// `None` if `allowed` is not a list or set, or the operands are too large to scan (the
/// caller then builds the set and calls `hasOnly`).
pub(crate) fn diff_has_only(
    a: &MapV<'_>,
    b: &MapV<'_>,
    name: &str,
    allowed: &Val<'_>,
) -> Option<bool> {
    if !matches!(allowed, Val::List(_) | Val::Set(_))
        || (a.len() + b.len()).saturating_mul(seq_len(allowed)) > SCAN_LIMIT
    {
        return None;
    }
    let mut all = true;
    each_diff_key(a, b, name, |k| {
        if all {
            all = match allowed {
                Val::Set(s) => set_contains(s, &k),
                // A list argument of set.hasOnly() is taken as a set: numbers by value.
                Val::List(l) => l.iter().any(|v| loose_eq(&v, &k)),
                _ => false,
            };
        }
    });
    Some(all)
}

/// Calls `emit` with each key `a.diff(b).<name>()` holds.
fn each_diff_key<'a>(a: &MapV<'a>, b: &MapV<'a>, name: &str, mut emit: impl FnMut(Val<'a>)) {
    // Which keys of `a` (by whether `b` has them and holds an equal value) and of `b` count.
    let (added, changed, unchanged, removed) = match name {
        "addedKeys" => (true, false, false, false),
        "removedKeys" => (false, false, false, true),
        "changedKeys" => (false, true, false, false),
        "unchangedKeys" => (false, false, true, false),
        _ => (true, true, false, true),
    };
    if let (MapV::B(x), MapV::B(y)) = (a, b) {
        // Two document maps (the usual `request.resource.data.diff(resource.data)`): walk the
        // key-sorted entries together, comparing the stored values in place.
        let (mut ia, mut ib) = (x.iter().peekable(), y.iter().peekable());
        loop {
            let order = match (ia.peek(), ib.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
            };
            match order {
                Ordering::Less => {
                    if let Some((k, _)) = ia.next()
                        && added
                    {
                        emit(Val::Str(StrV::B(k)));
                    }
                }
                Ordering::Greater => {
                    if let Some((k, _)) = ib.next()
                        && removed
                    {
                        emit(Val::Str(StrV::B(k)));
                    }
                }
                Ordering::Equal => {
                    if let (Some((k, p)), Some((_, q))) = (ia.next(), ib.next()) {
                        let eq = match (p, q) {
                            (claimdb_model::Value::String(s), claimdb_model::Value::String(t)) => {
                                s == t
                            }
                            (claimdb_model::Value::Int(s), claimdb_model::Value::Int(t)) => s == t,
                            (claimdb_model::Value::Bool(s), claimdb_model::Value::Bool(t)) => {
                                s == t
                            }
                            _ => loose_eq(&Val::from_value(p), &Val::from_value(q)),
                        };
                        if (eq && unchanged) || (!eq && changed) {
                            emit(Val::Str(StrV::B(k)));
                        }
                    }
                }
            }
        }
        return;
    }
    for (k, v) in a.iter() {
        match b.get(k.as_str()) {
            None if added => emit(k.to_val()),
            Some(w) if (loose_eq(&v, &w) && unchanged) || (!loose_eq(&v, &w) && changed) => {
                emit(k.to_val())
            }
            _ => {}
        }
    }
    if removed {
        for (k, _) in b.iter() {
            if !a.contains(k.as_str()) {
                emit(k.to_val());
            }
        }
    }
}

/// Great-circle distance in metres (the emulator's Earth radius).
fn haversine(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    const R: f64 = 6_371_009.0;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lng2 - lng1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().asin()
}

/// Builds a map value from evaluated entries (keys must be strings; a repeated key keeps the
/// last value, in the place of the first).
pub(crate) fn make_map<'a>(entries: Vec<(Val<'a>, Val<'a>)>) -> Result<Val<'a>, EvalError> {
    let mut m = OwnedMap::with_capacity(entries.len());
    for (k, v) in entries {
        match k {
            Val::Str(StrV::B(s)) => m.insert(s, v),
            Val::Str(StrV::O(s)) => m.insert(s.to_string(), v),
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
pub(crate) fn make_list(items: Vec<Val<'_>>) -> Val<'_> {
    Val::List(ListV::O(Arc::new(items)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re2_patterns() {
        for (re2, rust) in [
            (r"\d+", "[0-9]+"),
            (r"[\d_]", "[0-9_]"),
            (r"\w\s\b", r"[0-9A-Za-z_][\t\n\f\r ](?-u:\b)"),
            ("[]a]", r"[\]a]"),
            ("[a&&b]", r"[a\&\&b]"),
            (r"a\.b", r"a\.b"),
        ] {
            assert_eq!(re2_to_rust(re2), rust, "{re2}");
        }
        let re = |p: &str| compile_regex(p).unwrap();
        assert!(!re(r"\w").is_match("é"));
        assert!(!re(r"\d").is_match("٣"));
        assert!(re(".").is_match("é"));
        assert!(
            repeated_repetition("a**")
                && !repeated_repetition("a*?")
                && !repeated_repetition("[*+]+")
        );
    }

    #[test]
    fn java_replacements() {
        let re = Regex::new("(a)(b)?").unwrap();
        assert_eq!(replace_all(&re, "xaby", "[$1$2]").unwrap(), "x[ab]y");
        assert_eq!(replace_all(&re, "xa", "<$2>").unwrap(), "x<>");
        assert_eq!(replace_all(&re, "a", "\\$").unwrap(), "$");
        assert!(replace_all(&re, "a", "$").is_err());
        assert!(replace_all(&re, "a", "$9").is_err());
        // No match: the replacement is never read.
        assert_eq!(replace_all(&re, "zzz", "$").unwrap(), "zzz");
    }
}
