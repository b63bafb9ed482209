//! The per-request context every engine operation receives: who is asking (the credential,
//! verified inside the engine) and how to correlate the request in logs and the audit log.

use crate::auth::Credential;

/// What the engine knows about the request besides its operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The `x-request-id` of the HTTP request (or a caller-chosen id), for logs and audit.
    pub request_id: String,
    /// The credential the request carried.
    pub credential: Credential,
    /// The admin key (`X-Claimdb-Admin-Key`), if sent.
    pub admin_key: Option<String>,
}

impl RequestContext {
    pub fn new(request_id: impl Into<String>) -> Self {
        RequestContext {
            request_id: request_id.into(),
            credential: Credential::None,
            admin_key: None,
        }
    }

    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    pub fn with_admin_key(mut self, key: Option<String>) -> Self {
        self.admin_key = key;
        self
    }
}
