//! Operators on runtime values, with the Firestore emulator's semantics: arithmetic (`+ - *`
//! overflow is an error; `MIN / -1` and `MIN % -1` wrap as in Java), comparison (only values of
//! one ordered type, numbers across int and float, strings in UTF-16 order), `in`, `is`,
//! indexing, slicing and member access on data values.
//!
//! `&&`, `||` and `?:` are not here — they control evaluation order and live in `eval.rs`.
//! Member access on `request` and `resource` objects is also the evaluator's (it needs the
//! request).

use crate::ast::{BinOp, UnOp};
use crate::constraint;
use crate::error::EvalError;
use crate::program::TypeName;
use crate::time::{check_duration, check_timestamp};
use crate::value::{
    ListV, MAX_STRING_BYTES, StrV, Val, check_size, equals, same, set_contains, utf16_cmp,
    utf16_len, utf16_slice,
};

fn overflow(op: &str) -> EvalError {
    EvalError::Overflow(format!("'{op}'"))
}

fn type_err(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> EvalError {
    EvalError::ty(format!(
        "'{}' is not defined for {} and {}",
        op.symbol(),
        a.type_name(),
        b.type_name()
    ))
}

/// A binary operator other than `&&`/`||`.
pub(crate) fn binary<'a>(op: BinOp, a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, EvalError> {
    use Val::*;
    if let Some(r) = constraint::binary(op, &a, &b) {
        return r;
    }
    match op {
        BinOp::Eq => Ok(Bool(equals(&a, &b))),
        BinOp::Ne => Ok(Bool(!equals(&a, &b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, &a, &b),
        BinOp::In => contains(&b, &a).map(Bool),
        BinOp::Add => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_add(*y).map(Int).ok_or_else(|| overflow("+")),
            (Str(x), Str(y)) => {
                check_size(
                    "string",
                    x.as_str().len() + y.as_str().len(),
                    MAX_STRING_BYTES,
                )?;
                let mut s = String::with_capacity(x.as_str().len() + y.as_str().len());
                s.push_str(x.as_str());
                s.push_str(y.as_str());
                Ok(Val::str(&s))
            }
            (Timestamp(t), Duration(d)) | (Duration(d), Timestamp(t)) => {
                check_timestamp(t + d).map(Timestamp)
            }
            (Duration(x), Duration(y)) => check_duration(x + y).map(Duration),
            _ => float_op(op, &a, &b),
        },
        BinOp::Sub => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_sub(*y).map(Int).ok_or_else(|| overflow("-")),
            (Timestamp(t), Duration(d)) => check_timestamp(t - d).map(Timestamp),
            (Timestamp(x), Timestamp(y)) => check_duration(x - y).map(Duration),
            (Duration(x), Duration(y)) => check_duration(x - y).map(Duration),
            _ => float_op(op, &a, &b),
        },
        BinOp::Mul => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_mul(*y).map(Int).ok_or_else(|| overflow("*")),
            _ => float_op(op, &a, &b),
        },
        BinOp::Div | BinOp::Rem => match (&a, &b) {
            (Int(_), Int(0)) => Err(EvalError::invalid("division by zero")),
            // Java's long division: the smallest int divided by -1 wraps.
            (Int(x), Int(y)) if op == BinOp::Div => Ok(Int(x.wrapping_div(*y))),
            (Int(x), Int(y)) => Ok(Int(x.wrapping_rem(*y))),
            _ => float_op(op, &a, &b),
        },
        BinOp::And | BinOp::Or => Err(EvalError::invalid("internal: logic operator in ops")),
    }
}

fn as_f64(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

fn float_op<'a>(op: BinOp, a: &Val<'a>, b: &Val<'a>) -> Result<Val<'a>, EvalError> {
    let (Some(x), Some(y)) = (as_f64(a), as_f64(b)) else {
        return Err(type_err(op, a, b));
    };
    Ok(Val::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Rem => x % y,
        _ => return Err(type_err(op, a, b)),
    }))
}

fn compare<'a>(op: BinOp, a: &Val<'a>, b: &Val<'a>) -> Result<Val<'a>, EvalError> {
    use Val::*;
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (a, b) {
        (Str(x), Str(y)) => Some(utf16_cmp(x.as_str(), y.as_str())),
        (Bytes(x), Bytes(y)) => Some(x.as_slice().cmp(y.as_slice())),
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Duration(x), Duration(y)) | (Timestamp(x), Timestamp(y)) => Some(x.cmp(y)),
        _ => return Err(type_err(op, a, b)),
    };
    // NaN compares false either way.
    Ok(Bool(ordering.is_some_and(|o| match op {
        BinOp::Lt => o.is_lt(),
        BinOp::Le => o.is_le(),
        BinOp::Gt => o.is_gt(),
        _ => o.is_ge(),
    })))
}

/// `needle in haystack`: list membership (types must match: `1 in [1.0]` is false), set
/// membership (numbers by value), or a map key (which must be a string).
pub(crate) fn contains(haystack: &Val<'_>, needle: &Val<'_>) -> Result<bool, EvalError> {
    match haystack {
        Val::List(l) => Ok(list_contains(l, needle)),
        Val::Set(s) => Ok(set_contains(s, needle)),
        Val::Map(m) => match needle {
            Val::Str(k) => Ok(m.contains(k.as_str())),
            other => Err(EvalError::ty(format!(
                "a map key must be a string, found {}",
                other.type_name()
            ))),
        },
        Val::Request | Val::Resource(_) => Err(EvalError::invalid(
            "internal: 'in' on an unmaterialized map",
        )),
        Val::Null => Err(EvalError::Null("'in' on a null value".into())),
        other => Err(EvalError::ty(format!(
            "'in' needs a list, set or map on the right, found {}",
            other.type_name()
        ))),
    }
}

/// Whether a list holds `needle`, types matching exactly.
pub(crate) fn list_contains(l: &ListV<'_>, needle: &Val<'_>) -> bool {
    l.iter().any(|v| same(&v, needle, false))
}

pub(crate) fn unary<'a>(op: UnOp, v: Val<'a>) -> Result<Val<'a>, EvalError> {
    match (op, v) {
        (UnOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
        (UnOp::Neg, Val::Int(i)) => i.checked_neg().map(Val::Int).ok_or_else(|| overflow("-")),
        (UnOp::Neg, Val::Float(f)) => Ok(Val::Float(-f)),
        (UnOp::Neg, Val::Duration(d)) => check_duration(-d).map(Val::Duration),
        (UnOp::Not, other) => Err(EvalError::ty(format!(
            "'!' needs a bool, found {}",
            other.type_name()
        ))),
        (UnOp::Neg, other) => Err(EvalError::ty(format!(
            "'-' needs a number or a duration, found {}",
            other.type_name()
        ))),
    }
}

pub(crate) fn is_type(v: &Val<'_>, t: TypeName) -> bool {
    matches!(
        (t, v),
        (TypeName::Bool, Val::Bool(_))
            | (TypeName::Int, Val::Int(_))
            | (TypeName::Float, Val::Float(_))
            | (TypeName::Number, Val::Int(_) | Val::Float(_))
            | (TypeName::String, Val::Str(_))
            | (TypeName::List, Val::List(_))
            | (TypeName::Map, Val::Map(_) | Val::Request | Val::Resource(_))
            | (TypeName::Timestamp, Val::Timestamp(_))
            | (TypeName::Duration, Val::Duration(_))
            | (TypeName::Path, Val::Path(_))
            | (TypeName::LatLng, Val::LatLng(..))
            | (TypeName::Bytes, Val::Bytes(_))
            | (TypeName::MapDiff, Val::MapDiff(_))
            | (TypeName::Constraint, Val::Constraint(_))
    )
}

/// How an unknown part shows in a path bound from a list's unknown document id or a
/// collection group's unknown parents (no real segment holds a NUL).
pub(crate) const UNKNOWN_ID: &str = "\u{0}*";
pub(crate) const UNKNOWN_RUN: &str = "\u{0}**";

fn has_unknown(p: &[String]) -> bool {
    p.iter().any(|s| s == UNKNOWN_ID || s == UNKNOWN_RUN)
}

fn unbound_path() -> EvalError {
    EvalError::Null(
        "this path holds a part the request does not know (a list's document id)".into(),
    )
}

/// `v.name` on a data value.
pub(crate) fn member<'a>(v: &Val<'a>, name: &str) -> Result<Val<'a>, EvalError> {
    match v {
        Val::Map(m) => match m.get(name) {
            Some(Val::Unknown) => Err(EvalError::Unprovable(format!(
                "'{name}' of a collection group query is not known"
            ))),
            Some(x) => Ok(x),
            None => Err(EvalError::MissingKey(name.to_string())),
        },
        Val::Null => Err(EvalError::Null(format!("cannot read '{name}' of null"))),
        // A path's fields would be variables bound into it; paths built by rules have none.
        Val::Path(_) => Err(EvalError::MissingKey(name.to_string())),
        other => Err(EvalError::ty(format!(
            "cannot read '{name}' of a {}",
            other.type_name()
        ))),
    }
}

fn index_of(len: usize, i: i64) -> Result<usize, EvalError> {
    usize::try_from(i)
        .ok()
        .filter(|&n| n < len)
        .ok_or_else(|| EvalError::invalid(format!("index {i} out of range (size {len})")))
}

/// `v[i]`: list and path by position, string by UTF-16 code unit, map by key.
pub(crate) fn index<'a>(v: &Val<'a>, i: &Val<'a>) -> Result<Val<'a>, EvalError> {
    let wrong = |want: &str| {
        EvalError::ty(format!(
            "a {} index must be {want}, found {}",
            v.type_name(),
            i.type_name()
        ))
    };
    match (v, i) {
        (Val::List(l), Val::Int(n)) => {
            let n = index_of(l.len(), *n)?;
            l.get(n)
                .ok_or_else(|| EvalError::invalid("index out of range"))
        }
        (Val::List(_), _) => Err(wrong("an int")),
        (Val::Map(_), Val::Str(k)) => member(v, k.as_str()),
        (Val::Map(_), _) => Err(wrong("a string")),
        (Val::Str(s), Val::Int(n)) => {
            let s = s.as_str();
            let at = index_of(utf16_len(s), *n)?;
            Ok(Val::str(&utf16_slice(s, at, at + 1)))
        }
        (Val::Str(_), _) => Err(wrong("an int")),
        (Val::Path(p), Val::Int(_)) if has_unknown(p) => Err(unbound_path()),
        (Val::Path(p), Val::Int(n)) => {
            let n = index_of(p.len(), *n)?;
            Ok(Val::str(&p[n]))
        }
        (Val::Path(_), Val::Str(k)) => Err(EvalError::MissingKey(k.as_str().to_string())),
        (Val::Path(_), _) => Err(wrong("an int or a string")),
        (Val::Null, _) => Err(EvalError::Null("cannot index null".into())),
        (other, _) => Err(EvalError::ty(format!(
            "cannot index a {}",
            other.type_name()
        ))),
    }
}

/// `v[i:j]` (j excluded) on lists, strings (UTF-16 code units) and paths. Either bound may be
/// null (the start, the end); a given start must be an index of the value and so must the
/// position before a given end.
pub(crate) fn slice<'a>(v: &Val<'a>, i: &Val<'a>, j: &Val<'a>) -> Result<Val<'a>, EvalError> {
    let size = match v {
        Val::List(l) => l.len(),
        Val::Str(s) => utf16_len(s.as_str()),
        Val::Path(p) if has_unknown(p) => return Err(unbound_path()),
        Val::Path(p) => p.len(),
        Val::Null => return Err(EvalError::Null("cannot take a range of null".into())),
        other => {
            return Err(EvalError::ty(format!(
                "cannot take a range of a {}",
                other.type_name()
            )));
        }
    };
    let bound = |b: &Val<'_>| match b {
        Val::Int(n) => Ok(Some(*n)),
        Val::Null => Ok(None),
        other => Err(EvalError::ty(format!(
            "a range bound must be an int or null, found {}",
            other.type_name()
        ))),
    };
    let (from, to) = (bound(i)?, bound(j)?);
    let inside = |n: i128| n >= 0 && n < size as i128;
    if let Some(a) = from
        && !inside(i128::from(a))
    {
        return Err(EvalError::invalid(format!(
            "range start {a} out of range (size {size})"
        )));
    }
    if let Some(b) = to
        && !inside(i128::from(b) - 1)
    {
        return Err(EvalError::invalid(format!(
            "range end {b} out of range (size {size})"
        )));
    }
    let (a, b) = (from.unwrap_or(0), to.unwrap_or(size as i64));
    if a > b {
        return Err(EvalError::invalid(format!("range [{a}:{b}] is reversed")));
    }
    let (a, b) = (a as usize, b as usize);
    Ok(match v {
        Val::List(ListV::B(items)) => Val::List(ListV::B(items.get(a..b).unwrap_or(&[]))),
        Val::List(l) => Val::list(l.iter().skip(a).take(b - a).collect()),
        Val::Str(StrV::B(s)) if s.is_ascii() => Val::Str(StrV::B(s.get(a..b).unwrap_or(""))),
        Val::Str(s) => Val::str(&utf16_slice(s.as_str(), a, b)),
        Val::Path(p) => Val::path(p.get(a..b).unwrap_or(&[]).to_vec()),
        _ => Val::Null,
    })
}
