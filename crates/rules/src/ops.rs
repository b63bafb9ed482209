//! Operators on runtime values: arithmetic (overflow is an error), comparison, `in`, `is`,
//! indexing, slicing and member access on data values.
//!
//! `&&`, `||` and `?:` are not here — they control evaluation order and live in `eval.rs`.
//! Member access on `request` and `resource` objects is also the evaluator's (it needs the request).

use crate::ast::{BinOp, UnOp};
use crate::error::EvalError;
use crate::program::TypeName;
use crate::time::{check_duration, check_timestamp};
use crate::value::{
    ListV, MAX_LIST_LEN, MAX_STRING_BYTES, StrV, Val, check_size, equals, short, total_cmp,
};

fn overflow(op: BinOp) -> EvalError {
    EvalError::Overflow(format!("'{}'", op.symbol()))
}

fn type_err(op: &str, a: &Val<'_>, b: &Val<'_>) -> EvalError {
    EvalError::ty(format!(
        "'{op}' is not defined for {} and {}",
        a.type_name(),
        b.type_name()
    ))
}

/// A binary operator other than `&&`/`||`.
pub fn binary<'a>(op: BinOp, a: Val<'a>, b: Val<'a>) -> Result<Val<'a>, EvalError> {
    use Val::*;
    // `k in resource.data` is decided by `contains`; other operators on the whole partially
    // known document cannot be.
    if op != BinOp::In
        && matches!((&a, &b), (QueryData(_), x) | (x, QueryData(_)) if !matches!(x, Null))
    {
        return Err(EvalError::Unprovable(format!(
            "'{}' on the whole of resource.data",
            op.symbol()
        )));
    }
    match op {
        BinOp::Eq => Ok(Bool(equals(&a, &b))),
        BinOp::Ne => Ok(Bool(!equals(&a, &b))),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, &a, &b),
        BinOp::In => contains(&b, &a).map(Bool),
        BinOp::Add => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_add(*y).map(Int).ok_or_else(|| overflow(op)),
            (Str(x), Str(y)) => {
                check_size(
                    "string",
                    x.as_str().len() + y.as_str().len(),
                    MAX_STRING_BYTES,
                )?;
                Ok(Val::str(&format!("{}{}", x.as_str(), y.as_str())))
            }
            (List(x), List(y)) => {
                check_size("list", x.len() + y.len(), MAX_LIST_LEN)?;
                let mut v = x.to_vec();
                v.extend(y.iter());
                Ok(Val::list(v))
            }
            (Path(x), Path(y)) => Ok(Val::path(x.iter().chain(y.iter()).cloned().collect())),
            (Path(x), Str(y)) => Ok(Val::path(
                x.iter()
                    .cloned()
                    .chain(
                        y.as_str()
                            .split('/')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    )
                    .collect(),
            )),
            (Timestamp(t), Duration(d)) | (Duration(d), Timestamp(t)) => {
                check_timestamp(t + d).map(Timestamp)
            }
            (Duration(x), Duration(y)) => check_duration(x + y).map(Duration),
            _ => float_op(op, &a, &b),
        },
        BinOp::Sub => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_sub(*y).map(Int).ok_or_else(|| overflow(op)),
            (Timestamp(t), Duration(d)) => check_timestamp(t - d).map(Timestamp),
            (Timestamp(x), Timestamp(y)) => check_duration(x - y).map(Duration),
            (Duration(x), Duration(y)) => check_duration(x - y).map(Duration),
            _ => float_op(op, &a, &b),
        },
        BinOp::Mul => match (&a, &b) {
            (Int(x), Int(y)) => x.checked_mul(*y).map(Int).ok_or_else(|| overflow(op)),
            (Duration(d), Int(n)) | (Int(n), Duration(d)) => d
                .checked_mul(i128::from(*n))
                .ok_or_else(|| overflow(op))
                .and_then(check_duration)
                .map(Duration),
            _ => float_op(op, &a, &b),
        },
        BinOp::Div => match (&a, &b) {
            (Int(_), Int(0)) => Err(EvalError::invalid("division by zero")),
            (Int(x), Int(y)) => x.checked_div(*y).map(Int).ok_or_else(|| overflow(op)),
            (Duration(_), Int(0)) => Err(EvalError::invalid("division by zero")),
            (Duration(d), Int(n)) => Ok(Duration(d / i128::from(*n))),
            _ => float_op(op, &a, &b),
        },
        BinOp::Rem => match (&a, &b) {
            (Int(_), Int(0)) => Err(EvalError::invalid("modulo by zero")),
            (Int(x), Int(y)) => x.checked_rem(*y).map(Int).ok_or_else(|| overflow(op)),
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
        return Err(type_err(op.symbol(), a, b));
    };
    Ok(Val::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::Rem => x % y,
        _ => return Err(type_err(op.symbol(), a, b)),
    }))
}

fn compare<'a>(op: BinOp, a: &Val<'a>, b: &Val<'a>) -> Result<Val<'a>, EvalError> {
    use Val::*;
    let comparable = matches!(
        (a, b),
        (Int(_) | Float(_), Int(_) | Float(_))
            | (Str(_), Str(_))
            | (Bytes(_), Bytes(_))
            | (Timestamp(_), Timestamp(_))
            | (Duration(_), Duration(_))
            | (Bool(_), Bool(_))
            | (List(_), List(_))
    );
    if !comparable {
        return Err(type_err(op.symbol(), a, b));
    }
    let nan = matches!(a, Float(x) if x.is_nan()) || matches!(b, Float(y) if y.is_nan());
    if nan {
        return Ok(Bool(false));
    }
    let o = total_cmp(a, b);
    Ok(Bool(match op {
        BinOp::Lt => o.is_lt(),
        BinOp::Le => o.is_le(),
        BinOp::Gt => o.is_gt(),
        _ => o.is_ge(),
    }))
}

/// `needle in haystack`: list or set membership, or a map key.
pub fn contains(haystack: &Val<'_>, needle: &Val<'_>) -> Result<bool, EvalError> {
    match haystack {
        Val::List(l) => Ok(l.iter().any(|v| equals(&v, needle))),
        Val::Set(s) => Ok(s
            .binary_search_by(|probe| total_cmp(probe, needle))
            .is_ok_and(|_| !matches!(needle, Val::Float(f) if f.is_nan()))),
        Val::Map(m) => match needle {
            Val::Str(k) => Ok(m.contains(k.as_str())),
            _ => Ok(false),
        },
        Val::QueryData(m) => match needle {
            Val::Str(k) if m.contains(k.as_str()) => Ok(true),
            other => Err(EvalError::Unprovable(format!(
                "whether resource.data has the field {}",
                short(other)
            ))),
        },
        Val::Null => Err(EvalError::Null("'in' on a null value".into())),
        other => Err(EvalError::ty(format!(
            "'in' needs a list, set or map on the right, found {}",
            other.type_name()
        ))),
    }
}

pub fn unary<'a>(op: UnOp, v: Val<'a>) -> Result<Val<'a>, EvalError> {
    match (op, v) {
        (UnOp::Not, Val::Bool(b)) => Ok(Val::Bool(!b)),
        (UnOp::Neg, Val::Int(i)) => i
            .checked_neg()
            .map(Val::Int)
            .ok_or_else(|| EvalError::Overflow("'-'".into())),
        (UnOp::Neg, Val::Float(f)) => Ok(Val::Float(-f)),
        (UnOp::Neg, Val::Duration(d)) => Ok(Val::Duration(-d)),
        (UnOp::Not, other) => Err(EvalError::ty(format!(
            "'!' needs a bool, found {}",
            other.type_name()
        ))),
        (UnOp::Neg, other) => Err(EvalError::ty(format!(
            "'-' needs a number, found {}",
            other.type_name()
        ))),
    }
}

pub fn is_type(v: &Val<'_>, t: TypeName) -> bool {
    matches!(
        (t, v),
        (TypeName::Bool, Val::Bool(_))
            | (TypeName::Int, Val::Int(_))
            | (TypeName::Float, Val::Float(_))
            | (TypeName::Number, Val::Int(_) | Val::Float(_))
            | (TypeName::String, Val::Str(_))
            | (TypeName::List, Val::List(_))
            | (TypeName::Map, Val::Map(_) | Val::QueryData(_))
            | (TypeName::Set, Val::Set(_))
            | (TypeName::Timestamp, Val::Timestamp(_))
            | (TypeName::Duration, Val::Duration(_))
            | (TypeName::Path, Val::Path(_))
            | (TypeName::LatLng, Val::LatLng(..))
            | (TypeName::Bytes, Val::Bytes(_))
            | (TypeName::MapDiff, Val::MapDiff(_))
    )
}

fn index_of(len: usize, i: &Val<'_>) -> Result<usize, EvalError> {
    match i {
        Val::Int(n) if *n >= 0 && (*n as u64) < len as u64 => Ok(*n as usize),
        Val::Int(n) => Err(EvalError::invalid(format!(
            "index {n} out of range (size {len})"
        ))),
        other => Err(EvalError::ty(format!(
            "an index must be an int, found {}",
            other.type_name()
        ))),
    }
}

/// `v.name` or `v['name']` on a data value.
pub fn member<'a>(v: &Val<'a>, name: &str) -> Result<Val<'a>, EvalError> {
    match v {
        Val::Map(m) | Val::QueryData(m) => m
            .get(name)
            .ok_or_else(|| EvalError::MissingKey(name.to_string())),
        Val::Null => Err(EvalError::Null(format!("cannot read '{name}' of null"))),
        other => Err(EvalError::ty(format!(
            "cannot read '{name}' of a {}",
            other.type_name()
        ))),
    }
}

/// `v[i]`: list and path by position, string by character, map by key.
pub fn index<'a>(v: &Val<'a>, i: &Val<'a>) -> Result<Val<'a>, EvalError> {
    match v {
        Val::List(l) => {
            let n = index_of(l.len(), i)?;
            l.get(n)
                .ok_or_else(|| EvalError::invalid("index out of range"))
        }
        Val::Path(p) => {
            let n = index_of(p.len(), i)?;
            Ok(Val::str(&p[n]))
        }
        Val::Str(s) => {
            let n = index_of(s.as_str().chars().count(), i)?;
            let c = s
                .as_str()
                .chars()
                .nth(n)
                .map(String::from)
                .unwrap_or_default();
            Ok(Val::str(&c))
        }
        Val::Map(_) | Val::QueryData(_) | Val::Null => match i {
            Val::Str(k) => member(v, k.as_str()),
            other => Err(EvalError::ty(format!(
                "a map key must be a string, found {}",
                other.type_name()
            ))),
        },
        other => Err(EvalError::ty(format!(
            "cannot index a {}",
            other.type_name()
        ))),
    }
}

fn bound(v: Option<&Val<'_>>, default: usize, len: usize) -> Result<usize, EvalError> {
    match v {
        None => Ok(default),
        Some(Val::Int(n)) if *n >= 0 && (*n as u64) <= len as u64 => Ok(*n as usize),
        Some(Val::Int(n)) => Err(EvalError::invalid(format!(
            "range bound {n} out of range (size {len})"
        ))),
        Some(other) => Err(EvalError::ty(format!(
            "a range bound must be an int, found {}",
            other.type_name()
        ))),
    }
}

/// `v[i:j]` (j excluded) on lists, strings and paths.
pub fn slice<'a>(
    v: &Val<'a>,
    i: Option<&Val<'a>>,
    j: Option<&Val<'a>>,
) -> Result<Val<'a>, EvalError> {
    let len = match v {
        Val::List(l) => l.len(),
        Val::Str(s) => s.as_str().chars().count(),
        Val::Path(p) => p.len(),
        other => {
            return Err(EvalError::ty(format!(
                "cannot take a range of a {}",
                other.type_name()
            )));
        }
    };
    let a = bound(i, 0, len)?;
    let b = bound(j, len, len)?;
    if a > b {
        return Err(EvalError::invalid(format!("range [{a}:{b}] is reversed")));
    }
    Ok(match v {
        Val::List(ListV::B(items)) => Val::List(ListV::B(&items[a..b])),
        Val::List(l) => Val::list(l.iter().skip(a).take(b - a).collect()),
        Val::Str(StrV::B(s)) => {
            let start = s.char_indices().nth(a).map_or(s.len(), |(k, _)| k);
            let end = s.char_indices().nth(b).map_or(s.len(), |(k, _)| k);
            Val::Str(StrV::B(&s[start..end]))
        }
        Val::Str(s) => Val::str(&s.as_str().chars().skip(a).take(b - a).collect::<String>()),
        Val::Path(p) => Val::path(p[a..b].to_vec()),
        _ => Val::Null,
    })
}
