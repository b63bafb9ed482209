//! claimdb's HTTP API — the only crate that knows HTTP, status codes and JSON wire types.
//!
//! [`app`] builds the router over an [`AppState`]; [`run`] serves it on a listener (HTTP/1.1 and
//! h2c, with the connection limits of [`ServerConfig`]: `listener.rs` and `connection.rs`) until
//! the shutdown future resolves, then shuts down within `shutdown_timeout`. Handlers are thin: extract,
//! make one [`Engine`] call, map the result. Every error leaves as the JSON shape of
//! [`error::ApiError`], including axum's own rejections, unknown routes and wrong methods.
//!
//! Tracing: every request runs in an `info` span with method, path and request id (so anything
//! logged while serving it carries them); a line per response with status and latency is logged
//! at `debug` (`RUST_LOG=claimdb_server=debug`). Bodies, query strings, cookies and `Authorization`
//! are never recorded.

mod admin;
mod batch;
mod connection;
mod console;
pub mod cookies;
pub mod cors;
pub mod csrf;
mod docs;
pub mod emulator;
pub mod error;
mod extract;
pub mod firestore;
mod front;
mod grpc;
mod health;
mod listen;
mod listener;
mod login;
pub mod metrics;
mod oauth;
mod query;
mod request_id;
mod rules;
mod rules_test;
mod status;
mod tokens;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use claimdb_engine::Engine;
use claimdb_signin::SignIn;
use tower::ServiceExt as _;

pub use error::ApiError;
pub use extract::REQUEST_ID;

/// Default largest request body: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Default time a request head may take from its first byte.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a connection may stay open with no request in progress: longer than the 60 s
/// idle timeout common in load balancers, so they, not claimdb, close a pooled connection.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default time a request body may take after its head (10 MiB in 60 s is ≈ 175 KB/s).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on open connections (lowered at start to fit the open-file limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time requests in progress get to finish after the shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger bodies get 413 (code `invalid-argument`).
    pub max_body_bytes: usize,
    /// A request head must be complete this long after its first byte, else the connection is
    /// closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress (and none started) is closed after this long;
    /// so is one whose client stops reading a response for this long.
    pub idle_timeout: Duration,
    /// A request body must be complete this long after its head, else the request is answered
    /// `408 deadline-exceeded` and the connection closed.
    pub body_read_timeout: Duration,
    /// Most connections open at once; at the cap the longest-idle connection makes room for a
    /// new one, or new ones wait in the listen backlog when all are busy.
    pub max_connections: usize,
    /// After the shutdown signal, how long requests in progress get to finish before they are
    /// answered 503 and every connection is closed.
    pub shutdown_timeout: Duration,
    /// The project whose `(default)` database the Firestore protocols serve.
    pub firestore: claimdb_firestore::Database,
    /// Origins allowed cross-origin without credentials (`cors_origins`; see [`cors`]).
    pub cors_origins: cors::AppOrigins,
    /// Where the data lives, in words (`data in ./claimdb-data`), for `/v1/admin/status`.
    pub store_description: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            firestore: claimdb_firestore::Database::default(),
            cors_origins: cors::AppOrigins::default(),
            store_description: String::new(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// claimdb as an issuer (token grants, login, sessions); `None`: those routes answer 404
    /// (`/v1/token` a `server_error`) and session cookies are not credentials.
    pub sign_in: Option<Arc<SignIn>>,
    pub config: Arc<ServerConfig>,
    /// Origins allowed to send cookie-authenticated writes: the public URL's and
    /// `app_redirects`' (empty when sign-in is off).
    pub origins: Arc<csrf::TrustedOrigins>,
    /// The configured project's Firestore database (the engine above, its names, the
    /// transactions open on this node).
    pub firestore: Arc<claimdb_firestore::Project>,
    /// Emulator mode: the other projects and the control endpoints; `None` outside it.
    pub emulator: Option<Arc<emulator::Emulator>>,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> Self {
        let firestore = claimdb_firestore::Project::new(engine.clone(), config.firestore.clone());
        AppState {
            engine,
            sign_in: None,
            config: Arc::new(config),
            origins: Arc::new(csrf::TrustedOrigins::default()),
            firestore: Arc::new(firestore),
            emulator: None,
        }
    }

    /// Emulator mode: every project id gets its own database (`emulator.rs`), the control
    /// endpoints are served and any origin may call the API from a browser.
    pub fn with_emulator(mut self, emulator: Option<Arc<emulator::Emulator>>) -> Self {
        self.emulator = emulator;
        self
    }

    /// Serves claimdb's issuer, login and sessions through `sign_in` (the same one the engine
    /// was given as its `SignInHooks`); its public URL and `app_redirects` become the origins
    /// trusted for cookie requests.
    pub fn with_sign_in(mut self, sign_in: Option<Arc<SignIn>>) -> Self {
        self.origins = Arc::new(
            sign_in
                .as_ref()
                .map(|s| {
                    csrf::TrustedOrigins::from_urls(
                        std::iter::once(s.public_url())
                            .chain(s.app_redirects().iter().map(String::as_str)),
                    )
                })
                .unwrap_or_default(),
        );
        self.sign_in = sign_in;
        self
    }

    /// The sign-in, or the error its routes answer with when it is not enabled.
    pub(crate) fn sign_in(&self) -> Result<&Arc<SignIn>, ApiError> {
        self.sign_in
            .as_ref()
            .ok_or_else(|| claimdb_signin::not_enabled().into())
    }
}

/// The whole API as a router, with request ids, tracing, the body limit and JSON errors.
pub fn app(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    metrics::handle();
    status::mark_started();
    let emulator_routes = match state.emulator {
        Some(_) => emulator::routes(),
        None => Router::new(),
    };
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
        .route("/v1/listen", get(listen::listen))
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
        .merge(firestore::routes())
        // The web console and the admin endpoints added for it.
        .merge(console::routes())
        .merge(status::routes())
        .merge(rules_test::routes())
        .merge(emulator_routes)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .route_layer(front::TrackLayer)
        .layer(DefaultBodyLimit::max(limit))
        .layer(front::FrontLayer::new(limit));
    // Emulator mode: like the Firebase emulators, a web app on any origin may call it.
    let cors = match state.emulator {
        Some(_) => cors::layer(&state.origins, &cors::AppOrigins::any()),
        None => cors::layer(&state.origins, &state.config.cors_origins),
    };
    let router = routes.with_state(state);
    // Outermost, so an allowed origin's preflight is answered before routing.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Serves the API on `listener` until `shutdown` resolves; then stops accepting, closes idle
/// connections and lets requests in progress finish, up to `config.shutdown_timeout` (after
/// which they are answered 503 and every connection is closed).
pub async fn run(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    sign_in: Option<Arc<SignIn>>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(
        listener,
        AppState::new(engine, config).with_sign_in(sign_in),
        shutdown,
    )
    .await
}

/// [`run`] for a prepared [`AppState`] (its `config` applies).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = state.config.clone();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, max_connections = config.max_connections, "listening");
    }
    listener::serve(listener, Dispatch::new(state), &config, shutdown).await;
    Ok(())
}

/// What the accept loop serves: a gRPC call (`content-type: application/grpc…`) goes to the
/// Firestore service, anything else to the router of [`app`]; one port for both.
#[derive(Clone)]
pub(crate) struct Dispatch {
    router: Router,
    grpc: grpc::Grpc,
}

impl Dispatch {
    fn new(state: AppState) -> Self {
        Dispatch {
            grpc: grpc::Grpc::new(state.clone()),
            router: app(state),
        }
    }

    pub(crate) async fn call(self, request: axum::extract::Request) -> axum::response::Response {
        if grpc::is_grpc(&request) {
            return self.grpc.call(request).await;
        }
        match self.router.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}
