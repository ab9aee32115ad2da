//! Server settings (`redline serve`, `redline worker`, `redline jobs`, `redline migrate`): a TOML
//! file whose keys are the variable names without `REDLINE_` in lower case, overridden by
//! `REDLINE_*` environment variables, layered with `figment`. A missing or contradictory setting
//! stops start-up with a message naming it. Secrets are `secrecy` strings: never in `Debug`.

use anyhow::{Result, anyhow, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: String,
    /// May hold a password: a secret.
    pub database_url: SecretString,
    pub queue: QueueKind,
    pub sqs_queue_url: Option<String>,
    pub sqs_priority_queue_url: Option<String>,
    pub workers: usize,
    pub webhook_secret: Option<SecretString>,
    pub github_app_id: Option<u64>,
    pub github_private_key: Option<PathBuf>,
    pub github_api_url: String,
    /// `owner/name` of repositories whose jobs go first.
    pub critical_repos: Vec<String>,
    pub review_drafts: bool,
    pub max_changed_lines: usize,
    pub max_comments: usize,
    pub check_runs: bool,
    pub lease: Duration,
    pub max_attempts: i64,
    pub github_write_interval: Duration,
    /// Largest webhook body accepted (GitHub caps payloads at 25 MB).
    pub max_body_bytes: usize,
    /// Webhook bodies held in memory at once, across requests: a body that does not fit is
    /// refused before it is read (its signature can only be checked once it is whole).
    pub max_buffered_body_bytes: usize,
    /// Largest request head (request line and headers) the server reads.
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's head, and its body.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Open connections at most (lowered to fit the open-file limit); over it, the longest-idle
    /// connection that has no request in progress is closed.
    pub max_connections: usize,
    /// Requests handled at once; more are answered 503 at once.
    pub max_in_flight: usize,
    /// How long the webhook and /healthz wait for the store before answering 503.
    pub store_timeout: Duration,
    /// How often `redline serve` asks GitHub for failed deliveries to redeliver (None: only at
    /// start and when the store comes back after failures), and how far back it looks.
    pub reconcile_interval: Option<Duration>,
    pub reconcile_lookback: Duration,
    /// The prompt version reviews use, and an optional candidate that gets a share of pull
    /// requests (sticky per pull request) for an A/B test.
    pub prompt_version: String,
    pub prompt_candidate: Option<String>,
    /// Percent of pull requests routed to the candidate (0-100).
    pub prompt_candidate_share: u64,
    /// Feedback: a rule or category with at least `feedback_min_decided` decided findings in a
    /// repository and a dismissal rate at or above `feedback_dismiss_rate` is demoted.
    pub feedback_min_decided: i64,
    pub feedback_dismiss_rate: f64,
    /// `summary` (its findings go to the review summary, not inline) or `confidence` (only findings
    /// at or above `feedback_min_confidence` stay inline).
    pub feedback_action: FeedbackAction,
    pub feedback_min_confidence: f64,
    /// The app's slug: `@slug` in a reply to one of its threads is a command, and its comments
    /// are signed `slug[bot]`.
    pub github_app_slug: String,
    /// A push (`synchronize`) reviews only what changed since the last reviewed head.
    pub incremental_review: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackAction {
    Summary,
    Confidence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Embedded,
    Sqs,
}

/// The keys a settings file may hold (each also a `REDLINE_<KEY>` variable).
const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "queue",
    "sqs_queue_url",
    "sqs_priority_queue_url",
    "workers",
    "webhook_secret",
    "github_app_id",
    "github_private_key",
    "github_api_url",
    "critical_repos",
    "review_drafts",
    "max_changed_lines",
    "max_comments",
    "check_runs",
    "lease_secs",
    "max_attempts",
    "github_write_interval_ms",
    "max_body_bytes",
    "max_buffered_body_bytes",
    "max_header_bytes",
    "header_timeout_secs",
    "body_timeout_secs",
    "max_connections",
    "max_in_flight",
    "store_timeout_ms",
    "reconcile_interval_secs",
    "reconcile_lookback_hours",
    "prompt_version",
    "prompt_candidate",
    "prompt_candidate_share",
    "feedback_min_decided",
    "feedback_dismiss_rate",
    "feedback_action",
    "feedback_min_confidence",
    "github_app_slug",
    "incremental_review",
];

/// The settings as the sources give them: every value optional, read leniently (a variable is
/// text; a file may hold numbers, booleans and lists), an empty value meaning unset.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default, deserialize_with = "lenient::text")]
    listen: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    database_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    queue: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    sqs_queue_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    sqs_priority_queue_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::whole")]
    workers: Option<u64>,
    #[serde(default, deserialize_with = "lenient::text")]
    webhook_secret: Option<String>,
    #[serde(default, deserialize_with = "lenient::app_id")]
    github_app_id: Option<u64>,
    #[serde(default, deserialize_with = "lenient::text")]
    github_private_key: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    github_api_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    critical_repos: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::flag")]
    review_drafts: Option<bool>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_changed_lines: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_comments: Option<u64>,
    #[serde(default, deserialize_with = "lenient::flag")]
    check_runs: Option<bool>,
    #[serde(default, deserialize_with = "lenient::whole")]
    lease_secs: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_attempts: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    github_write_interval_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_buffered_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_header_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    header_timeout_secs: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    body_timeout_secs: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_connections: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    max_in_flight: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    store_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    reconcile_interval_secs: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    reconcile_lookback_hours: Option<u64>,
    #[serde(default, deserialize_with = "lenient::text")]
    prompt_version: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    prompt_candidate: Option<String>,
    #[serde(default, deserialize_with = "lenient::whole")]
    prompt_candidate_share: Option<u64>,
    #[serde(default, deserialize_with = "lenient::whole")]
    feedback_min_decided: Option<u64>,
    #[serde(default, deserialize_with = "lenient::fraction")]
    feedback_dismiss_rate: Option<f64>,
    #[serde(default, deserialize_with = "lenient::text")]
    feedback_action: Option<String>,
    #[serde(default, deserialize_with = "lenient::fraction")]
    feedback_min_confidence: Option<f64>,
    #[serde(default, deserialize_with = "lenient::text")]
    github_app_slug: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    incremental_review: Option<bool>,
}

impl Settings {
    /// Reads `file` (if given) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings> {
        Settings::from_figment(
            layers(file)?.merge(Env::prefixed("REDLINE_").only(KEYS)),
            file,
        )
    }

    /// `file` with `env` (variable name -> value) on top, as `load` reads the environment.
    #[cfg(test)]
    fn from_sources(
        file: Option<&Path>,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Settings> {
        let vars: std::collections::BTreeMap<String, String> = env
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("REDLINE_")?.to_ascii_lowercase();
                KEYS.contains(&key.as_str()).then(|| (key, v.clone()))
            })
            .collect();
        Settings::from_figment(
            layers(file)?.merge(figment::providers::Serialized::defaults(vars)),
            file,
        )
    }

    fn from_figment(figment: Figment, file: Option<&Path>) -> Result<Settings> {
        let raw: Raw = figment.extract().map_err(|e| setting_error(e, file))?;
        raw.validate()
    }

    /// The webhook secret, required by the server.
    pub fn require_webhook_secret(&self) -> Result<&str> {
        self.webhook_secret.as_ref().map(|s| s.expose_secret()).ok_or_else(|| {
            anyhow!(
                "REDLINE_WEBHOOK_SECRET is not set: the webhook cannot verify deliveries without it"
            )
        })
    }

    /// The app id and private key, required by workers.
    pub fn require_github_app(&self) -> Result<(u64, &Path)> {
        let id = self.github_app_id.ok_or_else(|| {
            anyhow!("REDLINE_GITHUB_APP_ID is not set: workers act as the GitHub App")
        })?;
        let key = self.github_private_key.as_deref().ok_or_else(|| {
            anyhow!("REDLINE_GITHUB_PRIVATE_KEY is not set: give the path of the app's private key (PEM)")
        })?;
        Ok((id, key))
    }

    /// The prompt version for a pull request: the candidate for a stable share of pull requests
    /// (by a hash of `repo#number`, so every review of one pull request uses the same version).
    pub fn prompt_for(&self, repo: &str, pr: i64) -> String {
        use sha2::{Digest, Sha256};
        if let Some(c) = &self.prompt_candidate {
            let h = Sha256::digest(format!("{}#{pr}", repo.to_ascii_lowercase()).as_bytes());
            let bucket = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % 100;
            if bucket < self.prompt_candidate_share {
                return c.clone();
            }
        }
        self.prompt_version.clone()
    }

    /// Queue priority for a repository.
    pub fn priority_of(&self, repo: &str) -> i64 {
        if self
            .critical_repos
            .iter()
            .any(|r| r.eq_ignore_ascii_case(repo))
        {
            10
        } else {
            0
        }
    }
}

/// The file under the defaults (none: every default is applied in `validate`).
fn layers(file: Option<&Path>) -> Result<Figment> {
    let figment = Figment::new();
    Ok(match file {
        Some(path) => {
            if !path.is_file() {
                bail!("cannot read the settings file {}", path.display());
            }
            figment.merge(Toml::file(path))
        }
        None => figment,
    })
}

/// A figment error as one line naming the setting: the variable, or the file and its key.
fn setting_error(e: figment::Error, file: Option<&Path>) -> anyhow::Error {
    use figment::error::Kind;
    let from_file = e.metadata.as_ref().is_some_and(|m| m.name.contains("TOML"));
    let file_name = file.map(|f| f.display().to_string()).unwrap_or_default();
    match &e.kind {
        Kind::UnknownField(key, _) => anyhow!(
            "{file_name}: unknown setting `{key}` (known: {})",
            KEYS.join(", ")
        ),
        Kind::Message(m) if !e.path.is_empty() => {
            anyhow!("REDLINE_{} {m}", e.path.join("_").to_uppercase())
        }
        _ if from_file => anyhow!("{file_name}: {e}"),
        _ => anyhow!("{e}"),
    }
}

impl Raw {
    /// Defaults applied, values checked against each other.
    fn validate(self) -> Result<Settings> {
        let limits = self.server_limits()?;
        let queue = match self.queue.as_deref().unwrap_or("embedded") {
            "embedded" => QueueKind::Embedded,
            "sqs" => QueueKind::Sqs,
            other => bail!("REDLINE_QUEUE must be `embedded` or `sqs` (got `{other}`)"),
        };
        match queue {
            QueueKind::Sqs if self.sqs_queue_url.is_none() => {
                bail!("REDLINE_QUEUE=sqs needs REDLINE_SQS_QUEUE_URL")
            }
            QueueKind::Embedded
                if self.sqs_queue_url.is_some() || self.sqs_priority_queue_url.is_some() =>
            {
                bail!(
                    "REDLINE_SQS_QUEUE_URL is set but REDLINE_QUEUE is `embedded`: set REDLINE_QUEUE=sqs or unset it"
                )
            }
            _ => {}
        }
        #[cfg(not(feature = "sqs"))]
        if queue == QueueKind::Sqs {
            bail!(
                "REDLINE_QUEUE=sqs: this build has no SQS support (built without the `sqs` feature)"
            );
        }
        let github_api_url = self
            .github_api_url
            .as_deref()
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_string();
        if !github_api_url.starts_with("http://") && !github_api_url.starts_with("https://") {
            bail!("REDLINE_GITHUB_API_URL must be an http(s) URL (got `{github_api_url}`)");
        }
        let lease_secs = self.lease_secs.unwrap_or(60);
        if lease_secs < 3 {
            bail!("REDLINE_LEASE_SECS must be at least 3 (a lease is renewed every third of it)");
        }
        let prompt_version = self
            .prompt_version
            .unwrap_or_else(|| crate::agent::PROMPT_VERSION.to_string());
        crate::agent::check_prompt_version(&prompt_version)
            .map_err(|e| anyhow!("REDLINE_PROMPT_VERSION: {e}"))?;
        if let Some(c) = &self.prompt_candidate {
            crate::agent::check_prompt_version(c)
                .map_err(|e| anyhow!("REDLINE_PROMPT_CANDIDATE: {e}"))?;
        }
        let prompt_candidate_share = self.prompt_candidate_share.unwrap_or(0);
        if prompt_candidate_share > 100 {
            bail!(
                "REDLINE_PROMPT_CANDIDATE_SHARE is a percentage (0-100), got {prompt_candidate_share}"
            );
        }
        if prompt_candidate_share > 0 && self.prompt_candidate.is_none() {
            bail!("REDLINE_PROMPT_CANDIDATE_SHARE is set but REDLINE_PROMPT_CANDIDATE is not");
        }
        let feedback_action = match self.feedback_action.as_deref().unwrap_or("summary") {
            "summary" => FeedbackAction::Summary,
            "confidence" => FeedbackAction::Confidence,
            other => {
                bail!("REDLINE_FEEDBACK_ACTION must be `summary` or `confidence` (got `{other}`)")
            }
        };
        let github_app_slug = self
            .github_app_slug
            .as_deref()
            .unwrap_or("redline")
            .trim()
            .trim_start_matches('@')
            .to_string();
        if github_app_slug.is_empty()
            || !github_app_slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "REDLINE_GITHUB_APP_SLUG must be the app's slug (letters, digits, `-`), got `{github_app_slug}`"
            );
        }
        let max_attempts = self.max_attempts.unwrap_or(3);
        if max_attempts == 0 {
            bail!("REDLINE_MAX_ATTEMPTS must be at least 1");
        }
        Ok(Settings {
            listen: self.listen.unwrap_or_else(|| "127.0.0.1:8080".into()),
            database_url: self
                .database_url
                .unwrap_or_else(|| crate::store::DEFAULT_URL.into())
                .into(),
            queue,
            sqs_queue_url: self.sqs_queue_url,
            sqs_priority_queue_url: self.sqs_priority_queue_url,
            workers: self.workers.unwrap_or(4) as usize,
            webhook_secret: self.webhook_secret.map(Into::into),
            github_app_id: self.github_app_id,
            github_private_key: self.github_private_key.map(PathBuf::from),
            github_api_url,
            critical_repos: self.critical_repos.unwrap_or_default(),
            review_drafts: self.review_drafts.unwrap_or(false),
            max_changed_lines: self.max_changed_lines.unwrap_or(2000) as usize,
            max_comments: self.max_comments.unwrap_or(20) as usize,
            check_runs: self.check_runs.unwrap_or(false),
            lease: Duration::from_secs(lease_secs),
            max_attempts: max_attempts as i64,
            github_write_interval: Duration::from_millis(
                self.github_write_interval_ms.unwrap_or(1000),
            ),
            max_body_bytes: limits.max_body_bytes,
            max_buffered_body_bytes: limits.max_buffered_body_bytes,
            max_header_bytes: limits.max_header_bytes,
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            max_connections: limits.max_connections,
            max_in_flight: limits.max_in_flight,
            store_timeout: limits.store_timeout,
            reconcile_interval: limits.reconcile_interval,
            reconcile_lookback: limits.reconcile_lookback,
            prompt_version,
            prompt_candidate: self.prompt_candidate,
            prompt_candidate_share,
            feedback_min_decided: self.feedback_min_decided.unwrap_or(5).max(1) as i64,
            feedback_dismiss_rate: self.feedback_dismiss_rate.unwrap_or(0.6),
            feedback_action,
            feedback_min_confidence: self.feedback_min_confidence.unwrap_or(0.85),
            github_app_slug,
            incremental_review: self.incremental_review.unwrap_or(true),
        })
    }
}

/// The server's limits, checked against each other.
struct ServerLimits {
    max_body_bytes: usize,
    max_buffered_body_bytes: usize,
    max_header_bytes: usize,
    header_timeout: Duration,
    body_timeout: Duration,
    max_connections: usize,
    max_in_flight: usize,
    store_timeout: Duration,
    reconcile_interval: Option<Duration>,
    reconcile_lookback: Duration,
}

impl Raw {
    fn server_limits(&self) -> Result<ServerLimits> {
        let at_least = |v: Option<u64>, default: u64, min: u64, name: &str| -> Result<u64> {
            let v = v.unwrap_or(default);
            if v < min {
                bail!("REDLINE_{name} must be at least {min} (got {v})");
            }
            Ok(v)
        };
        let max_body_bytes = at_least(self.max_body_bytes, 25 * 1024 * 1024, 1, "MAX_BODY_BYTES")?;
        if max_body_bytes > 1 << 30 {
            bail!("REDLINE_MAX_BODY_BYTES is at most 1 GiB (GitHub sends at most 25 MB)");
        }
        let buffered = at_least(
            self.max_buffered_body_bytes,
            (64 * 1024 * 1024).max(max_body_bytes),
            1024,
            "MAX_BUFFERED_BODY_BYTES",
        )?;
        if buffered < max_body_bytes {
            bail!(
                "REDLINE_MAX_BUFFERED_BODY_BYTES ({buffered}) must be at least REDLINE_MAX_BODY_BYTES ({max_body_bytes})"
            );
        }
        // hyper's read buffer holds a whole request head; it cannot be smaller than 8 KiB.
        let max_header_bytes =
            at_least(self.max_header_bytes, 16 * 1024, 8192, "MAX_HEADER_BYTES")?;
        let lookback_hours = at_least(
            self.reconcile_lookback_hours,
            24,
            1,
            "RECONCILE_LOOKBACK_HOURS",
        )?;
        if lookback_hours > 72 {
            bail!(
                "REDLINE_RECONCILE_LOOKBACK_HOURS is at most 72: GitHub redelivers only deliveries of the last 3 days"
            );
        }
        Ok(ServerLimits {
            max_body_bytes: max_body_bytes as usize,
            max_buffered_body_bytes: buffered as usize,
            max_header_bytes: max_header_bytes as usize,
            header_timeout: Duration::from_secs(at_least(
                self.header_timeout_secs,
                10,
                1,
                "HEADER_TIMEOUT_SECS",
            )?),
            body_timeout: Duration::from_secs(at_least(
                self.body_timeout_secs,
                10,
                1,
                "BODY_TIMEOUT_SECS",
            )?),
            max_connections: at_least(self.max_connections, 1024, 16, "MAX_CONNECTIONS")? as usize,
            max_in_flight: at_least(self.max_in_flight, 128, 1, "MAX_IN_FLIGHT")? as usize,
            store_timeout: Duration::from_millis(at_least(
                self.store_timeout_ms,
                1000,
                100,
                "STORE_TIMEOUT_MS",
            )?),
            reconcile_interval: match self.reconcile_interval_secs.unwrap_or(300) {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            reconcile_lookback: Duration::from_secs(lookback_hours * 3600),
        })
    }
}

/// Lenient readers for setting values: a variable is always text, a file may hold a number, a
/// boolean or a list; an empty value is unset. Errors say what the value must be.
mod lenient {
    use serde::Deserialize;
    use serde::de::{Deserializer, Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Bool(bool),
        UInt(u64),
        Int(i64),
        Float(f64),
        Text(String),
        List(Vec<Scalar>),
    }

    impl Scalar {
        fn text(self) -> String {
            match self {
                Scalar::Bool(b) => b.to_string(),
                Scalar::UInt(n) => n.to_string(),
                Scalar::Int(n) => n.to_string(),
                Scalar::Float(x) => x.to_string(),
                Scalar::Text(s) => s,
                Scalar::List(items) => items
                    .into_iter()
                    .map(Scalar::text)
                    .collect::<Vec<_>>()
                    .join(","),
            }
        }
    }

    /// The value as trimmed text; None when absent or empty.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<Scalar>::deserialize(d)?;
        Ok(v.map(Scalar::text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()))
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        read(d)
    }

    pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        read(d)?
            .map(|v| {
                v.parse()
                    .map_err(|_| D::Error::custom(format!("must be a whole number (got `{v}`)")))
            })
            .transpose()
    }

    pub fn app_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        read(d)?
            .map(|v| {
                v.parse().map_err(|_| {
                    D::Error::custom(format!("must be the app's numeric id (got `{v}`)"))
                })
            })
            .transpose()
    }

    pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        read(d)?
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(D::Error::custom(format!(
                    "must be true or false (got `{v}`)"
                ))),
            })
            .transpose()
    }

    pub fn fraction<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        read(d)?
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| {
                        D::Error::custom(format!("must be a number from 0 to 1 (got `{v}`)"))
                    })
            })
            .transpose()
    }

    /// A list, or comma-separated text.
    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
        Ok(read(d)?.map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s.database_url.expose_secret(), "sqlite://redline.db");
        assert_eq!(s.queue, QueueKind::Embedded);
        assert_eq!(s.workers, 4);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "workers = 2\nlisten = \"0.0.0.0:9000\"\ncritical_repos = [\"acme/pay\"]\n",
        )
        .unwrap();
        let s = Settings::from_sources(Some(&file), &env(&[("REDLINE_WORKERS", "7")])).unwrap();
        assert_eq!(s.workers, 7, "the variable wins over the file");
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.priority_of("ACME/pay"), 10);
    }

    #[test]
    fn prompt_ab_share_is_sticky_and_roughly_the_share() {
        let s = Settings::from_sources(
            None,
            &env(&[
                ("REDLINE_PROMPT_CANDIDATE", "review-v2"),
                ("REDLINE_PROMPT_CANDIDATE_SHARE", "30"),
            ]),
        )
        .unwrap();
        let candidates = (0..1000)
            .filter(|n| s.prompt_for("acme/shop", *n) == "review-v2")
            .count();
        assert!((230..370).contains(&candidates), "{candidates} of 1000");
        assert_eq!(
            s.prompt_for("acme/shop", 7),
            s.prompt_for("ACME/shop", 7),
            "sticky per pull request"
        );
        let e = Settings::from_sources(None, &env(&[("REDLINE_PROMPT_CANDIDATE", "review-v9")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("review-v9") && e.to_string().contains("review-v1"),
            "{e}"
        );
    }

    #[test]
    fn contradictions_and_bad_values_are_named() {
        let e = Settings::from_sources(None, &env(&[("REDLINE_QUEUE", "sqs")])).unwrap_err();
        assert!(e.to_string().contains("REDLINE_SQS_QUEUE_URL"), "{e}");
        let e = Settings::from_sources(None, &env(&[("REDLINE_SQS_QUEUE_URL", "http://x/q")]))
            .unwrap_err();
        assert!(e.to_string().contains("REDLINE_QUEUE"), "{e}");
        let e = Settings::from_sources(None, &env(&[("REDLINE_WORKERS", "many")])).unwrap_err();
        assert!(e.to_string().contains("REDLINE_WORKERS"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "wrokers = 2\n").unwrap();
        let e = Settings::from_sources(Some(&file), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("wrokers"), "{e}");
    }

    #[test]
    fn server_limits_have_defaults_and_are_checked() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s.header_timeout, Duration::from_secs(10));
        assert_eq!(s.max_buffered_body_bytes, 64 * 1024 * 1024);
        assert_eq!(s.store_timeout, Duration::from_millis(1000));
        assert_eq!(s.reconcile_interval, Some(Duration::from_secs(300)));
        let s = Settings::from_sources(None, &env(&[("REDLINE_RECONCILE_INTERVAL_SECS", "0")]))
            .unwrap();
        assert_eq!(s.reconcile_interval, None);
        let e = Settings::from_sources(
            None,
            &env(&[
                ("REDLINE_MAX_BUFFERED_BODY_BYTES", "2048"),
                ("REDLINE_MAX_BODY_BYTES", "4096"),
            ]),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("REDLINE_MAX_BUFFERED_BODY_BYTES"),
            "{e}"
        );
        let e =
            Settings::from_sources(None, &env(&[("REDLINE_MAX_HEADER_BYTES", "100")])).unwrap_err();
        assert!(e.to_string().contains("REDLINE_MAX_HEADER_BYTES"), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = Settings::from_sources(
            None,
            &env(&[
                ("REDLINE_WEBHOOK_SECRET", "hunter2-webhook"),
                ("REDLINE_DATABASE_URL", "postgres://u:pw-123@h/db"),
            ]),
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw-123"),
            "{shown}"
        );
    }
}
