//! claimdb's request engine: one entry point per operation (get, create, set, update, delete,
//! list, query, batch, ready), each taking a [`RequestContext`] and domain inputs and returning
//! domain outputs or an [`EngineError`]. Reads also come in an `_at` form taking a [`ReadTime`]:
//! the documents as they were at a past time.
//!
//! This is the layer that authenticates the caller (identity: a bearer token, or a session
//! cookie from a login), authorizes the operation (rules) and executes it against the
//! [`Store`](claimdb_store::Store), atomically and pinned to the state it was decided on.
//! claimdb's own token grants, login and sessions are the `claimdb-signin` crate's, which
//! builds on this one; the engine reaches sessions and refresh tokens only through
//! [`SignInHooks`]. It knows nothing of HTTP: status codes, headers and JSON wire types live in
//! `server`.

mod admin;
pub mod admin_key;
mod auth;
mod authz;
mod batch;
mod clock;
mod context;
mod documents;
pub mod emulator;
mod engine;
mod error;
mod ids;
mod list;
pub mod listen;
mod page_token;
pub mod provider_keys;
mod query;
mod read_time;
mod rules_admin;
pub mod rules_store;
mod rules_test;
mod sign_in;
pub mod users;

pub use admin::{MAX_USERS_PAGE, compile_rules};
pub use auth::{Credential, Principal};
pub use authz::ActiveRules;
pub use claimdb_store::query::limits::DEFAULT_MAX_EXAMINED;
pub use clock::Clock;
pub use context::RequestContext;
pub use documents::{SetOutcome, WriteCondition};
pub use engine::{Engine, EngineOptions, RulesSource};
pub use error::EngineError;
pub use ids::generate_id;
pub use list::{
    CollectionIdsPage, DEFAULT_PAGE_SIZE, ListPage, ListRequest, MAX_PAGE_SIZE, MissingListPage,
};
pub use query::{QueryPaging, QueryResults};
pub use read_time::ReadTime;
pub use rules_admin::RulesInfo;
pub use rules_test::{MAX_TEST_CASES, RulesCheck, RulesTestRun};
pub use sign_in::{LiveSession, SignInHooks};

/// The rules' diagnostics and test results, as [`RulesCheck`] and [`RulesTestRun`] hold them.
pub use claimdb_rules::{CaseOutcome, CoverageLine, Diagnostic};
/// Re-exported so callers name one set of domain types.
pub use claimdb_store::{
    Child, CommitResult, Condition, Cursor, Direction, Document, Filter, Op, Order, Precondition,
    Query, ReadCheck, Scope, Write, WriteOp, WriteResult,
};
