//! Authorization: deciding an operation with the active rules, loading the documents the rules
//! read (`get()`/`exists()`/`getAfter()`) from the store as they ask for them, and turning a
//! denial into an explained `permission-denied`.
//!
//! Every document a decision looked at — the target and anything `get()` read — is remembered
//! with its version as a [`ReadCheck`]: the commit applies only if none of them changed since,
//! so a write is never applied on a state its rules were not evaluated against.

use std::sync::Arc;

use arc_swap::ArcSwap;
use claimdb_model::{DocPath, Map};
use claimdb_rules::{Decision, Method, Prefetch, Request, Ruleset, decide_with_prefetch};
use claimdb_store::{Document, ReadCheck, Store};
use serde_json::json;

use crate::error::EngineError;

/// Rounds of "evaluate, load what the rules asked for" before giving up. Each round loads at
/// least one new document and rules may read at most 20, so this is never reached in practice.
const MAX_ROUNDS: usize = 24;

/// The active rules and where they came from. Swapped atomically as a whole.
pub struct ActiveRules {
    pub ruleset: Ruleset,
    /// Where the source came from (a file name, `rules v3` for a stored version, `default`),
    /// for explanations and the audit log.
    pub origin: String,
    /// The stored version in force, when the rules come from the database.
    pub version: Option<u64>,
}

/// The rules holder: readers take a snapshot (`load`) per request; a reload swaps in a new one.
pub(crate) struct RulesCell(ArcSwap<ActiveRules>);

impl RulesCell {
    pub(crate) fn new(rules: ActiveRules) -> Self {
        RulesCell(ArcSwap::from_pointee(rules))
    }

    pub(crate) fn load(&self) -> Arc<ActiveRules> {
        self.0.load_full()
    }

    pub(crate) fn store(&self, rules: ActiveRules) {
        self.0.store(Arc::new(rules));
    }
}

/// Documents a decision has loaded, with the checks that pin them for the commit.
#[derive(Default)]
pub(crate) struct Loaded {
    pub prefetch: Prefetch,
    pub checks: Vec<ReadCheck>,
}

impl Loaded {
    /// Records a document read from the store (`None`: absent).
    pub(crate) fn insert(&mut self, path: DocPath, doc: Option<&Document>) {
        if self.checks.iter().any(|c| c.path == path) {
            return;
        }
        self.checks.push(ReadCheck {
            path: path.clone(),
            version: doc.map(|d| d.version),
        });
        self.prefetch.insert(path, doc.map(|d| d.data.clone()));
    }

    async fn load(
        &mut self,
        store: &dyn Store,
        wanted: Vec<(DocPath, bool)>,
    ) -> Result<(), EngineError> {
        let paths: Vec<DocPath> = wanted.into_iter().map(|(p, _)| p).collect();
        let docs = store.get_many(&paths).await?;
        for (path, doc) in paths.into_iter().zip(docs) {
            self.insert(path, doc.as_ref());
        }
        Ok(())
    }
}

/// Decides one request, loading documents the rules read as needed.
pub(crate) async fn decide(
    rules: &Ruleset,
    request: &Request,
    loaded: &mut Loaded,
    store: &dyn Store,
) -> Result<Decision, EngineError> {
    for _ in 0..MAX_ROUNDS {
        let (decision, wanted) = decide_with_prefetch(rules, request, &loaded.prefetch, false);
        if wanted.is_empty() {
            return Ok(decision);
        }
        loaded.load(store, wanted).await?;
    }
    Ok(Decision::denied(
        "the rules kept asking for more documents than a request may read".into(),
    ))
}

/// Decides the writes of a batch together (shared read budget), loading documents as needed.
pub(crate) async fn decide_batch(
    rules: &Ruleset,
    requests: &[Request],
    loaded: &mut Loaded,
    store: &dyn Store,
) -> Result<Vec<Decision>, EngineError> {
    for _ in 0..MAX_ROUNDS {
        let _ = loaded.prefetch.take_wanted();
        let decisions = rules.evaluate_batch(requests, &loaded.prefetch, false);
        let wanted = loaded.prefetch.take_wanted();
        let settled = decisions.iter().all(|d| d.allowed || d.limit.is_some());
        if settled || wanted.is_empty() {
            return Ok(decisions);
        }
        loaded.load(store, wanted).await?;
    }
    Ok(requests
        .iter()
        .map(|_| {
            Decision::denied(
                "the rules kept asking for more documents than a request may read".into(),
            )
        })
        .collect())
}

/// The `permission-denied` error for a denial. With `explain`, the rules are evaluated again in
/// explaining mode (only denials pay for that) and the details carry why.
pub(crate) fn denied(
    rules: &ActiveRules,
    request: &Request,
    decision: &Decision,
    loaded: &Loaded,
    explain: bool,
) -> EngineError {
    let method = request.method;
    let target = target_name(&request.target);
    let message = format!(
        "permission denied: the rules do not allow '{}' on {target}",
        method.name()
    );
    if !explain {
        return EngineError::PermissionDenied {
            message,
            details: None,
            write_index: None,
        };
    }
    let explained = rules.ruleset.explain(request, &loaded.prefetch);
    // The explaining run may differ only in its reasons; fall back on the first run otherwise.
    let d = if explained.allowed == decision.allowed {
        &explained
    } else {
        decision
    };
    EngineError::PermissionDenied {
        message,
        details: Some(Box::new(details(&rules.origin, method, &target, d))),
        write_index: None,
    }
}

/// The explanation of a decision as JSON (for 403 details and `/v1/rules/explain`).
pub(crate) fn details(
    origin: &str,
    method: Method,
    target: &str,
    d: &Decision,
) -> serde_json::Value {
    json!({
        "method": method.name(),
        "path": target,
        "allowed": d.allowed,
        "rules": origin,
        "granted_by_line": d.granted_by,
        "explanation": if d.allowed { String::new() } else { d.explanation(method) },
        "summary": d.summary(method),
        "matched": d.matched.iter().map(|m| json!({"line": m.line, "pattern": &*m.pattern})).collect::<Vec<_>>(),
        "tried": d.tried.iter().map(|t| json!({
            "line": t.line,
            "methods": &*t.methods,
            "outcome": match &t.outcome {
                claimdb_rules::Outcome::True => "true".to_string(),
                claimdb_rules::Outcome::False => "false".to_string(),
                claimdb_rules::Outcome::Error(e) => format!("error: {e}"),
            },
        })).collect::<Vec<_>>(),
        "reasons": d.reasons.iter().map(|r| json!({
            "allow_line": r.allow_line,
            "line": r.line,
            "expression": r.expression,
            "message": r.message,
        })).collect::<Vec<_>>(),
        "limit": d.limit,
    })
}

/// Where a decision was made, for the audit log: `origin:line` of the granting allow, or of the
/// allows tried for a denial.
pub(crate) fn rule_location(origin: &str, d: &Decision) -> Option<String> {
    if let Some(line) = d.granted_by {
        return Some(format!("{origin}:{line}"));
    }
    let lines: Vec<String> = d.tried.iter().map(|t| t.line.to_string()).collect();
    (!lines.is_empty()).then(|| format!("{origin}:{}", lines.join(",")))
}

/// A short reason for a denial, for the audit log.
pub(crate) fn deny_reason(method: Method, d: &Decision) -> String {
    if let Some(l) = &d.limit {
        return l.clone();
    }
    if d.matched.is_empty() {
        return "no match block covers this path".into();
    }
    if d.tried.is_empty() {
        return format!("no allow for '{}' on the matching paths", method.name());
    }
    d.summary(method)
}

/// The rules' view of a stored document's data.
pub(crate) fn data(doc: Option<&Document>) -> Option<Map> {
    doc.map(|d| d.data.clone())
}

/// The request's target as a path for messages: `coll/doc`, `coll`, or `**/coll` for a group.
pub(crate) fn target_name(target: &claimdb_rules::Target) -> String {
    match target {
        claimdb_rules::Target::Doc(p) => p.to_string(),
        claimdb_rules::Target::Collection(c) => c.to_string(),
        claimdb_rules::Target::Group {
            under: Some(u),
            collection_id,
        } => format!("{u}/**/{collection_id}"),
        claimdb_rules::Target::Group {
            under: None,
            collection_id,
        } => format!("**/{collection_id}"),
    }
}
