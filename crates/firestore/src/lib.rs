//! Firestore's wire vocabulary translated to claimdb's, for the protocol front ends (REST and
//! gRPC today; WebChannel builds on the same pieces): resource names (`names`), values and
//! documents in proto3 JSON (`value`), the semantics of Firestore's document writes — update
//! masks, `currentDocument` preconditions, `updateTime` as the concurrency token — as engine
//! calls (`documents`, `commit`), queries (`query`), how a read sees the database — in a
//! transaction, or at a past `readTime` (`consistency`, `transactions`) —, the one table of RPCs
//! over their proto3-JSON request messages that every front end calls (`rpc`), `google.rpc`
//! status codes for engine errors (`status`), and the two bidirectional streams as
//! transport-free protocol logic over proto3 JSON: `Listen` (`watch`, over the engine's
//! realtime listeners) and `Write` (`write_stream`, over `commit`).
//!
//! This crate knows no HTTP and no gRPC: `claimdb-server` routes the REST bindings and serves
//! the gRPC service here. Every operation is an [`Engine`](claimdb_engine::Engine) call, so
//! rules, audit, custom claims and revocation apply exactly as on claimdb's own API.

pub mod commit;
pub mod consistency;
pub mod documents;
pub mod enums;
pub mod names;
pub mod query;
pub mod rpc;
pub mod status;
pub mod transactions;
pub mod value;
pub mod watch;
pub mod write_stream;

pub use names::Database;
pub use rpc::{Project, Rpc};
pub use status::{Code, Status};
