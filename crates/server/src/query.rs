//! `POST /v1/query`: a JSON query (scope, `where`, `order_by`, cursors, offset, limit, and the
//! paging `page_size` / `page_token`) converted to the domain [`Query`] and run by the engine,
//! one page per request. Shape errors are reported by `wire`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use claimdb_engine::Query;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ctx};
use crate::wire::{QueryOut, QueryRequest};

pub(crate) async fn run_query(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(mut request): ApiJson<QueryRequest>,
) -> Result<Response, ApiError> {
    let paging = request.take_paging();
    let query = Query::try_from(request)?;
    let page = state.engine.query(&ctx, &query, &paging).await?;
    Ok(Json(QueryOut::from(&page)).into_response())
}
