//! The HTTP side of `redline serve`: the webhook endpoint, /healthz and /metrics, on the
//! connection loop of `listen` (timeouts, header and connection limits), with a bound on the
//! requests in flight and on the webhook bodies held in memory, and a deadline on every store
//! call so that an unreachable database is a quick 503. The reconciler (`reconcile`) asks GitHub
//! to redeliver what was refused meanwhile. The process around it is wired in `crate::app`.

mod command;
mod listen;
mod metrics;
mod payload;
mod reconcile;
mod webhook;

pub use listen::{ConnStats, Limits, effective_connection_cap, serve};
pub use reconcile::{Reconciler, StoreHealth};
pub use webhook::signature_matches;

use crate::github::GitHub;
use crate::queue::JobQueue;
use crate::settings::Settings;
use crate::store::Store;
use anyhow::Result;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;

/// What the HTTP handlers share.
pub struct AppState {
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    pub settings: Settings,
    secret: Vec<u8>,
    /// Present when this process also runs workers (its rate-limit figures go on /metrics).
    pub github: Option<Arc<GitHub>>,
    /// Webhook deliveries by outcome, since start.
    deliveries: metrics::Deliveries,
    /// Bytes of webhook bodies that may be in memory at once (one permit a byte).
    body_budget: Arc<Semaphore>,
    /// Whether the store failed lately: the reconciler runs when it answers again.
    pub health: Arc<StoreHealth>,
    /// The listener's connection figures, for /metrics.
    pub connections: Arc<ConnStats>,
    /// What the reconciler did, for /metrics.
    pub reconciles: metrics::Reconciles,
}

impl AppState {
    /// The state of a server; the webhook secret must be set.
    pub fn new(
        store: Store,
        queue: Arc<dyn JobQueue>,
        settings: Settings,
        github: Option<Arc<GitHub>>,
    ) -> Result<AppState> {
        let secret = settings.require_webhook_secret()?.as_bytes().to_vec();
        Ok(AppState {
            store,
            queue,
            body_budget: Arc::new(Semaphore::new(settings.max_buffered_body_bytes)),
            settings,
            secret,
            github,
            deliveries: metrics::Deliveries::default(),
            health: Arc::new(StoreHealth::default()),
            connections: Arc::new(ConnStats::default()),
            reconciles: metrics::Reconciles::default(),
        })
    }

    fn count(&self, outcome: &'static str) {
        metrics::count(&self.deliveries, outcome);
    }

    /// Runs a store call under the store deadline; a failure or a timeout marks the store as
    /// failing (for the reconciler) and comes back as an error.
    pub async fn store_call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let deadline = self.settings.store_timeout;
        let result = match tokio::time::timeout(deadline, call).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "the store did not answer within {} ms",
                deadline.as_millis()
            )),
        };
        if result.is_err() {
            self.health.failed();
        }
        result
    }
}

/// The routes and their limits: the webhook may take its body's time plus the store's deadline,
/// and is refused at once (503) past `max_in_flight` requests; bodies over `max_body_bytes` are
/// refused from their `Content-Length` (413) before a byte is read.
pub fn router(state: Arc<AppState>) -> Router {
    let s = &state.settings;
    let deadline = s.body_timeout + s.store_timeout + Duration::from_secs(1);
    let limited = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                axum::Json(serde_json::json!({ "outcome": "busy: too many requests in flight" })),
            )
        }))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            s.max_in_flight,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            deadline,
        ));
    let max_body = s.max_body_bytes;
    Router::new()
        .route("/webhook", post(webhook::handle))
        .route("/metrics", get(metrics))
        .route_layer(limited)
        // /healthz stays outside the in-flight bound: it must answer under load.
        .route("/healthz", get(healthz))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(max_body))
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.store_call(state.store.queue_depth()).await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

/// Prometheus' text format (OpenMetrics). Store figures cover every process sharing the database.
async fn metrics(State(state): State<Arc<AppState>>) -> axum::response::Response {
    let store = match state.store_call(state.store.metrics()).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "metrics: store unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        }
    };
    let c = &state.connections;
    let budget = state.settings.max_buffered_body_bytes as u64;
    let snapshot = metrics::Snapshot {
        store,
        queue_depth: state
            .store_call(state.store.queue_depth())
            .await
            .unwrap_or(0),
        queue_kind: state.queue.kind(),
        github_remaining: state.github.as_ref().and_then(|g| g.rate_limit_remaining()),
        connections: metrics::Connections {
            open: c.open.load(Ordering::Relaxed) as u64,
            cap: c.cap.load(Ordering::Relaxed) as u64,
            accepted: c.accepted.load(Ordering::Relaxed),
            evicted: c.evicted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
        },
        buffered_body_bytes: (
            budget.saturating_sub(state.body_budget.available_permits() as u64),
            budget,
        ),
    };
    match metrics::render(snapshot, &state.deliveries, &state.reconciles) {
        Ok(text) => (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}
