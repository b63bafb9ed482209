//! Black-box tests of the `claimdb` binary: each starts the real server on an ephemeral port
//! with its own temporary data directory and talks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod backup;
mod cli;
mod console_browser;
mod differential;
mod durability;
mod enforce;
mod external;
mod firestore_admin;
mod firestore_browser;
mod firestore_emulator;
mod firestore_grpc;
mod firestore_python;
mod firestore_read_time;
mod firestore_rest;
mod firestore_sdk;
mod firestore_streams;
mod idp;
mod idp_outage;
mod limits;
mod listen;
mod migrate;
mod multinode;
mod multinode_enforce;
mod net;
mod ops;
mod pg;
mod revocation;
mod signin;
mod storage;
mod tidy;
mod util;
