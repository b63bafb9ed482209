//! The public inputs and outputs of an evaluation: the request being decided, the read-only
//! document reader behind `get()`/`exists()`/`getAfter()`/`existsAfter()`, and the decision with
//! its trace.
//!
//! These are plain domain types (not wire types); the engine builds a [`Request`] from a verified
//! credential and an operation, and implements [`DocumentReader`] over the store and any pending
//! batch. Nothing here does IO.

use std::sync::Arc;

use claimdb_model::{CollectionPath, DocPath, Map, Timestamp, Value};

pub use crate::explain::Reason;

/// The five request methods (`read`/`write` are groups of these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    List,
    Create,
    Update,
    Delete,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::List => "list",
            Method::Create => "create",
            Method::Update => "update",
            Method::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "get" => Method::Get,
            "list" => Method::List,
            "create" => Method::Create,
            "update" => Method::Update,
            "delete" => Method::Delete,
            _ => return None,
        })
    }

    pub(crate) fn bit(self) -> u8 {
        match self {
            Method::Get => 1,
            Method::List => 2,
            Method::Create => 4,
            Method::Update => 8,
            Method::Delete => 16,
        }
    }
}

/// What the request targets: one document, a collection (for `list`), or a collection group
/// (a `list` over every collection with one id, anywhere or below one document).
///
/// A group query is allowed only by rules that hold for every possible path of the group: the
/// unknown part of the path can be matched by a `{name=**}` wildcard and nothing else (no
/// literal or `{name}` segment can stand for it), as with Firestore's `match /{path=**}/posts/{post}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Doc(DocPath),
    Collection(CollectionPath),
    Group {
        under: Option<DocPath>,
        collection_id: String,
    },
}

/// A list request's query. Rules see `limit`, `offset` and `orderBy` as `request.query`; the
/// filters are what lets a list be proven allowed (rules are not filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// Field paths with `true` for descending.
    pub order_by: Vec<(String, bool)>,
    /// Filters every document of the result passes (ANDed).
    pub filters: Vec<Filter>,
    /// An or query's `where` beyond `filters`, in disjunctive normal form: when not empty, a
    /// document of the result also passes every filter of one of these conjunctions. The list
    /// is decided as the Firestore emulator decides it: every conjunction (and each `in` /
    /// `array-contains-any` value in it) is one way a document may match, each way must be
    /// allowed, and ways with the same filters are decided once.
    pub disjunctions: Vec<Vec<Filter>>,
}

/// One `where` constraint of a query, on a dotted field path.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: FilterOp,
    pub value: Value,
}

/// A query filter operator (the same type the store executes).
pub use claimdb_model::Op as FilterOp;

/// Everything rules can see about one request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The `{database}` id, normally `(default)`.
    pub database: String,
    pub method: Method,
    pub target: Target,
    /// `request.auth`: `None` when unauthenticated, else a map with `uid` and `token`. Shared:
    /// a caller may build it once per identity and hand it to every request.
    pub auth: Option<Arc<Value>>,
    /// `request.time`.
    pub time: Timestamp,
    /// The stored document (`resource`), if any.
    pub existing: Option<Map>,
    /// The document as it would be after a create/update (`request.resource.data`).
    pub incoming: Option<Map>,
    pub query: Option<Query>,
}

impl Request {
    /// A request for `method` on `target` at `time`, unauthenticated, in `(default)`.
    pub fn new(method: Method, target: Target, time: Timestamp) -> Request {
        Request {
            database: "(default)".into(),
            method,
            target,
            auth: None,
            time,
            existing: None,
            incoming: None,
            query: None,
        }
    }

    /// Sets `request.auth` to `{uid, token}`.
    pub fn with_auth(mut self, uid: &str, token: Map) -> Request {
        let mut m = Map::new();
        m.insert("uid".into(), Value::String(uid.into()));
        m.insert("token".into(), Value::Map(token));
        self.auth = Some(Arc::new(Value::Map(m)));
        self
    }
}

/// Why a document read behind `get()`/`exists()` failed (not "absent": that is `Ok(None)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// Read-only access to documents for `get()`, `exists()`, `getAfter()` and `existsAfter()`.
pub trait DocumentReader {
    /// The document as currently stored.
    fn get(&self, path: &DocPath) -> Result<Option<Map>, ReadError>;
    /// The document as it would be if the current write/batch committed.
    fn get_after(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        self.get(path)
    }
}

/// A reader with no documents at all.
pub struct NoDocuments;

impl DocumentReader for NoDocuments {
    fn get(&self, _: &DocPath) -> Result<Option<Map>, ReadError> {
        Ok(None)
    }
}

impl DocumentReader for std::collections::HashMap<String, Map> {
    fn get(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        Ok(std::collections::HashMap::get(self, path.as_str()).cloned())
    }
}

/// How one tried `allow` came out.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    True,
    False,
    /// The condition failed with this error (the allow does not grant).
    Error(String),
}

/// One `allow` statement evaluated for the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Tried {
    /// Identifies the allow statement (its position in the source); see
    /// [`crate::AllowStatement::id`].
    pub allow: u32,
    pub line: usize,
    /// The methods the allow names, as written (`read, write`).
    pub methods: Arc<str>,
    pub outcome: Outcome,
}

/// A match block whose pattern covered the request path.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub line: usize,
    /// The full pattern, e.g. `/databases/{database}/documents/users/{userId}`.
    pub pattern: Arc<str>,
}

/// The verdict on one request, with what led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    /// The line of the allow that granted, if any.
    pub granted_by: Option<usize>,
    pub matched: Vec<Matched>,
    pub tried: Vec<Tried>,
    /// A limit that stopped evaluation (expression budget, access calls, …).
    pub limit: Option<String>,
    /// Values passed to `debug()`, in order.
    pub debug: Vec<String>,
    /// For a denial from [`crate::Ruleset::explain`]: why each tried allow did not grant.
    pub reasons: Vec<Reason>,
    /// Distinct documents read by `get()`/`exists()`/`getAfter()`/`existsAfter()` (each is
    /// billed as a read in Firestore, even on denial).
    pub reads: u32,
}

impl Decision {
    /// A denial that happened before any rule ran (for example, an invalid request).
    pub fn denied(limit: String) -> Decision {
        Decision {
            allowed: false,
            granted_by: None,
            matched: Vec::new(),
            tried: Vec::new(),
            limit: Some(limit),
            debug: Vec::new(),
            reasons: Vec::new(),
            reads: 0,
        }
    }

    /// A person-readable account of a denial (empty for an allowed request).
    pub fn explanation(&self, method: Method) -> String {
        if self.allowed {
            return String::new();
        }
        if let Some(limit) = &self.limit {
            return format!("denied: {limit}");
        }
        if self.matched.is_empty() {
            return format!(
                "denied: no match block covers this path, so nothing allows '{}'",
                method.name()
            );
        }
        if self.tried.is_empty() {
            let patterns: Vec<&str> = self.matched.iter().map(|m| &*m.pattern).collect();
            return format!(
                "denied: {} match this path but none has an allow for '{}'",
                patterns.join(", "),
                method.name()
            );
        }
        if self.reasons.is_empty() {
            return format!("denied: {}", self.summary(method));
        }
        let lines: Vec<String> = self
            .reasons
            .iter()
            .map(|r| format!("- {}", r.message))
            .collect();
        format!("denied:\n{}", lines.join("\n"))
    }

    /// The emulator's style of denial message: `false for 'update' @ L7, Null value error. for 'update' @ L9`.
    pub fn summary(&self, method: Method) -> String {
        if self.tried.is_empty() {
            return match &self.limit {
                Some(l) => l.clone(),
                None => "no allow statement matches this request".into(),
            };
        }
        let mut parts: Vec<String> = self
            .tried
            .iter()
            .map(|t| {
                let what = match &t.outcome {
                    Outcome::True => "true".to_string(),
                    Outcome::False => "false".to_string(),
                    Outcome::Error(e) => e.clone(),
                };
                format!("{what} for '{}' @ L{}", method.name(), t.line)
            })
            .collect();
        if let Some(l) = &self.limit {
            parts.push(l.clone());
        }
        parts.join(", ")
    }
}
