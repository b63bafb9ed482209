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
