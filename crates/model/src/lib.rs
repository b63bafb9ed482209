//! The document model every other claimdb crate shares: typed values, document and collection
//! paths, field paths, the JSON wire/storage form with its `$`-tagged values and write transforms,
//! the one strict reading of JSON text (no repeated names, integers within 64 bits), and the one
//! total order (with its byte encoding) that queries and indexes use.
//!
//! This crate does no IO and knows nothing of HTTP, storage engines or rules.

#[cfg(any(test, feature = "arbitrary"))]
pub mod arbitrary;
mod error;
pub mod field;
pub mod json;
pub mod json_text;
pub mod key;
mod op;
pub mod path;
pub mod transform;
pub mod value;

pub use error::ModelError;
pub use field::FieldPath;
pub use op::Op;
pub use path::{CollectionPath, DocPath};
pub use transform::Transform;
pub use value::{Map, Timestamp, Value};

/// Limits shared by every layer (Firestore's, where Firestore has one).
pub mod limits {
    /// Longest document or collection path, in bytes.
    pub const MAX_PATH_BYTES: usize = 1_500;
    /// Longest field name (one segment of a field path), in bytes.
    pub const MAX_FIELD_NAME_BYTES: usize = 1_500;
    /// Largest document, measured as its stored JSON form, in bytes.
    pub const MAX_DOCUMENT_BYTES: usize = 1_048_576;
    /// Deepest nesting of maps and arrays inside a document (top-level fields are depth 1).
    pub const MAX_DEPTH: usize = 20;
    /// Most writes in one batch.
    pub const MAX_BATCH_WRITES: usize = 500;
    /// Index keys (and query comparisons) see at most this many bytes of a value's encoding.
    pub const MAX_INDEX_KEY_BYTES: usize = 1_500;
}
