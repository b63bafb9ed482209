//! Firestore's gRPC API, `google.firestore.v1`, as generated Rust: prost messages, tonic's
//! server trait and router ([`firestore_server`]) and client ([`firestore_client`]), and
//! proto3-JSON serde for every message (pbjson: int64 as strings, bytes as base64, enums as
//! names, timestamps as RFC 3339), so a message converts to and from the JSON the REST
//! protocol speaks with `serde_json`.
//!
//! Generated at build time (`build.rs`) from the `.proto` files under `proto/`, vendored
//! unchanged from googleapis with their Apache-2.0 licence (`proto/LICENSE`). Nothing is
//! hand-written here: what the messages mean to claimdb is `claimdb-firestore`'s, serving them
//! `claimdb-server`'s. A crate of its own so that only it rebuilds when the protos change.
//!
//! [`firestore_server`]: google::firestore::v1::firestore_server
//! [`firestore_client`]: google::firestore::v1::firestore_client

/// The generated packages, nested as their proto packages are.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub,
    missing_docs,
    rustdoc::all
)]
pub mod google {
    pub mod firestore {
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/google.firestore.v1.rs"));
            include!(concat!(env!("OUT_DIR"), "/google.firestore.v1.serde.rs"));
        }
    }
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.rpc.serde.rs"));
    }
    pub mod r#type {
        include!(concat!(env!("OUT_DIR"), "/google.r#type.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.r#type.serde.rs"));
    }
}

pub use google::firestore::v1;
/// The well-known types the messages use (`Timestamp`, `Empty`, wrappers, …).
pub use pbjson_types as well_known;
