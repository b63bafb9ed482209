//! claimdb's fuzz entry points, as plain functions over bytes: [`rules_parse`],
//! [`rules_evaluate`] and [`token_verify`]. Each is a thin wrapper over the public entry points
//! of `claimdb-rules` and `claimdb-identity` — the same calls the server makes — plus the
//! invariants a result must satisfy (a forged token never verifies, a cached answer equals the
//! first one). A panic, an arithmetic overflow (the fuzz builds keep debug assertions), a hang or
//! runaway memory is a finding.
//!
//! Two drivers share these functions: the cargo-fuzz targets in `fuzz/` (libFuzzer, coverage
//! guided, run by hand for millions of executions on the stable toolchain — see README
//! "Fuzzing") and `tests/smoke.rs`, which `cargo test --workspace` runs: it replays the committed
//! corpus in `corpus/<target>/` and a bounded number of deterministic mutations of it.
//!
//! Not here: new parsing or checking logic. If a target needs something the crates do not
//! expose, the crate grows a public entry point; the harness never reaches into internals.

mod rules;
mod token;

pub use rules::{rules_evaluate, rules_parse};
pub use token::token_verify;

/// A fuzz entry point: any bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// The fuzz targets by name (the names of the cargo-fuzz binaries and corpus directories).
pub const TARGETS: [(&str, Target); 3] = [
    ("rules_parse", rules_parse),
    ("rules_evaluate", rules_evaluate),
    ("token_verify", token_verify),
];
