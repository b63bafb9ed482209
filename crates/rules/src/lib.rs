//! Firestore-compatible security rules for claimdb: users bring their `firestore.rules`
//! unchanged. This crate lexes, parses, checks and compiles a rules file into a [`Ruleset`], and
//! decides requests against it with Firestore's semantics and limits.
//!
//! It is pure: no IO, no async. Documents for `get()`/`exists()`/`getAfter()`/`existsAfter()`
//! arrive only through the [`DocumentReader`] trait, which the engine implements over the store
//! and any pending batch.
//!
//! ```
//! use claimdb_model::{DocPath, Map, Timestamp};
//! use claimdb_rules::{Method, NoDocuments, Request, Ruleset, Target};
//!
//! let rules = Ruleset::compile(r#"
//!     rules_version = '2';
//!     service cloud.firestore {
//!       match /databases/{database}/documents {
//!         match /users/{userId} {
//!           allow read, write: if request.auth != null && request.auth.uid == userId;
//!         }
//!       }
//!     }"#).map_err(|d| claimdb_rules::render(&d)).unwrap();
//! let path = DocPath::parse("users/alice").unwrap();
//! let req = Request::new(Method::Get, Target::Doc(path), Timestamp::now())
//!     .with_auth("alice", Map::new());
//! assert!(rules.evaluate(&req, &NoDocuments).allowed);
//! ```

pub mod ast;
mod builtins;
mod cases;
mod check;
mod compile;
mod coverage;
mod decide;
mod error;
mod eval;
mod explain;
pub mod lexer;
mod methods;
mod ops;
mod parser;
mod parser_expr;
mod program;
mod request;
mod time;
mod value;

pub use cases::{CaseOutcome, TestCase, run_cases};
pub use compile::{MAX_PATH_SEGMENTS, Ruleset};
pub use coverage::{AllowStatement, Coverage, CoverageLine};
pub use error::{Diagnostic, EvalError, render};
pub use eval::{MAX_ACCESS_CALLS, MAX_BATCH_ACCESS_CALLS, MAX_CALL_DEPTH, MAX_EXPRESSIONS};
pub use parser::{MAX_NESTING, MAX_SOURCE_BYTES, MAX_TREE_HEIGHT, parse};
pub use request::{
    Decision, DocumentReader, Filter, FilterOp, Matched, Method, NoDocuments, Outcome, Query,
    ReadError, Reason, Request, Target, Tried,
};
