//! The accept loop: admits connections under the `max_connections` cap, survives accept errors
//! (such as running out of file descriptors) without spinning, and runs the graceful shutdown.
//!
//! **At the cap**, a new connection is still admitted if some connection has no request in
//! progress: the one that has waited longest without one (an idle keep-alive connection, or one
//! still trickling its request head) is closed to make room. So clients that hold connections
//! without using them — slowloris — cannot lock out one that sends a request. Only when every
//! connection has a request in progress does claimdb stop accepting; new connections then wait
//! in the kernel's listen backlog until one finishes. Both cases are logged at most once per
//! [`LOG_EVERY`], with a count.
//!
//! **Shutdown** has a deadline (`shutdown_timeout`): on the signal claimdb stops accepting, takes
//! in the connections the kernel had already completed (they may carry a request), closes idle
//! connections (HTTP/1: after reading anything already sent on them, so a request that had
//! arrived is answered; HTTP/2: GOAWAY), and lets requests in progress finish, each answered with
//! `Connection: close`. At the deadline, requests still in progress are answered 503 and every
//! connection is closed within [`CLOSE_GRACE`].
//!
//! Not here: what happens on one connection (`connection.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::connection::{self, CLOSE_GRACE, ConnState, Limits};
use crate::{Dispatch, ServerConfig};

/// At most one "connection limit reached" or "accept failed" line per this long.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(10);
/// While every connection is busy at the cap, how often to look for one that became idle.
const CAP_RECHECK: Duration = Duration::from_millis(50);
/// Pause after an accept error (doubling up to [`MAX_ACCEPT_BACKOFF`]).
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(5);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Most connections taken from the listen backlog at shutdown.
const MAX_BACKLOG_DRAIN: usize = 4096;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Serving,
    /// Not accepting; idle connections close, requests in progress finish.
    Draining,
    /// Past the shutdown deadline: requests still in progress are answered 503.
    Stopping,
}

/// What the accept loop and every connection share.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) builder: auto::Builder<TokioExecutor>,
    pub(crate) dispatch: Dispatch,
    pub(crate) stage: watch::Sender<Stage>,
    draining: AtomicBool,
    base: Instant,
    max_connections: usize,
    connections: Mutex<HashMap<u64, Arc<ConnState>>>,
    open: AtomicUsize,
    /// Notified whenever a connection ends.
    closed: Notify,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts serving an accepted connection.
    fn admit(self: &Arc<Self>, stream: TcpStream) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(ConnState::new(self.base));
        self.connections().insert(id, conn.clone());
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::gauge!("claimdb_http_connections_open").set(open as f64);
        let shared = self.clone();
        tokio::spawn(async move {
            let _registered = Registered {
                shared: shared.clone(),
                id,
            };
            connection::serve(shared, conn, stream).await;
        });
    }

    /// Closes the connection that has gone longest without a request in progress; false when
    /// every connection has one.
    fn evict_longest_waiting(&self) -> bool {
        let mut connections = self.connections();
        let victim = connections
            .iter()
            .filter_map(|(id, c)| c.waiting_since().map(|since| (since, *id)))
            .min();
        match victim.and_then(|(_, id)| connections.remove(&id)) {
            Some(conn) => {
                conn.evict();
                true
            }
            None => false,
        }
    }

    /// Waits until every connection has ended or `deadline` passes; true if they all ended.
    async fn all_closed_by(&self, deadline: Instant) -> bool {
        loop {
            let mut closed = pin!(self.closed.notified());
            closed.as_mut().enable();
            if self.open() == 0 {
                return true;
            }
            tokio::select! {
                () = closed => {}
                () = tokio::time::sleep_until(deadline) => return self.open() == 0,
            }
        }
    }
}

/// Deregisters a connection when its task ends.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.connections().remove(&self.id);
        let open = self.shared.open.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("claimdb_http_connections_open").set(open as f64);
        self.shared.closed.notify_waiters();
    }
}

/// Logs a repeated condition at most once per [`LOG_EVERY`], counting what it left out.
struct Throttled {
    last: Option<Instant>,
    since_last: u64,
}

impl Throttled {
    fn new() -> Throttled {
        Throttled {
            last: None,
            since_last: 0,
        }
    }

    /// Counts one occurrence; when a line is due, `Some(occurrences left unlogged since the
    /// last line)`.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now < t + LOG_EVERY) {
            self.since_last += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.since_last))
    }
}

/// Serves `dispatch` on `listener` until `shutdown` resolves, then shuts down within the
/// configured deadline.
pub(crate) async fn serve(
    listener: TcpListener,
    dispatch: Dispatch,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog in `connection.rs` times request heads: hyper's own header timer would also
    // run while a keep-alive connection is idle, so it cannot tell the two limits apart.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let (stage, _) = watch::channel(Stage::Serving);
    let shared = Arc::new(Shared {
        limits: Limits {
            header_ms: connection_ms(config.header_read_timeout),
            idle_ms: connection_ms(config.idle_timeout),
            body_read: config.body_read_timeout,
        },
        builder,
        dispatch,
        stage,
        draining: AtomicBool::new(false),
        base: Instant::now(),
        max_connections: config.max_connections.max(1),
        connections: Mutex::new(HashMap::new()),
        open: AtomicUsize::new(0),
        closed: Notify::new(),
        next_id: AtomicU64::new(0),
    });
    let cap = shared.max_connections;
    let mut shutdown = pin!(shutdown);
    let mut evicting = Throttled::new();
    let mut all_busy = Throttled::new();
    let mut accept_failing = Throttled::new();
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                backoff = MIN_ACCEPT_BACKOFF;
                stream
            }
            // The client gave up before we took the connection: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if let Some(more) = accept_failing.due() {
                    tracing::error!(
                        "accepting a connection failed: {e} ({more} more times since the last such line); {} connections open, retrying with a pause",
                        shared.open()
                    );
                }
                // Out of file descriptors: one idle connection's is better spent on a new one.
                if matches!(e.raw_os_error(), Some(code) if is_fd_exhaustion(code)) {
                    shared.evict_longest_waiting();
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        if shared.open() >= cap {
            if shared.evict_longest_waiting() {
                if let Some(more) = evicting.due() {
                    tracing::warn!(
                        max_connections = cap,
                        "connection limit reached: {cap} connections open, so each new connection closes the one that has gone longest without a request ({more} more times since the last such line)"
                    );
                }
                metrics::counter!("claimdb_http_connection_limit_total", "action" => "evict")
                    .increment(1);
            } else {
                if let Some(more) = all_busy.due() {
                    tracing::warn!(
                        max_connections = cap,
                        "connection limit reached: all {cap} connections have a request in progress, so new connections wait in the listen backlog until one finishes ({more} more times since the last such line)"
                    );
                }
                metrics::counter!("claimdb_http_connection_limit_total", "action" => "wait")
                    .increment(1);
                // Hold this connection, unserved, until there is room; meanwhile nothing else is
                // accepted, so later ones wait in the listen backlog.
                let stopping = wait_for_room(&shared, cap, shutdown.as_mut()).await;
                shared.admit(stream);
                if stopping {
                    break;
                }
                continue;
            }
        }
        shared.admit(stream);
    }
    shut_down(&shared, listener, config.shutdown_timeout).await;
}

/// Waits until a connection ends or one has no request in progress (which is then closed to
/// make room); true if the shutdown signal came first.
async fn wait_for_room(
    shared: &Shared,
    cap: usize,
    mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    loop {
        let mut closed = pin!(shared.closed.notified());
        closed.as_mut().enable();
        if shared.open() < cap || shared.evict_longest_waiting() {
            return false;
        }
        tokio::select! {
            () = &mut shutdown => return true,
            () = closed => {}
            () = tokio::time::sleep(CAP_RECHECK) => {}
        }
    }
}

async fn shut_down(shared: &Arc<Shared>, listener: TcpListener, timeout: Duration) {
    shared.draining.store(true, Ordering::Relaxed);
    shared.stage.send_replace(Stage::Draining);
    // A connection the kernel completed before the signal may already hold a whole request: take
    // it in (with a real accept, not tokio's readiness, which may lag) so it is answered.
    let socket = socket2::SockRef::from(&listener);
    for _ in 0..MAX_BACKLOG_DRAIN {
        let Ok((accepted, _)) = socket.accept() else {
            break;
        };
        let std_stream = std::net::TcpStream::from(accepted);
        if std_stream.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(stream) = TcpStream::from_std(std_stream) {
            shared.admit(stream);
        }
    }
    drop(listener);
    tracing::info!(
        open = shared.open(),
        "shutting down: no longer accepting; idle connections close now, requests in progress get up to {} ms",
        timeout.as_millis()
    );
    if shared.all_closed_by(Instant::now() + timeout).await {
        return;
    }
    tracing::warn!(
        open = shared.open(),
        "shutdown deadline of {} ms passed: requests still in progress are answered 503 and every connection is closed",
        timeout.as_millis()
    );
    shared.stage.send_replace(Stage::Stopping);
    // Each connection closes itself within CLOSE_GRACE; the margin is for the tasks to run.
    shared
        .all_closed_by(Instant::now() + CLOSE_GRACE + Duration::from_millis(200))
        .await;
}

fn connection_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4).max(1)
}

/// Errors that concern only the one connection being accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// EMFILE (the process's open-file limit) or ENFILE (the system's), by their Linux/BSD numbers.
fn is_fd_exhaustion(code: i32) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    code == EMFILE || code == ENFILE
}
