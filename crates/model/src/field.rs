//! Field paths (`a.b.c`, with backtick-quoted segments for names holding `.` or `` ` ``), and
//! reading, writing and deleting a field path inside a document map.

use std::fmt;

use crate::error::ModelError;
use crate::limits::{MAX_DEPTH, MAX_FIELD_NAME_BYTES};
use crate::value::{Map, Value};

/// A path to a (possibly nested) field. `__name__` names the document itself (its path).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<String>);

/// The field path that orders and filters by document name.
pub const DOCUMENT_ID: &str = "__name__";

impl FieldPath {
    /// Parses a dotted field path. Segments that are not plain identifiers may be quoted with
    /// backticks (`` a.`b.c`.d ``), inside which `\` escapes the next character.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let err = |reason: &str| ModelError::InvalidFieldPath {
            path: text.chars().take(120).collect(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(err("field path is empty"));
        }
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut segment = String::new();
            if chars.peek() == Some(&'`') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '`' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next() {
                            Some(escaped) => segment.push(escaped),
                            None => return Err(err("dangling '\\' in a quoted segment")),
                        },
                        c => segment.push(c),
                    }
                }
                if !closed {
                    return Err(err("unterminated backtick quote"));
                }
                match chars.peek() {
                    None | Some('.') => {}
                    Some(_) => return Err(err("a quoted segment must be followed by '.'")),
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    if c == '`' {
                        return Err(err("a backtick may only open a quoted segment"));
                    }
                    segment.push(c);
                    chars.next();
                }
            }
            if segment.is_empty() {
                return Err(err("empty segment"));
            }
            if segment.len() > MAX_FIELD_NAME_BYTES {
                return Err(err(&format!(
                    "a field name is {} bytes; the limit is {MAX_FIELD_NAME_BYTES}",
                    segment.len()
                )));
            }
            segments.push(segment);
            match chars.next() {
                None => break,
                Some(_dot) => {
                    if chars.peek().is_none() {
                        return Err(err("trailing '.'"));
                    }
                }
            }
        }
        if segments.len() > MAX_DEPTH {
            return Err(err(&format!("more than {MAX_DEPTH} segments")));
        }
        Ok(FieldPath(segments))
    }

    /// A path of one field name, taken literally (no dot splitting).
    pub fn single(name: &str) -> Self {
        FieldPath(vec![name.to_string()])
    }

    pub fn from_segments(segments: Vec<String>) -> Self {
        FieldPath(segments)
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }

    /// Whether this is `__name__`, the document-name pseudo field.
    pub fn is_document_id(&self) -> bool {
        self.0.len() == 1 && self.0[0] == DOCUMENT_ID
    }

    /// Whether `self` is `other` or a parent of it.
    pub fn is_prefix_of(&self, other: &FieldPath) -> bool {
        other.0.len() >= self.0.len() && other.0[..self.0.len()] == self.0[..]
    }

    /// Reads the value at this path.
    pub fn get<'a>(&self, map: &'a Map) -> Option<&'a Value> {
        let (last, parents) = self.0.split_last()?;
        let mut current = map;
        for segment in parents {
            match current.get(segment)? {
                Value::Map(inner) => current = inner,
                _ => return None,
            }
        }
        current.get(last)
    }

    /// Writes `value` at this path, creating (or replacing non-map) parents as maps.
    pub fn set(&self, map: &mut Map, value: Value) {
        let Some((last, parents)) = self.0.split_last() else {
            return;
        };
        let mut current = map;
        for segment in parents {
            let slot = current
                .entry(segment.clone())
                .or_insert_with(|| Value::Map(Map::new()));
            if !matches!(slot, Value::Map(_)) {
                *slot = Value::Map(Map::new());
            }
            let Value::Map(inner) = slot else { return };
            current = inner;
        }
        current.insert(last.clone(), value);
    }

    /// Removes the field at this path, if present; returns whether something was removed.
    pub fn delete(&self, map: &mut Map) -> bool {
        let Some((last, parents)) = self.0.split_last() else {
            return false;
        };
        let mut current = map;
        for segment in parents {
            match current.get_mut(segment) {
                Some(Value::Map(inner)) => current = inner,
                _ => return false,
            }
        }
        current.remove(last).is_some()
    }
}

fn is_simple(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Display for FieldPath {
    /// The canonical form: plain identifiers bare, anything else backtick-quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if is_simple(segment) {
                f.write_str(segment)?;
            } else {
                f.write_str("`")?;
                for c in segment.chars() {
                    if c == '`' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("`")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FieldPath({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dotted_and_quoted_paths() {
        let p = FieldPath::parse("a.`b.c`.d").unwrap();
        assert_eq!(p.segments(), ["a", "b.c", "d"]);
        assert_eq!(p.to_string(), "a.`b.c`.d");
        let p = FieldPath::parse("`we\\`ird`").unwrap();
        assert_eq!(p.segments(), ["we`ird"]);
        assert_eq!(FieldPath::parse(&p.to_string()).unwrap(), p);
        assert_eq!(
            FieldPath::parse("first-name").unwrap().to_string(),
            "`first-name`"
        );
        for bad in ["", "a..b", ".a", "a.", "`a", "`a`b", "a`b"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad:?}");
        }
        let long = "x".repeat(1_501);
        assert!(
            FieldPath::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("limit is 1500")
        );
    }

    #[test]
    fn gets_sets_and_deletes_nested_fields() {
        let mut m = Map::new();
        let p = FieldPath::parse("a.b.c").unwrap();
        p.set(&mut m, Value::Int(1));
        assert_eq!(p.get(&m), Some(&Value::Int(1)));
        FieldPath::parse("a.b").unwrap().set(&mut m, Value::Int(2));
        assert_eq!(p.get(&m), None);
        p.set(&mut m, Value::Int(3));
        assert_eq!(p.get(&m), Some(&Value::Int(3)));
        assert!(p.delete(&mut m));
        assert!(!p.delete(&mut m));
        assert_eq!(
            FieldPath::parse("a.b").unwrap().get(&m),
            Some(&Value::Map(Map::new()))
        );
    }
}
