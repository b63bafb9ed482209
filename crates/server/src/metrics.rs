//! `/metrics` in the Prometheus text format: HTTP requests by route, method and status with
//! their latency, rules decisions and authentication failures (counted by the engine), and the
//! identity layer's key state per provider (fetches, failures, keys, key age) and token cache,
//! and the audit log's health (events written/failed, write errors, queue depth) and what its
//! retention keeps (bytes, files, oldest event, the limits).
//!
//! The `metrics` facade records; one process-wide Prometheus recorder renders. Installing it is
//! idempotent, so several routers in one process (tests) share it.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::{Instant, SystemTime};

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics::{Counter, Histogram};
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
pub(crate) fn observe(route: &str, method: &Method, status: StatusCode, start: Instant) {
    let (requests, duration) = series(route, method, status.as_u16());
    requests.increment(1);
    duration.record(start.elapsed().as_secs_f64());
}

/// Series handles per route, method and status.
type SeriesMap = HashMap<String, Vec<(Method, u16, Counter, Histogram)>>;

/// Most (method, status) series remembered per route; beyond, the registry is asked each time.
const MAX_SERIES_PER_ROUTE: usize = 64;

/// The request counter and latency histogram of one (route, method, status), registered once:
/// the macros look a series up in the registry on every call (allocating and hashing its
/// labels), which every request would pay.
fn series(route: &str, method: &Method, status: u16) -> (Counter, Histogram) {
    static SERIES: OnceLock<RwLock<SeriesMap>> = OnceLock::new();
    let map = SERIES.get_or_init(Default::default);
    if let Ok(known) = map.read()
        && let Some((.., requests, duration)) = known
            .get(route)
            .and_then(|v| v.iter().find(|(m, s, ..)| m == method && *s == status))
    {
        return (requests.clone(), duration.clone());
    }
    // Handles taken before our recorder is installed would record nowhere.
    let _ = handle();
    let labels = [
        ("route", route.to_owned()),
        ("method", method.as_str().to_owned()),
        ("status", status.to_string()),
    ];
    let requests = metrics::counter!("claimdb_http_requests_total", &labels);
    let duration = metrics::histogram!("claimdb_http_request_duration_seconds", &labels[..2]);
    if let Ok(mut known) = map.write() {
        let entries = known.entry(route.to_owned()).or_default();
        if entries.len() < MAX_SERIES_PER_ROUTE
            && !entries.iter().any(|(m, s, ..)| m == method && *s == status)
        {
            entries.push((method.clone(), status, requests.clone(), duration.clone()));
        }
    }
    (requests, duration)
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
        metrics::gauge!("claimdb_token_cache_bytes").set(verifier.cached_token_bytes() as f64);
    }
    if let Some(log) = state.engine.audit_log() {
        let st = log.stats();
        metrics::counter!("claimdb_audit_events_written_total").absolute(st.events_written);
        metrics::counter!("claimdb_audit_events_failed_total").absolute(st.events_failed);
        metrics::counter!("claimdb_audit_write_errors_total").absolute(st.write_errors);
        metrics::counter!("claimdb_audit_groups_synced_total").absolute(st.groups_synced);
        metrics::gauge!("claimdb_audit_queue_depth").set(st.queue_depth as f64);
        metrics::gauge!("claimdb_audit_healthy").set(if st.healthy { 1.0 } else { 0.0 });
        // What retention keeps, and the limits it keeps it by (0: no age limit).
        metrics::gauge!("claimdb_audit_retained_bytes").set(st.retained_bytes as f64);
        metrics::gauge!("claimdb_audit_retained_files").set(st.retained_files as f64);
        if let Some(oldest) = st.oldest_event {
            let seconds = oldest
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            metrics::gauge!("claimdb_audit_oldest_event_timestamp_seconds").set(seconds);
        }
        metrics::counter!("claimdb_audit_files_deleted_total").absolute(st.files_deleted);
        metrics::gauge!("claimdb_audit_max_bytes").set(st.max_bytes as f64);
        metrics::gauge!("claimdb_audit_max_age_seconds")
            .set(st.max_age.map_or(0.0, |a| a.as_secs_f64()));
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
