//! What every request passes through before routing, as one service with one future: the
//! request id (`x-request-id`, made when absent, echoed on the response), the tracing span, the
//! body limit (a declared length over it is answered 413 at once; a chunked body is counted as
//! it is read) and the JSON error shape for errors that did not come from a handler (axum's
//! rejections, 413, unknown routes and methods). Also [`Track`], the per-route metrics as a
//! route layer.
//!
//! Written by hand rather than as five tower/axum middlewares: each of those cloned and boxed
//! the rest of the stack or wrapped the body once more on every request, about a fifth of a
//! point read's instructions.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use hyper::body::Body as _;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::error::{self, ApiError};
use crate::extract::REQUEST_ID;
use crate::metrics;
use crate::request_id::MakeId;

/// Wraps the router in [`Front`].
#[derive(Clone)]
pub(crate) struct FrontLayer {
    max_body_bytes: usize,
    ids: MakeId,
}

impl FrontLayer {
    pub(crate) fn new(max_body_bytes: usize) -> Self {
        FrontLayer {
            max_body_bytes,
            ids: MakeId::new(),
        }
    }
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            max_body_bytes: self.max_body_bytes,
            ids: self.ids.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Front<S> {
    inner: S,
    max_body_bytes: usize,
    ids: MakeId,
}

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxedResponse;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> BoxedResponse {
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.ids.next_header();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let span = tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id.to_str().unwrap_or(""),
        );
        let limit = self.max_body_bytes;
        // Cheap clones (the URI shares its bytes); formatted only on the error path.
        let method = request.method().clone();
        let uri = request.uri().clone();
        let declared = request.body().size_hint().exact();
        // The ready service answers this request; a clone waits for the next (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(
            async move {
                let start = Instant::now();
                let response = match declared {
                    Some(n) if n > limit as u64 => too_large(&uri, limit),
                    Some(_) => call(&mut inner, request).await,
                    // A body of unknown length (chunked) is counted as it is read.
                    None => {
                        let request = request
                            .map(|body| Body::new(http_body_util::Limited::new(body, limit)));
                        call(&mut inner, request).await
                    }
                };
                let mut response = error::json_errors(response, &method, &uri, limit).await;
                response.headers_mut().insert(REQUEST_ID, id);
                tracing::debug!(
                    status = response.status().as_u16(),
                    latency_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "response"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

async fn call<S>(inner: &mut S, request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    match inner.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn too_large(uri: &axum::http::Uri, limit: usize) -> Response {
    error::respond(uri, ApiError::body_too_large(limit))
}

/// Counts every request and its latency by route template (never the concrete path, which
/// would make one series per document): a route layer, so the matched route is known.
#[derive(Clone, Copy, Default)]
pub(crate) struct TrackLayer;

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { inner }
    }
}

#[derive(Clone)]
pub(crate) struct Track<S> {
    inner: S,
}

impl<S> Service<Request> for Track<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Tracked<S::Future> {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        Tracked {
            inner: self.inner.call(request),
            route,
            method,
            start: Instant::now(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Track`]: records when the response is ready.
    pub(crate) struct Tracked<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
        method: axum::http::Method,
        start: Instant,
    }
}

impl<F> Future for Tracked<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            let route = this.route.as_ref().map_or("unmatched", MatchedPath::as_str);
            metrics::observe(route, this.method, response.status(), *this.start);
        }
        Poll::Ready(result)
    }
}
