//! Server-side write transforms (server timestamp, increment, array union/remove, field delete)
//! and how each one turns the field's previous value into its new one.

use crate::error::ModelError;
use crate::key;
use crate::value::{Timestamp, Value};

/// A transform applied to one field at commit time.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// The commit's timestamp.
    ServerTimestamp,
    /// Adds an integer or double; a missing or non-numeric field counts as 0.
    Increment(Value),
    /// Appends each element not already present (by query equality).
    ArrayUnion(Vec<Value>),
    /// Removes every occurrence of each element; a non-array field becomes `[]`.
    ArrayRemove(Vec<Value>),
    /// The larger of the field and a number (Firestore's `maximum`): a missing or non-numeric
    /// field takes the number; equal values (`3` and `3.0`) keep the field; NaN wins.
    Maximum(Value),
    /// The smaller of the field and a number (Firestore's `minimum`), as [`Transform::Maximum`].
    Minimum(Value),
    /// Removes the field (PATCH only).
    Delete,
}

impl Transform {
    /// The field's value after the transform, or `None` when it is removed.
    pub fn apply(&self, old: Option<&Value>, now: Timestamp) -> Result<Option<Value>, ModelError> {
        Ok(Some(match self {
            Transform::ServerTimestamp => Value::Timestamp(now),
            Transform::Delete => return Ok(None),
            Transform::Increment(by) => increment(old, by)?,
            Transform::Maximum(by) => extreme(old, by, std::cmp::Ordering::Greater)?,
            Transform::Minimum(by) => extreme(old, by, std::cmp::Ordering::Less)?,
            Transform::ArrayUnion(items) => {
                let mut out = match old {
                    Some(Value::Array(existing)) => existing.clone(),
                    _ => Vec::new(),
                };
                let mut seen: Vec<Vec<u8>> = out.iter().map(key::index_key).collect();
                for item in items {
                    let k = key::index_key(item);
                    if !seen.contains(&k) {
                        seen.push(k);
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            Transform::ArrayRemove(items) => {
                let remove: Vec<Vec<u8>> = items.iter().map(key::index_key).collect();
                match old {
                    Some(Value::Array(existing)) => Value::Array(
                        existing
                            .iter()
                            .filter(|v| !remove.contains(&key::index_key(v)))
                            .cloned()
                            .collect(),
                    ),
                    _ => Value::Array(Vec::new()),
                }
            }
        }))
    }
}

/// `by` if it is further than the field in direction `wins` (or the field is not a number),
/// else the field; NaN on either side is the result.
fn extreme(old: Option<&Value>, by: &Value, wins: std::cmp::Ordering) -> Result<Value, ModelError> {
    let as_f64 = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    };
    let Some(by_number) = as_f64(by) else {
        return Err(ModelError::InvalidValue(format!(
            "maximum and minimum take a number, not a {}",
            by.type_name()
        )));
    };
    let Some(old) = old.filter(|v| v.is_number()) else {
        return Ok(by.clone());
    };
    let old_number = as_f64(old).unwrap_or(f64::NAN);
    if old_number.is_nan() {
        return Ok(old.clone());
    }
    if by_number.is_nan() {
        return Ok(by.clone());
    }
    let order = match (old, by) {
        (Value::Int(a), Value::Int(b)) => b.cmp(a),
        _ => by_number
            .partial_cmp(&old_number)
            .unwrap_or(std::cmp::Ordering::Equal),
    };
    Ok(if order == wins {
        by.clone()
    } else {
        old.clone()
    })
}

fn increment(old: Option<&Value>, by: &Value) -> Result<Value, ModelError> {
    let result = match (old, by) {
        (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a.saturating_add(*b)),
        (Some(Value::Int(a)), Value::Double(b)) => Value::Double(*a as f64 + b),
        (Some(Value::Double(a)), Value::Int(b)) => Value::Double(a + *b as f64),
        (Some(Value::Double(a)), Value::Double(b)) => Value::Double(a + b),
        (_, Value::Int(b)) => Value::Int(*b),
        (_, Value::Double(b)) => Value::Double(*b),
        (_, other) => {
            return Err(ModelError::InvalidValue(format!(
                "$increment takes a number, not a {}",
                other.type_name()
            )));
        }
    };
    if let Value::Double(d) = result
        && !d.is_finite()
    {
        return Err(ModelError::InvalidValue(
            "$increment overflowed to a non-finite double".into(),
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_micros(42).unwrap()
    }

    #[test]
    fn increments_like_firestore() {
        let inc = |old: Option<Value>, by: Value| {
            Transform::Increment(by)
                .apply(old.as_ref(), now())
                .unwrap()
                .unwrap()
        };
        assert_eq!(inc(None, Value::Int(2)), Value::Int(2));
        assert_eq!(
            inc(Some(Value::String("x".into())), Value::Int(2)),
            Value::Int(2)
        );
        assert_eq!(inc(Some(Value::Int(1)), Value::Int(2)), Value::Int(3));
        assert_eq!(
            inc(Some(Value::Int(1)), Value::Double(0.5)),
            Value::Double(1.5)
        );
        assert_eq!(
            inc(Some(Value::Int(i64::MAX)), Value::Int(1)),
            Value::Int(i64::MAX)
        );
        assert!(
            Transform::Increment(Value::Double(f64::MAX))
                .apply(Some(&Value::Double(f64::MAX)), now())
                .is_err()
        );
    }

    #[test]
    fn maximum_and_minimum_like_firestore() {
        let apply =
            |t: Transform, old: Option<Value>| t.apply(old.as_ref(), now()).unwrap().unwrap();
        let max = |old, by| apply(Transform::Maximum(by), old);
        let min = |old, by| apply(Transform::Minimum(by), old);
        assert_eq!(max(None, Value::Int(3)), Value::Int(3));
        assert_eq!(
            max(Some(Value::String("x".into())), Value::Int(3)),
            Value::Int(3)
        );
        assert_eq!(max(Some(Value::Int(5)), Value::Int(3)), Value::Int(5));
        assert_eq!(
            max(Some(Value::Int(2)), Value::Double(2.5)),
            Value::Double(2.5)
        );
        // Equal values keep the field's type.
        assert_eq!(max(Some(Value::Int(3)), Value::Double(3.0)), Value::Int(3));
        assert_eq!(
            min(Some(Value::Double(-0.0)), Value::Int(0)),
            Value::Double(-0.0)
        );
        assert_eq!(min(Some(Value::Int(5)), Value::Int(3)), Value::Int(3));
        assert_eq!(
            min(Some(Value::Int(i64::MIN)), Value::Int(i64::MIN + 1)),
            Value::Int(i64::MIN)
        );
        assert!(
            matches!(max(Some(Value::Double(f64::NAN)), Value::Int(1)), Value::Double(d) if d.is_nan())
        );
        assert!(
            matches!(min(Some(Value::Int(1)), Value::Double(f64::NAN)), Value::Double(d) if d.is_nan())
        );
        assert!(
            Transform::Maximum(Value::Bool(true))
                .apply(None, now())
                .is_err()
        );
    }

    #[test]
    fn array_union_and_remove_use_query_equality() {
        let old = Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(1)]);
        let union = Transform::ArrayUnion(vec![Value::Double(1.0), Value::Int(3), Value::Int(3)]);
        assert_eq!(
            union.apply(Some(&old), now()).unwrap().unwrap(),
            Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(1),
                Value::Int(3)
            ])
        );
        let remove = Transform::ArrayRemove(vec![Value::Double(1.0)]);
        assert_eq!(
            remove.apply(Some(&old), now()).unwrap().unwrap(),
            Value::Array(vec![Value::Int(2)])
        );
        assert_eq!(
            remove.apply(None, now()).unwrap().unwrap(),
            Value::Array(vec![])
        );
        assert_eq!(
            Transform::ServerTimestamp
                .apply(None, now())
                .unwrap()
                .unwrap(),
            Value::Timestamp(now())
        );
        assert_eq!(Transform::Delete.apply(Some(&old), now()).unwrap(), None);
    }
}
