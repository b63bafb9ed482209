//! Listing what lies directly below a parent from document keys alone: the ids of the
//! collections below a document (or the root), and the ids of a collection's documents
//! including "missing" ones (absent, with documents below them). Both are the distinct next
//! path segments among the keys that start with the parent's key ([`DocPath::sort_key`]), found
//! by a skip scan: seek the first key past a bound, take its next segment, then seek again past
//! every key that starts with it. Each child costs one seek on the documents' primary key,
//! whatever lies below it. Backends run the seeks ([`crate::Documents::collection_ids`],
//! [`crate::Documents::list_with_missing`]); this module holds the key arithmetic they share.

use claimdb_model::{CollectionPath, DocPath, key};

use crate::{Document, StoreError};

/// One entry of a collection listed with its missing documents.
#[derive(Debug, Clone, PartialEq)]
pub enum Child {
    /// A document that exists.
    Document(Document),
    /// A document that does not exist but has documents in its subcollections.
    Missing(DocPath),
}

/// The key range of one parent's children and how to step through it.
#[derive(Debug, Clone)]
pub struct ChildScan {
    prefix: Vec<u8>,
    end: Vec<u8>,
}

/// One step of a [`ChildScan`]: what the first key past the bound says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The child's id (the key's next segment after the parent).
    pub id: String,
    /// Whether the key is the child itself (a document, for a collection's children) rather
    /// than something below it.
    pub exact: bool,
    /// The exclusive lower bound of the next seek: past every key below this child.
    pub next: Vec<u8>,
}

impl ChildScan {
    /// The collections directly below `parent`, or the root collections.
    pub fn collections(parent: Option<&DocPath>) -> Self {
        Self::below(parent.map(DocPath::sort_key).unwrap_or_default())
    }

    /// The documents (existing or missing) of `collection`.
    pub fn documents(collection: &CollectionPath) -> Self {
        Self::below(collection.sort_key())
    }

    fn below(prefix: Vec<u8>) -> Self {
        let end = key::prefix_successor(&prefix);
        ChildScan { prefix, end }
    }

    /// The exclusive lower bound of the first seek: the parent's own key (a document parent is
    /// not its own child), or past the child `after` and everything below it.
    pub fn start(&self, after: Option<&str>) -> Vec<u8> {
        match after {
            None => self.prefix.clone(),
            Some(id) => {
                let mut k = self.prefix.clone();
                key::encode_escaped(&mut k, id.as_bytes());
                key::prefix_successor(&k)
            }
        }
    }

    /// The exclusive upper bound of every seek.
    pub fn end(&self) -> &[u8] {
        &self.end
    }

    /// The length of the parent's key, which every key of the range starts with.
    pub fn prefix_len(&self) -> usize {
        self.prefix.len()
    }

    /// Reads the first key found in `(bound, end)`.
    pub fn step(&self, found: &[u8]) -> Result<Step, StoreError> {
        let corrupt = || StoreError::Internal("a document key does not decode".into());
        let rest = found
            .strip_prefix(self.prefix.as_slice())
            .ok_or_else(corrupt)?;
        let (segment, below) = key::decode_escaped(rest).ok_or_else(corrupt)?;
        let consumed = rest.len() - below.len();
        let id = String::from_utf8(segment).map_err(|_| corrupt())?;
        let child = &found[..self.prefix.len() + consumed];
        Ok(Step {
            id,
            exact: below.is_empty(),
            next: key::prefix_successor(child),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> Vec<u8> {
        DocPath::parse(path).unwrap().sort_key()
    }

    #[test]
    fn steps_read_the_next_segment_and_skip_what_lies_below_it() {
        let scan = ChildScan::collections(Some(&DocPath::parse("a/b").unwrap()));
        assert_eq!(scan.start(None), key("a/b"));
        let step = scan.step(&key("a/b/c/d/e/f")).unwrap();
        assert_eq!(step.id, "c");
        assert!(!step.exact);
        // Everything below a/b/c sorts before the next bound, a/b/c-d after it.
        assert!(key("a/b/c/!x/y/z").as_slice() < step.next.as_slice());
        assert!(key("a/b/c-d/x").as_slice() > step.next.as_slice());
        assert!(scan.end() > key("a/b/zzz/x").as_slice());
        let docs = ChildScan::documents(&CollectionPath::parse("a").unwrap());
        let step = docs.step(&key("a/b")).unwrap();
        assert_eq!((step.id.as_str(), step.exact), ("b", true));
        let step = docs.step(&key("a/b c/s/t")).unwrap();
        assert_eq!((step.id.as_str(), step.exact), ("b c", false));
        assert!(docs.start(Some("b")).as_slice() > key("a/b/s/t").as_slice());
        assert!(docs.start(Some("b")).as_slice() < key("a/b0").as_slice());
        // The root: every key.
        let root = ChildScan::collections(None);
        assert_eq!(root.start(None), Vec::<u8>::new());
        assert_eq!(root.step(&key("x/y")).unwrap().id, "x");
    }
}
