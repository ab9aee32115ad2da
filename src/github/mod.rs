//! GitHub access as the App: a JWT (RS256) buys an installation token, which octocrab caches and
//! renews shortly before it expires. Every request goes through `request`, which honours GitHub's
//! limits: `x-ratelimit-remaining`/`-reset`, `retry-after` on 403/429 secondary limits, backoff
//! with jitter on 5xx, and at least `write_interval` between content-creating requests of one
//! installation. Errors carry GitHub's status and message, never a token.

mod api;
pub mod markdown;
pub mod post;

use crate::ids::InstallationId;
use anyhow::{Context, Result};
use backon::Retryable;
use http::Method;
use octocrab::Octocrab;
use octocrab::models::AppId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use api::{
    Comparison, HookDelivery, IssueComment, MAX_COMPARE_FILES, PrFile, PrRef, PullRequest,
    Reactions, ReviewComment,
};

/// The installation a client built `with_token` files its requests under (no App installation
/// has id 0).
pub const TOKEN_INSTALLATION: InstallationId = InstallationId(0);

/// A failed GitHub request.
#[derive(Debug, thiserror::Error)]
#[error("GitHub {method} {path}: {}{message}", status.map(|s| format!("{s} ")).unwrap_or_default())]
pub struct GitHubError {
    pub method: Method,
    pub path: String,
    pub status: Option<u16>,
    /// GitHub's own message (and its `errors`), or the transport error.
    pub message: String,
    /// Whether trying the job again later may succeed (limits, 5xx, network).
    pub retryable: bool,
    /// Set for rate limits: how long until GitHub accepts requests again. The worker gives the
    /// job back for that long without counting an attempt.
    pub retry_after: Option<Duration>,
}

/// A response's status, headers and body.
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

/// How long to wait on limits before giving the job back for a later retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request (the first included).
    pub attempts: u32,
    /// Wait for a 403/429 without `retry-after` (GitHub suggests a minute).
    pub secondary_wait: Duration,
    /// Longest wait this process sits through; beyond it the job is retried later.
    pub max_wait: Duration,
    /// First backoff after a 5xx or network error (doubled each time, with jitter).
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            secondary_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(120),
            backoff: Duration::from_millis(500),
        }
    }
}

pub struct GitHub {
    app: Octocrab,
    /// One client per installation, shared: octocrab keeps the installation token inside it (and a
    /// clone would start with a copy, minting again).
    installations: Mutex<HashMap<InstallationId, Arc<Octocrab>>>,
    /// When each installation may next create content.
    next_write: tokio::sync::Mutex<HashMap<InstallationId, tokio::time::Instant>>,
    write_interval: Duration,
    retry: RetryPolicy,
    /// Per installation (limits are per installation): the last `x-ratelimit-remaining` and its
    /// reset (unix seconds).
    limits: Mutex<HashMap<InstallationId, (i64, i64)>>,
    /// The last `x-ratelimit-remaining` seen from any installation, for /metrics (-1: none yet).
    rate_remaining: AtomicI64,
}

impl GitHub {
    /// `key_pem`: the App's private key (PKCS#1 as GitHub issues it, or PKCS#8).
    pub fn new(
        app_id: u64,
        key_pem: &[u8],
        api_url: &str,
        write_interval: Duration,
    ) -> Result<GitHub> {
        let key = octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(key_pem)
            // The key's bytes never go into the message.
            .map_err(|_| {
                anyhow::anyhow!("REDLINE_GITHUB_PRIVATE_KEY is not an RSA private key in PEM form")
            })?;
        let app = Octocrab::builder()
            .app(AppId(app_id), key)
            .base_uri(api_url)
            .with_context(|| format!("REDLINE_GITHUB_API_URL is not a valid URL: {api_url}"))?
            // Our own retries (below) know GitHub's limits; octocrab's retry immediately.
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .context("cannot build the GitHub client")?;
        Ok(GitHub {
            app,
            installations: Mutex::new(HashMap::new()),
            next_write: tokio::sync::Mutex::new(HashMap::new()),
            write_interval,
            retry: RetryPolicy::default(),
            limits: Mutex::new(HashMap::new()),
            rate_remaining: AtomicI64::new(-1),
        })
    }

    /// Reads the key file named by `REDLINE_GITHUB_PRIVATE_KEY`.
    pub fn from_key_file(
        app_id: u64,
        key_path: &std::path::Path,
        api_url: &str,
        write_interval: Duration,
    ) -> Result<GitHub> {
        let pem = std::fs::read(key_path).with_context(|| {
            format!(
                "cannot read REDLINE_GITHUB_PRIVATE_KEY {}",
                key_path.display()
            )
        })?;
        GitHub::new(app_id, &pem, api_url, write_interval)
    }

    /// A client for one given token, sent as `Authorization: Bearer` (GitHub Actions'
    /// `GITHUB_TOKEN`, or a personal token) instead of the App's installation tokens. Requests
    /// name the installation `TOKEN_INSTALLATION`, under which the token's client is kept, so
    /// every call of this module (`request`, posting, check runs) works unchanged. The token never
    /// appears in an error.
    pub fn with_token(
        token: secrecy::SecretString,
        api_url: &str,
        write_interval: Duration,
    ) -> Result<GitHub> {
        use secrecy::ExposeSecret;
        // octocrab puts the token in a header and panics on a byte a header cannot carry.
        let t = token.expose_secret();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            anyhow::bail!(
                "the GitHub token is empty or holds spaces or control characters (a header cannot carry them)"
            );
        }
        let crab = Octocrab::builder()
            .personal_token(token)
            .base_uri(api_url)
            .with_context(|| format!("the GitHub API URL is not a valid URL: {api_url}"))?
            .add_retry_config(octocrab::service::middleware::retry::RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .context("cannot build the GitHub client")?;
        let shared = Arc::new(crab.clone());
        Ok(GitHub {
            app: crab,
            installations: Mutex::new(HashMap::from([(TOKEN_INSTALLATION, shared)])),
            next_write: tokio::sync::Mutex::new(HashMap::new()),
            write_interval,
            retry: RetryPolicy::default(),
            limits: Mutex::new(HashMap::new()),
            rate_remaining: AtomicI64::new(-1),
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> GitHub {
        self.retry = retry;
        self
    }

    /// The last `x-ratelimit-remaining` GitHub sent (None before the first response).
    pub fn rate_limit_remaining(&self) -> Option<i64> {
        Some(self.rate_remaining.load(Ordering::Relaxed)).filter(|v| *v >= 0)
    }

    /// Drops an installation's client and its cached token (suspended, deleted, permissions changed).
    pub fn forget_installation(&self, id: InstallationId) {
        self.installations.lock().unwrap().remove(&id);
    }

    fn installation(&self, id: InstallationId) -> Result<Arc<Octocrab>, GitHubError> {
        let mut map = self.installations.lock().unwrap();
        if let Some(c) = map.get(&id) {
            return Ok(c.clone());
        }
        let c = self
            .app
            .installation(octocrab::models::InstallationId(id.0))
            .map_err(|e| GitHubError {
                method: Method::POST,
                path: format!("/app/installations/{id}/access_tokens"),
                status: None,
                message: e.to_string(),
                retryable: false,
                retry_after: None,
            })?;
        let c = Arc::new(c);
        map.insert(id, c.clone());
        Ok(c)
    }

    /// Sends one request for an installation, waiting out limits and retrying transient failures.
    /// Non-2xx answers that retrying cannot fix come back as errors with GitHub's message.
    /// Requests that create content are retried only after a rate-limit answer (GitHub created
    /// nothing then): after a network error or a 5xx the content may exist, and a blind retry
    /// could post it twice, so the error goes up and the job's retry checks what exists first.
    pub async fn request(
        &self,
        installation: InstallationId,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GitHubError> {
        let crab = self.installation(installation)?;
        self.send(&crab, Some(installation), method, path, body)
            .await
    }

    /// A request as the App itself (a JWT signed with its key, no installation): the App's own
    /// endpoints, such as its webhook deliveries. Same retries as `request`.
    pub async fn app_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GitHubError> {
        self.send(&self.app, None, method, path, body).await
    }

    /// Sends with `crab`, as `installation` (None: as the App), with retries and backoff.
    async fn send(
        &self,
        crab: &Octocrab,
        installation: Option<InstallationId>,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, GitHubError> {
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.retry.backoff)
            .with_factor(2.0)
            .with_jitter()
            .without_max_delay()
            .with_max_times(self.retry.attempts.saturating_sub(1) as usize);
        (|| self.attempt(crab, installation, &method, path, body))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|f: &Failed| f.wait.is_some())
            .adjust(|f: &Failed, delay| match (f.wait, delay) {
                // A rate limit's own wait, then half a backoff of jitter so that workers do not
                // all return at once.
                (Some(Wait::Limit(wait)), Some(d)) => Some(wait + d / 2),
                (_, delay) => delay,
            })
            .notify(|f: &Failed, after: Duration| {
                let (status, wait_secs) = (f.error.status, after.as_secs_f64());
                match (f.wait, status) {
                    (Some(Wait::Limit(_)), _) => {
                        tracing::warn!(%method, path, ?status, wait_secs, "GitHub rate limit; waiting")
                    }
                    (_, Some(_)) => {
                        tracing::warn!(%method, path, ?status, wait_secs, "GitHub server error; retrying")
                    }
                    _ => {
                        tracing::warn!(%method, path, wait_secs, error = %f.error.message, "GitHub request failed; retrying")
                    }
                }
            })
            .await
            .map_err(|f| f.error)
    }

    /// One try of a request; a failure says whether (and why) another try may succeed.
    async fn attempt(
        &self,
        crab: &Octocrab,
        installation: Option<InstallationId>,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, Failed> {
        let creates = *method != Method::GET;
        let err = |status: Option<u16>, message: String, retryable: bool| GitHubError {
            method: method.clone(),
            path: path.split('?').next().unwrap_or(path).to_string(),
            status,
            message,
            retryable,
            retry_after: None,
        };
        match installation.and_then(|i| self.primary_limit_wait(i)) {
            Some(wait) if wait > self.retry.max_wait => {
                return Err(Failed::last(GitHubError {
                    retry_after: Some(wait),
                    ..err(
                        Some(403),
                        format!("API rate limit spent for {}s", wait.as_secs()),
                        true,
                    )
                }));
            }
            Some(wait) => {
                tracing::warn!(
                    installation = installation.map(|i| i.0),
                    wait_secs = wait.as_secs(),
                    "GitHub API rate limit spent; waiting for its reset"
                );
                tokio::time::sleep(wait).await;
            }
            None => {}
        }
        if let Some(i) = installation.filter(|_| creates) {
            self.pace(i).await;
        }
        let sent = if *method == Method::POST {
            crab._post(path, body).await
        } else if *method == Method::DELETE {
            crab._delete(path, body).await
        } else if *method == Method::PATCH {
            crab._patch(path, body).await
        } else {
            crab._get(path).await
        };
        let resp = match sent {
            Ok(r) => r,
            Err(octocrab::Error::GitHub { source, .. })
                if source.status_code.is_client_error() && installation.is_some() =>
            {
                // Minting the installation token was refused (bad key, app id, or installation).
                let status = source.status_code.as_u16();
                return Err(Failed::last(err(
                    Some(status),
                    format!("installation token refused: {}", source.message),
                    false,
                )));
            }
            Err(e) => {
                // Transport errors say nothing secret.
                let e = err(None, transport_message(&e), true);
                return Err(if creates {
                    Failed::last(e)
                } else {
                    Failed::again(e)
                });
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(i) = installation {
            self.note_rate_limit(i, &headers);
        }
        let text = crab
            .body_to_string(resp)
            .await
            .map_err(|e| Failed::last(err(Some(status), transport_message(&e), true)))?;
        if (200..300).contains(&status) {
            return Ok(Response {
                status,
                headers,
                body: text,
            });
        }
        let message = github_message(&text);
        let header = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
        };
        match status {
            403 | 429
                if header("retry-after").is_some()
                    || status == 429
                    || is_rate_limit_message(&message) =>
            {
                let wait = if let Some(secs) = header("retry-after") {
                    Duration::from_secs(secs.max(0) as u64)
                } else if header("x-ratelimit-remaining") == Some(0) {
                    let reset = header("x-ratelimit-reset").unwrap_or(0);
                    Duration::from_secs((reset - unix_now()).max(1) as u64)
                } else {
                    self.retry.secondary_wait
                };
                let e = GitHubError {
                    retry_after: Some(wait),
                    ..err(
                        Some(status),
                        format!("{message} (rate limited; retry after {}s)", wait.as_secs()),
                        true,
                    )
                };
                Err(if wait > self.retry.max_wait {
                    Failed::last(e)
                } else {
                    Failed {
                        error: e,
                        wait: Some(Wait::Limit(wait)),
                    }
                })
            }
            500..=599 if !creates => Err(Failed::again(err(Some(status), message, true))),
            _ => Err(Failed::last(err(Some(status), message, status >= 500))),
        }
    }

    fn note_rate_limit(&self, installation: InstallationId, headers: &http::HeaderMap) {
        let get = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        if let (Some(remaining), Some(reset)) =
            (get("x-ratelimit-remaining"), get("x-ratelimit-reset"))
        {
            self.limits
                .lock()
                .unwrap()
                .insert(installation, (remaining, reset));
            self.rate_remaining.store(remaining, Ordering::Relaxed);
        }
    }

    /// How long to wait before the next request of an installation whose primary limit is spent.
    fn primary_limit_wait(&self, installation: InstallationId) -> Option<Duration> {
        let (remaining, reset) = *self.limits.lock().unwrap().get(&installation)?;
        let now = unix_now();
        (remaining == 0 && reset > now).then(|| Duration::from_secs((reset - now) as u64))
    }

    /// Content-creating requests of one installation go at least `write_interval` apart.
    async fn pace(&self, installation: InstallationId) {
        let wait_until = {
            let mut next = self.next_write.lock().await;
            let now = tokio::time::Instant::now();
            let slot = next.get(&installation).copied().unwrap_or(now).max(now);
            next.insert(installation, slot + self.write_interval);
            slot
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A failed try, and whether to try again.
struct Failed {
    error: GitHubError,
    wait: Option<Wait>,
}

/// How long before another try.
#[derive(Clone, Copy)]
enum Wait {
    /// The backoff's own delay (5xx, network).
    Backoff,
    /// GitHub's rate limit says how long.
    Limit(Duration),
}

impl Failed {
    fn last(error: GitHubError) -> Failed {
        Failed { error, wait: None }
    }

    fn again(error: GitHubError) -> Failed {
        Failed {
            error,
            wait: Some(Wait::Backoff),
        }
    }
}

fn is_rate_limit_message(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    m.contains("rate limit") || m.contains("abuse")
}

/// GitHub's `message` and `errors` from an error body, or the start of the body.
fn github_message(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => {
            let mut m = v["message"].as_str().unwrap_or("").to_string();
            if let Some(errors) = v["errors"].as_array() {
                let parts: Vec<String> = errors
                    .iter()
                    .map(|e| match e {
                        serde_json::Value::String(s) => s.clone(),
                        other => other["message"]
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| other.to_string()),
                    })
                    .collect();
                if !parts.is_empty() {
                    m = format!("{m}: {}", parts.join("; "));
                }
            }
            m
        }
        Err(_) => crate::truncate(body.trim(), 200),
    }
}

/// An octocrab error as one line. Its `Display` for token minting includes GitHub's message only.
fn transport_message(e: &octocrab::Error) -> String {
    match e {
        octocrab::Error::GitHub { source, .. } => {
            format!("{} {}", source.status_code.as_u16(), source.message)
        }
        other => crate::truncate(&other.to_string(), 300),
    }
}
