//! `/v1/me`, the admin API under `/v1/admin` (users, custom claims, revocation; rules are in
//! `rules.rs`) and `/v1/rules/explain`. The engine checks the admin condition on every admin call; handlers
//! only translate.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Ctx};

/// `GET /v1/me`: the caller's effective uid, claims (token + custom claims) and roles.
pub(crate) async fn me(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Json_>, ApiError> {
    let p = state.engine.me(&ctx).await?;
    Ok(Json(json!({
        "uid": p.uid,
        "provider": p.provider,
        "claims": p.claims(),
        "custom_claims": p.custom_claims,
        "roles": p.roles,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsersParams {
    page_size: Option<usize>,
    page_token: Option<String>,
    /// Only users whose uid starts with this.
    prefix: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct UsersOut {
    users: Vec<claimdb_engine::users::UserRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_page_token: Option<String>,
}

/// `GET /v1/admin/users`: users claimdb has a record of, in uid order (`prefix`: only those
/// whose uid starts with it).
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(params): ApiQuery<UsersParams>,
) -> Result<Json<UsersOut>, ApiError> {
    let size = params.page_size.unwrap_or(100);
    let after = params.page_token.as_deref();
    let users = match params.prefix.as_deref().filter(|p| !p.is_empty()) {
        Some(prefix) => {
            state
                .engine
                .admin_search_users(&ctx, prefix, after, size)
                .await?
        }
        None => state.engine.admin_list_users(&ctx, after, size).await?,
    };
    let next_page_token = (users.len() == size)
        .then(|| users.last().map(|u| u.uid.clone()))
        .flatten();
    Ok(Json(UsersOut {
        users,
        next_page_token,
    }))
}

/// `GET /v1/admin/users/{uid}`.
pub(crate) async fn get_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
) -> Result<Json<claimdb_engine::users::UserRecord>, ApiError> {
    Ok(Json(state.engine.admin_get_user(&ctx, &uid).await?))
}

/// `GET /v1/admin/users/{uid}/claims`.
pub(crate) async fn get_claims(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let claims = state.engine.admin_get_claims(&ctx, &uid).await?;
    Ok(Json(json!({ "uid": uid, "claims": claims })))
}

/// `PUT /v1/admin/users/{uid}/claims`: the body is the claims object itself.
pub(crate) async fn put_claims(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
    ApiJson(claims): ApiJson<Json_>,
) -> Result<Json<Json_>, ApiError> {
    let claims = state.engine.admin_set_claims(&ctx, &uid, &claims).await?;
    Ok(Json(json!({ "uid": uid, "claims": claims })))
}

/// `DELETE /v1/admin/users/{uid}/claims`.
pub(crate) async fn delete_claims(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.admin_delete_claims(&ctx, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/admin/users/{uid}/revoke`: tokens issued before now are refused from now on.
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
) -> Result<Json<Json_>, ApiError> {
    let after = state.engine.admin_revoke(&ctx, &uid).await?;
    Ok(Json(json!({ "uid": uid, "tokens_valid_after": after })))
}

/// `POST /v1/rules/explain`: decides and explains a hypothetical request (admin only).
pub(crate) async fn explain(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(case): ApiJson<Json_>,
) -> Result<Json<Json_>, ApiError> {
    Ok(Json(state.engine.explain(&ctx, &case).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// Only denials.
    #[serde(default)]
    deny: bool,
    /// A duration back from now (`90s`, `30m`, `1h`, `2d`) or an RFC 3339 time.
    since: Option<String>,
    until: Option<String>,
    uid: Option<String>,
    /// This path and everything below it.
    path: Option<String>,
    /// At most this many (the newest); default 100, at most 10,000.
    limit: Option<usize>,
}

/// The largest page of audit events.
const MAX_AUDIT_LIMIT: usize = 10_000;

/// `GET /v1/admin/audit`: the newest matching decisions, newest first.
pub(crate) async fn audit(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Json_>, ApiError> {
    use claimdb_audit::{AuditFilter, format_time, parse_time_spec};
    let now = std::time::SystemTime::now();
    let when = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| parse_time_spec(t, now))
            .transpose()
            .map_err(|e| ApiError::invalid(format!("{name}: {e}")))
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_AUDIT_LIMIT}"
        )));
    }
    let filter = AuditFilter {
        deny_only: params.deny,
        since: when("since", &params.since)?,
        until: when("until", &params.until)?,
        uid: params.uid,
        path: params.path,
        limit,
        newest_first: true,
    };
    let events = state.engine.admin_audit(&ctx, filter).await?;
    let events: Vec<Json_> = events
        .iter()
        .map(|e| {
            json!({
                "time": format_time(e.time),
                "request_id": e.request_id,
                "uid": e.uid,
                "provider": e.provider,
                "method": e.method,
                "path": e.path,
                "decision": e.decision.as_str(),
                "rule": e.rule,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(Json(json!({ "events": events })))
}
