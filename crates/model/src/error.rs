//! The one error type of the model: every variant is bad input, named precisely enough that a
//! client can act on the message.

/// Why a path, field path or document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("invalid field path {path:?}: {reason}")]
    InvalidFieldPath { path: String, reason: String },
    #[error("invalid document: {0}")]
    InvalidDocument(String),
    #[error("invalid value: {0}")]
    InvalidValue(String),
    /// Text that is not one JSON value (serde_json's message).
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// A name repeated in one JSON object.
    #[error("duplicate key {0:?}: a name may appear only once in a JSON object")]
    DuplicateKey(String),
}

impl ModelError {
    pub(crate) fn path(path: &str, reason: impl Into<String>) -> Self {
        let mut shown = path.to_string();
        if shown.len() > 120 {
            let mut cut = 120;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
            shown.push('…');
        }
        ModelError::InvalidPath {
            path: shown,
            reason: reason.into(),
        }
    }
}
