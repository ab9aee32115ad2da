//! What developers did with posted findings: `open`, `fixed` (the code changed or went away on a
//! later push) or `dismissed` (thread resolved, thumbs-down, or merged with the code unchanged),
//! and the figures `redline stats` and the feedback loop read from them.

use super::{Store, now_ms};
use anyhow::Result;
use serde::Serialize;

/// A posted finding whose outcome may still change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TrackedFinding {
    pub id: i64,
    pub path: String,
    /// The fingerprint's key: the rule id, or the category.
    pub key: String,
    pub fingerprint: String,
    pub code_lines: i64,
    pub comment_id: Option<i64>,
    pub outcome: String,
    pub outcome_reason: Option<String>,
}

/// One posted finding with what its review recorded, for `redline stats`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutcomeRow {
    pub repo: String,
    pub path: String,
    pub rule_id: Option<String>,
    pub category: String,
    pub severity: String,
    pub outcome: String,
    pub engine: String,
    pub model: Option<String>,
    pub prompt_version: Option<String>,
}

/// One review, for `redline stats`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReviewRow {
    pub repo: String,
    pub pr_number: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub cost_usd: f64,
    pub latency_ms: i64,
    pub prompt_version: Option<String>,
}

/// Decided findings of one rule or category in a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackCount {
    /// `rule:<id>` or `category:<name>`.
    pub key: String,
    pub decided: i64,
    pub dismissed: i64,
}

impl Store {
    /// A pull request's posted findings that are not fixed yet (open or dismissed: code that
    /// changes after a dismissal still counts as fixed).
    pub async fn tracked_findings(&self, repo: &str, pr: i64) -> Result<Vec<TrackedFinding>> {
        Ok(sqlx::query_as(
            "SELECT id, path, COALESCE(rule_id, category) AS key, fingerprint, code_lines, comment_id, outcome, outcome_reason
             FROM findings WHERE repo = $1 AND pr_number = $2 AND placement = 'inline' AND outcome != 'fixed' ORDER BY id",
        )
        .bind(repo)
        .bind(pr)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn set_outcome(&self, finding_id: i64, outcome: &str, reason: &str) -> Result<()> {
        sqlx::query(
            "UPDATE findings SET outcome = $1, outcome_reason = $2, outcome_at = $3 WHERE id = $4",
        )
        .bind(outcome)
        .bind(reason)
        .bind(now_ms())
        .bind(finding_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A review thread was resolved (or unresolved again): the open findings posted as its
    /// comments become dismissed (or open again). Returns how many changed.
    pub async fn thread_resolved(
        &self,
        repo: &str,
        comment_ids: &[i64],
        resolved: bool,
    ) -> Result<u64> {
        let mut n = 0;
        for id in comment_ids {
            let q = if resolved {
                sqlx::query(
                    "UPDATE findings SET outcome = 'dismissed', outcome_reason = 'thread resolved', outcome_at = $1
                     WHERE repo = $2 AND comment_id = $3 AND outcome = 'open'",
                )
            } else {
                sqlx::query(
                    "UPDATE findings SET outcome = 'open', outcome_reason = NULL, outcome_at = $1
                     WHERE repo = $2 AND comment_id = $3 AND outcome = 'dismissed' AND outcome_reason = 'thread resolved'",
                )
            };
            n += q
                .bind(now_ms())
                .bind(repo)
                .bind(*id)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// Decided findings per rule and per category in a repository (for the feedback loop).
    pub async fn feedback_counts(&self, repo: &str) -> Result<Vec<FeedbackCount>> {
        let rows: Vec<(Option<String>, String, String)> = sqlx::query_as(
            "SELECT rule_id, category, outcome FROM findings
             WHERE repo = $1 AND placement = 'inline' AND outcome IN ('fixed', 'dismissed')",
        )
        .bind(repo)
        .fetch_all(&self.pool)
        .await?;
        let mut counts: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
        for (rule, category, outcome) in rows {
            let keys = rule
                .map(|r| format!("rule:{r}"))
                .into_iter()
                .chain(std::iter::once(format!("category:{category}")));
            for k in keys {
                let e = counts.entry(k).or_default();
                e.0 += 1;
                e.1 += (outcome == "dismissed") as i64;
            }
        }
        Ok(counts
            .into_iter()
            .map(|(key, (decided, dismissed))| FeedbackCount {
                key,
                decided,
                dismissed,
            })
            .collect())
    }

    /// Posted findings with their review's engine, model and prompt, since `since_ms`.
    pub async fn outcome_rows(&self, since_ms: i64) -> Result<Vec<OutcomeRow>> {
        Ok(sqlx::query_as(
            "SELECT f.repo, f.path, f.rule_id, f.category, f.severity, f.outcome, r.engine, r.model, r.prompt_version
             FROM findings f JOIN reviews r ON r.id = f.review_id
             WHERE f.placement = 'inline' AND f.created_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn review_rows(&self, since_ms: i64) -> Result<Vec<ReviewRow>> {
        Ok(sqlx::query_as(
            "SELECT repo, pr_number, tokens_in, tokens_out, cost_usd, latency_ms, prompt_version FROM reviews WHERE created_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?)
    }
}
