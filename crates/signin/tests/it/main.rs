//! claimdb-signin integration tests (one binary): the issuer, the token grants and the OIDC
//! login against a real IdP on loopback (the identity crate's test IdP), keys generated at test
//! time, records in a SQLite store in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod exchange;
mod issuer;
mod login;
mod oidc;
mod python;
mod reserved;
mod store;
// The identity crate's loopback IdP and test keys; not every helper is used here.
#[allow(dead_code)]
#[path = "../../../identity/tests/it/support.rs"]
mod support;
