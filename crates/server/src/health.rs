//! `/healthz` (the process answers) and `/readyz` (the store answers and every identity
//! provider has keys; 503 saying what is missing otherwise).
//! Neither touches documents.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Ctx;
use crate::wire::StatusOut;

pub(crate) async fn healthz() -> Json<StatusOut> {
    Json(StatusOut { status: "ok" })
}

pub(crate) async fn readyz(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<StatusOut>, ApiError> {
    match state.engine.ready(&ctx).await {
        Ok(()) => Ok(Json(StatusOut { status: "ready" })),
        Err(e) => {
            // Polled every few seconds by load balancers: not worth a warning each time.
            tracing::debug!(code = e.code(), detail = %e, "readiness check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("not ready: {}", e.message()),
            )
            .quiet())
        }
    }
}
