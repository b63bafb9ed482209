//! claimdb's request engine: one entry point per operation (get, create, set, update, delete,
//! list, query, batch, ready), each taking a [`RequestContext`] and domain inputs and returning
//! domain outputs or an [`EngineError`].
//!
//! This is the layer that will authenticate the caller (identity) and authorize the operation
//! (rules) before executing it against the [`Store`](claimdb_store::Store); for now every request
//! is allowed. It knows nothing of HTTP: status codes, headers and JSON wire types live in
//! `server`.

pub mod audit;
mod batch;
mod context;
mod engine;
mod error;
mod ids;
mod list;
mod query;

pub use context::RequestContext;
pub use engine::{Engine, SetOutcome, WriteCondition};
pub use error::EngineError;
pub use ids::generate_id;
pub use list::{DEFAULT_PAGE_SIZE, ListPage, ListRequest, MAX_PAGE_SIZE};

/// Re-exported so callers name one set of domain types.
pub use claimdb_store::{
    CommitResult, Cursor, Direction, Document, Filter, Op, Order, Precondition, Query, Scope,
    Write, WriteOp, WriteResult,
};
