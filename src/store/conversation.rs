//! Talking to the reviewer: the commands developers give in redline's review threads (and on the
//! pull request), each recorded once per comment with the job that answers it; the finding a
//! thread is about; and what a push needs to know to review only what changed (the last reviewed
//! head, and the findings still open across the pull request).

use super::{Store, now_ms};
use anyhow::Result;
use sqlx::Any;

/// A comment to answer, as the webhook records it.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub repo: String,
    pub pr_number: i64,
    /// `review_comment` (a reply in a review thread) or `issue_comment` (on the pull request).
    pub kind: String,
    pub comment_id: i64,
    /// The thread's first comment (redline's), for a reply in a thread.
    pub thread_id: Option<i64>,
    /// `explain`, `fix`, `ignore`, `ask` or `help`.
    pub command: String,
    /// The reason given to `ignore`, the text of a question; bounded by the webhook.
    pub argument: String,
    /// The commenter's login.
    pub author: String,
}

/// A recorded comment and what became of it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Conversation {
    pub id: i64,
    pub repo: String,
    pub pr_number: i64,
    pub kind: String,
    pub comment_id: i64,
    pub thread_id: Option<i64>,
    pub command: String,
    pub argument: String,
    pub author: String,
    pub delivery_id: String,
    pub job_id: Option<i64>,
    pub answer_id: Option<i64>,
    pub outcome: Option<String>,
    pub audit: Option<String>,
    pub tokens_in: i64,
    pub tokens_out: i64,
}

/// The finding a review thread is about: the one posted as the thread's first comment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThreadFinding {
    pub id: i64,
    pub pr_number: i64,
    pub path: String,
    pub line: i64,
    pub end_line: i64,
    pub severity: String,
    pub category: String,
    pub rule_id: Option<String>,
    /// JSON array of knowledge ids.
    pub guidance: String,
    pub confidence: f64,
    pub source: String,
    pub fingerprint: String,
    pub code_lines: i64,
    pub outcome: String,
    pub outcome_reason: Option<String>,
    /// Absent for findings recorded before issue 20.
    pub message: Option<String>,
    pub cwe: Option<String>,
    pub suggestion: Option<String>,
}

impl ThreadFinding {
    /// The knowledge ids of its guidance.
    pub fn guidance_ids(&self) -> Vec<String> {
        serde_json::from_str(&self.guidance).unwrap_or_default()
    }

    /// What its fingerprint is keyed on: the rule, or the category.
    pub fn key(&self) -> &str {
        self.rule_id.as_deref().unwrap_or(&self.category)
    }
}

/// The last review of a pull request: its head, and what it covered (JSON).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastReview {
    pub head_sha: String,
    pub scope: Option<String>,
}

impl LastReview {
    /// The paths that review listed as not reviewed (a later push looks at them again).
    pub fn not_reviewed(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| {
                v["not_reviewed"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
            })
            .unwrap_or_default()
    }
}

/// An open finding of a pull request (posted inline, neither fixed nor dismissed).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenFinding {
    pub path: String,
    pub severity: String,
    pub fingerprint: String,
}

const CONVERSATION_COLUMNS: &str = "id, repo, pr_number, kind, comment_id, thread_id, command, argument, author, delivery_id, job_id, answer_id, outcome, audit, tokens_in, tokens_out";

/// Records a comment to answer, in the delivery's transaction; None when the comment is already
/// recorded (under another delivery id).
pub(super) async fn insert(
    tx: &mut sqlx::Transaction<'_, Any>,
    c: &NewConversation,
    delivery_id: &str,
    now: i64,
) -> Result<Option<i64>> {
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO conversations (repo, pr_number, kind, comment_id, thread_id, command, argument, author, delivery_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (repo, kind, comment_id) DO NOTHING RETURNING id",
    )
    .bind(&c.repo)
    .bind(c.pr_number)
    .bind(&c.kind)
    .bind(c.comment_id)
    .bind(c.thread_id)
    .bind(&c.command)
    .bind(&c.argument)
    .bind(&c.author)
    .bind(delivery_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

impl Store {
    /// The finding posted as review comment `comment_id` in `repo`, if redline posted it.
    pub async fn finding_by_comment(
        &self,
        repo: &str,
        comment_id: i64,
    ) -> Result<Option<ThreadFinding>> {
        Ok(sqlx::query_as(
            "SELECT id, pr_number, path, line, end_line, severity, category, rule_id, guidance, confidence, source, fingerprint,
                    code_lines, outcome, outcome_reason, message, cwe, suggestion
             FROM findings WHERE repo = $1 AND comment_id = $2 AND placement = 'inline' ORDER BY id DESC LIMIT 1",
        )
        .bind(repo)
        .bind(comment_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The comment job `job_id` answers.
    pub async fn conversation_for_job(&self, job_id: i64) -> Result<Option<Conversation>> {
        let sql = format!("SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE job_id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The conversations of a pull request, oldest first.
    pub async fn conversations(&self, repo: &str, pr: i64) -> Result<Vec<Conversation>> {
        let sql = format!(
            "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE repo = $1 AND pr_number = $2 ORDER BY id"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(repo)
            .bind(pr)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Records the answer posted for a conversation: its comment id, what it did, and what left
    /// for an LLM (the data-boundary audit) with the tokens it cost.
    pub async fn conversation_answered(
        &self,
        id: i64,
        answer_id: i64,
        outcome: &str,
        audit: Option<&serde_json::Value>,
        tokens: (i64, i64),
    ) -> Result<()> {
        sqlx::query(
            "UPDATE conversations SET answer_id = $1, outcome = $2, audit = $3, tokens_in = $4, tokens_out = $5, answered_at = $6 WHERE id = $7",
        )
        .bind(answer_id)
        .bind(outcome)
        .bind(audit.map(|a| a.to_string()))
        .bind(tokens.0)
        .bind(tokens.1)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A developer dismissed an open finding (`ignore`): it counts as dismissed, with the reason,
    /// in the statistics and the repository's feedback. False when it was not open.
    pub async fn dismiss_finding(&self, id: i64, reason: &str) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE findings SET outcome = 'dismissed', outcome_reason = $1, outcome_at = $2 WHERE id = $3 AND outcome = 'open'",
        )
        .bind(reason)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// The most recent review of a pull request, if any.
    pub async fn last_review(&self, repo: &str, pr: i64) -> Result<Option<LastReview>> {
        Ok(sqlx::query_as(
            "SELECT head_sha, scope FROM reviews WHERE repo = $1 AND pr_number = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(repo)
        .bind(pr)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The open findings of a pull request, one per fingerprint.
    pub async fn open_findings(&self, repo: &str, pr: i64) -> Result<Vec<OpenFinding>> {
        let mut rows: Vec<OpenFinding> = sqlx::query_as(
            "SELECT path, severity, fingerprint FROM findings
             WHERE repo = $1 AND pr_number = $2 AND placement = 'inline' AND outcome = 'open' ORDER BY id",
        )
        .bind(repo)
        .bind(pr)
        .fetch_all(&self.pool)
        .await?;
        let mut seen = std::collections::HashSet::new();
        rows.retain(|r| seen.insert(r.fingerprint.clone()));
        Ok(rows)
    }
}
