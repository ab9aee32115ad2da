//! The HTTP side of `redline serve`: the webhook endpoint, /healthz and /metrics. The process
//! around it (workers, shutdown) is wired in `crate::app`.

mod metrics;
mod payload;
mod webhook;

pub use webhook::signature_matches;

use crate::github::GitHub;
use crate::queue::JobQueue;
use crate::settings::Settings;
use crate::store::Store;
use anyhow::Result;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::sync::Arc;

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
            settings,
            secret,
            github,
            deliveries: metrics::Deliveries::default(),
        })
    }

    fn count(&self, outcome: &'static str) {
        metrics::count(&self.deliveries, outcome);
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .route("/webhook", post(webhook::handle))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn healthz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.store.queue_depth().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

/// Prometheus' text format (OpenMetrics). Store figures cover every process sharing the database.
async fn metrics(State(state): State<Arc<AppState>>) -> axum::response::Response {
    let store = match state.store.metrics().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "metrics: store unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        }
    };
    let snapshot = metrics::Snapshot {
        store,
        queue_depth: state.store.queue_depth().await.unwrap_or(0),
        queue_kind: state.queue.kind(),
        github_remaining: state.github.as_ref().and_then(|g| g.rate_limit_remaining()),
    };
    match metrics::render(snapshot, &state.deliveries) {
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
