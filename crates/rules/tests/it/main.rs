//! Behaviour tests of the rules crate, as data tables: expressions (values and errors), whole
//! rule sets against requests, diagnostics, hostile inputs and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cases;
mod corpus;
mod diagnostics;
mod emulator;
mod explain;
mod exprs;
mod hostile;
mod props;
mod queries;
mod rulesets;

use claimdb_model::{CollectionPath, DocPath, Map, Timestamp};
use claimdb_rules::{Method, Query, Request, Target};
use serde_json::Value as Json;

/// A document from its JSON form (`$timestamp` etc. allowed).
pub fn doc(json: Json) -> Map {
    claimdb_model::json::decode_document(&json).expect("test document")
}

pub fn t0() -> Timestamp {
    Timestamp::parse("2026-01-01T12:00:00Z").expect("timestamp")
}

/// A request for `method` on `path` (even segments: a document; odd: a collection).
pub fn request(method: &str, path: &str) -> Request {
    let m = Method::parse(method).expect("method");
    let target = if path.split('/').count().is_multiple_of(2) {
        Target::Doc(DocPath::parse(path).expect("doc path"))
    } else {
        Target::Collection(CollectionPath::parse(path).expect("collection path"))
    };
    let mut r = Request::new(m, target, t0());
    if m == Method::List {
        r.query = Some(Query::default());
    }
    r
}

pub fn with_auth(r: Request, uid: &str, token: Json) -> Request {
    r.with_auth(uid, doc(token))
}
