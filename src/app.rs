//! The composition root of the GitHub App: settings -> store -> queue -> GitHub client -> review
//! service (rules and knowledge loaded once, the LLM endpoints) -> the HTTP server and the
//! workers. `redline serve` and `redline worker` build one `App` and run it until SIGTERM or
//! Ctrl-C; then the listener closes, in-flight jobs get a grace period, and are released.

use crate::github::GitHub;
use crate::llm::LlmConfig;
use crate::queue::{EmbeddedQueue, JobQueue};
use crate::review::ReviewService;
use crate::server::{self, AppState};
use crate::settings::{QueueKind, Settings};
use crate::store::Store;
use crate::worker;
use anyhow::{Context, Result};
use secrecy::ExposeSecret;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a running App holds.
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    /// Present when this process runs workers.
    pub github: Option<Arc<GitHub>>,
    pub reviews: Arc<ReviewService>,
    /// The LLM endpoints (None: rules only), shared by reviews and answers in threads.
    pub llm: Option<LlmConfig>,
    /// Cancelled by SIGTERM or Ctrl-C.
    pub shutdown: CancellationToken,
}

/// What the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The webhook server, with `settings.workers` embedded workers.
    Serve,
    /// Workers only.
    Worker,
}

impl App {
    /// Wires the parts in order; a missing setting is reported before anything starts.
    pub async fn build(settings: Settings, role: Role) -> Result<App> {
        if role == Role::Serve {
            settings.require_webhook_secret()?;
        }
        let runs_workers = role == Role::Worker || settings.workers > 0;
        // The server alone also talks to GitHub, as the App, when it can: its reconciler asks
        // for failed deliveries again.
        let has_app = settings.github_app_id.is_some() && settings.github_private_key.is_some();
        let github = if runs_workers || (role == Role::Serve && has_app) {
            Some(open_github(&settings)?)
        } else {
            None
        };
        let store = Store::open(settings.database_url.expose_secret()).await?;
        let queue = open_queue(&settings, &store).await?;
        let llm = LlmConfig::from_env();
        let reviews = Arc::new(ReviewService::new(llm.clone())?);
        if reviews.has_llm() {
            redline_core::context::tokens::warm_up();
        }
        Ok(App {
            settings,
            store,
            queue,
            github,
            reviews,
            llm,
            shutdown: shutdown_on_signal(),
        })
    }

    /// `redline serve`: the webhook server, and the embedded workers when there are any.
    pub async fn serve(self) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.settings.listen)
            .await
            .with_context(|| format!("cannot listen on REDLINE_LISTEN={}", self.settings.listen))?;
        let addr = listener.local_addr()?;
        let pool = self.worker_context(self.settings.workers).map(|(ctx, n)| {
            let shutdown = self.shutdown.clone();
            tokio::spawn(async move { worker::run_pool(ctx, n, &worker_name(), shutdown).await })
        });
        let state = Arc::new(AppState::new(
            self.store.clone(),
            self.queue.clone(),
            self.settings.clone(),
            self.github.clone(),
        )?);
        let reconciler = self.reconciler(&state);
        let limits = server::Limits {
            header_timeout: self.settings.header_timeout,
            max_header_bytes: self.settings.max_header_bytes,
            max_connections: server::effective_connection_cap(self.settings.max_connections),
            shutdown_grace: worker::shutdown_grace(),
        };
        // The address on stdout, so that scripts and tests can find a port chosen by the system.
        println!("redline listening on http://{addr}");
        tracing::info!(%addr, queue = self.queue.kind(), workers = self.settings.workers, max_connections = limits.max_connections, "redline serve started");
        server::serve(
            listener,
            server::router(state.clone()),
            limits,
            state.connections.clone(),
            self.shutdown.clone(),
        )
        .await;
        if let Some(r) = reconciler {
            let _ = r.await;
        }
        if let Some(p) = pool {
            let _ = p.await;
        }
        Ok(())
    }

    /// The reconciler's task, when the App's credentials are set and it is not switched off.
    fn reconciler(&self, state: &Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
        let Some(github) = self.github.clone() else {
            tracing::warn!(
                "no REDLINE_GITHUB_APP_ID/REDLINE_GITHUB_PRIVATE_KEY: deliveries refused during an outage are not redelivered"
            );
            return None;
        };
        let reconciler = server::Reconciler {
            state: state.clone(),
            github,
        };
        let shutdown = self.shutdown.clone();
        Some(tokio::spawn(reconciler.run(shutdown)))
    }

    /// `redline worker`: workers only, at least one.
    pub async fn run_workers(self) -> Result<()> {
        let n = self.settings.workers.max(1);
        tracing::info!(
            queue = self.queue.kind(),
            workers = n,
            "redline worker started"
        );
        println!(
            "redline worker running {n} worker(s) on the {} queue",
            self.queue.kind()
        );
        if let Some((ctx, n)) = self.worker_context(n) {
            worker::run_pool(ctx, n, &worker_name(), self.shutdown.clone()).await;
        }
        Ok(())
    }

    fn worker_context(&self, n: usize) -> Option<(Arc<worker::Context>, usize)> {
        let github = self.github.clone().filter(|_| n > 0)?;
        Some((
            Arc::new(worker::Context {
                store: self.store.clone(),
                queue: self.queue.clone(),
                github,
                settings: self.settings.clone(),
                reviews: self.reviews.clone(),
                llm: self.llm.clone(),
                knowledge: tokio::sync::OnceCell::new(),
            }),
            n,
        ))
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
fn open_github(settings: &Settings) -> Result<Arc<GitHub>> {
    let (app_id, key) = settings.require_github_app()?;
    Ok(Arc::new(GitHub::from_key_file(
        app_id,
        key,
        &settings.github_api_url,
        settings.github_write_interval,
    )?))
}

/// A token cancelled by SIGTERM or Ctrl-C.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down: finishing in-flight jobs");
        t.cancel();
    });
    token
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
