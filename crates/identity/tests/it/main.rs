//! claimdb-identity integration tests (one binary): a real IdP on loopback, keys generated at
//! test time, tokens from this crate's test signer and from PyJWT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod checks;
mod config;
mod hostile;
mod inspect;
mod jwks;
mod pyjwt;
mod routing;
mod support;
