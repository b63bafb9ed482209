//! Document and collection paths (`coll/doc/sub/doc…`): parsing with every validity check in one
//! place, and the segment-wise sort key that orders documents the way Firestore orders names.

use std::fmt;

use crate::error::ModelError;
use crate::key;
use crate::limits::MAX_PATH_BYTES;

/// A document path: an even, non-zero number of segments.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocPath(String);

/// A collection path: an odd number of segments.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectionPath(String);

fn validate(path: &str) -> Result<usize, ModelError> {
    if path.is_empty() {
        return Err(ModelError::path(path, "path is empty"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(ModelError::path(
            path,
            format!(
                "path is {} bytes; the limit is {MAX_PATH_BYTES}",
                path.len()
            ),
        ));
    }
    let mut count = 0;
    for segment in path.split('/') {
        count += 1;
        if segment.is_empty() {
            return Err(ModelError::path(
                path,
                "empty segment (a leading, trailing or doubled '/')",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(ModelError::path(
                path,
                format!("segment {segment:?} is not allowed"),
            ));
        }
        if segment.len() > 4 && segment.starts_with("__") && segment.ends_with("__") {
            return Err(ModelError::path(
                path,
                format!("segment {segment:?} is reserved (ids of the form __name__ are reserved)"),
            ));
        }
        if segment.chars().any(char::is_control) {
            return Err(ModelError::path(
                path,
                "segment contains a control character",
            ));
        }
    }
    Ok(count)
}

impl DocPath {
    /// Parses `coll/doc[/sub/doc…]`.
    pub fn parse(path: &str) -> Result<Self, ModelError> {
        let n = validate(path)?;
        if n % 2 == 1 {
            return Err(ModelError::path(
                path,
                "this names a collection, not a document (a document path has an even number of segments)",
            ));
        }
        Ok(DocPath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The document's own id (last segment).
    pub fn id(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The collection holding this document.
    pub fn parent(&self) -> CollectionPath {
        let cut = self.0.rfind('/').unwrap_or(0);
        CollectionPath(self.0[..cut].to_string())
    }

    /// The id of the collection holding this document (its collection group).
    pub fn collection_id(&self) -> &str {
        let mut it = self.0.rsplit('/');
        it.next();
        it.next().unwrap_or("")
    }

    /// Bytes that sort like Firestore orders document names: segment by segment.
    pub fn sort_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 8);
        for segment in self.segments() {
            key::encode_escaped(&mut out, segment.as_bytes());
        }
        out
    }

    /// Rebuilds a path from a key made by [`DocPath::sort_key`].
    pub fn from_sort_key(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut rest = bytes;
        let mut segments = Vec::new();
        while !rest.is_empty() {
            let (segment, tail) = key::decode_escaped(rest)
                .ok_or_else(|| ModelError::InvalidValue("corrupt document key".into()))?;
            segments.push(
                String::from_utf8(segment)
                    .map_err(|_| ModelError::InvalidValue("corrupt document key".into()))?,
            );
            rest = tail;
        }
        DocPath::parse(&segments.join("/"))
    }
}

impl CollectionPath {
    /// Parses `coll[/doc/sub…]`.
    pub fn parse(path: &str) -> Result<Self, ModelError> {
        let n = validate(path)?;
        if n % 2 == 0 {
            return Err(ModelError::path(
                path,
                "this names a document, not a collection (a collection path has an odd number of segments)",
            ));
        }
        Ok(CollectionPath(path.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The collection id (last segment), which is also its collection group.
    pub fn id(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The document this collection lives under, if it is a subcollection.
    pub fn parent_doc(&self) -> Option<DocPath> {
        self.0
            .rfind('/')
            .map(|cut| DocPath(self.0[..cut].to_string()))
    }

    /// A document in this collection; `id` is validated as one segment.
    pub fn doc(&self, id: &str) -> Result<DocPath, ModelError> {
        if id.contains('/') {
            return Err(ModelError::path(id, "a document id cannot contain '/'"));
        }
        DocPath::parse(&format!("{}/{}", self.0, id))
    }

    /// Same encoding as [`DocPath::sort_key`]; every document of this collection has this prefix.
    pub fn sort_key(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() + 8);
        for segment in self.0.split('/') {
            key::encode_escaped(&mut out, segment.as_bytes());
        }
        out
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocPath({})", self.0)
    }
}
impl fmt::Display for CollectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for CollectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CollectionPath({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documents_and_collections() {
        let d = DocPath::parse("users/alice/posts/p1").unwrap();
        assert_eq!(d.id(), "p1");
        assert_eq!(d.collection_id(), "posts");
        assert_eq!(d.parent().as_str(), "users/alice/posts");
        assert_eq!(d.parent().parent_doc().unwrap().as_str(), "users/alice");
        let c = CollectionPath::parse("users").unwrap();
        assert_eq!(c.doc("bob").unwrap().as_str(), "users/bob");
        assert!(c.parent_doc().is_none());
    }

    #[test]
    fn refuses_bad_paths_with_a_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("users", "names a collection"),
            ("users//x", "empty segment"),
            ("/users/x", "empty segment"),
            ("users/x/", "empty segment"),
            ("users/..", "not allowed"),
            ("users/.", "not allowed"),
            ("users/__id__", "reserved"),
        ] {
            let err = DocPath::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(
            CollectionPath::parse("users/x")
                .unwrap_err()
                .to_string()
                .contains("names a document")
        );
        let long = format!("c/{}", "x".repeat(1_500));
        assert!(
            DocPath::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("limit is 1500")
        );
        assert!(CollectionPath::parse("users").unwrap().doc("a/b").is_err());
    }

    #[test]
    fn sort_key_orders_segment_wise_and_round_trips() {
        // Byte-wise "a-b/x" < "a/x" since '-' < '/', but segment-wise "a" < "a-b".
        let a = DocPath::parse("c/a/s/x").unwrap();
        let b = DocPath::parse("c/a-b/s/x").unwrap();
        assert!(a.sort_key() < b.sort_key());
        assert_eq!(DocPath::from_sort_key(&b.sort_key()).unwrap(), b);
        let coll = CollectionPath::parse("c/a/s").unwrap();
        assert!(a.sort_key().starts_with(&coll.sort_key()));
    }
}
