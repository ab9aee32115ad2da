//! The store: webhook deliveries, installations, jobs, reviews and findings.
//!
//! One implementation serves both databases through sqlx's `Any` driver: the SQL is the common
//! subset (`$N` placeholders, BIGINT unix milliseconds, JSON kept as TEXT), and only the DDL in
//! `migrations/sqlite` and `migrations/postgres` differs. The one query that must differ (claiming a
//! job: `FOR UPDATE SKIP LOCKED` on PostgreSQL) asks `backend()`.

mod conversation;
mod jobs;
mod outcomes;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::collections::HashSet;
use std::time::Duration;

pub use conversation::{Conversation, LastReview, NewConversation, OpenFinding, ThreadFinding};
pub use jobs::{Job, JobCause, JobState, JobStatus, NewJob};
pub use outcomes::{FeedbackCount, OutcomeRow, ReviewRow, TrackedFinding};

static MIGRATOR_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MIGRATOR_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The default database: a SQLite file in the working folder.
pub const DEFAULT_URL: &str = "sqlite://redline.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the store's database.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A database URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    // `?password=...` is accepted by both drivers too.
    let url = match url.find("password=") {
        Some(i) => {
            let end = url[i..].find('&').map(|j| i + j).unwrap_or(url.len());
            format!("{}password=***{}", &url[..i], &url[end..])
        }
        None => url.to_string(),
    };
    let url = url.as_str();
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && url[s + 3..at].contains(':') => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies the migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            bail!(
                "REDLINE_DATABASE_URL must start with sqlite:// or postgres:// (got {})",
                redact_url(url)
            );
        };
        let url = match backend {
            // Create the file on first use.
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
            }
            _ => url.to_string(),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the single writer; NORMAL sync is durable across process
            // crashes (only an OS crash can lose the last commits); writers wait instead of failing.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(&url)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        Ok(Store { pool, backend })
    }

    /// Applies the migrations that have not run yet; returns how many ran.
    pub async fn migrate(&self) -> Result<usize> {
        let migrator = match self.backend {
            Backend::Sqlite => &MIGRATOR_SQLITE,
            Backend::Postgres => &MIGRATOR_POSTGRES,
        };
        let before: i64 = self.applied_migrations().await.unwrap_or(0);
        migrator
            .run(&self.pool)
            .await
            .context("cannot apply the database migrations")?;
        let after = self.applied_migrations().await.unwrap_or(before);
        Ok((after - before).max(0) as usize)
    }

    async fn applied_migrations(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = true")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Records a webhook delivery and, in the same transaction, what it asks for: cancel a pull
    /// request's older jobs and/or enqueue a new one. A delivery id seen before does nothing and
    /// returns `Duplicate`.
    pub async fn accept_delivery(
        &self,
        delivery: &Delivery,
        plan: &DeliveryPlan,
    ) -> Result<Accepted> {
        self.accept_delivery_with(delivery, plan, None).await
    }

    /// As `accept_delivery`, and when the delivery asks redline to answer a comment, that comment
    /// too, in the same transaction: a comment already recorded (the same comment under another
    /// delivery id) records the delivery, enqueues nothing and returns `SameComment`.
    pub async fn accept_delivery_with(
        &self,
        delivery: &Delivery,
        plan: &DeliveryPlan,
        conversation: Option<&NewConversation>,
    ) -> Result<Accepted> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The write comes first so that SQLite takes its write lock at once (no lock upgrade).
        let inserted = sqlx::query(
            "INSERT INTO deliveries (id, event, action, outcome, received_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&delivery.id)
        .bind(&delivery.event)
        .bind(delivery.action.as_deref())
        .bind(&plan.outcome)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Accepted::Duplicate);
        }
        let mut conversation_id = None;
        if let Some(c) = conversation {
            match conversation::insert(&mut tx, c, &delivery.id, now).await? {
                Some(id) => conversation_id = Some(id),
                None => {
                    sqlx::query("UPDATE deliveries SET outcome = $1 WHERE id = $2")
                        .bind(format!(
                            "ignored: comment {} is already answered or queued",
                            c.comment_id
                        ))
                        .bind(&delivery.id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(Accepted::SameComment);
                }
            }
        }
        let mut cancelled = 0;
        if let Some((repo, pr)) = &plan.cancel {
            // Answers to comments are not reviews: a push does not make them pointless.
            cancelled = sqlx::query(
                "UPDATE jobs SET status = 'cancelled', outcome = $1, updated_at = $2 WHERE repo = $3 AND pr_number = $4 AND status IN ('queued', 'running', 'failed') AND cause != 'reply'",
            )
            .bind(format!("cancelled by delivery {}", delivery.id))
            .bind(now)
            .bind(repo.as_str())
            .bind(pr.to_db())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let mut job = None;
        if let Some(new) = &plan.enqueue {
            let mut new = new.clone();
            new.delivery_id = Some(delivery.id.clone());
            let j = jobs::insert(&mut tx, &new, now).await?;
            sqlx::query("UPDATE deliveries SET job_id = $1 WHERE id = $2")
                .bind(j.id)
                .bind(&delivery.id)
                .execute(&mut *tx)
                .await?;
            if let Some(cid) = conversation_id {
                sqlx::query("UPDATE conversations SET job_id = $1 WHERE id = $2")
                    .bind(j.id)
                    .bind(cid)
                    .execute(&mut *tx)
                    .await?;
            }
            job = Some(j);
        }
        tx.commit().await?;
        Ok(Accepted::New {
            job: job.map(Box::new),
            cancelled,
        })
    }

    /// Which of `ids` (`X-GitHub-Delivery` values) are recorded.
    pub async fn known_deliveries(&self, ids: &[String]) -> Result<HashSet<String>> {
        let mut known = HashSet::new();
        // Bound the statement's size; GitHub lists at most 100 deliveries a page anyway.
        for chunk in ids.chunks(100) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id FROM deliveries WHERE id IN ({})",
                placeholders.join(", ")
            );
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id);
            }
            known.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(known)
    }

    /// A round trip to the database: whether it answers at all.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// How many deliveries are recorded.
    pub async fn delivery_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Records an installation's state and, when given, its repositories.
    pub async fn upsert_installation(
        &self,
        id: i64,
        account: &str,
        status: &str,
        repositories: Option<&[String]>,
    ) -> Result<()> {
        let repos = repositories.map(|r| serde_json::to_string(r).unwrap_or_default());
        sqlx::query(
            "INSERT INTO installations (id, account, status, repositories, updated_at) VALUES ($1, $2, $3, COALESCE($4, '[]'), $5)
             ON CONFLICT (id) DO UPDATE SET account = $2, status = $3, repositories = COALESCE($4, installations.repositories), updated_at = $5",
        )
        .bind(id)
        .bind(account)
        .bind(status)
        .bind(repos)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Adds and removes repositories of an installation.
    pub async fn change_installation_repos(
        &self,
        id: i64,
        account: &str,
        added: &[String],
        removed: &[String],
    ) -> Result<()> {
        let current: Option<(String, String)> =
            sqlx::query_as("SELECT repositories, status FROM installations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let status = current
            .as_ref()
            .map(|c| c.1.clone())
            .unwrap_or_else(|| "active".into());
        let mut repos: Vec<String> = current
            .and_then(|c| serde_json::from_str(&c.0).ok())
            .unwrap_or_default();
        repos.retain(|r| !removed.contains(r));
        for a in added {
            if !repos.contains(a) {
                repos.push(a.clone());
            }
        }
        // A suspended installation stays suspended.
        self.upsert_installation(id, account, &status, Some(&repos))
            .await
    }

    /// An installation's status (`active`, `suspended`, `deleted`), if known.
    pub async fn installation_status(&self, id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT status FROM installations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Saves a finished review and its findings; returns the review's id.
    pub async fn save_review(
        &self,
        review: &ReviewRecord,
        findings: &[FindingRecord],
    ) -> Result<i64> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reviews (job_id, repo, pr_number, head_sha, verdict, summary, engine, model, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, github_review_id, audit, created_at, scope)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
        )
        .bind(review.job_id)
        .bind(&review.repo)
        .bind(review.pr_number)
        .bind(&review.head_sha)
        .bind(&review.verdict)
        .bind(&review.summary)
        .bind(&review.engine)
        .bind(review.model.as_deref())
        .bind(review.prompt_version.as_deref())
        .bind(review.tokens_in)
        .bind(review.tokens_out)
        .bind(review.cost_usd)
        .bind(review.latency_ms)
        .bind(review.github_review_id)
        .bind(review.audit.as_ref().map(|a| a.to_string()))
        .bind(now)
        .bind(review.scope.as_ref().map(|a| a.to_string()))
        .fetch_one(&mut *tx)
        .await?;
        for f in findings {
            sqlx::query(
                "INSERT INTO findings (review_id, repo, pr_number, path, line, end_line, severity, category, rule_id, guidance, confidence, source, fingerprint, placement, comment_id, created_at, code_lines, message, cwe, suggestion)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(id)
            .bind(&review.repo)
            .bind(review.pr_number)
            .bind(&f.path)
            .bind(f.line)
            .bind(f.end_line)
            .bind(&f.severity)
            .bind(&f.category)
            .bind(f.rule_id.as_deref())
            .bind(serde_json::to_string(&f.guidance)?)
            .bind(f.confidence)
            .bind(&f.source)
            .bind(&f.fingerprint)
            .bind(&f.placement)
            .bind(f.comment_id)
            .bind(now)
            .bind(f.code_lines)
            .bind(&f.message)
            .bind(f.cwe.as_deref())
            .bind(f.suggestion.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Whether job `job_id` already has the review GitHub knows as `github_review_id` recorded.
    pub async fn review_recorded(&self, job_id: i64, github_review_id: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM reviews WHERE job_id = $1 AND github_review_id = $2",
        )
        .bind(job_id)
        .bind(github_review_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Fingerprints of findings already reported on a pull request whose outcome makes a repeat
    /// unwelcome (posted and open, or dismissed).
    pub async fn reported_fingerprints(
        &self,
        repo: &str,
        pr: i64,
    ) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT fingerprint, outcome FROM findings WHERE repo = $1 AND pr_number = $2 AND placement = 'inline'",
        )
        .bind(repo)
        .bind(pr)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Reviews of some jobs, newest first, for `redline jobs`.
    pub async fn reviews_for_jobs(&self, job_ids: &[i64]) -> Result<Vec<StoredReview>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = job_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT id, job_id, verdict, engine, model, prompt_version, tokens_in, tokens_out, cost_usd, latency_ms, github_review_id, audit,
                    (SELECT COUNT(*) FROM findings f WHERE f.review_id = reviews.id) AS findings,
                    (SELECT COUNT(*) FROM findings f WHERE f.review_id = reviews.id AND f.placement = 'inline') AS inline_comments
             FROM reviews WHERE job_id IN ({list}) ORDER BY id DESC"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Totals for /metrics, across every process sharing this database.
    pub async fn metrics(&self) -> Result<StoreMetrics> {
        let by_status: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
                .fetch_all(&self.pool)
                .await?;
        let (reviews, tokens_in, tokens_out, cost, latency_sum): (i64, i64, i64, f64, i64) = sqlx::query_as(
            // PostgreSQL sums BIGINT as NUMERIC, which the Any driver cannot decode: cast back.
            "SELECT COUNT(*), CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT), CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT),
                    CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION), CAST(COALESCE(SUM(latency_ms), 0) AS BIGINT) FROM reviews",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut latency_buckets = Vec::new();
        for le in LATENCY_BUCKETS_MS {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE latency_ms <= $1")
                .bind(*le)
                .fetch_one(&self.pool)
                .await?;
            latency_buckets.push((*le, n));
        }
        let deliveries: i64 = self.delivery_count().await?;
        let findings_by_outcome: Vec<(String, i64)> = sqlx::query_as(
            "SELECT outcome, COUNT(*) FROM findings WHERE placement = 'inline' GROUP BY outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        // Per rule, for acceptance by rule: the built-in rules are about a hundred, and the
        // model's own findings count under `agent`.
        let findings_by_rule: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT COALESCE(rule_id, 'agent'), outcome, COUNT(*) FROM findings WHERE placement = 'inline' GROUP BY COALESCE(rule_id, 'agent'), outcome",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(StoreMetrics {
            jobs_by_status: by_status,
            reviews,
            tokens_in,
            tokens_out,
            cost_usd: cost,
            latency_sum_ms: latency_sum,
            latency_buckets,
            deliveries,
            findings_by_outcome,
            findings_by_rule,
        })
    }
}

/// Bucket bounds of the review latency histogram.
pub const LATENCY_BUCKETS_MS: &[i64] = &[
    1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
];

/// A webhook delivery as the server saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event: String,
    pub action: Option<String>,
}

/// What a delivery asks the store to do.
#[derive(Debug, Clone, Default)]
pub struct DeliveryPlan {
    /// Recorded with the delivery: `enqueued`, `cancelled`, `ignored: why`.
    pub outcome: String,
    /// Cancel this pull request's queued and running jobs first.
    pub cancel: Option<(crate::ids::RepoName, crate::ids::PrNumber)>,
    pub enqueue: Option<NewJob>,
}

#[derive(Debug)]
pub enum Accepted {
    Duplicate,
    /// A new delivery about a comment that is already answered or queued: nothing enqueued.
    SameComment,
    New {
        job: Option<Box<Job>>,
        cancelled: u64,
    },
}

/// A finished review, as stored.
#[derive(Debug, Clone, Default)]
pub struct ReviewRecord {
    pub job_id: i64,
    pub repo: String,
    pub pr_number: i64,
    pub head_sha: String,
    pub verdict: String,
    pub summary: String,
    pub engine: String,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub github_review_id: Option<i64>,
    /// What left for which LLM endpoint (paths, sizes, hashes, redactions).
    pub audit: Option<serde_json::Value>,
    /// What the review covered: the whole pull request, or what changed since a head.
    pub scope: Option<serde_json::Value>,
}

/// One finding of a stored review and where it went.
#[derive(Debug, Clone)]
pub struct FindingRecord {
    pub path: String,
    pub line: i64,
    pub end_line: i64,
    pub severity: String,
    pub category: String,
    pub rule_id: Option<String>,
    pub guidance: Vec<String>,
    pub confidence: f64,
    pub source: String,
    pub fingerprint: String,
    /// `inline`, `summary`, `demoted` or `repeat`.
    pub placement: String,
    pub comment_id: Option<i64>,
    /// Lines of code the fingerprint covers.
    pub code_lines: i64,
    /// What the finding says, its CWE and suggested replacement (for `explain` and `fix`).
    pub message: String,
    pub cwe: Option<String>,
    pub suggestion: Option<String>,
}

/// A review as `redline jobs` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredReview {
    pub id: i64,
    pub job_id: i64,
    pub verdict: String,
    pub engine: String,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub github_review_id: Option<i64>,
    #[serde(skip)]
    pub audit: Option<String>,
    pub findings: i64,
    pub inline_comments: i64,
}

#[derive(Debug, Clone, Default)]
pub struct StoreMetrics {
    pub jobs_by_status: Vec<(String, i64)>,
    pub reviews: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_sum_ms: i64,
    /// (upper bound in ms, reviews at or under it)
    pub latency_buckets: Vec<(i64, i64)>,
    pub deliveries: i64,
    /// Posted findings by outcome (open, fixed, dismissed).
    pub findings_by_outcome: Vec<(String, i64)>,
    /// Posted findings by rule id (`agent` for the model's own) and outcome.
    pub findings_by_rule: Vec<(String, String, i64)>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            super::redact_url("postgres://redline:s3cret@db:5432/redline"),
            "postgres://redline:***@db:5432/redline"
        );
        assert_eq!(
            super::redact_url("sqlite://redline.db"),
            "sqlite://redline.db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            super::redact_url("postgres://h/db?user=u&password=hunter2&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
    }
}
