//! claimdb as an issuer over HTTP: `/.well-known/openid-configuration`,
//! `/.well-known/jwks.json`, `POST /v1/token` (refresh grant and RFC 8693 token exchange) and
//! admin minting (`POST /v1/admin/users/{uid}/tokens`).
//!
//! `/v1/token` is the one route whose errors do not take the API's JSON error shape: OAuth
//! clients expect RFC 6749 §5.2's `{"error": "invalid_grant", "error_description": "…"}` (plus
//! claimdb's stable `reason` when a token was refused), so that is what it answers — including
//! for a wrong content type or an oversized body. Its answers are never cached (`no-store`).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimdb_engine::RequestContext;
use claimdb_signin::OAuthError;
use claimdb_signin::issuer::parse_ttl;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ctx, REQUEST_ID};
use crate::oauth::{grant_from_form, status_of};

/// Largest `/v1/token` body: a subject token is at most 16 KiB, so this is generous.
pub(crate) const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// How long clients may cache the JWKS. A rotation publishes the new key before it signs
/// anything that outlives this, and verifiers refetch on an unknown `kid` anyway.
const JWKS_MAX_AGE: &str = "public, max-age=300";
const DISCOVERY_MAX_AGE: &str = "public, max-age=3600";

fn with_cache(mut response: Response, value: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// `GET /.well-known/jwks.json`: the issuer's public keys (active and still-valid retired).
pub(crate) async fn jwks(State(state): State<AppState>) -> Result<Response, ApiError> {
    let body = state.sign_in()?.jwks_json()?;
    let response = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    Ok(with_cache(response, JWKS_MAX_AGE))
}

/// `GET /.well-known/openid-configuration`: the issuer's discovery document.
pub(crate) async fn discovery(State(state): State<AppState>) -> Result<Response, ApiError> {
    let doc = state.sign_in()?.discovery_document();
    Ok(with_cache(Json(doc).into_response(), DISCOVERY_MAX_AGE))
}

fn oauth_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| {
        br#"{"error":"server_error","error_description":"the answer could not be encoded"}"#
            .to_vec()
    });
    let mut r = (status, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn oauth_error(status: StatusCode, e: &OAuthError) -> Response {
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        tracing::error!(detail = %e.error_description, "token endpoint failed");
        let hidden = OAuthError {
            error_description:
                "internal error; the server log has the details under this request's x-request-id"
                    .into(),
            ..e.clone()
        };
        return oauth_response(status, &hidden);
    }
    oauth_response(status, e)
}

fn invalid_request(status: StatusCode, message: String) -> Response {
    oauth_error(status, &OAuthError::invalid_request(message))
}

/// `POST /v1/token` (form-encoded): `grant_type=refresh_token` or
/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`.
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return invalid_request(
            StatusCode::BAD_REQUEST,
            "the token request must be sent as Content-Type: application/x-www-form-urlencoded"
                .into(),
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return invalid_request(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the token request is larger than {TOKEN_BODY_LIMIT} bytes"),
            );
        }
        Err(rejection) => {
            return invalid_request(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {rejection}"),
            );
        }
    };
    let form: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(f) => f,
        Err(e) => {
            return invalid_request(
                StatusCode::BAD_REQUEST,
                format!("the body is not form-encoded: {e}"),
            );
        }
    };
    let id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ctx = RequestContext::new(id);
    let grant = grant_from_form(&form);
    match claimdb_signin::token_grant(state.sign_in.as_deref(), &ctx, grant).await {
        Ok(answer) => oauth_response(StatusCode::OK, &answer),
        Err(e) => oauth_error(status_of(&e), &e),
    }
}

/// The body of `POST /v1/admin/users/{uid}/tokens`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MintIn {
    /// Custom claims for the token (an object).
    #[serde(default)]
    claims: Json_,
    /// Seconds (a number) or a duration such as `"30m"`; at most an hour.
    #[serde(default)]
    ttl: Option<Json_>,
}

fn ttl_of(v: &Json_) -> Result<Duration, ApiError> {
    match v {
        Json_::Number(n) => n
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| ApiError::invalid("ttl must be a whole number of seconds")),
        Json_::String(s) => parse_ttl(s).map_err(ApiError::invalid),
        _ => Err(ApiError::invalid(
            "ttl must be seconds (a number) or a duration such as \"30m\"",
        )),
    }
}

/// `POST /v1/admin/users/{uid}/tokens`: mints a claimdb ID token for the user (admin only).
pub(crate) async fn admin_mint(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(uid): Path<String>,
    ApiJson(body): ApiJson<MintIn>,
) -> Result<Response, ApiError> {
    let ttl = body.ttl.as_ref().map(ttl_of).transpose()?;
    let minted = claimdb_signin::admin_mint_token(
        state.sign_in.as_deref(),
        &state.engine,
        &ctx,
        &uid,
        &body.claims,
        ttl,
    )
    .await?;
    let out = json!({
        "uid": uid,
        "id_token": minted.token,
        "token_type": "Bearer",
        "expires_in": minted.exp - minted.iat,
        "expires_at": minted.exp,
        "kid": minted.kid,
    });
    Ok(with_cache(Json(out).into_response(), "no-store"))
}
