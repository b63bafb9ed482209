//! The rules under `/v1/admin/rules`: the active rules (`GET`), new rules (`PUT`), the stored
//! versions (`GET /versions`, `GET /versions/{v}`) and rolling back (`POST /rollback`). The
//! engine checks the admin condition and where rules are managed; handlers only translate.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use claimdb_engine::rules_store::{MAX_VERSIONS_PAGE, StoredRules};
use claimdb_model::Timestamp;
use serde::Deserialize;
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Ctx};

/// `GET /v1/admin/rules`: the active rules, where they came from, and where rules are managed
/// on this server (`file` or `database`, with the version in force).
pub(crate) async fn get_rules(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Json_>, ApiError> {
    let r = state.engine.admin_get_rules(&ctx).await?;
    Ok(Json(json!({
        "source": r.source,
        "origin": r.origin,
        "managed_in": r.managed_in,
        "version": r.version,
    })))
}

/// `PUT /v1/admin/rules`: new rules as the body (text), or `{"source": "..."}` as JSON. They are
/// compiled, stored as the next version and put in force, or refused with the compile errors
/// (the active rules stay). With rules from a file: 412 `failed-precondition`.
pub(crate) async fn put_rules(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Json_>, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let source = if json {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RulesIn {
            source: String,
        }
        crate::extract::json_body::<RulesIn>(&body)
            .map_err(|e| {
                ApiError::invalid(format!("expected {{\"source\": \"...\"}}: {}", e.message))
            })?
            .source
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::invalid("the rules are not UTF-8 text"))?
    };
    let stored = state.engine.admin_put_rules(&ctx, &source).await?;
    Ok(Json(
        json!({ "status": "active", "version": stored.version }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionsParams {
    /// Versions older than this one (the previous page's `next_before`).
    before: Option<u64>,
    limit: Option<usize>,
}

/// A version without its source (listings), or with it.
fn version_json(r: &StoredRules, with_source: bool) -> Json_ {
    let created = Timestamp::from_micros(r.created_ms.saturating_mul(1000))
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut v = json!({
        "version": r.version,
        "created": created,
        "author": r.author,
        "bytes": r.source.len(),
    });
    if with_source {
        v["source"] = json!(r.source);
    }
    v
}

/// `GET /v1/admin/rules/versions?before=&limit=`: stored versions, newest first, a page at a time
/// (`next_before` continues).
pub(crate) async fn versions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<VersionsParams>,
) -> Result<Json<Json_>, ApiError> {
    let limit = p.limit.unwrap_or(20);
    if limit == 0 || limit > MAX_VERSIONS_PAGE {
        return Err(ApiError::invalid(format!(
            "limit must be 1 to {MAX_VERSIONS_PAGE}"
        )));
    }
    let page = state
        .engine
        .admin_rules_versions(&ctx, p.before, limit)
        .await?;
    let next_before = match page.last() {
        Some(last) if page.len() == limit && last.version > 1 => Some(last.version),
        _ => None,
    };
    Ok(Json(json!({
        "versions": page.iter().map(|r| version_json(r, false)).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

/// `GET /v1/admin/rules/versions/{version}`: one stored version with its source.
pub(crate) async fn version(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(version): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let version = parse_version(&version)?;
    let r = state.engine.admin_rules_version(&ctx, version).await?;
    Ok(Json(version_json(&r, true)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RollbackIn {
    version: u64,
}

/// `POST /v1/admin/rules/rollback` with `{"version": N}`: version N's source becomes the next
/// version, in force at once.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<RollbackIn>,
) -> Result<Json<Json_>, ApiError> {
    let stored = state
        .engine
        .admin_rollback_rules(&ctx, body.version)
        .await?;
    Ok(Json(
        json!({ "status": "active", "version": stored.version }),
    ))
}

fn parse_version(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::invalid(format!("{text:?} is not a rules version (1, 2, 3…)")))
}
