//! claimdb's HTTP API — the only crate that knows HTTP, status codes and JSON wire types.
//!
//! [`app`] builds the router over an [`AppState`]; [`run`] serves it on a listener until the
//! shutdown future resolves, letting in-flight requests finish. Handlers are thin: extract,
//! make one [`Engine`] call, map the result. Every error leaves as the JSON shape of
//! [`error::ApiError`], including axum's own rejections, unknown routes and wrong methods.
//!
//! Tracing: every request runs in an `info` span with method, path and request id (so anything
//! logged while serving it carries them); a line per response with status and latency is logged
//! at `debug` (`RUST_LOG=tower_http=debug`). Bodies, query strings, cookies and `Authorization`
//! are never recorded.

mod admin;
mod batch;
pub mod csrf;
mod docs;
pub mod error;
mod extract;
mod health;
mod login;
pub mod metrics;
mod query;
mod request_id;
mod rules;
mod tokens;
pub mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use claimdb_engine::Engine;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;
pub use extract::REQUEST_ID;

/// Default largest request body: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger bodies get 413 (code `invalid-argument`).
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: Arc<ServerConfig>,
    /// Origins allowed to send cookie-authenticated writes: the public URL's and
    /// `app_redirects`' (empty when sign-in is off).
    pub origins: Arc<csrf::TrustedOrigins>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> Self {
        let origins = engine
            .sign_in()
            .map(|s| {
                csrf::TrustedOrigins::from_urls(
                    std::iter::once(s.public_url())
                        .chain(s.app_redirects().iter().map(String::as_str)),
                )
            })
            .unwrap_or_default();
        AppState {
            engine,
            config: Arc::new(config),
            origins: Arc::new(origins),
        }
    }
}

/// The whole API as a router, with request ids, tracing, the body limit and JSON errors.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    metrics::handle();
    let routes = Router::new()
        .route(
            "/v1/docs/{*path}",
            get(docs::get)
                .put(docs::put)
                .patch(docs::patch)
                .delete(docs::delete)
                .post(docs::post),
        )
        .route("/v1/query", post(query::run_query))
        .route("/v1/me", get(admin::me))
        .route("/v1/admin/users", get(admin::list_users))
        .route("/v1/admin/users/{uid}", get(admin::get_user))
        .route(
            "/v1/admin/users/{uid}/claims",
            get(admin::get_claims)
                .put(admin::put_claims)
                .delete(admin::delete_claims),
        )
        .route("/v1/admin/users/{uid}/revoke", post(admin::revoke))
        .route("/v1/admin/users/{uid}/tokens", post(tokens::admin_mint))
        .route(
            "/v1/token",
            post(tokens::token).layer(DefaultBodyLimit::max(tokens::TOKEN_BODY_LIMIT)),
        )
        .route("/.well-known/openid-configuration", get(tokens::discovery))
        .route("/.well-known/jwks.json", get(tokens::jwks))
        .route("/v1/login/{provider}", get(login::start))
        .route("/v1/login/{provider}/callback", get(login::callback))
        .route("/v1/logout", post(login::logout))
        .route(
            "/v1/admin/rules",
            get(rules::get_rules).put(rules::put_rules),
        )
        .route("/v1/admin/rules/versions", get(rules::versions))
        .route("/v1/admin/rules/versions/{version}", get(rules::version))
        .route("/v1/admin/rules/rollback", post(rules::rollback))
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/rules/explain", post(admin::explain))
        .route("/v1/batch", post(batch::commit))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(axum::middleware::from_fn(metrics::track));
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(request_id::MakeId::new()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %id,
                    )
                })
                // One line per response only at debug: at the target of tens of thousands of
                // requests a second, an access line each is a cost to opt into.
                .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                // A 5xx is not news at ERROR level: `/readyz` answers 503 by design until the
                // keys are loaded, and the JSON error layer logs the cause of every 500 itself.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::json_errors,
        ))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(DefaultBodyLimit::max(limit));
    let cors = state.origins.cors();
    let router = routes.layer(layers).with_state(state);
    // Outermost, so a preflight is answered before routing.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Serves the API on `listener` until `shutdown` resolves; requests in flight then finish
/// before this returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let router = app(AppState::new(engine, config));
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
