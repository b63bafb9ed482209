//! `google.rpc` status codes and the `Status` every Firestore protocol answers errors with:
//! on REST `{"error": {"code": <HTTP status>, "message": "…", "status": "PERMISSION_DENIED"}}`
//! with that HTTP status (the only part the lite SDK reads), on gRPC the numeric code.

use claimdb_engine::EngineError;
use serde_json::{Value as Json, json};

/// The canonical `google.rpc.Code`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in number order.
    pub const ALL: [Code; 16] = [
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The name proto3 JSON and the REST error body use.
    pub fn name(self) -> &'static str {
        match self {
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status of the code (google.rpc's mapping, as Google's REST APIs answer).
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::Unauthenticated => 401,
            Code::PermissionDenied => 403,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::ResourceExhausted => 429,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::DeadlineExceeded => 504,
        }
    }
}

/// An error as Firestore's protocols carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: String,
    /// Seconds after which a retry may succeed (`Retry-After` on REST), when known.
    pub retry_after_secs: Option<u64>,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Status::new(Code::InvalidArgument, message)
    }

    /// The `google.rpc.Status` message in proto3 JSON, `{"code": 7, "message": "…"}`, as a
    /// stream's `TargetChange.cause` or a `batchWrite` status carries it.
    pub fn to_rpc_json(&self) -> Json {
        json!({ "code": self.code as i32, "message": self.message })
    }

    /// The REST error body.
    pub fn to_json(&self) -> Json {
        json!({
            "error": {
                "code": self.code.http_status(),
                "message": self.message,
                "status": self.code.name(),
            }
        })
    }
}

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::InvalidArgument { .. } => Code::InvalidArgument,
            EngineError::NotFound { .. } => Code::NotFound,
            EngineError::AlreadyExists { .. } => Code::AlreadyExists,
            EngineError::FailedPrecondition { .. } => Code::FailedPrecondition,
            EngineError::Unauthenticated { .. } => Code::Unauthenticated,
            EngineError::PermissionDenied { .. } => Code::PermissionDenied,
            EngineError::Aborted { .. } => Code::Aborted,
            EngineError::ResourceExhausted { .. } => Code::ResourceExhausted,
            EngineError::Unavailable { .. } | EngineError::CredentialUnavailable { .. } => {
                Code::Unavailable
            }
            EngineError::DataLoss { .. } => Code::DataLoss,
            _ => Code::Internal,
        };
        let retry_after_secs = match &e {
            EngineError::CredentialUnavailable {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        // An internal error's cause is for the server's log, not the client (as on `/v1`).
        let message = if code == Code::Internal {
            tracing::error!("firestore request failed: {e}");
            "internal error".to_string()
        } else {
            e.message().to_string()
        };
        Status {
            code,
            message,
            retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the lite SDK reads from each status (its `mapCodeFromHttpStatus`): the codes it must
    /// see for denials, missing documents, conflicts and bad tokens.
    #[test]
    fn engine_errors_become_the_codes_and_http_statuses_clients_map() {
        let m = |s: &str| s.to_string();
        let cases = [
            (
                EngineError::PermissionDenied {
                    message: m("no"),
                    details: None,
                    write_index: None,
                },
                Code::PermissionDenied,
                403,
            ),
            (EngineError::not_found("gone"), Code::NotFound, 404),
            (
                EngineError::invalid_argument("bad"),
                Code::InvalidArgument,
                400,
            ),
            (
                EngineError::AlreadyExists {
                    message: m("there"),
                    write_index: None,
                },
                Code::AlreadyExists,
                409,
            ),
            (
                EngineError::Aborted {
                    message: m("race"),
                    write_index: None,
                },
                Code::Aborted,
                409,
            ),
            (
                EngineError::failed_precondition("changed"),
                Code::FailedPrecondition,
                400,
            ),
            (
                EngineError::Unauthenticated {
                    message: m("old"),
                    reason: "expired",
                },
                Code::Unauthenticated,
                401,
            ),
            (EngineError::internal("secret cause"), Code::Internal, 500),
        ];
        for (error, code, http) in cases {
            let status = Status::from(error);
            assert_eq!(status.code, code);
            assert_eq!(status.code.http_status(), http);
            let body = status.to_json();
            assert_eq!(body["error"]["code"], http);
            assert_eq!(body["error"]["status"], code.name());
            assert!(!status.message.contains("secret"), "{}", status.message);
        }
    }
}
