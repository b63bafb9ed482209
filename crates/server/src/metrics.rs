//! `/metrics` in the Prometheus text format: HTTP requests by route, method and status with
//! their latency, rules decisions and authentication failures (counted by the engine), and the
//! identity layer's key state per provider (fetches, failures, keys, key age) and token cache,
//! and the audit log's health (events written/failed, write errors, queue depth).
//!
//! The `metrics` facade records; one process-wide Prometheus recorder renders. Installing it is
//! idempotent, so several routers in one process (tests) share it.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Latency buckets in seconds: from 50 µs to 5 s.
const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// The process-wide recorder's handle; `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Counts every request and its latency by route template (never the concrete path, which
/// would make one series per document).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("claimdb_http_requests_total", &labels).increment(1);
    metrics::histogram!("claimdb_http_request_duration_seconds", &labels[..2])
        .record(start.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    if let Some(verifier) = state.engine.verifier() {
        let now = SystemTime::now();
        for m in verifier.metrics(now) {
            let p = [("provider", m.provider.clone())];
            metrics::counter!("claimdb_jwks_fetches_total", &p).absolute(m.fetches);
            metrics::counter!("claimdb_jwks_fetch_failures_total", &p).absolute(m.failures);
            metrics::counter!("claimdb_jwks_on_demand_fetches_total", &p)
                .absolute(m.on_demand_fetches);
            metrics::counter!("claimdb_jwks_rate_limited_total", &p).absolute(m.rate_limited);
            metrics::gauge!("claimdb_jwks_keys", &p).set(m.keys as f64);
            metrics::gauge!("claimdb_jwks_key_age_seconds", &p)
                .set(m.key_age.map_or(-1.0, |a| a.as_secs_f64()));
        }
        metrics::gauge!("claimdb_token_cache_entries").set(verifier.cached_tokens() as f64);
    }
    if let Some(log) = state.engine.audit_log() {
        let st = log.stats();
        metrics::counter!("claimdb_audit_events_written_total").absolute(st.events_written);
        metrics::counter!("claimdb_audit_events_failed_total").absolute(st.events_failed);
        metrics::counter!("claimdb_audit_write_errors_total").absolute(st.write_errors);
        metrics::counter!("claimdb_audit_groups_synced_total").absolute(st.groups_synced);
        metrics::gauge!("claimdb_audit_queue_depth").set(st.queue_depth as f64);
        metrics::gauge!("claimdb_audit_healthy").set(if st.healthy { 1.0 } else { 0.0 });
    }
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
