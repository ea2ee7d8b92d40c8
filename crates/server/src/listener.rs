//! The accept loop: HTTP/1.1 connections served with hyper, under limits that keep a server
//! answering while some clients are hostile or merely slow. See `docs/design/connections.md`.
//!
//! - At most [`ServeLimits::max_connections`] connections are held. When a new one arrives at
//!   the cap, the oldest connection with no request in flight (idle between requests, or still
//!   sending its headers) is closed to admit it, so sockets that do nothing cannot lock real
//!   clients out; only when every connection has a request in flight does the loop wait.
//! - A request's headers must arrive within [`ServeLimits::header_timeout`] of its first byte,
//!   its body within [`ServeLimits::body_timeout`] of its headers (else 408), and a
//!   connection with no request is closed after [`ServeLimits::idle_timeout`].
//! - A URI or header block over its limit is answered 414 or 431 in the called API's shape.
//! - On shutdown the loop stops accepting, closes connections with no request in flight,
//!   lets requests in flight finish, and after [`ServeLimits::shutdown_deadline`] drops
//!   whatever remains.

use crate::error::error_outside_the_router as error_response;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How the server treats its connections. [`Default`] is what `scimitar serve` uses unless
/// configured otherwise; the reasons for each number are in `docs/design/connections.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// The most connections held at once. Each costs a file descriptor and some memory, so
    /// without a cap enough idle sockets exhaust the process.
    pub max_connections: usize,
    /// How long a request's headers may take from their first byte to their end.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive in full, counted from its headers.
    pub body_timeout: Duration,
    /// How long a connection may stay open with no request, before its first one or between
    /// two (keep-alive).
    pub idle_timeout: Duration,
    /// How long shutdown waits for requests in flight before dropping them.
    pub shutdown_deadline: Duration,
    /// The longest request target (path and query) accepted; longer is 414.
    pub max_uri_bytes: usize,
    /// The largest header block accepted (names and values), and the most header fields;
    /// beyond either is 431.
    pub max_header_bytes: usize,
    pub max_header_count: usize,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 64 * 1024,
            max_header_count: 100,
        }
    }
}

impl ServeLimits {
    /// How often a connection looks at its header and idle deadlines: a quarter of the
    /// shorter, so either is acted on within a quarter of its length of passing.
    fn deadline_tick(&self) -> Duration {
        (self.header_timeout.min(self.idle_timeout) / 4).max(Duration::from_millis(5))
    }
}

/// hyper's own limits sit above ours, so that a request over ours reaches [`check_size`],
/// which answers in the API's shape; hyper answers with an empty body. Its header buffer
/// (`max_buf_size`) stays at hyper's default of about 400 KiB, above `max_header_bytes`.
const HYPER_MAX_HEADERS_FACTOR: usize = 2;

/// The queue of connections the kernel holds for the accept loop. The usual 128 overflows in
/// a burst of connections, and every dropped one waits a second for its client to try again;
/// the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `address` (a host or IP, and a port; port 0 picks a free one): the first
/// address it resolves to, with [`LISTEN_BACKLOG`].
pub async fn bind(address: &str) -> std::io::Result<TcpListener> {
    let resolved = tokio::net::lookup_host(address)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the address resolves to nothing",
            )
        })?;
    let socket = if resolved.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library does for listeners: a restart need not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Descriptors kept free below the point where accepting failed: for the database pool's
/// connections and files, and the accept after.
const DESCRIPTOR_MARGIN: usize = 16;

/// Serves `router` on `listener` until `shutdown` completes, then shuts down within
/// `limits.shutdown_deadline`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry::default());
    let mut connections = JoinSet::new();
    let mut accept_errors = AcceptErrorLog::default();
    // The configured cap, lowered if the process runs out of descriptors below it.
    let mut connection_limit = limits.max_connections;
    let mut shutdown = std::pin::pin!(shutdown);
    'accepting: loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break 'accepting,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                if is_per_connection(&error) {
                    continue;
                }
                // Out of file descriptors (EMFILE, ENFILE) or memory: the pending connection
                // stays in the kernel's queue. The cap comes down to what the process can
                // hold, less a margin for the database and the next accept, so from now on
                // idle connections give way before the descriptors run out, as at the cap.
                // Counted by open sockets, not by connections still counted against the cap:
                // those closed to make room may not have released their descriptors yet, and
                // counting them out would lower the cap again for the same shortage.
                let open = registry.open_sockets();
                if open > 0 && open <= connection_limit {
                    connection_limit = open.saturating_sub(DESCRIPTOR_MARGIN).max(1);
                }
                let mut freed = false;
                while registry.len() > connection_limit.saturating_sub(1) {
                    if !registry.shed_oldest_idle() {
                        break;
                    }
                    freed = true;
                }
                accept_errors.record(&error, connection_limit);
                // A closed connection frees its descriptor once its task has run; with none
                // to close, the pause keeps the loop from spinning.
                let pause = if freed { 1 } else { 50 };
                tokio::select! {
                    () = &mut shutdown => break 'accepting,
                    () = tokio::time::sleep(Duration::from_millis(pause)) => continue,
                }
            }
        };
        // Make room: the oldest connection that is not working on a request gives way.
        while registry.len() >= connection_limit && !registry.shed_oldest_idle() {
            // Every slot holds a request in flight: wait for one to end. The new client
            // waits with its connection accepted, and later ones in the kernel's queue.
            let slot_freed = registry.slot_freed.notify.notified();
            let mut slot_freed = std::pin::pin!(slot_freed);
            slot_freed.as_mut().enable();
            registry.slot_freed.waiting.store(true, Ordering::Relaxed);
            // A request that ended before the flag was up did not say so: look again. One
            // ending after looks at the flag under its connection's lock, which the look
            // below takes after raising it, so it sees the flag.
            let room = registry.len() < connection_limit || registry.shed_oldest_idle();
            if !room {
                tokio::select! {
                    () = &mut shutdown => break 'accepting,
                    () = slot_freed => {}
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            registry.slot_freed.waiting.store(false, Ordering::Relaxed);
        }
        let tracker = registry.admit();
        connections.spawn(serve_connection(
            stream,
            router.clone(),
            Arc::clone(&limits),
            Arc::clone(&registry),
            tracker,
        ));
    }
    drop(listener);
    registry.stop_all();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_deadline, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = connections.len(),
            deadline = ?limits.shutdown_deadline,
            "shutdown deadline passed: dropping the remaining connections"
        );
        // Dropping a connection drops its handler. A write in flight either commits whole or
        // rolls back whole: see `docs/design/connections.md`.
        connections.shutdown().await;
    }
}

/// Accept errors that concern one connection only (it was reset before being accepted):
/// the next accept is fine.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
    )
}

/// Logs accept failures at most once a second, with how many there were since the last line:
/// under descriptor exhaustion they come thousands a second.
#[derive(Default)]
struct AcceptErrorLog {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrorLog {
    fn record(&mut self, error: &std::io::Error, connection_limit: usize) {
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_logged
            .is_none_or(|last| now.duration_since(last) >= Duration::from_secs(1))
        {
            tracing::warn!(
                %error,
                failures = self.unlogged,
                connection_limit,
                "cannot accept connections; the connection limit is lowered to what the process can hold"
            );
            self.last_logged = Some(now);
            self.unlogged = 0;
        }
    }
}

/// The connections being served, oldest first (ids only grow).
#[derive(Default)]
struct Registry {
    /// Set once on shutdown, before each connection is told.
    stopping: AtomicBool,
    connections: Mutex<BTreeMap<u64, Arc<Tracker>>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Sockets of connections not yet dropped, including those closed to make room whose
    /// tasks have not ended yet.
    open_sockets: std::sync::atomic::AtomicUsize,
    /// For an accept loop waiting for a slot: a connection ended, or its last request in
    /// flight did, so it can give way.
    slot_freed: Arc<SlotFreed>,
}

/// Tells an accept loop waiting at the cap that a connection can give way. Requests end
/// thousands of times a second and the loop almost never waits, so an ending request tells
/// only when `waiting` is up: notifying each time would write to memory that every
/// connection's task shares, on whichever core it runs.
#[derive(Default)]
struct SlotFreed {
    notify: Notify,
    /// Up while the accept loop waits; read by an ending request under its connection's lock.
    waiting: AtomicBool,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Tracker>>> {
        // A panic while holding this lock cannot leave the map half-changed (every change is
        // one insert or remove), so a poisoned lock is still good.
        self.connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Shutdown: every connection is told, and closes or finishes its request.
    fn stop_all(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for tracker in self.lock().values() {
            tracker.changed.notify_one();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn open_sockets(&self) -> usize {
        self.open_sockets.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn admit(&self) -> Arc<Tracker> {
        self.open_sockets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tracker = Arc::new(Tracker::new(id, Arc::clone(&self.slot_freed)));
        self.lock().insert(id, Arc::clone(&tracker));
        tracker
    }

    /// Asks the oldest connection with no request in flight to close, and stops counting it.
    /// False when every connection has a request in flight.
    fn shed_oldest_idle(&self) -> bool {
        let mut connections = self.lock();
        let oldest_idle = connections
            .iter()
            .find(|(_, tracker)| tracker.state().in_flight == 0)
            .map(|(id, _)| *id);
        match oldest_idle.and_then(|id| connections.remove(&id)) {
            Some(tracker) => {
                tracker.state().shed = true;
                tracker.changed.notify_one();
                true
            }
            None => false,
        }
    }

    /// Called when a connection's socket has been dropped.
    fn release(&self, id: u64) {
        self.open_sockets
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if self.lock().remove(&id).is_some() {
            self.slot_freed.notify.notify_one();
        }
    }
}

/// What one connection is doing, kept by its reads, its requests and the accept loop.
struct Tracker {
    id: u64,
    state: Mutex<ConnectionState>,
    /// Notified when the accept loop sheds the connection, or on shutdown.
    changed: Notify,
    /// The registry's, told when the connection's last request in flight ends.
    slot_freed: Arc<SlotFreed>,
}

struct ConnectionState {
    /// Requests being answered (more than one only if hyper ever pipelines).
    in_flight: usize,
    /// When the connection last had no request (accepted, or its last response ended).
    idle_since: Instant,
    /// The arrival of the first byte of a request whose headers are not complete yet.
    head_started: Option<Instant>,
    /// Closed by the accept loop to admit a newer connection.
    shed: bool,
}

impl Tracker {
    fn new(id: u64, slot_freed: Arc<SlotFreed>) -> Self {
        Tracker {
            id,
            state: Mutex::new(ConnectionState {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
                shed: false,
            }),
            changed: Notify::new(),
            slot_freed,
        }
    }

    fn state(&self) -> MutexGuard<'_, ConnectionState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Bytes arrived: with no request in flight, they start a request's headers.
    fn bytes_read(&self) {
        let mut state = self.state();
        if state.in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        let mut state = self.state();
        state.in_flight += 1;
        state.head_started = None;
        InFlight(Arc::clone(self))
    }

    /// When the connection is to be closed if nothing changes; `None` while a request is in
    /// flight (its body has a deadline of its own, and a handler may take its time).
    fn deadline(&self, limits: &ServeLimits) -> Option<Instant> {
        let state = self.state();
        if state.shed {
            return Some(Instant::now());
        }
        if state.in_flight > 0 {
            return None;
        }
        // Once a request has begun, its headers have their own time, however long the
        // connection was idle before.
        Some(match state.head_started {
            Some(started) => started + limits.header_timeout,
            None => state.idle_since + limits.idle_timeout,
        })
    }
}

/// A request in flight; dropped when its response has been sent, or abandoned.
struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.idle_since = Instant::now();
        let tell = state.in_flight == 0 && self.0.slot_freed.waiting.load(Ordering::Relaxed);
        drop(state);
        if tell {
            self.0.slot_freed.notify.notify_one();
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    limits: Arc<ServeLimits>,
    registry: Arc<Registry>,
    tracker: Arc<Tracker>,
) {
    // Responses are small and often written in one go; waiting to coalesce them only adds
    // latency.
    let _ = stream.set_nodelay(true);
    // The client's address, for the audit trail's `source_ip_address`.
    let peer = stream.peer_addr().ok();
    let io = hyper_util::rt::TokioIo::new(TrackedStream {
        stream,
        tracker: Arc::clone(&tracker),
    });
    let service = {
        let (tracker, limits) = (Arc::clone(&tracker), Arc::clone(&limits));
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            let in_flight = tracker.request_started();
            let (router, limits) = (router.clone(), Arc::clone(&limits));
            async move {
                let response = answer(router, &limits, request).await;
                // The request counts as in flight until its response has been written.
                Ok::<_, std::convert::Infallible>(response.map(|body| InFlightBody {
                    body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        // The header and idle deadlines are this module's (hyper's header timer also runs
        // between keep-alive requests, which would make the idle timeout meaningless).
        .header_read_timeout(None)
        .max_headers(limits.max_header_count * HYPER_MAX_HEADERS_FACTOR);
    let connection = builder.serve_connection(io, service);
    let mut connection = Box::pin(connection);
    let mut closing = false;
    // Deadlines are looked at on a tick rather than re-armed whenever they move: a request's
    // start and end then cost no timer and no wake-up, which re-arming at each cost GET by id
    // a fifth of its throughput. A deadline is acted on within a tick of passing.
    let tick = limits.deadline_tick();
    let mut check = Box::pin(tokio::time::sleep(tick));
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                break;
            }
            () = tracker.changed.notified() => {
                if tracker.state().shed {
                    break;
                }
                if registry.stopping() && !closing {
                    closing = true;
                    if tracker.state().in_flight == 0 {
                        break; // nothing to finish: idle, or a request still sending its headers
                    }
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = check.as_mut() => {
                if tracker.deadline(&limits).is_some_and(|deadline| deadline <= Instant::now()) {
                    tracing::debug!(connection = tracker.id, "closing a connection past its deadline");
                    break;
                }
                check.as_mut().reset(Instant::now() + tick);
            }
        }
    }
    drop(connection); // the socket, before the registry is told it is gone
    registry.release(tracker.id);
}

/// The socket, telling its [`Tracker`] when bytes arrive.
struct TrackedStream {
    stream: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(context, buffer);
        if matches!(polled, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            self.tracker.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, data)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// One request: size limits first, then the router, with the body under its deadline.
async fn answer(
    router: Router,
    limits: &ServeLimits,
    request: Request<hyper::body::Incoming>,
) -> Response<Body> {
    if let Some(refused) = check_size(limits, &request) {
        return refused;
    }
    let mut router = router;
    if http_body::Body::is_end_stream(request.body()) {
        // No body to wait for (a GET, a DELETE): nothing can time out.
        let handled = tower_service::Service::call(&mut router, request.map(Body::new));
        return match handled.await {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        };
    }
    let path = request.uri().path().to_string();
    let (body_timed_out, timed_out) = oneshot::channel();
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            body,
            deadline: Box::pin(tokio::time::sleep(limits.body_timeout)),
            timed_out: Some(body_timed_out),
        })
    });
    let handled = tower_service::Service::call(&mut router, request);
    tokio::select! {
        response = handled => match response {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        },
        // The handler was still waiting for the body, so it has done nothing that needs
        // finishing: it is dropped and the client told why.
        Ok(()) = timed_out => {
            let mut response = error_response(
                &path,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    limits.body_timeout.as_secs_f64()
                ),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// 414 for a request target over `max_uri_bytes`, 431 for a header block over
/// `max_header_bytes` or `max_header_count`.
fn check_size<B>(limits: &ServeLimits, request: &Request<B>) -> Option<Response<Body>> {
    let path = request.uri().path();
    let target_length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target_length > limits.max_uri_bytes {
        return Some(error_response(
            path,
            StatusCode::URI_TOO_LONG,
            format!(
                "the request target is {target_length} bytes; at most {} are accepted",
                limits.max_uri_bytes
            ),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > limits.max_header_count || header_bytes > limits.max_header_bytes {
        return Some(error_response(
            path,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "the request has {} header fields of {header_bytes} bytes; at most {} fields \
                 of {} bytes are accepted",
                headers.len(),
                limits.max_header_count,
                limits.max_header_bytes
            ),
        ));
    }
    None
}

/// A request body that must arrive in full by a deadline. Past it, it tells [`answer`] and
/// yields nothing more, so the handler waiting on it is dropped and the client answered 408.
struct DeadlineBody {
    body: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timed_out: Option<oneshot::Sender<()>>,
}

impl http_body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.body).poll_frame(context) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(context).is_ready() {
            if let Some(timed_out) = self.timed_out.take() {
                let _ = timed_out.send(());
            }
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A response body that holds its request's [`InFlight`] until it has been written.
struct InFlightBody {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for InFlightBody {
    type Data = <Body as http_body::Body>::Data;
    type Error = <Body as http_body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(context)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
