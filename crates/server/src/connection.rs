//! One HTTP connection (HTTP/1.1 or h2c, detected by hyper-util's auto builder) and the limits on
//! what its client may hold: how long it may stay idle between requests (`idle_timeout`), how
//! long a request head may take once its first byte arrived (`header_read_timeout`), how long a
//! request body may take after its head (`body_read_timeout`), and how long our response may sit
//! unread. Also this connection's part of a graceful shutdown.
//!
//! Three small hooks feed one watchdog per connection, so the request path never touches a
//! timer: the socket wrapper [`Watched`] notes the first byte of a request head and when writes
//! stall, the service [`ConnService`] notes when a request starts, and the response body's guard
//! ([`InFlight`]) when it ends. The watchdog sleeps until the earliest moment a limit could be
//! passed, looks at those stamps, and closes the connection if one was.
//!
//! Closing an idle HTTP/1 connection races with a request the client may just have sent. So it
//! is never closed blind: the socket wrapper reads the socket itself (a real `recv`, not tokio's
//! cached readiness) and reports end-of-stream only when nothing is waiting; a request that
//! already arrived is read and answered. HTTP/2 connections are told with GOAWAY instead.
//!
//! A request body that is not complete `body_read_timeout` after its head is answered
//! `408 deadline-exceeded` and the connection closed — except a gRPC bidirectional stream's
//! (`Listen`, `Write`), which is the client's messages for as long as the stream lives. At the shutdown deadline, requests still in
//! progress are answered `503 unavailable` (`details.reason = "shutting-down"`).
//!
//! Not here: accepting, the connection cap and the shutdown's stages (`listener.rs`).

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io::{self, Read as _};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, Response, StatusCode, Version, header};
use axum::response::IntoResponse;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;
use crate::listener::{Shared, Stage};

/// How long a connection being closed (idle, evicted, or past the shutdown deadline) may take
/// to finish what it is writing before it is dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The start of an HTTP/2 connection preface, enough to tell it from any HTTP/1 request line.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2.0";

/// What one connection's hooks and watchdog share. Times are milliseconds since `base` plus one,
/// so 0 can mean "not set".
pub(crate) struct ConnState {
    base: Instant,
    /// Requests whose response has not finished yet.
    in_flight: AtomicU32,
    /// When the connection last had no request in progress (accept, or the last response's end).
    idle_since: AtomicU64,
    /// When the first byte of the next request head arrived (0: none since the last request).
    head_since: AtomicU64,
    /// When a write started to wait for the client to read (0: not waiting).
    write_blocked_since: AtomicU64,
    http2: AtomicBool,
    /// Close this HTTP/1 connection as soon as it has no request: set by the idle timeout and by
    /// eviction, cleared when a request turns out to have arrived meanwhile.
    close_when_idle: AtomicBool,
    /// Chosen to make room under the connection cap.
    evicted: AtomicBool,
    /// The shutdown deadline passed: requests still in progress are answered 503.
    stopped: AtomicBool,
    stop: Notify,
    /// Wakes the watchdog to look again (eviction, protocol detected).
    wake: Notify,
}

impl ConnState {
    pub(crate) fn new(base: Instant) -> ConnState {
        let state = ConnState {
            base,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            close_when_idle: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            stop: Notify::new(),
            wake: Notify::new(),
        };
        state.idle_since.store(state.now_ms(), Ordering::Relaxed);
        state
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms.saturating_sub(1))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    fn http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// No request in progress and no byte of the next one seen.
    fn waiting_for_request(&self) -> bool {
        !self.busy() && self.head_since.load(Ordering::Relaxed) == 0
    }

    /// When the connection last had no request in progress, if it has none now: the eviction
    /// order under the connection cap (longest first). A connection still sending a head counts
    /// as waiting since its last request ended.
    pub(crate) fn waiting_since(&self) -> Option<u64> {
        if self.busy() || self.evicted.load(Ordering::Relaxed) {
            None
        } else {
            Some(self.idle_since.load(Ordering::Relaxed))
        }
    }

    /// Marks the connection for closing to make room; its watchdog closes it unless a request
    /// arrived meanwhile.
    pub(crate) fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// A byte of a request arrived: the head timer starts if no request was in progress.
    fn saw_request_bytes(&self) {
        if !self.http2() && !self.busy() && self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
            self.close_when_idle.store(false, Ordering::Relaxed);
        }
    }

    /// The earliest moment (ms) a limit could be passed, looking no further ahead than the
    /// shorter timeout (so a head that starts while the watchdog sleeps is never timed late).
    fn next_check(&self, now: u64, limits: &Limits) -> u64 {
        let horizon = now + limits.header_ms.min(limits.idle_ms);
        if self.busy() {
            match self.write_blocked_since.load(Ordering::Relaxed) {
                0 => horizon,
                since => horizon.min(since + limits.idle_ms),
            }
        } else {
            match self.head_since.load(Ordering::Relaxed) {
                0 => horizon.min(self.idle_since.load(Ordering::Relaxed) + limits.idle_ms),
                since => since + limits.header_ms,
            }
        }
    }

    fn verdict(&self, now: u64, limits: &Limits) -> Verdict {
        if self.busy() {
            let since = self.write_blocked_since.load(Ordering::Relaxed);
            if since != 0 && now >= since + limits.idle_ms {
                return Verdict::WriteStalled;
            }
            return Verdict::Fine;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        if head != 0 {
            if now >= head + limits.header_ms {
                return Verdict::HeadTimeout;
            }
            return Verdict::Fine;
        }
        if now >= self.idle_since.load(Ordering::Relaxed) + limits.idle_ms {
            return Verdict::IdleTimeout;
        }
        Verdict::Fine
    }
}

enum Verdict {
    Fine,
    HeadTimeout,
    IdleTimeout,
    WriteStalled,
}

/// The connection limits in the watchdog's units.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_ms: u64,
    pub idle_ms: u64,
    pub body_read: Duration,
}

/// Why a connection ended (the `reason` label of `claimdb_http_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// The client closed it, or hyper did after a `Connection: close` or an error.
    Done,
    HeadTimeout,
    IdleTimeout,
    WriteStalled,
    Evicted,
    Shutdown,
}

impl Closed {
    fn label(self) -> &'static str {
        match self {
            Closed::Done => "done",
            Closed::HeadTimeout => "header-read-timeout",
            Closed::IdleTimeout => "idle-timeout",
            Closed::WriteStalled => "write-stalled",
            Closed::Evicted => "evicted",
            Closed::Shutdown => "shutdown",
        }
    }
}

/// Serves one accepted connection until it ends or a limit closes it.
pub(crate) async fn serve(shared: Arc<Shared>, conn: Arc<ConnState>, stream: TcpStream) {
    let limits = shared.limits;
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
        shared: shared.clone(),
        first_read: true,
    });
    let service = ConnService {
        shared: shared.clone(),
        conn: conn.clone(),
    };
    let mut connection = pin!(shared.builder.serve_connection(io, service));
    let mut stage = shared.stage.subscribe();
    stage.mark_changed();
    let mut acted = Stage::Serving;
    let mut goaway_sent = false;
    // Set while the connection is being closed: dropped at this moment if still open.
    let mut close_by: Option<u64> = None;
    // The close in progress is an idle one, cancelled if a request turns out to have arrived.
    let mut closing_idle = false;
    let mut reason = Closed::Done;
    loop {
        let now = conn.now_ms();
        let mut wake = conn.next_check(now, &limits);
        if let Some(t) = close_by {
            wake = wake.min(t);
        }
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!("connection ended with an error: {e}");
                }
                break;
            }
            () = tokio::time::sleep_until(conn.at(wake)) => {}
            () = conn.wake.notified() => {}
            Ok(()) = stage.changed(), if acted != Stage::Stopping => {}
        }
        let now = conn.now_ms();
        if close_by.is_some_and(|t| now >= t) {
            break;
        }
        if closing_idle && !conn.waiting_for_request() {
            // A request arrived just as the connection was to close: it is served, and the
            // connection's limits apply again from here.
            closing_idle = false;
            close_by = None;
        }
        let current = *stage.borrow_and_update();
        if current == Stage::Stopping && acted != Stage::Stopping {
            acted = Stage::Stopping;
            reason = Closed::Shutdown;
            conn.stopped.store(true, Ordering::Release);
            conn.stop.notify_waiters();
            if !conn.busy() {
                break;
            }
            connection.as_mut().graceful_shutdown();
            close_by = Some(now + millis(CLOSE_GRACE));
            closing_idle = false;
            continue;
        }
        if current == Stage::Draining {
            acted = Stage::Draining;
            // HTTP/1 connections close through `Watched` once they have no request; HTTP/2 ones
            // get a GOAWAY and finish the streams they have.
            if conn.http2() && !goaway_sent {
                goaway_sent = true;
                connection.as_mut().graceful_shutdown();
            }
        }
        if close_by.is_some() {
            continue;
        }
        if conn.evicted.load(Ordering::Relaxed) && !conn.busy() {
            reason = Closed::Evicted;
            if conn.head_since.load(Ordering::Relaxed) != 0 && !conn.http2() {
                break;
            }
            close_idle(&conn, connection.as_mut(), &mut goaway_sent);
            close_by = Some(now + millis(CLOSE_GRACE));
            closing_idle = true;
            continue;
        }
        match conn.verdict(now, &limits) {
            Verdict::Fine => {}
            Verdict::HeadTimeout => {
                reason = Closed::HeadTimeout;
                break;
            }
            Verdict::WriteStalled => {
                reason = Closed::WriteStalled;
                break;
            }
            Verdict::IdleTimeout => {
                reason = Closed::IdleTimeout;
                close_idle(&conn, connection.as_mut(), &mut goaway_sent);
                close_by = Some(now + millis(CLOSE_GRACE));
                closing_idle = true;
            }
        }
    }
    if reason != Closed::Done {
        tracing::debug!(reason = reason.label(), "connection closed by the server");
    }
    metrics::counter!("claimdb_http_connections_closed_total", "reason" => reason.label())
        .increment(1);
}

type Connection<'a> = hyper_util::server::conn::auto::Connection<
    'a,
    TokioIo<Watched>,
    ConnService,
    hyper_util::rt::TokioExecutor,
>;

/// Starts closing a connection that has no request in progress.
fn close_idle(conn: &ConnState, connection: Pin<&mut Connection<'_>>, goaway_sent: &mut bool) {
    if conn.http2() {
        if !*goaway_sent {
            *goaway_sent = true;
            connection.graceful_shutdown();
        }
    } else {
        // `Watched` ends the stream at hyper's next read unless a request is waiting.
        conn.close_when_idle.store(true, Ordering::Relaxed);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2)
}

/// The socket as hyper sees it, reporting request bytes and stalled writes to [`ConnState`].
pub(crate) struct Watched {
    stream: TcpStream,
    conn: Arc<ConnState>,
    shared: Arc<Shared>,
    first_read: bool,
}

impl Watched {
    fn saw(&mut self, bytes: &[u8]) {
        if self.first_read {
            self.first_read = false;
            if bytes.starts_with(H2_PREFACE_START) {
                self.conn.http2.store(true, Ordering::Relaxed);
                // A connection admitted while draining needs its GOAWAY now.
                self.conn.wake.notify_one();
            }
        }
        self.conn.saw_request_bytes();
    }

    /// Whether this HTTP/1 connection is to close once it has no request.
    fn closing_when_idle(&self) -> bool {
        !self.conn.http2()
            && (self.shared.draining() || self.conn.close_when_idle.load(Ordering::Relaxed))
            && self.conn.waiting_for_request()
    }

    /// Reads what the kernel holds for this socket right now, bypassing tokio's readiness
    /// (which may not have caught up with bytes that just arrived); nothing waiting reads as
    /// end-of-stream, so hyper closes the connection cleanly.
    fn read_now(&mut self, buf: &mut ReadBuf<'_>) -> io::Result<()> {
        let socket = socket2::SockRef::from(&self.stream);
        let mut socket: &socket2::Socket = &socket;
        let before = buf.filled().len();
        match socket.read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                if let Some(new) = buf.filled().get(before..)
                    && !new.is_empty()
                {
                    self.saw(new);
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn track_write<T>(&self, result: &Poll<T>) {
        let blocked = &self.conn.write_blocked_since;
        if result.is_pending() {
            if blocked.load(Ordering::Relaxed) == 0 {
                blocked.store(self.conn.now_ms(), Ordering::Relaxed);
            }
        } else if blocked.load(Ordering::Relaxed) != 0 {
            blocked.store(0, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(new) = buf.filled().get(before..)
                    && !new.is_empty()
                {
                    this.saw(new);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.closing_when_idle() => Poll::Ready(this.read_now(buf)),
            other => other,
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.track_write(&result);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.track_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The service ([`Dispatch`](crate::Dispatch): gRPC or the router) as one connection's hyper
/// service: times the request body, counts the request
/// in flight until its response body ends, and applies shutdown to the answer.
#[derive(Clone)]
pub(crate) struct ConnService {
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> ServiceFuture {
        let in_flight = InFlight::enter(self.conn.clone());
        let http1 = request.version() < Version::HTTP_2;
        if !http1 {
            self.conn.http2.store(true, Ordering::Relaxed);
        }
        // A bodiless request (every GET) skips the body timer entirely; so does a gRPC
        // bidirectional stream, whose body is open as long as the stream.
        let timed = !request.body().is_end_stream() && !crate::grpc::is_bidi_stream(&request);
        let body = timed.then(|| Arc::new(BodyProgress::default()));
        let limits = self.shared.limits;
        let request = request.map(|incoming| match &body {
            Some(progress) => Body::new(TimedBody {
                inner: incoming,
                deadline: Instant::now() + limits.body_read,
                sleep: None,
                progress: progress.clone(),
            }),
            None => Body::new(incoming),
        });
        let dispatch = self.shared.dispatch.clone();
        let conn = self.conn.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let mut stop = pin!(conn.stop.notified());
            stop.as_mut().enable();
            let answered = if conn.stopped.load(Ordering::Acquire) {
                None
            } else {
                let handled = dispatch.call(request);
                tokio::select! {
                    biased;
                    response = handled => Some(response),
                    () = stop => None,
                }
            };
            let mut close = false;
            let mut response = match answered {
                Some(response) => response,
                None => {
                    close = true;
                    shutting_down(body.as_deref())
                }
            };
            if let Some(progress) = &body
                && progress.timed_out.load(Ordering::Relaxed)
            {
                close = true;
                response = body_timed_out(response, limits.body_read);
            }
            if http1 && (close || shared.draining()) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// The 503 for a request still in progress at the shutdown deadline.
fn shutting_down(body: Option<&BodyProgress>) -> Response<Body> {
    let unread = body.is_some_and(|b| !b.complete.load(Ordering::Relaxed));
    let message = if unread {
        "the server is shutting down and the request body had not fully arrived: the request was not applied; retry it"
    } else {
        "the server is shutting down and this request did not finish in time: a write may or may not have been applied (retry it with a precondition such as If-Match, or as an idempotent PUT)"
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
        .with_detail("reason", Json::from("shutting-down"))
        .quiet()
        .into_response()
}

/// The 408 that replaces whatever the handler made of a body read that timed out (keeping the
/// request id).
fn body_timed_out(handled: Response<Body>, limit: Duration) -> Response<Body> {
    let ms = millis(limit);
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "deadline-exceeded",
        format!(
            "the request body did not fully arrive within {ms} ms of the request head (body_read_timeout_ms)"
        ),
    )
    .with_detail("reason", Json::from("body-read-timeout"))
    .with_detail("timeout_ms", Json::from(ms))
    .into_response();
    if let Some(id) = handled.headers().get(crate::REQUEST_ID) {
        response.headers_mut().insert(crate::REQUEST_ID, id.clone());
    }
    response
}

/// Counts a request in flight from its head until its response body is dropped (finished or
/// abandoned); the last one out starts the connection's idle time.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(conn: Arc<ConnState>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.head_since.store(0, Ordering::Relaxed);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        conn.idle_since.store(conn.now_ms(), Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`InFlight`] until it is dropped.
pub(crate) struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the service learns from a request body it timed.
#[derive(Default)]
struct BodyProgress {
    timed_out: AtomicBool,
    complete: AtomicBool,
}

/// A request body that must end by `deadline` (`body_read_timeout` after the head); the timer
/// is only armed once a read has to wait.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    progress: Arc<BodyProgress>,
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.progress.timed_out.load(Ordering::Relaxed) {
            return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.progress.complete.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => {
                if this.inner.is_end_stream() {
                    this.progress.complete.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    this.progress.timed_out.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyReadTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug)]
struct BodyReadTimeout;

impl fmt::Display for BodyReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl StdError for BodyReadTimeout {}
