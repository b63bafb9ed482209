//! `POST /v1/batch`: up to 500 writes applied atomically. A failure applies nothing and names
//! the failing write in `details.write_index`.

use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ctx};
use crate::wire::{BatchOut, BatchRequest};

pub(crate) async fn commit(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<Json<BatchOut>, ApiError> {
    let writes = request.into_writes()?;
    let result = state.engine.batch(&ctx, writes).await?;
    Ok(Json(BatchOut::from(&result)))
}
