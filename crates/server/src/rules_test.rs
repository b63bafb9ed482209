//! Trying rules over the admin API without putting them in force: `POST /v1/admin/rules/check`
//! (compile a source; its errors and warnings at line and column) and `POST
//! /v1/admin/rules/test` (run a rules test file — `claimdb rules test`'s case format, as JSON or
//! YAML text or as JSON — against a source or the active rules, with coverage). The engine
//! checks the admin condition and does the work; this module reads the bodies and writes the
//! answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::post;
use claimdb_engine::Diagnostic;
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ctx, json_body};

/// The routes of this module.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/admin/rules/check", post(check))
        .route("/v1/admin/rules/test", post(test))
}

fn diagnostic(d: &Diagnostic) -> Json_ {
    json!({
        "line": d.line,
        "column": d.column,
        "message": d.message,
        "source_line": d.source_line,
        "width": d.width,
    })
}

/// `POST /v1/admin/rules/check`: the rules as the body (text), or `{"source": "..."}` as JSON.
/// Always 200 for a source that was read: `ok` says whether it compiles.
pub(crate) async fn check(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Json_>, ApiError> {
    let source = rules_source(&headers, &body)?;
    let check = state.engine.admin_check_rules(&ctx, &source).await?;
    Ok(Json(json!({
        "ok": check.errors.is_empty(),
        "errors": check.errors.iter().map(diagnostic).collect::<Vec<_>>(),
        "warnings": check.warnings.iter().map(diagnostic).collect::<Vec<_>>(),
        "allow_statements": check.allow_statements,
    })))
}

/// The rules source of a body: JSON `{"source": "..."}` or the text itself (as `PUT
/// /v1/admin/rules` reads it).
fn rules_source(headers: &HeaderMap, body: &[u8]) -> Result<String, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    if json {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RulesIn {
            source: String,
        }
        Ok(json_body::<RulesIn>(body)
            .map_err(|e| {
                ApiError::invalid(format!("expected {{\"source\": \"...\"}}: {}", e.message))
            })?
            .source)
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::invalid("the rules are not UTF-8 text"))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestIn {
    /// Rules source to test; the active rules when absent.
    #[serde(default)]
    source: Option<String>,
    /// The cases: `{"cases": [...]}` or a list, or the text of a case file (JSON or YAML).
    cases: Json_,
}

/// `POST /v1/admin/rules/test` with `{"source"?, "cases"}`: every case decided and explained,
/// and the coverage of every allow statement. 200 whether or not the cases pass (`all_passed`);
/// a source that does not compile or a malformed case is 400.
pub(crate) async fn test(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<TestIn>,
) -> Result<Json<Json_>, ApiError> {
    let cases = match body.cases {
        Json_::String(text) => parse_case_file(&text)?,
        other => other,
    };
    let run = state
        .engine
        .admin_test_rules(&ctx, body.source.as_deref(), &cases)
        .await?;
    let failed = run.outcomes.iter().filter(|o| !o.passed).count();
    let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
    Ok(Json(json!({
        "rules": run.rules,
        "passed": run.outcomes.len() - failed,
        "failed": failed,
        "all_passed": failed == 0,
        "cases": run.outcomes.iter().map(|o| json!({
            "name": o.name,
            "passed": o.passed,
            "expect": verdict(o.expect_allow),
            "decision": verdict(o.decision.allowed),
            "granted_by_line": o.decision.granted_by,
            "explanation": o.explanation,
        })).collect::<Vec<_>>(),
        "coverage": run.coverage.iter().map(|c| json!({
            "line": c.allow.line,
            "pattern": &*c.allow.pattern,
            "methods": &*c.allow.methods,
            "condition": c.allow.condition,
            "ever_true": c.ever_true,
            "ever_false": c.ever_false,
            "ever_error": c.ever_error,
            "complete": c.is_complete(),
        })).collect::<Vec<_>>(),
        "report": run.report,
    })))
}

/// The text of a case file: JSON first (escaped surrogate pairs read only as JSON), then YAML,
/// as `claimdb rules test` reads one.
fn parse_case_file(text: &str) -> Result<Json_, ApiError> {
    if let Ok(value) = claimdb_model::json_text::parse_body(text.as_bytes()) {
        return Ok(value);
    }
    if text.trim_start().starts_with(['{', '[']) {
        // Meant as JSON: say what is wrong with it as JSON.
        return json_body::<Json_>(text.as_bytes()).map_err(|e| {
            ApiError::invalid(format!("the case file is not valid JSON: {}", e.message))
        });
    }
    serde_norway::from_str::<Json_>(text)
        .map_err(|e| ApiError::invalid(format!("the case file is not valid YAML or JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_files_read_as_json_then_yaml() {
        let yaml = "cases:\n  - name: a\n    method: get\n    path: m/1\n    expect: deny\n";
        assert_eq!(
            parse_case_file(yaml).map_err(|e| e.message).unwrap()["cases"][0]["path"],
            "m/1"
        );
        let json = r#"{"cases": [{"name": "\ud83d\ude00", "method": "get"}]}"#;
        assert_eq!(
            parse_case_file(json).map_err(|e| e.message).unwrap()["cases"][0]["name"],
            "😀"
        );
        let bad = parse_case_file("{\"cases\": [").unwrap_err();
        assert!(bad.message.contains("not valid JSON"), "{}", bad.message);
        let bad = parse_case_file("cases: [unclosed").unwrap_err();
        assert!(bad.message.contains("YAML"), "{}", bad.message);
    }
}
