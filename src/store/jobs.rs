//! Job rows: the state of every review job, whichever queue carries it. The embedded queue also
//! claims from here (leases); the SQS queue only records state here.

use super::{Backend, Store, now_ms};
use crate::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use sqlx::Any;

/// What asked for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobCause {
    /// A pull request event: the review of its head.
    Opened,
    Reopened,
    ReadyForReview,
    Synchronize,
    /// The pull request merged: settle what became of the posted findings, post nothing.
    Merged,
    /// A `/redline review` comment: review the head as it is now.
    Comment,
    /// A command in one of redline's review threads, or on the pull request: answer it.
    Reply,
}

impl JobCause {
    pub fn as_str(self) -> &'static str {
        match self {
            JobCause::Opened => "opened",
            JobCause::Reopened => "reopened",
            JobCause::ReadyForReview => "ready_for_review",
            JobCause::Synchronize => "synchronize",
            JobCause::Merged => "merged",
            JobCause::Comment => "comment",
            JobCause::Reply => "reply",
        }
    }

    /// The cause of a `pull_request` action that asks for a review.
    pub fn of_action(action: &str) -> Option<JobCause> {
        Some(match action {
            "opened" => JobCause::Opened,
            "reopened" => JobCause::Reopened,
            "ready_for_review" => JobCause::ReadyForReview,
            "synchronize" => JobCause::Synchronize,
            _ => return None,
        })
    }
}

impl TryFrom<String> for JobCause {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "merged" => Ok(JobCause::Merged),
            "comment" => Ok(JobCause::Comment),
            "reply" => Ok(JobCause::Reply),
            other => JobCause::of_action(other).ok_or_else(|| format!("unknown job cause `{s}`")),
        }
    }
}

impl std::fmt::Display for JobCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a job stands, as the `status` column keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Leased by a worker.
    Running,
    /// Failed; waiting for its backoff to run again.
    Failed,
    Done,
    /// Out of attempts.
    Dead,
    /// Superseded by a newer head, or the pull request closed.
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Queued,
        JobState::Running,
        JobState::Failed,
        JobState::Done,
        JobState::Dead,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Failed => "failed",
            JobState::Done => "done",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl TryFrom<String> for JobState {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        JobState::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown job status `{s}`"))
    }
}

impl PartialEq<&str> for JobState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A review job to create.
#[derive(Debug, Clone, Serialize)]
pub struct NewJob {
    pub delivery_id: Option<String>,
    pub installation_id: InstallationId,
    pub repo: RepoName,
    pub pr_number: PrNumber,
    /// Empty for a comment's job: the head as it is when the job runs.
    pub head_sha: CommitSha,
    pub cause: JobCause,
    /// Higher goes first (critical repositories).
    pub priority: i64,
    pub max_attempts: i64,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub delivery_id: Option<String>,
    #[sqlx(try_from = "i64")]
    pub installation_id: InstallationId,
    #[sqlx(try_from = "String")]
    pub repo: RepoName,
    #[sqlx(try_from = "i64")]
    pub pr_number: PrNumber,
    #[sqlx(try_from = "String")]
    pub head_sha: CommitSha,
    #[sqlx(try_from = "String")]
    pub cause: JobCause,
    pub priority: i64,
    #[sqlx(try_from = "String")]
    pub status: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub run_after: i64,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a job stands after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Will run again after a backoff.
    Retrying { delay_ms: i64 },
    /// Out of attempts: kept with its last error.
    Dead,
    /// No longer ours (cancelled, or the lease was taken over).
    Lost,
}

const COLUMNS: &str = "id, delivery_id, installation_id, repo, pr_number, head_sha, cause, priority, status, attempts, max_attempts, lease_owner, lease_until, run_after, last_error, outcome, created_at, updated_at";

pub(super) async fn insert(
    tx: &mut sqlx::Transaction<'_, Any>,
    job: &NewJob,
    now: i64,
) -> Result<Job> {
    let sql = format!(
        "INSERT INTO jobs (delivery_id, installation_id, repo, pr_number, head_sha, cause, priority, status, attempts, max_attempts, run_after, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', 0, $8, $9, $9, $9) RETURNING {COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(job.delivery_id.as_deref())
        .bind(job.installation_id.to_db())
        .bind(job.repo.as_str())
        .bind(job.pr_number.to_db())
        .bind(job.head_sha.as_str())
        .bind(job.cause.as_str())
        .bind(job.priority)
        .bind(job.max_attempts)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?)
}

/// Backoff before attempt `attempts + 1`: 2 s, 4 s, 8 s ... capped at 5 minutes.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 20) as u32;
    (1000_i64 << exp).min(300_000)
}

impl Store {
    /// Creates a job outside a webhook delivery (CLI, tests, benchmarks).
    pub async fn insert_job(&self, job: &NewJob) -> Result<Job> {
        let mut tx = self.pool.begin().await?;
        let j = insert(&mut tx, job, now_ms()).await?;
        tx.commit().await?;
        Ok(j)
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>> {
        let sql = format!("SELECT {COLUMNS} FROM jobs WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The most recent jobs, newest first.
    pub async fn recent_jobs(&self, limit: i64, since_ms: Option<i64>) -> Result<Vec<Job>> {
        let sql =
            format!("SELECT {COLUMNS} FROM jobs WHERE created_at >= $1 ORDER BY id DESC LIMIT $2");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(since_ms.unwrap_or(0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Claims the next runnable job for `worker` with a lease of `lease_ms`: the highest priority,
    /// then the oldest, among queued jobs whose backoff has passed and running jobs whose lease
    /// expired (their worker died). Attempts count claims, so a job whose workers keep dying ends dead.
    pub async fn claim_next(&self, worker: &str, lease_ms: i64) -> Result<Option<Job>> {
        let now = now_ms();
        let lock = match self.backend {
            // Concurrent claimers skip each other's rows instead of waiting on them.
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // SQLite has one writer at a time: the UPDATE is atomic by itself.
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
             WHERE id = (SELECT id FROM jobs
                         WHERE (status IN ('queued', 'failed') AND run_after <= $3) OR (status = 'running' AND lease_until < $3)
                         ORDER BY priority DESC, id LIMIT 1 {lock})
             RETURNING {COLUMNS}"
        );
        let job: Option<Job> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(job)
    }

    /// Claims one given job (the SQS queue names the job; the store decides whether it may run).
    /// None when the job is finished, cancelled, or leased by a live worker.
    pub async fn claim_job(&self, id: i64, worker: &str, lease_ms: i64) -> Result<Option<Job>> {
        let now = now_ms();
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
             WHERE id = $4 AND (status = 'queued' OR (status = 'failed' AND run_after <= $3) OR (status = 'running' AND lease_until < $3))
             RETURNING {COLUMNS}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Extends a lease; false when the job is no longer this worker's (cancelled, taken over).
    /// Every call naming a held job also names the claim's attempt number: a takeover bumps it,
    /// so a worker that lost its lease can never act on the job again, even under the same name.
    pub async fn renew_lease(
        &self,
        id: i64,
        worker: &str,
        attempt: i64,
        lease_ms: i64,
    ) -> Result<bool> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND attempts = $5 AND status = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Whether `worker` still holds the job (checked before anything is posted).
    pub async fn still_holds(&self, id: i64, worker: &str, attempt: i64) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running' AND lease_until > $4",
        )
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(n == 1)
    }

    /// Marks a held job done with a one-line outcome; false if it was no longer held.
    pub async fn complete_job(
        &self,
        id: i64,
        worker: &str,
        attempt: i64,
        outcome: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE jobs SET status = 'done', outcome = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2
             WHERE id = $3 AND lease_owner = $4 AND attempts = $5 AND status = 'running'",
        )
        .bind(outcome)
        .bind(now_ms())
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks a held job cancelled (e.g. its head is no longer the pull request's head).
    pub async fn cancel_job(&self, id: i64, outcome: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'cancelled', outcome = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2
             WHERE id = $3 AND status IN ('queued', 'running', 'failed')",
        )
        .bind(outcome)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: back to the queue after a backoff, or dead when out of attempts.
    pub async fn fail_job(
        &self,
        id: i64,
        worker: &str,
        attempt: i64,
        error: &str,
    ) -> Result<JobStatus> {
        let Some(job) = self.job(id).await? else {
            return Ok(JobStatus::Lost);
        };
        if job.status != JobState::Running
            || job.lease_owner.as_deref() != Some(worker)
            || job.attempts != attempt
        {
            return Ok(JobStatus::Lost);
        }
        let now = now_ms();
        let error = crate::truncate(error, 2000);
        let (status, delay, next) = if job.attempts >= job.max_attempts {
            (JobState::Dead, 0, JobStatus::Dead)
        } else {
            let delay_ms = backoff_ms(job.attempts);
            (JobState::Failed, delay_ms, JobStatus::Retrying { delay_ms })
        };
        let n = sqlx::query(
            "UPDATE jobs SET status = $1, last_error = $2, run_after = $3, lease_owner = NULL, lease_until = NULL, updated_at = $4
             WHERE id = $5 AND lease_owner = $6 AND attempts = $7 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(&error)
        .bind(now + delay)
        .bind(now)
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(if n == 1 { next } else { JobStatus::Lost })
    }

    /// Marks a job dead at once (no retry can help, e.g. its worker died too many times).
    pub async fn bury_job(&self, id: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET status = 'dead', last_error = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE id = $3",
        )
        .bind(crate::truncate(error, 2000))
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives a held job back to the queue without counting the attempt, to run again after
    /// `delay_ms` (0 at shutdown; a rate limit's reset when GitHub's limit is spent).
    pub async fn release_job(
        &self,
        id: i64,
        worker: &str,
        attempt: i64,
        delay_ms: i64,
        why: Option<&str>,
    ) -> Result<()> {
        let now = now_ms();
        let status = if delay_ms > 0 {
            JobState::Failed
        } else {
            JobState::Queued
        };
        sqlx::query(
            "UPDATE jobs SET status = $1, attempts = attempts - 1, lease_owner = NULL, lease_until = NULL, run_after = $2, updated_at = $3,
                    last_error = COALESCE($4, last_error)
             WHERE id = $5 AND lease_owner = $6 AND attempts = $7 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(now + delay_ms)
        .bind(now)
        .bind(why)
        .bind(id)
        .bind(worker)
        .bind(attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Queued jobs nobody has claimed for `stale_ms`, and retries overdue by as much: an external
    /// queue may have lost their messages (a crash between commit and send, a dead-letter queue).
    pub async fn stale_jobs(&self, stale_ms: i64, limit: i64) -> Result<Vec<Job>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM jobs WHERE status IN ('queued', 'failed') AND run_after < $1 AND updated_at < $1 ORDER BY id LIMIT $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(now_ms() - stale_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Marks jobs as looked at now (so the sweeper does not send them again at once).
    pub async fn touch_job(&self, id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET updated_at = $1 WHERE id = $2 AND status IN ('queued', 'failed')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether another job of the pull request is waiting or running for `head`.
    pub async fn live_job_for_head(
        &self,
        repo: &RepoName,
        pr: PrNumber,
        head: &CommitSha,
        except: i64,
    ) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE repo = $1 AND pr_number = $2 AND head_sha = $3 AND id != $4 AND status IN ('queued', 'running', 'failed') AND cause != 'reply'",
        )
        .bind(repo.as_str())
        .bind(pr.to_db())
        .bind(head.as_str())
        .bind(except)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Jobs waiting to run (queued, or failed and waiting for their backoff).
    pub async fn queue_depth(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'failed')")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(super::backoff_ms(1), 2000);
        assert_eq!(super::backoff_ms(2), 4000);
        assert_eq!(super::backoff_ms(3), 8000);
        assert_eq!(super::backoff_ms(30), 300_000);
    }
}
