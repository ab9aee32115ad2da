//! Server settings (`redline serve`, `redline worker`, `redline jobs`, `redline migrate`): a TOML
//! file whose keys are the variable names without `REDLINE_` in lower case, overridden by
//! `REDLINE_*` environment variables. A missing or contradictory setting stops start-up with a
//! message naming it. Secrets are kept out of `Debug`.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone)]
pub struct Settings {
    pub listen: String,
    pub database_url: String,
    pub queue: QueueKind,
    pub sqs_queue_url: Option<String>,
    pub sqs_priority_queue_url: Option<String>,
    pub workers: usize,
    pub webhook_secret: Option<String>,
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

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field(
                "database_url",
                &crate::store::redact_url(&self.database_url),
            )
            .field("queue", &self.queue)
            .field("workers", &self.workers)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .field("github_app_id", &self.github_app_id)
            .field("github_api_url", &self.github_api_url)
            .finish_non_exhaustive()
    }
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
    "prompt_version",
    "prompt_candidate",
    "prompt_candidate_share",
    "feedback_min_decided",
    "feedback_dismiss_rate",
    "feedback_action",
    "feedback_min_confidence",
];

impl Settings {
    /// Reads `file` (if given) and the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Settings::from_sources(file, &env)
    }

    fn from_sources(file: Option<&Path>, env: &BTreeMap<String, String>) -> Result<Settings> {
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the settings file {}", path.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| anyhow!("{}: {}", path.display(), e.message()))?;
            for (k, v) in table {
                if !KEYS.contains(&k.as_str()) {
                    bail!(
                        "{}: unknown setting `{k}` (known: {})",
                        path.display(),
                        KEYS.join(", ")
                    );
                }
                let s = match v {
                    toml::Value::String(s) => s,
                    toml::Value::Array(a) => a
                        .iter()
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                };
                values.insert(k, s);
            }
        }
        for key in KEYS {
            if let Some(v) = env.get(&format!("REDLINE_{}", key.to_uppercase())) {
                values.insert(key.to_string(), v.clone());
            }
        }
        let get = |k: &str| {
            values
                .get(k)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty())
        };
        let num = |k: &str, default: u64| -> Result<u64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| {
                    anyhow!(
                        "REDLINE_{} must be a whole number (got `{v}`)",
                        k.to_uppercase()
                    )
                }),
            }
        };
        let flag = |k: &str| -> Result<bool> {
            match get(k).map(|v| v.trim().to_ascii_lowercase()) {
                None => Ok(false),
                Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
                Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
                Some(v) => bail!(
                    "REDLINE_{} must be true or false (got `{v}`)",
                    k.to_uppercase()
                ),
            }
        };
        let queue = match get("queue").unwrap_or("embedded") {
            "embedded" => QueueKind::Embedded,
            "sqs" => QueueKind::Sqs,
            other => bail!("REDLINE_QUEUE must be `embedded` or `sqs` (got `{other}`)"),
        };
        let sqs_queue_url = get("sqs_queue_url").map(str::to_string);
        let sqs_priority_queue_url = get("sqs_priority_queue_url").map(str::to_string);
        match queue {
            QueueKind::Sqs if sqs_queue_url.is_none() => {
                bail!("REDLINE_QUEUE=sqs needs REDLINE_SQS_QUEUE_URL")
            }
            QueueKind::Embedded if sqs_queue_url.is_some() || sqs_priority_queue_url.is_some() => {
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
        let github_app_id = match get("github_app_id") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                anyhow!("REDLINE_GITHUB_APP_ID must be the app's numeric id (got `{v}`)")
            })?),
        };
        let github_api_url = get("github_api_url")
            .unwrap_or("https://api.github.com")
            .trim_end_matches('/')
            .to_string();
        if !github_api_url.starts_with("http://") && !github_api_url.starts_with("https://") {
            bail!("REDLINE_GITHUB_API_URL must be an http(s) URL (got `{github_api_url}`)");
        }
        let lease_secs = num("lease_secs", 60)?;
        if lease_secs < 3 {
            bail!("REDLINE_LEASE_SECS must be at least 3 (a lease is renewed every third of it)");
        }
        let fraction = |k: &str, default: f64| -> Result<f64> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| {
                        anyhow!(
                            "REDLINE_{} must be a number from 0 to 1 (got `{v}`)",
                            k.to_uppercase()
                        )
                    }),
            }
        };
        let prompt_version = get("prompt_version")
            .unwrap_or(crate::agent::PROMPT_VERSION)
            .trim()
            .to_string();
        crate::agent::check_prompt_version(&prompt_version)
            .map_err(|e| anyhow!("REDLINE_PROMPT_VERSION: {e}"))?;
        let prompt_candidate = get("prompt_candidate").map(|v| v.trim().to_string());
        if let Some(c) = &prompt_candidate {
            crate::agent::check_prompt_version(c)
                .map_err(|e| anyhow!("REDLINE_PROMPT_CANDIDATE: {e}"))?;
        }
        let prompt_candidate_share = num("prompt_candidate_share", 0)?;
        if prompt_candidate_share > 100 {
            bail!(
                "REDLINE_PROMPT_CANDIDATE_SHARE is a percentage (0-100), got {prompt_candidate_share}"
            );
        }
        if prompt_candidate_share > 0 && prompt_candidate.is_none() {
            bail!("REDLINE_PROMPT_CANDIDATE_SHARE is set but REDLINE_PROMPT_CANDIDATE is not");
        }
        let feedback_action = match get("feedback_action").unwrap_or("summary") {
            "summary" => FeedbackAction::Summary,
            "confidence" => FeedbackAction::Confidence,
            other => {
                bail!("REDLINE_FEEDBACK_ACTION must be `summary` or `confidence` (got `{other}`)")
            }
        };
        let max_attempts = num("max_attempts", 3)?;
        if max_attempts == 0 {
            bail!("REDLINE_MAX_ATTEMPTS must be at least 1");
        }
        Ok(Settings {
            listen: get("listen").unwrap_or("127.0.0.1:8080").to_string(),
            database_url: get("database_url")
                .unwrap_or(crate::store::DEFAULT_URL)
                .to_string(),
            queue,
            sqs_queue_url,
            sqs_priority_queue_url,
            workers: num("workers", 4)? as usize,
            webhook_secret: get("webhook_secret").map(str::to_string),
            github_app_id,
            github_private_key: get("github_private_key").map(PathBuf::from),
            github_api_url,
            critical_repos: get("critical_repos")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            review_drafts: flag("review_drafts")?,
            max_changed_lines: num("max_changed_lines", 2000)? as usize,
            max_comments: num("max_comments", 20)? as usize,
            check_runs: flag("check_runs")?,
            lease: Duration::from_secs(lease_secs),
            max_attempts: max_attempts as i64,
            github_write_interval: Duration::from_millis(num("github_write_interval_ms", 1000)?),
            max_body_bytes: num("max_body_bytes", 25 * 1024 * 1024)? as usize,
            prompt_version,
            prompt_candidate,
            prompt_candidate_share,
            feedback_min_decided: num("feedback_min_decided", 5)?.max(1) as i64,
            feedback_dismiss_rate: fraction("feedback_dismiss_rate", 0.6)?,
            feedback_action,
            feedback_min_confidence: fraction("feedback_min_confidence", 0.85)?,
        })
    }

    /// The webhook secret, required by the server.
    pub fn require_webhook_secret(&self) -> Result<&str> {
        self.webhook_secret.as_deref().ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_sources(None, &env(&[])).unwrap();
        assert_eq!(s.database_url, "sqlite://redline.db");
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
