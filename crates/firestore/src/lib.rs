//! Firestore's wire vocabulary translated to claimdb's, for the protocol front ends (REST today;
//! gRPC and WebChannel build on the same pieces): resource names (`names`), values and documents
//! in proto3 JSON (`value`), the semantics of Firestore's document writes — update masks,
//! `currentDocument` preconditions, `updateTime` as the concurrency token — as engine calls
//! (`documents`), how a read sees the database — in a transaction, or at a past `readTime`
//! (`consistency`, `transactions`) —, and `google.rpc` status codes for engine errors
//! (`status`).
//!
//! This crate knows no HTTP: `claimdb-server` routes the REST bindings here. Every operation is
//! an [`Engine`](claimdb_engine::Engine) call, so rules, audit, custom claims and revocation
//! apply exactly as on claimdb's own API.

pub mod commit;
pub mod consistency;
pub mod documents;
pub mod enums;
pub mod names;
pub mod query;
pub mod status;
pub mod transactions;
pub mod value;

pub use names::Database;
pub use status::{Code, Status};
