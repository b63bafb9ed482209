//! `POST /v1/query`: a JSON query (scope, `where`, `order_by`, cursors, offset, limit) converted
//! to the domain [`Query`] and run by the engine. Shape errors are reported by `wire`.

use axum::Json;
use axum::extract::State;
use claimdb_engine::Query;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ctx};
use crate::wire::{DocumentsOut, QueryRequest};

pub async fn run_query(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(request): ApiJson<QueryRequest>,
) -> Result<Json<DocumentsOut>, ApiError> {
    let query = Query::try_from(request)?;
    let documents = state.engine.query(&ctx, &query).await?;
    Ok(Json(DocumentsOut::from(documents.as_slice())))
}
