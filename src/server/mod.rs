//! The HTTP side of `redline serve`: the webhook endpoint, /healthz and /metrics. The process
//! around it (workers, shutdown) is wired in `crate::app`.

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
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// What the HTTP handlers share.
pub struct AppState {
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    pub settings: Settings,
    secret: Vec<u8>,
    /// Present when this process also runs workers (its rate-limit figures go on /metrics).
    pub github: Option<Arc<GitHub>>,
    /// Webhook deliveries by outcome, since start.
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
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
            deliveries: Mutex::new(BTreeMap::new()),
        })
    }

    fn count(&self, outcome: &'static str) {
        *self.deliveries.lock().unwrap().entry(outcome).or_default() += 1;
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

/// Prometheus text format. Job, review and cost figures come from the store, so any process
/// sharing the database shows the whole deployment.
async fn metrics(State(state): State<Arc<AppState>>) -> axum::response::Response {
    let m = match state.store.metrics().await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "metrics: store unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        }
    };
    let depth = state.store.queue_depth().await.unwrap_or(0);
    let mut out = String::new();
    let head = |o: &mut String, name: &str, kind: &str, help: &str| {
        o.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    };
    head(
        &mut out,
        "redline_queue_depth",
        "gauge",
        "Jobs waiting to run (queued or waiting to retry).",
    );
    out.push_str(&format!(
        "redline_queue_depth{{queue=\"{}\"}} {depth}\n",
        state.queue.kind()
    ));
    head(
        &mut out,
        "redline_jobs",
        "gauge",
        "Jobs in the store by status.",
    );
    for status in ["queued", "running", "failed", "done", "dead", "cancelled"] {
        let n = m
            .jobs_by_status
            .iter()
            .find(|(s, _)| s == status)
            .map(|(_, n)| *n)
            .unwrap_or(0);
        out.push_str(&format!("redline_jobs{{status=\"{status}\"}} {n}\n"));
    }
    head(
        &mut out,
        "redline_review_latency_seconds",
        "histogram",
        "Time from claiming a job to its review being posted.",
    );
    for (le, n) in &m.latency_buckets {
        out.push_str(&format!(
            "redline_review_latency_seconds_bucket{{le=\"{}\"}} {n}\n",
            *le as f64 / 1000.0
        ));
    }
    out.push_str(&format!(
        "redline_review_latency_seconds_bucket{{le=\"+Inf\"}} {}\n",
        m.reviews
    ));
    out.push_str(&format!(
        "redline_review_latency_seconds_sum {}\n",
        m.latency_sum_ms as f64 / 1000.0
    ));
    out.push_str(&format!(
        "redline_review_latency_seconds_count {}\n",
        m.reviews
    ));
    head(
        &mut out,
        "redline_llm_tokens_total",
        "counter",
        "LLM tokens of stored reviews.",
    );
    out.push_str(&format!(
        "redline_llm_tokens_total{{direction=\"in\"}} {}\n",
        m.tokens_in
    ));
    out.push_str(&format!(
        "redline_llm_tokens_total{{direction=\"out\"}} {}\n",
        m.tokens_out
    ));
    head(
        &mut out,
        "redline_llm_cost_usd_total",
        "counter",
        "LLM cost of stored reviews, in US dollars.",
    );
    out.push_str(&format!("redline_llm_cost_usd_total {}\n", m.cost_usd));
    head(
        &mut out,
        "redline_findings",
        "gauge",
        "Posted findings by outcome: open, fixed (the code changed), dismissed.",
    );
    let outcome = |o: &str| {
        m.findings_by_outcome
            .iter()
            .find(|(x, _)| x == o)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    };
    for o in ["open", "fixed", "dismissed"] {
        out.push_str(&format!(
            "redline_findings{{outcome=\"{o}\"}} {}\n",
            outcome(o)
        ));
    }
    let decided = outcome("fixed") + outcome("dismissed");
    if decided > 0 {
        head(
            &mut out,
            "redline_acceptance_rate",
            "gauge",
            "Fixed findings over decided ones (fixed + dismissed).",
        );
        out.push_str(&format!(
            "redline_acceptance_rate {}\n",
            outcome("fixed") as f64 / decided as f64
        ));
    }
    head(
        &mut out,
        "redline_webhook_deliveries_total",
        "counter",
        "Webhook deliveries this process answered, by outcome.",
    );
    for (outcome, n) in state.deliveries.lock().unwrap().iter() {
        out.push_str(&format!(
            "redline_webhook_deliveries_total{{outcome=\"{outcome}\"}} {n}\n"
        ));
    }
    head(
        &mut out,
        "redline_deliveries_stored",
        "gauge",
        "Distinct deliveries recorded in the store.",
    );
    out.push_str(&format!("redline_deliveries_stored {}\n", m.deliveries));
    if let Some(r) = state.github.as_ref().and_then(|g| g.rate_limit_remaining()) {
        head(
            &mut out,
            "redline_github_rate_limit_remaining",
            "gauge",
            "The last x-ratelimit-remaining GitHub sent.",
        );
        out.push_str(&format!("redline_github_rate_limit_remaining {r}\n"));
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}
