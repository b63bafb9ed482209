//! Firestore-compatible security rules for claimdb: users bring their `firestore.rules`
//! unchanged. This crate lexes, parses, checks and compiles a rules file into a [`Ruleset`], and
//! decides requests against it with Firestore's semantics and limits.
//!
//! It is pure: no IO, no async. Documents for `get()`/`exists()`/`getAfter()`/`existsAfter()`
//! arrive only through the [`DocumentReader`] trait, which the engine implements over the store
//! and any pending batch.
//!
//! Pipeline (one file per stage): `lexer` → `parser`/`parser_expr` (syntax tree in `ast`, with
//! error recovery and nesting/size guards) → `check` (names to slots, arity, recursion, static
//! limits) → `compile` (match tree indexed by first literal segment, constant folding) →
//! `decide` (match walk, allows, list-query proof) → `eval` (expressions; `ops`, `methods`,
//! `builtins`, `time` hold the operator and library semantics) → `explain` (denial reasons).
//! `cases` and `coverage` support offline rule tests.
//!
//! Semantics worth knowing (the Firestore emulator's, which claimdb follows):
//! - Any applicable `allow` that evaluates to `true` grants; an error in a condition denies only
//!   that allow; a *limit* (1,000 expressions, 10 document reads — 20 per batch —, call depth 20,
//!   expression nesting 400, computed values over 2 MiB / 100,000 items) denies the request.
//! - `&&`/`||` short-circuit and absorb a left-hand error when the right side decides.
//! - `let` bindings are evaluated lazily, at most once.
//! - A `list` is allowed only if every document the query could return is: `resource.data`
//!   holds just what the query's `==`/`in` filters pin down (each `in` value is tried), so any
//!   other field access fails and denies, with an explanation.
//! - `request.resource.data` is the whole document after the write, as the engine supplies it.
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
mod constraint;
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
mod prefetch;
mod program;
mod request;
mod time;
mod value;

pub use cases::{CaseOutcome, TestCase, render_report, run_cases};
pub use compile::{LOCKED_SOURCE, MAX_PATH_SEGMENTS, Ruleset};
pub use coverage::{AllowStatement, Coverage, CoverageLine};
pub use error::{Diagnostic, EvalError, render, render_warnings};
pub use eval::{
    MAX_ACCESS_CALLS, MAX_BATCH_ACCESS_CALLS, MAX_CALL_DEPTH, MAX_EXPRESSIONS,
    MAX_LIST_ACCESS_CALLS,
};
pub use parser::{MAX_LEVEL, MAX_NESTING, MAX_SOURCE_BYTES, MAX_TREE_HEIGHT, parse};
pub use prefetch::{Prefetch, decide_with_prefetch};
pub use request::{
    Decision, DocumentReader, Filter, FilterOp, Matched, Method, NoDocuments, Outcome, Query,
    ReadError, Reason, Request, Target, Tried,
};
