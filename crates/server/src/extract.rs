//! Extractors that turn the raw request into what handlers need, each refusing bad input with an
//! [`ApiError`] instead of axum's plain-text rejections: the JSON body, the wildcard path, the
//! query string, the request context and the conditional headers.

use crate::cookies::SESSION_COOKIE;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use claimdb_engine::{Credential, RequestContext, WriteCondition};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// The request header carrying the request id (set by the request-id layer when absent).
pub const REQUEST_ID: &str = "x-request-id";

/// A JSON request body. Refuses a missing body, a content type other than JSON, malformed
/// JSON, a name repeated in any object, an integer literal outside the signed 64-bit range
/// (both through `claimdb_model::json_text::parse_body`, the one strict reading of JSON that
/// tokens get too) and shapes `T` does not accept, each with a message saying which.
pub(crate) struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_string());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::body_too_large(state.config.max_body_bytes)
                } else {
                    ApiError::invalid(format!("could not read the request body: {rejection}"))
                }
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "the request body is empty; expected a JSON object",
            ));
        }
        if !content_type.as_deref().is_some_and(is_json_type) {
            let shown = content_type.as_deref().unwrap_or("none");
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid-argument",
                format!("expected Content-Type: application/json, got {shown}"),
            ));
        }
        Ok(ApiJson(json_body(&bytes)?))
    }
}

/// Reads a JSON body strictly into `T`.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = claimdb_model::json_text::parse_body(bytes).map_err(|e| match e {
        claimdb_model::ModelError::InvalidJson(e) => {
            ApiError::invalid(format!("the request body is not valid JSON: {e}"))
        }
        other => ApiError::invalid(format!("invalid request body: {other}")),
    })?;
    T::deserialize(value).map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))
}

fn is_json_type(value: &str) -> bool {
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The `{*path}` of a `/v1/docs/...` route, percent-decoded, not yet validated.
pub(crate) struct RawPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RawPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(path) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(format!("invalid path: {e}")))?;
        Ok(RawPath(path))
    }
}

/// A query string deserialized into `T` (which should deny unknown fields).
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(format!("invalid query string: {}", e.body_text())))?;
        Ok(ApiQuery(value))
    }
}

/// The header carrying the admin key.
pub(crate) const ADMIN_KEY: &str = "x-claimdb-admin-key";

/// The engine's view of the request: its id (from `x-request-id`), its credential
/// (`Authorization: Bearer`, else the `claimdb_session` cookie when sign-in is enabled) and the
/// admin key, if sent. A malformed `Authorization` header is refused here with 401 rather than
/// treated as no credential; a cookie-authenticated request other than GET/HEAD must pass the
/// origin check ([`crate::csrf`]) or is refused with 403.
pub(crate) struct Ctx(pub RequestContext);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mut ctx = header_context(&parts.headers)?;
        if ctx.credential == Credential::None
            && state.sign_in.is_some()
            && let Some(session) = crate::csrf::cookie(&parts.headers, SESSION_COOKIE)
            && !session.is_empty()
        {
            if parts.method != Method::GET && parts.method != Method::HEAD {
                state.origins.check(&parts.headers)?;
            }
            ctx.credential = Credential::Session(session);
        }
        Ok(Ctx(ctx))
    }
}

/// The request's id (`x-request-id`), `Authorization: Bearer` credential and admin key, from
/// its headers alone: the whole context of a gRPC call (its metadata), and of an HTTP request
/// before [`Ctx`] looks for a session cookie.
pub(crate) fn header_context(headers: &HeaderMap) -> Result<RequestContext, ApiError> {
    let id = headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let credential = credential(headers)?;
    let admin_key = header_text(headers, ADMIN_KEY)?.map(str::to_string);
    Ok(RequestContext::new(id)
        .with_credential(credential)
        .with_admin_key(admin_key))
}

/// Reads `Authorization: Bearer <token>`.
pub(crate) fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let unauthenticated = |message: &str| {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            .with_detail("reason", "malformed".into())
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credential::None);
    };
    if values.next().is_some() {
        return Err(unauthenticated("Authorization appears more than once"));
    }
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the Authorization header is not visible ASCII"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthenticated(
            "the Authorization header must be 'Bearer <token>'",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(unauthenticated("the bearer token is empty"));
    }
    Ok(Credential::Bearer(token.to_string()))
}

/// `If-Match` / `If-None-Match` as a write condition.
pub(crate) struct Conditions(pub WriteCondition);

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        conditions(&parts.headers).map(Conditions)
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(format!(
            "{name} appears more than once; send one header with a comma-separated list"
        )));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| ApiError::invalid(format!("{name} is not visible ASCII")))
}

/// Reads the conditional headers of a write.
pub(crate) fn conditions(headers: &HeaderMap) -> Result<WriteCondition, ApiError> {
    let if_match = header_text(headers, "if-match")?;
    let if_none_match = header_text(headers, "if-none-match")?;
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "send either If-Match or If-None-Match, not both",
        )),
        (Some(m), None) => parse_if_match(m, "If-Match"),
        (None, Some(n)) => parse_if_none_match(n, "If-None-Match"),
        (None, None) => Ok(WriteCondition::None),
    }
}

/// Parses an `If-Match` value: `*`, or a comma-separated list of entity tags (`"3"`, `W/"3"`;
/// a bare `3` is accepted too). A well-formed tag that is not a version can match nothing.
pub(crate) fn parse_if_match(value: &str, name: &str) -> Result<WriteCondition, ApiError> {
    let mut versions = Vec::new();
    for item in value.split(',').map(str::trim) {
        if item == "*" {
            return Ok(WriteCondition::Exists);
        }
        let tag = item.strip_prefix("W/").unwrap_or(item);
        let opaque = match tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(quoted) if !quoted.contains('"') => quoted,
            Some(_) | None if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()) => tag,
            _ => {
                return Err(ApiError::invalid(format!(
                    "{name} {item:?} is not an entity tag; send \"<version>\" (quoted), a list of them, or *"
                )));
            }
        };
        if let Ok(v) = opaque.parse::<u64>() {
            versions.push(v);
        }
    }
    Ok(WriteCondition::VersionIn(versions))
}

/// Parses an `If-None-Match` value; only `*` (create-only) is meaningful for a write.
pub(crate) fn parse_if_none_match(value: &str, name: &str) -> Result<WriteCondition, ApiError> {
    if value.trim() == "*" {
        Ok(WriteCondition::Missing)
    } else {
        Err(ApiError::invalid(format!(
            "{name} {value:?} is not supported on writes; only * (create only) is"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_tags_weak_tags_lists_and_star() {
        let p = |v: &str| parse_if_match(v, "If-Match").map_err(|e| e.message);
        assert_eq!(p("\"3\"").unwrap(), WriteCondition::VersionIn(vec![3]));
        assert_eq!(p("W/\"3\"").unwrap(), WriteCondition::VersionIn(vec![3]));
        assert_eq!(p("7").unwrap(), WriteCondition::VersionIn(vec![7]));
        assert_eq!(
            p("\"3\", W/\"4\"").unwrap(),
            WriteCondition::VersionIn(vec![3, 4])
        );
        assert_eq!(p("\"3\", *").unwrap(), WriteCondition::Exists);
        assert_eq!(p("\"abc\"").unwrap(), WriteCondition::VersionIn(vec![]));
        for bad in ["", "abc", "\"3", "3\"", "\"a\"b\""] {
            assert!(p(bad).unwrap_err().contains("not an entity tag"), "{bad}");
        }
    }

    #[test]
    fn if_none_match_only_star() {
        assert_eq!(
            parse_if_none_match(" * ", "h").unwrap(),
            WriteCondition::Missing
        );
        assert!(parse_if_none_match("\"3\"", "h").is_err());
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json_type(ok), "{ok}");
        }
        for bad in ["text/plain", "application/x-www-form-urlencoded", ""] {
            assert!(!is_json_type(bad), "{bad}");
        }
    }
}
