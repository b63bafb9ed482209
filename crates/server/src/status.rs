//! `GET /v1/admin/status`: what an operator checks first, in one admin-only answer — the
//! version, whether the server is ready and why not, the store (described, pinged), the rules
//! in force, each identity provider's key state (key ids, age, last fetch error, fetch counts),
//! claimdb's own issuer keys and their rotation, the audit log's health and the token cache.
//!
//! It gathers what `/readyz` and `/metrics` already know, with the names and reasons they leave
//! out; it changes nothing and reads no document. The admin condition is checked (and audited)
//! first, like every admin call.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use claimdb_model::Timestamp;
use serde_json::{Value as Json_, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Ctx;

/// The routes of this module.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/v1/admin/status", get(status))
}

/// RFC 3339 with microseconds, as everywhere on the wire; `None` before 1970 or past 9999.
fn time(t: SystemTime) -> Option<String> {
    let micros = t.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_micros();
    Timestamp::from_micros(i64::try_from(micros).ok()?)
        .ok()
        .map(|t| t.to_string())
}

fn secs(d: Duration) -> f64 {
    // Milliseconds are plenty for ages shown to a person.
    (d.as_millis() as f64) / 1000.0
}

/// When this process started serving (the first router built).
fn started() -> SystemTime {
    static STARTED: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *STARTED.get_or_init(SystemTime::now)
}

/// Called when the router is built, so uptime counts from then rather than the first status.
pub(crate) fn mark_started() {
    let _ = started();
}

/// `GET /v1/admin/status`.
pub(crate) async fn status(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Json_>, ApiError> {
    state.engine.authorize_admin(&ctx).await?;
    let engine = &state.engine;
    let now = SystemTime::now();
    let (ready, not_ready) = match engine.ready(&ctx).await {
        Ok(()) => (true, None),
        Err(e) => (false, Some(e.message().to_owned())),
    };
    let ping = engine.store().ping().await;
    let capabilities = engine.store().capabilities();
    let rules = engine.rules();
    let managed_in = match engine.rules_source() {
        claimdb_engine::RulesSource::File(_) => "file",
        claimdb_engine::RulesSource::Database => "database",
    };
    let providers: Vec<Json_> = match engine.verifier() {
        None => Vec::new(),
        Some(verifier) => {
            let metrics = verifier.metrics(now);
            verifier
                .providers()
                .map(|p| {
                    let m = metrics.iter().find(|m| m.provider == p.name);
                    json!({
                        "name": p.name,
                        "issuer": p.issuer.display(),
                        "keys_from": p.keys.url(),
                        "audiences": p.audiences,
                        "algorithms": p.algorithms.iter().map(|a| a.name()).collect::<Vec<_>>(),
                        "keys": m.map(|m| m.keys),
                        "key_ids": m.map(|m| m.kids.clone()),
                        "key_age_secs": m.and_then(|m| m.key_age).map(secs),
                        "loaded_from_persistence": m.map(|m| m.loaded_from_persistence),
                        "last_error": m.and_then(|m| m.last_error.clone()),
                        "fetches": m.map(|m| m.fetches),
                        "fetch_failures": m.map(|m| m.failures),
                        "on_demand_fetches": m.map(|m| m.on_demand_fetches),
                        "rate_limited": m.map(|m| m.rate_limited),
                    })
                })
                .collect()
        }
    };
    let issuer = state.sign_in.as_ref().map(|s| {
        let issuer = s.issuer();
        let config = issuer.config();
        let keys = match issuer.keys() {
            Ok(keys) => json!(
                keys.iter()
                    .map(|k| json!({
                        "kid": k.kid,
                        "alg": k.alg.name(),
                        "active": k.retired.is_none(),
                        "created": time(k.created),
                        "retired": k.retired.and_then(time),
                        "unpublished_at": k.unpublish_at.and_then(time),
                    }))
                    .collect::<Vec<_>>()
            ),
            Err(e) => json!({ "error": e.to_string() }),
        };
        json!({
            "issuer": config.issuer,
            "algorithm": config.algorithm.name(),
            "rotate_after_days": config.rotate_after.map(|d| d.as_secs() / 86_400),
            "token_ttl_secs": config.token_ttl.as_secs(),
            "session_hours": config.session_ttl.as_secs() / 3600,
            "keys": keys,
            "login_providers": s.login_providers(),
        })
    });
    let audit = engine.audit_log().map(|log| {
        let st = log.stats();
        json!({
            "healthy": st.healthy,
            "events_written": st.events_written,
            "events_failed": st.events_failed,
            "write_errors": st.write_errors,
            "queue_depth": st.queue_depth,
            "retained_bytes": st.retained_bytes,
            "retained_files": st.retained_files,
            "oldest_event": st.oldest_event.and_then(time),
            "max_bytes": st.max_bytes,
            "max_age_days": st.max_age.map(|a| a.as_secs() / 86_400),
        })
    });
    let token_cache = engine
        .verifier()
        .map(|v| json!({ "entries": v.cached_tokens(), "bytes": v.cached_token_bytes() }));
    let started = started();
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started": time(started),
        "uptime_secs": now.duration_since(started).map(secs).unwrap_or(0.0),
        "ready": ready,
        "not_ready_reason": not_ready,
        "emulator": engine.is_emulator(),
        "firestore_project": state.config.firestore.project(),
        "store": {
            "description": (!state.config.store_description.is_empty())
                .then_some(state.config.store_description.as_str()),
            "ok": ping.is_ok(),
            "error": ping.err().map(|e| e.to_string()),
            "journal": capabilities.journal,
            "shared_across_nodes": capabilities.feed_across_processes,
        },
        "rules": {
            "origin": rules.origin,
            "version": rules.version,
            "managed_in": managed_in,
        },
        "providers": providers,
        "issuer": issuer,
        "audit": audit,
        "token_cache": token_cache,
    })))
}
