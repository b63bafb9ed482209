//! Request ids for requests that arrive without `x-request-id`: a random per-process prefix and
//! a counter (`5f3a9c1be0d2-0000002a`). Unique within a run and across restarts, and cheaper
//! than a UUID per request (no random draw on the hot path).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;
use rand::Rng as _;

#[derive(Clone)]
pub(crate) struct MakeId {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl MakeId {
    pub(crate) fn new() -> Self {
        let prefix: u64 = rand::rng().random();
        MakeId {
            prefix: format!("{:012x}", prefix >> 16).into(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:08x}", self.prefix)
    }

    /// A fresh id as a header value (its characters are always header-safe).
    pub(crate) fn next_header(&self) -> HeaderValue {
        HeaderValue::from_str(&self.next_id()).unwrap_or(HeaderValue::from_static("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_header_safe() {
        let make = MakeId::new();
        let a = make.next_id();
        let b = make.clone().next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 12 + 1 + 8);
        assert!(HeaderValue::from_str(&a).is_ok());
        assert_ne!(MakeId::new().prefix, make.prefix);
    }
}
