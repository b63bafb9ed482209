//! The engine's error type. Each variant is one stable error code of the API
//! (`invalid-argument`, `not-found`, …); `server` maps a variant to its HTTP status. Batch
//! failures say which write failed through `write_index`.

use claimdb_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Bad input: a path, document, query, cursor or batch the API cannot accept.
    #[error("{message}")]
    InvalidArgument {
        message: String,
        write_index: Option<usize>,
    },
    /// The document does not exist.
    #[error("{message}")]
    NotFound {
        message: String,
        write_index: Option<usize>,
    },
    /// A create found the document already there.
    #[error("{message}")]
    AlreadyExists {
        message: String,
        write_index: Option<usize>,
    },
    /// A precondition (`If-Match`, `If-None-Match`) did not hold.
    #[error("{message}")]
    FailedPrecondition {
        message: String,
        write_index: Option<usize>,
    },
    /// The credential was refused: `reason` is the machine-readable cause (`expired`,
    /// `bad-signature`, …).
    #[error("{message}")]
    Unauthenticated {
        message: String,
        reason: &'static str,
    },
    /// The rules (or the admin condition) do not allow the request. `details` carries the
    /// denial's explanation when explanations are on.
    #[error("{message}")]
    PermissionDenied {
        message: String,
        details: Option<Box<serde_json::Value>>,
        write_index: Option<usize>,
    },
    /// The request conflicted with concurrent writes too often; retrying it may work.
    #[error("{message}")]
    Aborted {
        message: String,
        write_index: Option<usize>,
    },
    /// Too much at once; retrying later may work.
    #[error("{message}")]
    ResourceExhausted {
        message: String,
        write_index: Option<usize>,
    },
    /// The store cannot serve requests right now.
    #[error("{message}")]
    Unavailable {
        message: String,
        write_index: Option<usize>,
    },
    /// The credential could not be checked because what checking needs cannot be had right
    /// now (the provider's keys while its IdP hangs or fails, the revocation record). Nothing
    /// is known against the credential: retry after `retry_after_secs`, do not sign in again.
    /// `reason` is the identity layer's (`idp-unreachable`, `keys-unavailable`, …).
    #[error("{message}")]
    CredentialUnavailable {
        message: String,
        reason: &'static str,
        retry_after_secs: u64,
    },
    /// A bug. The message is for logs, never for clients.
    #[error("{message}")]
    Internal {
        message: String,
        write_index: Option<usize>,
    },
    /// The stored data is damaged: writes are refused until an operator restores it. The
    /// message says what to do (run `claimdb check`, restore from a backup).
    #[error("{message}")]
    DataLoss {
        message: String,
        write_index: Option<usize>,
    },
}

impl EngineError {
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        EngineError::InvalidArgument {
            message: message.into(),
            write_index: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        EngineError::NotFound {
            message: message.into(),
            write_index: None,
        }
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        EngineError::FailedPrecondition {
            message: message.into(),
            write_index: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        EngineError::Internal {
            message: message.into(),
            write_index: None,
        }
    }

    /// The API error code (`invalid-argument`, `not-found`, …).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidArgument { .. } => "invalid-argument",
            EngineError::NotFound { .. } => "not-found",
            EngineError::AlreadyExists { .. } => "already-exists",
            EngineError::FailedPrecondition { .. } => "failed-precondition",
            EngineError::Unauthenticated { .. } => "unauthenticated",
            EngineError::PermissionDenied { .. } => "permission-denied",
            EngineError::Aborted { .. } => "aborted",
            EngineError::ResourceExhausted { .. } => "resource-exhausted",
            EngineError::Unavailable { .. } | EngineError::CredentialUnavailable { .. } => {
                "unavailable"
            }
            EngineError::Internal { .. } => "internal",
            EngineError::DataLoss { .. } => "data-loss",
        }
    }

    pub fn message(&self) -> &str {
        let (message, _) = self.parts();
        message
    }

    /// For a failed batch: the index of the write that failed, when known.
    pub fn write_index(&self) -> Option<usize> {
        let (_, index) = self.parts();
        index
    }

    /// The same error, attributed to write `index` of a batch.
    pub fn at_write(mut self, index: usize) -> Self {
        if let Some(slot) = self.index_mut() {
            *slot = Some(index);
        }
        self
    }

    /// The same error, attributed to no write: a single write is a batch of one, and its
    /// errors name no index.
    pub(crate) fn not_at_write(mut self) -> Self {
        if let Some(slot) = self.index_mut() {
            *slot = None;
        }
        self
    }

    fn parts(&self) -> (&str, Option<usize>) {
        match self {
            EngineError::Unauthenticated { message, .. }
            | EngineError::CredentialUnavailable { message, .. } => (message, None),
            EngineError::PermissionDenied {
                message,
                write_index,
                ..
            } => (message, *write_index),
            EngineError::InvalidArgument {
                message,
                write_index,
            }
            | EngineError::NotFound {
                message,
                write_index,
            }
            | EngineError::AlreadyExists {
                message,
                write_index,
            }
            | EngineError::FailedPrecondition {
                message,
                write_index,
            }
            | EngineError::Aborted {
                message,
                write_index,
            }
            | EngineError::ResourceExhausted {
                message,
                write_index,
            }
            | EngineError::Unavailable {
                message,
                write_index,
            }
            | EngineError::Internal {
                message,
                write_index,
            }
            | EngineError::DataLoss {
                message,
                write_index,
            } => (message, *write_index),
        }
    }

    fn index_mut(&mut self) -> Option<&mut Option<usize>> {
        match self {
            EngineError::PermissionDenied { write_index, .. } => Some(write_index),
            // Authentication concerns the whole request, not one write.
            EngineError::Unauthenticated { .. } | EngineError::CredentialUnavailable { .. } => None,
            EngineError::InvalidArgument { write_index, .. }
            | EngineError::NotFound { write_index, .. }
            | EngineError::AlreadyExists { write_index, .. }
            | EngineError::FailedPrecondition { write_index, .. }
            | EngineError::Aborted { write_index, .. }
            | EngineError::ResourceExhausted { write_index, .. }
            | EngineError::Unavailable { write_index, .. }
            | EngineError::Internal { write_index, .. }
            | EngineError::DataLoss { write_index, .. } => Some(write_index),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        // The message keeps the store's "write i (path): " context; the code is the root cause's.
        let message = e.to_string();
        let write_index = e.write_index();
        match e.root() {
            StoreError::InvalidArgument(_) => EngineError::InvalidArgument {
                message,
                write_index,
            },
            StoreError::NotFound(_) => EngineError::NotFound {
                message,
                write_index,
            },
            StoreError::AlreadyExists(_) => EngineError::AlreadyExists {
                message,
                write_index,
            },
            StoreError::FailedPrecondition(_) => EngineError::FailedPrecondition {
                message,
                write_index,
            },
            StoreError::Aborted(_) => EngineError::Aborted {
                message,
                write_index,
            },
            StoreError::ResourceExhausted(_) => EngineError::ResourceExhausted {
                message,
                write_index,
            },
            StoreError::Unavailable(_) => EngineError::Unavailable {
                message,
                write_index,
            },
            StoreError::DataLoss(_) => EngineError::DataLoss {
                message,
                write_index,
            },
            // StoreError is non-exhaustive: anything new is treated as a bug until mapped.
            _ => EngineError::Internal {
                message,
                write_index,
            },
        }
    }
}

impl From<claimdb_model::ModelError> for EngineError {
    fn from(e: claimdb_model::ModelError) -> Self {
        EngineError::invalid_argument(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_code_and_message() {
        let e = EngineError::from(StoreError::FailedPrecondition("version 3 != 4".into()));
        assert_eq!(e.code(), "failed-precondition");
        assert_eq!(e.message(), "version 3 != 4");
        assert_eq!(e.write_index(), None);
        let e = e.at_write(7);
        assert_eq!(e.write_index(), Some(7));
        assert_eq!(
            EngineError::from(StoreError::Internal("x".into())).code(),
            "internal"
        );
        assert_eq!(
            EngineError::from(StoreError::Unavailable("x".into())).code(),
            "unavailable"
        );
    }
}
