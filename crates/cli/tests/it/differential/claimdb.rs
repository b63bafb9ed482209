//! The claimdb side: the real `claimdb serve` binary with tokens from an identity provider on
//! loopback, rules loaded through the admin API, documents written under open rules, and every
//! request sent over HTTP — so gets, writes and queries take the engine's real decision path
//! (queries through `/v1/query` and the engine's list decision).
//!
//! Writes carry an `If-Match` no document can satisfy: the engine decides first, then the
//! store refuses the write (412), so an allowed write changes nothing and 412 means "allowed".

use serde_json::{Value, json};

use super::generator::{Case, Query};
use super::{Http, Verdict};
use crate::idp::{AUDIENCE, ISSUER, Idp, Key, claims};
use crate::util::{OPEN_RULES, Server};

const ADMIN_KEY: &str = "differential-admin-key-0123456789";
/// An entity tag no document version has.
const NO_VERSION: &str = "\"999999999999\"";

pub(super) struct Claimdb {
    server: Server,
    idp: Idp,
    key: Key,
    http: Http,
    _dir: tempfile::TempDir,
}

impl Claimdb {
    pub(super) fn start() -> Claimdb {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::new("diff");
        let idp = Idp::start(&[&key]);
        // No rules file: rules are stored versions, set through the admin API.
        let config = dir.path().join("claimdb.toml");
        std::fs::write(
            &config,
            format!(
                "admin_key = \"{ADMIN_KEY}\"\nexplain_denials = false\n\n[[providers]]\nname = \"idp\"\nissuer = \"{ISSUER}\"\njwks_uri = \"{jwks}\"\naudience = [\"{AUDIENCE}\"]\nalgorithms = [\"ES256\"]\n",
                jwks = idp.jwks_uri(),
            ),
        )
        .unwrap();
        let server = Server::start_with(&dir.path().join("data"), Some(&config), &[]);
        Claimdb {
            server,
            idp,
            key,
            http: Http::new(),
            _dir: dir,
        }
    }

    /// Loads rules through the admin API: whether they compile.
    pub(super) fn put_rules(&self, src: &str) -> bool {
        let body = json!({ "source": src }).to_string();
        let (status, text) = self
            .http
            .call_with(
                "PUT",
                &self.server.url("/v1/admin/rules"),
                Some(&body),
                &[("X-Claimdb-Admin-Key", ADMIN_KEY)],
            )
            .unwrap();
        assert!(matches!(status, 200 | 400), "{status} {text}");
        status == 200
    }

    /// Replaces `before` by `docs`, under open rules.
    pub(super) fn reset(&self, before: &[(String, Value)], docs: &[(String, Value)]) {
        assert!(self.put_rules(OPEN_RULES));
        for (path, _) in before {
            let (status, text) = self
                .http
                .call_with(
                    "DELETE",
                    &self.server.url(&format!("/v1/docs/{path}")),
                    None,
                    &[],
                )
                .unwrap();
            assert_eq!(status, 204, "{text}");
        }
        for (path, doc) in docs {
            let (status, text) = self
                .http
                .call_with(
                    "PUT",
                    &self.server.url(&format!("/v1/docs/{path}")),
                    Some(&doc.to_string()),
                    &[],
                )
                .unwrap();
            assert!(
                matches!(status, 200 | 201),
                "seeding {path}: {status} {text}"
            );
        }
    }

    pub(super) fn run(&self, case: &Case) -> Verdict {
        let token = case
            .auth
            .as_ref()
            .map(|(uid, extra)| format!("Bearer {}", self.key.sign(&claims(uid, extra.clone()))));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &token {
            headers.push(("Authorization", t));
        }
        let doc_url = self.server.url(&format!("/v1/docs/{}", case.path));
        let (status, body) = match case.method {
            "get" => self.http.call_with("GET", &doc_url, None, &headers),
            "create" | "update" => {
                headers.push(("If-Match", NO_VERSION));
                let data = case.data.clone().unwrap_or_else(|| json!({})).to_string();
                self.http.call_with("PUT", &doc_url, Some(&data), &headers)
            }
            "delete" => {
                headers.push(("If-Match", NO_VERSION));
                self.http.call_with("DELETE", &doc_url, None, &headers)
            }
            "list" => {
                let q = case.query.clone().unwrap_or_default();
                let body = query(&case.path, &q).to_string();
                self.http
                    .call_with("POST", &self.server.url("/v1/query"), Some(&body), &headers)
            }
            other => panic!("unknown method {other}"),
        }
        .unwrap();
        let status = if status == 412 { 200 } else { status };
        Verdict::of(status, &body)
    }

    /// Keeps the IdP alive as long as the server.
    pub(super) fn idp(&self) -> &Idp {
        &self.idp
    }
}

/// The `/v1/query` body for a list of `path`.
fn query(path: &str, q: &Query) -> Value {
    let mut body = if q.group {
        let (parent, id) = match path.rsplit_once('/') {
            Some((p, id)) => (Some(p), id),
            None => (None, path),
        };
        let mut b = json!({ "collection_group": id });
        if let Some(p) = parent {
            b["parent"] = json!(p);
        }
        b
    } else {
        json!({ "collection": path })
    };
    let mut items: Vec<Value> = q
        .filters
        .iter()
        .map(|(f, op, v)| json!([f, op, v]))
        .collect();
    if !q.or.is_empty() {
        let branches: Vec<Value> = q
            .or
            .iter()
            .map(|b| json!({"and": b.iter().map(|(f, op, v)| json!([f, op, v])).collect::<Vec<_>>()}))
            .collect();
        items.push(json!({ "or": branches }));
    }
    body["where"] = Value::Array(items);
    body["order_by"] = q
        .order_by
        .iter()
        .map(|(f, desc)| json!([f, if *desc { "desc" } else { "asc" }]))
        .collect();
    if let Some(l) = q.limit {
        body["limit"] = json!(l);
    }
    if let Some(o) = q.offset {
        body["offset"] = json!(o);
    }
    body
}
