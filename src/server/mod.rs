//! `redline serve`: the webhook endpoint, /healthz and /metrics, with embedded workers; and
//! `redline worker`: the workers alone. Both stop on SIGTERM or Ctrl-C: the listener closes,
//! in-flight jobs get a grace period to finish, then are released to the queue.

mod webhook;

pub use webhook::signature_matches;

use crate::github::GitHub;
use crate::queue::{EmbeddedQueue, JobQueue};
use crate::settings::{QueueKind, Settings};
use crate::store::Store;
use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
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
    fn count(&self, outcome: &'static str) {
        *self.deliveries.lock().unwrap().entry(outcome).or_default() += 1;
    }
}

/// Opens the queue the settings name.
pub async fn open_queue(settings: &Settings, store: &Store) -> Result<Arc<dyn JobQueue>> {
    match settings.queue {
        QueueKind::Embedded => Ok(Arc::new(EmbeddedQueue::new(store.clone(), settings.lease))),
        #[cfg(feature = "sqs")]
        QueueKind::Sqs => Ok(Arc::new(
            crate::queue::SqsQueue::connect(
                store.clone(),
                settings.sqs_queue_url.clone().expect("checked by Settings"),
                settings.sqs_priority_queue_url.clone(),
                settings.lease,
            )
            .await?,
        )),
        #[cfg(not(feature = "sqs"))]
        QueueKind::Sqs => anyhow::bail!("this build has no SQS support"),
    }
}

/// The GitHub client the workers use.
pub fn open_github(settings: &Settings) -> Result<Arc<GitHub>> {
    let (app_id, key) = settings.require_github_app()?;
    Ok(Arc::new(GitHub::from_key_file(
        app_id,
        key,
        &settings.github_api_url,
        settings.github_write_interval,
    )?))
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

/// A flag set by SIGTERM or Ctrl-C.
fn shutdown_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing in-flight jobs");
        f.store(true, Ordering::Relaxed);
    });
    flag
}

/// A name for this process's workers in leases and logs, unique even when containers share a
/// host name and a pid: the host, the pid, and the start time in nanoseconds.
fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}:{}:{nanos:09}", std::process::id())
}

fn worker_context(
    settings: &Settings,
    store: &Store,
    queue: Arc<dyn JobQueue>,
    github: Arc<GitHub>,
) -> Arc<crate::worker::Context> {
    Arc::new(crate::worker::Context {
        store: store.clone(),
        queue,
        github,
        settings: settings.clone(),
        llm: crate::llm::LlmConfig::from_env(),
    })
}

/// `redline serve`.
pub async fn serve(settings: Settings) -> Result<()> {
    let secret = settings.require_webhook_secret()?.as_bytes().to_vec();
    let github = if settings.workers > 0 {
        Some(open_github(&settings)?)
    } else {
        None
    };
    let store = Store::open(&settings.database_url).await?;
    let queue = open_queue(&settings, &store).await?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("cannot listen on REDLINE_LISTEN={}", settings.listen))?;
    let addr = listener.local_addr()?;
    let shutdown = shutdown_flag();
    let pool = github.clone().map(|gh| {
        let ctx = worker_context(&settings, &store, queue.clone(), gh);
        let n = settings.workers;
        let shutdown = shutdown.clone();
        tokio::spawn(async move { crate::worker::run_pool(ctx, n, &worker_name(), shutdown).await })
    });
    let state = Arc::new(AppState {
        store,
        queue,
        settings: settings.clone(),
        secret,
        github,
        deliveries: Mutex::new(BTreeMap::new()),
    });
    // The address on stdout, so that scripts and tests can find a port chosen by the system.
    println!("redline listening on http://{addr}");
    tracing::info!(%addr, queue = state.queue.kind(), workers = settings.workers, "redline serve started");
    let stop = shutdown.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
        .await?;
    if let Some(p) = pool {
        let _ = p.await;
    }
    Ok(())
}

/// `redline worker`.
pub async fn worker(settings: Settings) -> Result<()> {
    let github = open_github(&settings)?;
    let store = Store::open(&settings.database_url).await?;
    let queue = open_queue(&settings, &store).await?;
    let shutdown = shutdown_flag();
    let n = settings.workers.max(1);
    tracing::info!(queue = queue.kind(), workers = n, "redline worker started");
    println!(
        "redline worker running {n} worker(s) on the {} queue",
        queue.kind()
    );
    let ctx = worker_context(&settings, &store, queue, github);
    crate::worker::run_pool(ctx, n, &worker_name(), shutdown).await;
    Ok(())
}
