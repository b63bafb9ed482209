//! Integration tests of the PostgreSQL backend: the backend-independent conformance suite, and
//! faults (a server restarting under load, an exhausted pool) on a throwaway cluster, group
//! commit, the change feed across nodes, and the history of past versions across nodes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code, including helpers outside #[test] functions: a failure fails the test"
)]

mod conformance;
mod faults;
mod feed;
mod group;
mod history;
mod support;
