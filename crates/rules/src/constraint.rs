//! What a list query tells of a field it filters on without pinning it to one value: a
//! *constraint*, as the Firestore emulator calls it (rules are not filters: a list is allowed
//! only if the query's filters make every document it may return satisfy the rule).
//!
//! A constraint is the field's filters, each a comparator and a value, each kept once
//! (`n > 0 && n != 3` is `GT 0, NEQ 3`; `not-in [1, 2]` is `NEQ 1, NEQ 2`; `array-contains 'a'`
//! is `LIST_CONTAINS 'a'`). A comparison with it is true when one filter alone implies it
//! (`GT 5` implies `> 4`, `>= 5.0` and `!= 1`; `GTE 1` and `LTE 1` together do not imply
//! `== 1`), and otherwise an error: never false. A filter implies nothing of a value of another
//! type, except that `!= null` always holds and `false` is less than `true`; comparisons with
//! NaN go as in IEEE 754; a float in a filter does not order against an int in the rule and is
//! never equal to one (`EQ 1.0` implies `!= 1`), though an int in a filter does compare with a
//! float; `<`, `<=`, `>` and `>=` with a value that has no order are a type error.
//!
//! `x in c` holds when `c` has `LIST_CONTAINS x` (else an error), `c.hasAny(list)` is whether it
//! has one of the list's items, `c in list` is false and `c is constraint` true.

use std::cmp::Ordering;

use claimdb_model::Value;

use crate::ast::BinOp;
use crate::error::EvalError;
use crate::request::FilterOp;
use crate::value::{Val, equals, same, utf16_cmp};

/// How a filter of a constraint compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparator {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    ListContains,
}

impl Comparator {
    /// The emulator's name: `EQ`, `NEQ`, `LT`, `LTE`, `GT`, `GTE` or `LIST_CONTAINS`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Eq => "EQ",
            Self::Neq => "NEQ",
            Self::Lt => "LT",
            Self::Lte => "LTE",
            Self::Gt => "GT",
            Self::Gte => "GTE",
            Self::ListContains => "LIST_CONTAINS",
        }
    }
}

/// One filter of a constraint.
#[derive(Debug, Clone)]
pub(crate) struct Simple<'a> {
    pub comparator: Comparator,
    pub value: Val<'a>,
}

impl Simple<'_> {
    /// Whether two filters are one: the same comparator and values of one type that are
    /// equal (every NaN alike, `1` apart from `1.0`).
    pub(crate) fn same_as(&self, other: &Simple<'_>) -> bool {
        let nan = |v: &Val<'_>| matches!(v, Val::Float(f) if f.is_nan());
        self.comparator == other.comparator
            && ((nan(&self.value) && nan(&other.value)) || same(&self.value, &other.value, false))
    }
}

/// The constraint filters one filter of a query makes. `== null`, `== NaN`, `!= null` and
/// `!= NaN` are the unary filters clients send for them ("is null", "is NaN", …): `EQ null`,
/// `EQ NaN`, `NEQ null`, `NEQ NaN`. Any other comparison with null or NaN matches nothing
/// (`n > null`, `n in [null]`) and is `EQ true, EQ false`, which no value satisfies;
/// `not-in` is each of its values' `!=` (where `!= NaN` is `NEQ null`); `array-contains` null
/// or NaN is `LIST_CONTAINS []`. `in` and `array-contains-any` give no filter here: they split
/// the query into one case per value ([`value_simples`]).
pub(crate) fn simples<'a>(op: FilterOp, value: &'a Value) -> Vec<Simple<'a>> {
    let nan = matches!(value, Value::Double(f) if f.is_nan());
    let null = matches!(value, Value::Null);
    match op {
        FilterOp::Eq if null || nan => vec![Simple {
            comparator: Comparator::Eq,
            value: Val::from_value(value),
        }],
        FilterOp::Ne if null || nan => vec![Simple {
            comparator: Comparator::Neq,
            value: Val::from_value(value),
        }],
        FilterOp::In | FilterOp::ArrayContainsAny => Vec::new(),
        _ => value_simples(op, value),
    }
}

/// The constraint filters of a field filter as the emulator reads them (`in` and
/// `array-contains-any` values become `==` and `array-contains` filters of their own).
pub(crate) fn value_simples<'a>(op: FilterOp, value: &'a Value) -> Vec<Simple<'a>> {
    let one = |comparator, value| Simple { comparator, value };
    let nan = matches!(value, Value::Double(f) if f.is_nan());
    let null_or_nan = nan || matches!(value, Value::Null);
    let comparator = match op {
        FilterOp::NotIn => {
            let Value::Array(values) = value else {
                return Vec::new();
            };
            return values
                .iter()
                .flat_map(|v| value_simples(FilterOp::Ne, v))
                .collect();
        }
        FilterOp::Ne if nan => return vec![one(Comparator::Neq, Val::Null)],
        FilterOp::ArrayContains if null_or_nan => {
            return vec![one(Comparator::ListContains, Val::list(Vec::new()))];
        }
        FilterOp::In | FilterOp::ArrayContainsAny => return Vec::new(),
        _ if null_or_nan => {
            return vec![
                one(Comparator::Eq, Val::Bool(true)),
                one(Comparator::Eq, Val::Bool(false)),
            ];
        }
        FilterOp::Eq => Comparator::Eq,
        FilterOp::Ne => Comparator::Neq,
        FilterOp::Lt => Comparator::Lt,
        FilterOp::Le => Comparator::Lte,
        FilterOp::Gt => Comparator::Gt,
        FilterOp::Ge => Comparator::Gte,
        FilterOp::ArrayContains => Comparator::ListContains,
    };
    vec![one(comparator, Val::from_value(value))]
}

/// `l op r` when either side is a constraint; `None` when neither is, or the operator treats a
/// constraint like any other value.
pub(crate) fn binary<'a>(
    op: BinOp,
    l: &Val<'a>,
    r: &Val<'a>,
) -> Option<Result<Val<'a>, EvalError>> {
    let comparison = matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
    );
    Some(match (l, r) {
        (Val::Constraint(_), Val::Constraint(_)) if comparison || op == BinOp::In => Err(
            EvalError::ty("two fields the query does not pin down cannot be compared"),
        ),
        (Val::Constraint(c), v) if comparison => implies(c, op, v),
        (v, Val::Constraint(c)) if comparison => implies(c, flip(op), v),
        (v, Val::Constraint(c)) if op == BinOp::In => {
            if c.iter()
                .any(|s| s.comparator == Comparator::ListContains && same(&s.value, v, false))
            {
                Ok(Val::Bool(true))
            } else {
                Err(undecided(c, "in", v))
            }
        }
        _ => return None,
    })
}

/// `c.hasAny(items)`.
pub(crate) fn has_any(c: &[Simple<'_>], items: &[Val<'_>]) -> bool {
    c.iter().any(|s| {
        s.comparator == Comparator::ListContains && items.iter().any(|i| same(&s.value, i, false))
    })
}

fn undecided(c: &[Simple<'_>], op: &str, v: &Val<'_>) -> EvalError {
    let filters: Vec<String> = c
        .iter()
        .map(|s| format!("{} {}", s.comparator.name(), crate::value::short(&s.value)))
        .collect();
    EvalError::Unprovable(format!(
        "the query's filters ({}) do not imply `{op} {}`",
        filters.join(", "),
        crate::value::short(v)
    ))
}

/// `v op c` as `c op' v`.
fn flip(op: BinOp) -> BinOp {
    match op {
        BinOp::Lt => BinOp::Gt,
        BinOp::Le => BinOp::Ge,
        BinOp::Gt => BinOp::Lt,
        BinOp::Ge => BinOp::Le,
        other => other,
    }
}

/// `c op v`: true if one filter of `c` implies it, else undecided.
fn implies<'a>(c: &[Simple<'a>], op: BinOp, v: &Val<'a>) -> Result<Val<'a>, EvalError> {
    let ordered = matches!(
        v,
        Val::Timestamp(_)
            | Val::Duration(_)
            | Val::Float(_)
            | Val::Int(_)
            | Val::Str(_)
            | Val::Bytes(_)
    );
    if matches!(op, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge) && !ordered {
        return Err(EvalError::ty(format!(
            "'{}' needs a value with an order, found {}",
            op.symbol(),
            v.type_name()
        )));
    }
    let implied = (op == BinOp::Ne && matches!(v, Val::Null)) || c.iter().any(|s| s.implies(op, v));
    if implied {
        Ok(Val::Bool(true))
    } else {
        Err(undecided(c, op.symbol(), v))
    }
}

fn is_number(v: &Val<'_>) -> bool {
    matches!(v, Val::Int(_) | Val::Float(_))
}

fn is_nan(v: &Val<'_>) -> bool {
    matches!(v, Val::Float(f) if f.is_nan())
}

impl Simple<'_> {
    /// Whether every value this filter lets through satisfies `x op v`.
    fn implies(&self, op: BinOp, v: &Val<'_>) -> bool {
        use BinOp::{Eq, Ge, Gt, Le, Lt, Ne};
        use Ordering::{Equal, Greater, Less};
        if self.comparator == Comparator::ListContains {
            return false;
        }
        if is_number(&self.value) && is_number(v) {
            // `NEQ NaN` lets any number through; a filter with NaN that compares otherwise,
            // none.
            if is_nan(&self.value) {
                return self.comparator != Comparator::Neq || (op == Ne && is_nan(v));
            }
            if is_nan(v) {
                return op == Ne;
            }
            // A float in a filter has no order with an int, and is never equal to one.
            if let (Val::Float(_), Val::Int(_)) = (&self.value, v) {
                return self.comparator == Comparator::Eq && op == Ne;
            }
        }
        let Some(order) = relation(&self.value, v) else {
            return false;
        };
        match (self.comparator, order) {
            (Comparator::Eq, Equal) => matches!(op, Eq | Le | Ge),
            (Comparator::Eq, Less) => matches!(op, Ne | Lt | Le),
            (Comparator::Eq, Greater) => matches!(op, Ne | Gt | Ge),
            (Comparator::Neq, Equal) => op == Ne,
            (Comparator::Gt, Equal | Greater) | (Comparator::Gte, Greater) => {
                matches!(op, Gt | Ge | Ne)
            }
            (Comparator::Gte, Equal) => op == Ge,
            (Comparator::Lt, Equal | Less) | (Comparator::Lte, Less) => matches!(op, Lt | Le | Ne),
            (Comparator::Lte, Equal) => op == Le,
            _ => false,
        }
    }
}

/// How a filter's value compares with a rule's, if they compare.
fn relation(filter: &Val<'_>, rule: &Val<'_>) -> Option<Ordering> {
    match (filter, rule) {
        (Val::Int(a), Val::Int(b)) => Some(a.cmp(b)),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
        (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b),
        (Val::Float(_), Val::Int(_)) => None,
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        (Val::Str(a), Val::Str(b)) => Some(utf16_cmp(a.as_str(), b.as_str())),
        (Val::Bytes(a), Val::Bytes(b)) => Some(a.as_slice().cmp(b.as_slice())),
        (Val::Timestamp(a), Val::Timestamp(b)) => Some(a.cmp(b)),
        (a, b) if equals(a, b) => Some(Ordering::Equal),
        _ => None,
    }
}
