//! Offline rule tests: the case format of `claimdb rules test` (see the README) read from a
//! JSON value (YAML parses to the same shape), and a runner that decides every case, explains each
//! failure and gathers coverage. `claimdb rules test` is a thin shell around [`run_cases`].
//!
//! A case's `data` is the whole document as it would be after the write — what the rule sees as
//! `request.resource.data` — not a patch. `existing` documents back `resource`, `get()` and
//! `exists()`; `getAfter()`/`existsAfter()` see them with the case's write applied.

use std::collections::HashMap;

use claimdb_model::json::decode_document;
use claimdb_model::{CollectionPath, DocPath, Map, Timestamp};
use serde_json::Value as Json;

use crate::compile::Ruleset;
use crate::coverage::Coverage;
use crate::request::{
    Decision, DocumentReader, Filter, FilterOp, Method, Query, ReadError, Request, Target,
};

/// One test case.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub name: String,
    /// `(uid, token claims)`, or `None` for an unauthenticated request.
    pub auth: Option<(String, Map)>,
    pub method: Method,
    /// Below `/databases/(default)/documents`: a document, or a collection for `list`.
    pub path: String,
    pub existing: Vec<(DocPath, Map)>,
    pub data: Option<Map>,
    pub query: Option<Query>,
    /// `request.time`; now when not given.
    pub time: Option<Timestamp>,
    pub expect_allow: bool,
}

/// The result of one case.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub name: String,
    pub passed: bool,
    pub expect_allow: bool,
    pub decision: Decision,
    /// Why it was denied (empty when allowed).
    pub explanation: String,
}

fn field<'j>(obj: &'j serde_json::Map<String, Json>, keys: &[&str]) -> Option<&'j Json> {
    keys.iter()
        .find_map(|k| obj.get(*k))
        .filter(|v| !v.is_null())
}

fn document(json: &Json, what: &str) -> Result<Map, String> {
    decode_document(json).map_err(|e| format!("{what}: {e}"))
}

fn filter_op(op: &str) -> Result<FilterOp, String> {
    FilterOp::parse(op).ok_or_else(|| format!("unknown query operator {op:?}"))
}

fn query(json: &Json) -> Result<Query, String> {
    let obj = json.as_object().ok_or("query must be a map")?;
    let int = |keys: &[&str]| -> Result<Option<i64>, String> {
        field(obj, keys)
            .map(|v| {
                v.as_i64()
                    .ok_or(format!("query.{} must be an integer", keys[0]))
            })
            .transpose()
    };
    let mut q = Query {
        limit: int(&["limit"])?,
        offset: int(&["offset"])?,
        ..Query::default()
    };
    if let Some(order) = field(obj, &["order_by", "orderBy"]) {
        for o in order.as_array().ok_or("query.order_by must be a list")? {
            let text = o.as_str().ok_or("query.order_by holds field names")?;
            let (name, desc) = match text.strip_suffix(" desc") {
                Some(n) => (n, true),
                None => (text.strip_suffix(" asc").unwrap_or(text), false),
            };
            q.order_by.push((name.to_string(), desc));
        }
    }
    if let Some(filters) = field(obj, &["where"]) {
        for f in filters.as_array().ok_or("query.where must be a list")? {
            let parts = f
                .as_array()
                .filter(|p| p.len() == 3)
                .ok_or("each query.where entry is [field, op, value]")?;
            let name = parts[0].as_str().ok_or("a where field must be a string")?;
            let op = filter_op(
                parts[1]
                    .as_str()
                    .ok_or("a where operator must be a string")?,
            )?;
            let value = claimdb_model::json::decode_value(&parts[2])
                .map_err(|e| format!("where value: {e}"))?;
            q.filters.push(Filter {
                field: name.to_string(),
                op,
                value,
            });
        }
    }
    Ok(q)
}

impl TestCase {
    /// Reads one case from its JSON/YAML form.
    pub fn from_json(json: &Json) -> Result<TestCase, String> {
        let obj = json.as_object().ok_or("a case must be a map")?;
        let name = field(obj, &["name"])
            .and_then(Json::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        let ctx = |e: String| format!("case {name:?}: {e}");
        let method = field(obj, &["method"])
            .and_then(Json::as_str)
            .and_then(Method::parse)
            .ok_or_else(|| ctx("method must be get, list, create, update or delete".into()))?;
        let path = field(obj, &["path"])
            .and_then(Json::as_str)
            .ok_or_else(|| ctx("path is required".into()))?
            .trim_matches('/')
            .to_string();
        let auth = match field(obj, &["auth"]) {
            None => None,
            Some(a) => {
                let a = a
                    .as_object()
                    .ok_or_else(|| ctx("auth must be a map or null".into()))?;
                let uid = field(a, &["uid"])
                    .and_then(Json::as_str)
                    .ok_or_else(|| ctx("auth.uid must be a string".into()))?;
                let token = match field(a, &["token"]) {
                    Some(t) => document(t, "auth.token").map_err(ctx)?,
                    None => Map::new(),
                };
                Some((uid.to_string(), token))
            }
        };
        let mut existing = Vec::new();
        if let Some(docs) = field(obj, &["existing"]) {
            for (p, d) in docs
                .as_object()
                .ok_or_else(|| ctx("existing must be a map".into()))?
            {
                let path = DocPath::parse(p.trim_matches('/')).map_err(|e| ctx(e.to_string()))?;
                existing.push((path, document(d, p).map_err(ctx)?));
            }
        }
        let data = field(obj, &["data"])
            .map(|d| document(d, "data"))
            .transpose()
            .map_err(ctx)?;
        let query = field(obj, &["query"]).map(query).transpose().map_err(ctx)?;
        let time = field(obj, &["time"])
            .map(|t| {
                t.as_str()
                    .ok_or("time must be an RFC 3339 string".to_string())
                    .and_then(|s| Timestamp::parse(s).map_err(|e| e.to_string()))
            })
            .transpose()
            .map_err(ctx)?;
        let expect_allow = match field(obj, &["expect"]).and_then(Json::as_str) {
            Some("allow") => true,
            Some("deny") => false,
            _ => return Err(ctx("expect must be allow or deny".into())),
        };
        Ok(TestCase {
            name,
            auth,
            method,
            path,
            existing,
            data,
            query,
            time,
            expect_allow,
        })
    }

    /// Reads `{cases: [...]}` (or a bare list of cases).
    pub fn all_from_json(json: &Json) -> Result<Vec<TestCase>, String> {
        let list = json
            .get("cases")
            .unwrap_or(json)
            .as_array()
            .ok_or("expected `cases:` holding a list of cases")?;
        list.iter().map(TestCase::from_json).collect()
    }

    /// The request this case describes.
    pub fn request(&self) -> Result<Request, String> {
        let target = if self.method == Method::List {
            Target::Collection(CollectionPath::parse(&self.path).map_err(|e| e.to_string())?)
        } else {
            Target::Doc(DocPath::parse(&self.path).map_err(|e| e.to_string())?)
        };
        let mut r = Request::new(
            self.method,
            target,
            self.time.unwrap_or_else(Timestamp::now),
        );
        if let Some((uid, token)) = &self.auth {
            r = r.with_auth(uid, token.clone());
        }
        if let Target::Doc(p) = &r.target {
            r.existing = self
                .existing
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, d)| d.clone());
        }
        if matches!(self.method, Method::Create | Method::Update) {
            r.incoming = self.data.clone();
        }
        if self.method == Method::List {
            r.query = Some(self.query.clone().unwrap_or_default());
        }
        Ok(r)
    }
}

/// The case's documents, before and after its write.
struct CaseDocs<'c> {
    case: &'c TestCase,
}

impl DocumentReader for CaseDocs<'_> {
    fn get(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        Ok(self
            .case
            .existing
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, d)| d.clone()))
    }

    fn get_after(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        if path.as_str() == self.case.path {
            return Ok(match self.case.method {
                Method::Create | Method::Update => self.case.data.clone(),
                Method::Delete => None,
                Method::Get | Method::List => self.get(path)?,
            });
        }
        self.get(path)
    }
}

/// Runs every case, explaining failures, and returns the outcomes with rule coverage.
pub fn run_cases(rules: &Ruleset, cases: &[TestCase]) -> (Vec<CaseOutcome>, Coverage) {
    let mut coverage = Coverage::new(rules);
    let mut outcomes = Vec::with_capacity(cases.len());
    for case in cases {
        let (decision, explanation) = match case.request() {
            Ok(request) => {
                let d = rules.explain(&request, &CaseDocs { case });
                let text = d.explanation(request.method);
                (d, text)
            }
            Err(e) => (
                Decision::denied(format!("invalid case: {e}")),
                format!("invalid case: {e}"),
            ),
        };
        coverage.record(&decision);
        outcomes.push(CaseOutcome {
            name: case.name.clone(),
            passed: decision.allowed == case.expect_allow,
            expect_allow: case.expect_allow,
            decision,
            explanation,
        });
    }
    (outcomes, coverage)
}

/// Used by tests and tools that already hold documents in a map keyed by path.
impl DocumentReader for HashMap<DocPath, Map> {
    fn get(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        Ok(HashMap::get(self, path).cloned())
    }
}

/// The text `claimdb rules test` prints: one line per case (failures with their explanation),
/// then coverage of every allow statement. Returns the text and whether every case passed.
pub fn render_report(outcomes: &[CaseOutcome], coverage: &Coverage) -> (String, bool) {
    let mut out = String::new();
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    for o in outcomes {
        let want = if o.expect_allow { "allow" } else { "deny" };
        if o.passed {
            out.push_str(&format!("ok    {} ({want})\n", o.name));
        } else {
            let got = if o.decision.allowed {
                "allowed"
            } else {
                "denied"
            };
            out.push_str(&format!("FAIL  {} — expected {want}, was {got}\n", o.name));
            let detail = if o.decision.allowed {
                match o.decision.granted_by {
                    Some(line) => format!("granted by the allow at line {line}"),
                    None => "allowed".to_string(),
                }
            } else {
                o.explanation.clone()
            };
            for line in detail.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    out.push_str(&format!(
        "\n{} passed, {failed} failed\n\ncoverage (allow statements):\n",
        outcomes.len() - failed
    ));
    for c in coverage.report() {
        let seen = match (c.ever_true, c.ever_false) {
            (true, true) => "true and false",
            (true, false) => "only true",
            (false, true) => "only false",
            (false, false) => "never evaluated",
        };
        let mark = if c.is_complete() { " " } else { "!" };
        out.push_str(&format!(
            "{mark} line {:>4}  allow {}: {}  — {seen}{}\n",
            c.allow.line,
            c.allow.methods,
            c.allow.condition.as_deref().unwrap_or("(always)"),
            if c.ever_error { ", errored" } else { "" }
        ));
    }
    (out, failed == 0)
}
