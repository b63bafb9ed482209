//! The API's one error type, [`ApiError`], and its single `IntoResponse`: every failure leaves
//! the server as `{"error": {"code", "message", "details"}}` with the matching status.
//!
//! Also the safety net ([`json_errors`]) that rewrites any error response produced outside our
//! handlers (axum's own rejections, the body-limit layer, unknown routes, wrong methods) into
//! the same shape, so no plain-text error ever escapes. 5xx details are logged, never sent.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use claimdb_engine::EngineError;
use serde::Serialize;
use serde_json::{Map, Value as Json};

/// An error as the API reports it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Map<String, Json>,
    /// Not logged when sent (expected, frequent answers such as a not-ready `/readyz`).
    pub quiet: bool,
    /// Sent as `Retry-After` (seconds) with a retryable answer.
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a Map<String, Json>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Map::new(),
            quiet: false,
            retry_after_secs: None,
        }
    }

    /// The same error, not logged when sent.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// 400 `invalid-argument`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-argument", message)
    }

    /// 413 for a request body over the configured limit. The code is `invalid-argument`, not
    /// `resource-exhausted`: resending the same body can never succeed, which is what
    /// `invalid-argument` tells a client (`resource-exhausted` suggests retrying later).
    pub fn body_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid-argument",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
        .with_detail("limit_bytes", Json::from(limit))
    }

    pub fn with_detail(mut self, key: &str, value: Json) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }

    /// For a failed batch: which write failed.
    pub fn at_write(self, index: usize) -> Self {
        self.with_detail("write_index", Json::from(index))
    }

    /// The error for a bare status (what the safety net sees), with the standard code.
    fn from_status(status: StatusCode, message: String) -> Self {
        let code = match status {
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "permission-denied",
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "unimplemented",
            StatusCode::CONFLICT => "already-exists",
            StatusCode::PRECONDITION_FAILED => "failed-precondition",
            StatusCode::TOO_MANY_REQUESTS => "resource-exhausted",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_client_error() => "invalid-argument",
            _ => "internal",
        };
        ApiError::new(status, code, message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            EngineError::NotFound { .. } => StatusCode::NOT_FOUND,
            EngineError::AlreadyExists { .. } | EngineError::Aborted { .. } => StatusCode::CONFLICT,
            EngineError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            EngineError::PermissionDenied { .. } => StatusCode::FORBIDDEN,
            EngineError::FailedPrecondition { .. } => StatusCode::PRECONDITION_FAILED,
            EngineError::ResourceExhausted { .. } => StatusCode::TOO_MANY_REQUESTS,
            EngineError::Unavailable { .. } | EngineError::CredentialUnavailable { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = match &e {
            // Says what an operator must do; shown to clients (see `into_response`).
            EngineError::DataLoss { .. } => "data-loss",
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => "internal",
            _ => e.code(),
        };
        let mut error = ApiError::new(status, code, e.message());
        match &e {
            EngineError::Unauthenticated { reason, .. } => {
                error = error.with_detail("reason", Json::from(*reason));
            }
            EngineError::CredentialUnavailable {
                reason,
                retry_after_secs,
                ..
            } => {
                error = error.with_detail("reason", Json::from(*reason));
                error.retry_after_secs = Some(*retry_after_secs);
            }
            EngineError::PermissionDenied {
                details: Some(details),
                ..
            } => {
                if let Json::Object(map) = &**details {
                    for (k, v) in map {
                        error.details.insert(k.clone(), v.clone());
                    }
                }
            }
            _ => {}
        }
        match e.write_index() {
            Some(i) => error.at_write(i),
            None => error,
        }
    }
}

impl ApiError {
    /// The message as the client may see it (a 5xx's details go to the log, not the client).
    fn shown_message(&self) -> String {
        if self.code == "data-loss" {
            // A damaged store: the message names no secret and tells the operator what to do.
            tracing::error!(detail = %self.message, "the store is damaged");
            self.message.clone()
        } else if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            // The span around this request carries its id, which the client also has.
            tracing::error!(code = self.code, detail = %self.message, "internal error");
            "internal error; the server log has the details under this request's x-request-id"
                .to_string()
        } else {
            if self.status == StatusCode::SERVICE_UNAVAILABLE && !self.quiet {
                tracing::warn!(detail = %self.message, "unavailable");
            }
            self.message.clone()
        }
    }

    /// The error as the JSON of an answer's body (for streams that report an error in-band).
    pub(crate) fn body(&self) -> Json {
        let message = self.shown_message();
        serde_json::json!({
            "error": {"code": self.code, "message": message, "details": &self.details},
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.shown_message();
        let envelope = ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: &message,
                details: &self.details,
            },
        };
        let body = serde_json::to_vec(&envelope).unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error","details":{}}}"#.to_vec()
        });
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Most of a non-JSON error body the safety net will read to build a message.
const MAX_PLAIN_ERROR_BYTES: usize = 4_096;

/// Rewrites any error response that is not already JSON into the API error shape (called by
/// `front.rs` for every response).
pub(crate) async fn json_errors(
    response: Response,
    method: &Method,
    uri: &Uri,
    max_body_bytes: usize,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(max_body_bytes),
        StatusCode::NOT_FOUND => {
            ApiError::from_status(status, format!("no route for {}", uri.path()))
        }
        StatusCode::METHOD_NOT_ALLOWED => ApiError::from_status(
            status,
            format!("method {method} is not allowed on {}", uri.path()),
        ),
        _ if text.is_empty() => ApiError::from_status(
            status,
            status.canonical_reason().unwrap_or("error").to_lowercase(),
        ),
        _ => ApiError::from_status(status, text),
    };
    let mut rewritten = respond(uri, error);
    // Keep headers such as `Allow` and `x-request-id`; the body and its type are ours.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

fn is_json(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The fallback for paths no route serves.
pub async fn not_found(request: Request) -> Response {
    let error = ApiError::from_status(
        StatusCode::NOT_FOUND,
        format!("no route for {}", request.uri().path()),
    );
    respond(request.uri(), error)
}

/// The fallback for a known path with a method it does not serve.
pub async fn method_not_allowed(request: Request) -> Response {
    let error = ApiError::from_status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    );
    respond(request.uri(), error)
}

/// An error answered outside a handler (routing, the body limit), in the shape of the API the
/// path belongs to: Firestore's `google.rpc.Status` under its paths, claimdb's elsewhere.
pub(crate) fn respond(uri: &Uri, error: ApiError) -> Response {
    let path = uri.path();
    if path.starts_with("/v1/projects/") || path.starts_with("/emulator/") {
        crate::firestore::FsError::keeping_status(error)
    } else {
        error.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_status_and_code() {
        let cases = [
            (EngineError::invalid_argument("x"), 400, "invalid-argument"),
            (EngineError::not_found("x"), 404, "not-found"),
            (
                EngineError::failed_precondition("x"),
                412,
                "failed-precondition",
            ),
            (EngineError::internal("secret"), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
        let api = ApiError::from(EngineError::not_found("x").at_write(3));
        assert_eq!(api.details["write_index"], Json::from(3));
    }

    /// A token our side could not check (the IdP hangs) is a retryable 503 with the identity
    /// layer's reason and `Retry-After`, never a 401 that reads as "your token is forged".
    #[test]
    fn unavailable_credential_is_a_503_with_reason_and_retry_after() {
        let api = ApiError::from(EngineError::CredentialUnavailable {
            message: "provider could not be reached".into(),
            reason: "idp-unreachable",
            retry_after_secs: 5,
        });
        assert_eq!((api.status.as_u16(), api.code), (503, "unavailable"));
        assert_eq!(api.details["reason"], Json::from("idp-unreachable"));
        let response = api.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    }
}
