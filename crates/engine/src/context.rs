//! The per-request context every engine operation receives: who is asking and how to correlate
//! the request in logs. Today it carries only the request id; credentials join it when the
//! identity layer lands.

/// What the engine knows about the request besides its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The `x-request-id` of the HTTP request (or a caller-chosen id), for logs and audit.
    pub request_id: String,
}

impl RequestContext {
    pub fn new(request_id: impl Into<String>) -> Self {
        RequestContext {
            request_id: request_id.into(),
        }
    }
}
