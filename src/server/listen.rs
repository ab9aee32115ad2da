//! The server's connections, on hyper's HTTP/1 connection builder: a client has
//! `REDLINE_HEADER_TIMEOUT_SECS` to send a request's head (hyper's header read timeout, also the
//! idle time of a kept-alive connection), the head may be `REDLINE_MAX_HEADER_BYTES` long (hyper's
//! read buffer; longer is 431), and at most `REDLINE_MAX_CONNECTIONS` connections are open, fewer
//! when the open-file limit is lower. A connection over the cap closes the oldest connection that
//! has no request in progress: a flood of idle or half-sent connections pushes out its own, and a
//! client that sends its request at once (GitHub, a health check) is always served.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// File descriptors kept for everything but client connections: the database pool, GitHub and
/// LLM clients, log files, the runtime.
const FD_RESERVE: u64 = 128;

/// The fewest connections the server runs with, whatever the open-file limit says.
const MIN_CONNECTIONS: usize = 16;

/// How the server treats its connections.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    /// After `effective_connection_cap`.
    pub max_connections: usize,
    /// How long open connections may finish their requests at shutdown.
    pub shutdown_grace: Duration,
}

/// Connection figures for /metrics.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub open: AtomicUsize,
    pub accepted: AtomicU64,
    /// Closed to make room for a new connection.
    pub evicted: AtomicU64,
    /// Closed at once: every open connection had a request in progress.
    pub refused: AtomicU64,
    /// The cap in force.
    pub cap: AtomicUsize,
}

/// The connection cap: `configured`, lowered to fit the open-file limit. The soft limit is first
/// raised to the hard one (a shell's default of 1,024 is far below what a server needs).
pub fn effective_connection_cap(configured: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(current) = limit.current {
        let target = limit.maximum.unwrap_or(u64::MAX).min(1 << 20);
        if target > current {
            let raised = rustix::process::Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(error = %e, "cannot raise the open-file limit");
            }
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fits = soft.saturating_sub(FD_RESERVE).min(usize::MAX as u64) as usize;
    if fits < configured {
        tracing::warn!(
            open_file_limit = soft,
            configured,
            cap = fits.max(MIN_CONNECTIONS),
            "REDLINE_MAX_CONNECTIONS lowered to fit the open-file limit"
        );
    }
    configured.min(fits).max(MIN_CONNECTIONS)
}

/// One open connection as the tracker sees it.
#[derive(Clone)]
struct Slot {
    /// Requests in progress on it.
    busy: Arc<AtomicUsize>,
    /// Cancelled to close it.
    evict: CancellationToken,
}

/// The open connections, oldest first.
struct Tracker {
    max: usize,
    live: Mutex<(u64, BTreeMap<u64, Slot>)>,
    stats: Arc<ConnStats>,
}

impl Tracker {
    /// Room for one more connection: its id and slot; over the cap, the oldest connection with no
    /// request in progress is closed first. None when every connection has one.
    fn admit(&self) -> Option<(u64, Slot)> {
        let mut g = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if g.1.len() >= self.max && !self.evict_one(&mut g.1) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        g.0 += 1;
        let id = g.0;
        let slot = Slot {
            busy: Arc::new(AtomicUsize::new(0)),
            evict: CancellationToken::new(),
        };
        g.1.insert(id, slot.clone());
        self.stats.open.store(g.1.len(), Ordering::Relaxed);
        Some((id, slot))
    }

    /// Closes the oldest idle connection; false when there is none.
    fn evict_one(&self, live: &mut BTreeMap<u64, Slot>) -> bool {
        let Some(id) = live
            .iter()
            .find(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id)
        else {
            return false;
        };
        if let Some(s) = live.remove(&id) {
            s.evict.cancel();
        }
        self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        self.stats.open.store(live.len(), Ordering::Relaxed);
        true
    }

    /// Makes room when the process ran out of file descriptors.
    fn evict_for_fds(&self) {
        let mut g = self.live.lock().unwrap_or_else(|e| e.into_inner());
        self.evict_one(&mut g.1);
    }

    fn release(&self, id: u64) {
        let mut g = self.live.lock().unwrap_or_else(|e| e.into_inner());
        g.1.remove(&id);
        self.stats.open.store(g.1.len(), Ordering::Relaxed);
    }
}

/// Counts a request in progress on its connection while it lives.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(n: &Arc<AtomicUsize>) -> Busy {
        n.fetch_add(1, Ordering::AcqRel);
        Busy(n.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets open requests finish
/// (for at most `limits.shutdown_grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnStats>,
    shutdown: CancellationToken,
) {
    stats.cap.store(limits.max_connections, Ordering::Relaxed);
    let tracker = Arc::new(Tracker {
        max: limits.max_connections,
        live: Mutex::new((0, BTreeMap::new())),
        stats: stats.clone(),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes);
    let tasks = TaskTracker::new();
    let mut last_accept_warning: Option<std::time::Instant> = None;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors (or another transient failure): make room, then
                    // accept again shortly rather than spin; say so at most once a second.
                    if last_accept_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "accept failed; closing an idle connection");
                        last_accept_warning = Some(std::time::Instant::now());
                    }
                    tracker.evict_for_fds();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let Some((id, slot)) = tracker.admit() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let busy = slot.busy.clone();
        let router = app.clone();
        let service = tower::service_fn(move |req: http::Request<Incoming>| {
            let guard = Busy::new(&busy);
            let router = router.clone();
            async move {
                let response = router.oneshot(req.map(axum::body::Body::new)).await;
                drop(guard);
                response
            }
        });
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let (tracker, shutdown) = (tracker.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = slot.evict.cancelled() => {}
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            tracker.release(id);
        });
    }
    drop(listener);
    tasks.close();
    if tokio::time::timeout(limits.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace: closing them");
    }
}
