//! Workers: claim a job, fetch the pull request, review it, post one review, record it. A job
//! whose head is no longer the pull request's head posts nothing. The lease is renewed while the
//! job runs; losing it (cancelled by a newer push, or taken over) stops the job before posting.

mod config_change;
mod conversation;
mod covered;
mod fetch;
mod incremental;
mod outcomes;

use crate::github::GitHub;
use crate::github::PrRef;
use crate::github::post::{Placement, PostRequest, Posted};
use crate::ids::CommitSha;
use crate::queue::{Claim, JobQueue};
use crate::settings::Settings;
use crate::store::{FindingRecord, JobCause, JobStatus, ReviewRecord, Store};
use anyhow::Result;
use outcomes::SettleInput;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What workers share.
pub struct Context {
    pub store: Store,
    pub queue: Arc<dyn JobQueue>,
    pub github: Arc<GitHub>,
    pub settings: Settings,
    /// The rules, knowledge and LLM endpoints every review shares.
    pub reviews: Arc<crate::review::ReviewService>,
    /// The LLM endpoints, for answers in review threads (None: rules and guidance only).
    pub llm: Option<crate::llm::LlmConfig>,
    /// The built-in knowledge, loaded on the first answer that needs it.
    pub knowledge: tokio::sync::OnceCell<Arc<redline_core::knowledge::Store>>,
}

/// Runs `n` workers until `shutdown` is set; in-flight jobs finish (or are released when
/// `shutdown_grace` passes).
pub async fn run_pool(ctx: Arc<Context>, n: usize, name: &str, shutdown: CancellationToken) {
    let mut handles = Vec::new();
    for i in 0..n {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let worker = format!("{name}/{i}");
        handles.push(tokio::spawn(async move {
            worker_loop(ctx, worker, shutdown).await;
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

async fn worker_loop(ctx: Arc<Context>, worker: String, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        let claim = match ctx.queue.claim(&worker).await {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(%worker, error = %format!("{e:#}"), "cannot claim jobs; waiting");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        run_claimed(&ctx, claim, &shutdown).await;
    }
}

/// Runs one claimed job to its end: done, cancelled, retried, dead, or released on shutdown.
pub async fn run_claimed(ctx: &Arc<Context>, claim: Claim, shutdown: &CancellationToken) {
    use tracing::Instrument;
    let span = tracing::info_span!("job", id = claim.job.id, repo = %claim.job.repo, pr = %claim.job.pr_number, attempt = claim.job.attempts);
    run_in_span(ctx, claim, shutdown).instrument(span).await
}

async fn run_in_span(ctx: &Arc<Context>, claim: Claim, shutdown: &CancellationToken) {
    let job = claim.job.clone();
    tracing::info!(head = %job.head_sha, cause = %job.cause, "job started");
    // Cancelled once the job is no longer this worker's (cancelled, or the lease taken over or
    // lapsed).
    let lost = CancellationToken::new();
    // Renew the lease at a third of its length; a refused renewal means the job is no longer ours.
    let heartbeat = {
        let ctx = ctx.clone();
        let claim = claim.clone();
        let lost = lost.clone();
        tokio::spawn(async move {
            let lease = Duration::from_millis(ctx.queue.lease_ms() as u64);
            let every = (lease / 3).max(Duration::from_millis(500));
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(every).await;
                match ctx.queue.renew(&claim).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        lost.cancel();
                        break;
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "lease renewal failed"),
                }
                // Renewals failing for a whole lease: another worker may have the job by now.
                if renewed.elapsed() >= lease {
                    tracing::warn!("the lease lapsed: stopping before anything is posted");
                    lost.cancel();
                    break;
                }
            }
        })
    };
    let start = Instant::now();
    let result = tokio::select! {
        r = review_job(ctx, &claim, &lost) => Some(r),
        _ = wait_shutdown(shutdown) => None,
    };
    heartbeat.abort();
    match result {
        None => {
            // Shutdown mid-job: another worker takes it from the start.
            if let Err(e) = ctx.queue.release(&claim, 0, None).await {
                tracing::error!(job = job.id, error = %format!("{e:#}"), "cannot release the job");
            }
            tracing::info!(job = job.id, "job released at shutdown");
        }
        Some(Ok(outcome)) => {
            if let Err(e) = ctx.queue.complete(&claim, &outcome).await {
                tracing::error!(job = job.id, error = %format!("{e:#}"), "cannot record the job as done");
            }
            tracing::info!(job = job.id, ms = start.elapsed().as_millis() as u64, %outcome, "job finished");
        }
        Some(Err(e)) if rate_limited(&e).is_some() => {
            // GitHub's limit is spent: run again when it resets, without using up an attempt.
            let wait = rate_limited(&e).unwrap_or_default();
            let message = format!("{e:#}");
            if let Err(e2) = ctx
                .queue
                .release(&claim, wait.as_millis() as i64, Some(&message))
                .await
            {
                tracing::error!(job = job.id, error = %format!("{e2:#}"), "cannot reschedule the job");
            }
            tracing::warn!(
                job = job.id,
                retry_in_secs = wait.as_secs(),
                "GitHub rate limit: job rescheduled"
            );
        }
        Some(Err(e)) => {
            let message = format!("{e:#}");
            match ctx.queue.fail(&claim, &message).await {
                Ok(JobStatus::Retrying { delay_ms }) => {
                    tracing::warn!(job = job.id, error = %message, retry_in_ms = delay_ms, "job failed; will retry")
                }
                Ok(JobStatus::Dead) => {
                    tracing::error!(job = job.id, error = %message, "job failed for the last time")
                }
                Ok(JobStatus::Lost) => {
                    tracing::info!(job = job.id, error = %message, "job stopped: no longer ours")
                }
                Err(e2) => {
                    tracing::error!(job = job.id, error = %format!("{e2:#}"), "cannot record the failure")
                }
            }
        }
    }
}

/// How long until GitHub takes requests again, when `e` is a rate limit.
fn rate_limited(e: &anyhow::Error) -> Option<Duration> {
    e.chain()
        .find_map(|c| c.downcast_ref::<crate::github::GitHubError>())
        .and_then(|g| g.retry_after)
}

/// How long in-flight work may run on after SIGTERM (`REDLINE_SHUTDOWN_GRACE_SECS`, 20).
pub fn shutdown_grace() -> Duration {
    let secs = std::env::var("REDLINE_SHUTDOWN_GRACE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20u64);
    Duration::from_secs(secs)
}

/// Resolves once shutdown is asked for and the grace period for in-flight jobs has passed.
async fn wait_shutdown(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(shutdown_grace()).await;
}

/// The job itself. Ok carries a one-line outcome for `redline jobs`.
async fn review_job(ctx: &Arc<Context>, claim: &Claim, lost: &CancellationToken) -> Result<String> {
    let job = &claim.job;
    let at = PrRef {
        installation: job.installation_id,
        repo: job.repo.clone(),
        number: job.pr_number,
    };
    let gh = &ctx.github;
    let pr = gh.pull(&at).await?;
    if job.cause == JobCause::Reply {
        // A comment to answer, not a review.
        return conversation::answer_job(ctx, claim, lost, &at, &pr).await;
    }
    if job.cause == JobCause::Merged {
        // Merged: settle what became of the posted findings; nothing is posted.
        let comments = gh.review_comments(&at).await?;
        let s = outcomes::settle(
            &ctx.store,
            gh,
            SettleInput {
                pr: &at,
                head: &pr.head.sha,
                fetched: None,
                comments: &comments,
                merged: true,
            },
        )
        .await?;
        return Ok(format!(
            "merged: {} finding(s) fixed, {} dismissed",
            s.fixed, s.dismissed
        ));
    }
    let head_sha = match head_to_review(ctx, job, &pr).await? {
        Ok(head) => head,
        Err(outcome) => return Ok(outcome),
    };
    let start = Instant::now();
    // A push reviews what changed since the last reviewed head; the rest carries forward.
    let scope = incremental::scope_of(ctx, job, &at, &head_sha).await?;
    let fetched = fetch::fetch_change(gh, &at, &pr, ctx.settings.max_changed_lines, &scope).await?;
    if lost.is_cancelled() {
        return Ok("stopped: the job was cancelled or taken over".into());
    }
    // What became of the findings posted on earlier heads.
    let existing = gh.review_comments(&at).await?;
    let settled = outcomes::settle(
        &ctx.store,
        gh,
        SettleInput {
            pr: &at,
            head: &head_sha,
            fetched: Some(&fetched),
            comments: &existing,
            merged: false,
        },
    )
    .await?;
    if settled.fixed + settled.dismissed > 0 {
        tracing::info!(
            fixed = settled.fixed,
            dismissed = settled.dismissed,
            "earlier findings settled"
        );
    }

    let review = run_review(ctx, &fetched, job).await?;
    let open = match scope {
        incremental::Scope::Since { .. } => {
            ctx.store
                .open_findings(job.repo.as_str(), job.pr_number.to_db())
                .await?
        }
        incremental::Scope::Full { .. } => Vec::new(),
    };
    let scope_line = covered::summary_line(&scope, &fetched, &review, &open);
    let carried_critical = open
        .iter()
        .any(|o| o.severity == "critical" && fetched.unchanged.contains(&o.path));

    // Post nothing for a head that is no longer current, or for a job that is no longer ours.
    if !still_ours(ctx, claim, lost).await? {
        return Ok(STOPPED_BEFORE_POSTING.into());
    }
    let now = gh.pull(&at).await?;
    if now.head.sha != head_sha {
        ctx.store.cancel_job(job.id, "superseded").await.ok();
        return Ok(format!(
            "superseded before posting: the head is now {}",
            now.head.sha.short()
        ));
    }
    let posted = post(
        ctx,
        job,
        &at,
        &head_sha,
        &review,
        &fetched,
        &existing,
        (scope_line.as_deref(), carried_critical),
    )
    .await?;
    let scope_record = covered::record(&scope, &fetched, &review);
    let review_id = posted.review_id.unwrap_or(0);
    if posted.already_posted {
        // An earlier attempt posted and then died, or the store failed before it recorded:
        // record it now (once, below), with its findings, so that jobs, stats and outcomes see it.
        if ctx.store.review_recorded(job.id, review_id as i64).await? {
            return Ok(format!("already posted and recorded as review {review_id}"));
        }
    } else {
        let partial = !fetched.not_reviewed.is_empty()
            || review.skipped().any(|f| f.language.is_some())
            || review
                .agent
                .as_ref()
                .is_some_and(|a| a.llm_skipped.is_some());
        if ctx.settings.check_runs
            && let Err(e) = gh
                .post_check_run(at.installation, &at.repo, &head_sha, &review, partial)
                .await
        {
            tracing::warn!(error = %e, "cannot create the check run");
        }
    }
    record(
        ctx,
        job,
        &head_sha,
        &review,
        &posted,
        start.elapsed(),
        &scope_record,
    )
    .await?;
    if posted.already_posted {
        return Ok(format!(
            "already posted as review {review_id}; recorded now with {} finding(s)",
            posted.findings.len()
        ));
    }
    let mut outcome = outcome_line(&review, &posted, &settled);
    if let Some(s) = covered::outcome(&scope, &fetched) {
        outcome.push_str(&format!("; {s}"));
    }
    Ok(outcome)
}

/// What a job says when it stops short of posting.
const STOPPED_BEFORE_POSTING: &str = "stopped before posting: the job was cancelled or taken over";

/// Whether the claimed job may still post: not cancelled, and not taken over by another worker
/// since (its attempt count is still ours).
async fn still_ours(ctx: &Context, claim: &Claim, lost: &CancellationToken) -> Result<bool> {
    let job = &claim.job;
    Ok(!lost.is_cancelled()
        && ctx
            .store
            .still_holds(job.id, &claim.worker, job.attempts)
            .await?)
}

/// The head a job reviews, or (as Err) the outcome when it reviews nothing. A `/redline review`
/// comment names no commit: the head as it is now. A job for an older head reviews the current
/// one when no other job will (its webhook came out of order, or never came).
async fn head_to_review(
    ctx: &Context,
    job: &crate::store::Job,
    pr: &crate::github::PullRequest,
) -> Result<Result<CommitSha, String>> {
    let head = if job.head_sha.is_empty() {
        pr.head.sha.clone()
    } else if job.head_sha != pr.head.sha {
        if ctx
            .store
            .live_job_for_head(&job.repo, job.pr_number, &pr.head.sha, job.id)
            .await?
            || pr.state != "open"
        {
            return Ok(Err(format!(
                "superseded: the head is now {}",
                pr.head.sha.short()
            )));
        }
        tracing::info!(head = %pr.head.sha, "the head moved and no job targets it: reviewing it instead");
        pr.head.sha.clone()
    } else {
        job.head_sha.clone()
    };
    if pr.state != "open" {
        return Ok(Err(format!("skipped: the pull request is {}", pr.state)));
    }
    Ok(Ok(head))
}

/// Posts the review: repeats (fingerprints already on the pull request or in the store) are
/// left out, and rules or categories this repository mostly dismisses are held back. `scope`:
/// what the review covered, for the summary, when it was not simply the whole pull request.
#[allow(clippy::too_many_arguments)]
async fn post(
    ctx: &Context,
    job: &crate::store::Job,
    at: &PrRef,
    head_sha: &CommitSha,
    review: &redline_core::model::Review,
    fetched: &fetch::Fetched,
    existing: &[crate::github::ReviewComment],
    (scope, carried_critical): (Option<&str>, bool),
) -> Result<Posted> {
    let mut known: HashSet<String> =
        crate::github::post::fingerprints_in(existing.iter().map(|c| c.body.as_str()));
    for (fp, _) in ctx
        .store
        .reported_fingerprints(job.repo.as_str(), job.pr_number.to_db())
        .await?
    {
        known.insert(fp);
    }
    let demoted = demotions(
        &ctx.settings,
        &ctx.store.feedback_counts(job.repo.as_str()).await?,
    );
    if !demoted.is_empty() {
        tracing::info!(held_back = ?demoted.keys().collect::<Vec<_>>(), "feedback: rules or categories held back in this repository");
    }
    let commentable = |path: &str, line: u32| fetched.hunk_of(path, line);
    let new_text = |path: &str| fetched.new_text(path);
    Ok(ctx
        .github
        .post_review(&PostRequest {
            pr: at,
            head_sha,
            job_id: job.id,
            review,
            commentable: &commentable,
            new_text: &new_text,
            known: &known,
            max_comments: ctx.settings.max_comments,
            not_reviewed: &fetched.not_reviewed,
            demoted: &demoted,
            demoted_min_confidence: match ctx.settings.feedback_action {
                crate::settings::FeedbackAction::Summary => None,
                crate::settings::FeedbackAction::Confidence => {
                    Some(ctx.settings.feedback_min_confidence)
                }
            },
            scope,
            carried_critical,
        })
        .await?)
}

/// Saves the review, what it covered, and where each finding went.
async fn record(
    ctx: &Context,
    job: &crate::store::Job,
    head_sha: &CommitSha,
    review: &redline_core::model::Review,
    posted: &Posted,
    took: Duration,
    scope: &serde_json::Value,
) -> Result<()> {
    let mut record = review_record(job, review, posted, took);
    record.head_sha = head_sha.to_string();
    record.scope = Some(scope.clone());
    let findings: Vec<FindingRecord> = posted
        .findings
        .iter()
        .map(|o| FindingRecord {
            path: o.finding.path.clone(),
            line: o.finding.line as i64,
            end_line: o.finding.end_line as i64,
            severity: o.finding.severity.as_str().to_string(),
            category: o.finding.category.clone(),
            rule_id: o.finding.rule_id.clone(),
            guidance: o.finding.guidance.clone(),
            confidence: o.finding.confidence,
            source: o.finding.source.as_str().to_string(),
            fingerprint: o.fingerprint.clone(),
            placement: o.placement.kind().to_string(),
            comment_id: o.comment_id.map(|c| c as i64),
            code_lines: crate::github::post::code_lines(&o.finding) as i64,
            message: o.finding.message.clone(),
            cwe: o.finding.cwe.clone(),
            suggestion: o.finding.suggestion.clone(),
        })
        .collect();
    ctx.store.save_review(&record, &findings).await?;
    Ok(())
}

/// The job's one-line outcome for `redline jobs`.
fn outcome_line(
    review: &redline_core::model::Review,
    posted: &Posted,
    settled: &outcomes::Settled,
) -> String {
    let count =
        |p: &dyn Fn(&Placement) -> bool| posted.findings.iter().filter(|o| p(&o.placement)).count();
    let inline = count(&|p| *p == Placement::Inline);
    let repeats = count(&|p| *p == Placement::Repeat);
    let demoted = count(&|p| matches!(p, Placement::Demoted(_)));
    let mut outcome = format!(
        "posted review {}: {} finding(s), {inline} inline, {repeats} repeat(s) skipped",
        posted.review_id.unwrap_or(0),
        review.findings.len()
    );
    if demoted > 0 {
        outcome.push_str(&format!(", {demoted} held back by feedback"));
    }
    if settled.fixed + settled.dismissed > 0 {
        outcome.push_str(&format!(
            "; earlier findings: {} fixed, {} dismissed",
            settled.fixed, settled.dismissed
        ));
    }
    outcome
}

/// Reviews the fetched change under the repository's `.redline.toml` at the base commit. A broken
/// one is the repository's to fix: the review uses the defaults, without an LLM (no code goes to
/// an LLM without a readable policy), and says so. A pull request that changes the file is told
/// what its change would do once merged.
async fn run_review(
    ctx: &Context,
    fetched: &fetch::Fetched,
    job: &crate::store::Job,
) -> Result<redline_core::model::Review> {
    let origin = format!("{}/.redline.toml on the base branch", job.repo);
    let (loaded, config_error) =
        match redline_core::config::from_text(fetched.config_text.as_deref(), &origin) {
            Ok(l) => (l, None),
            Err(e) => (
                redline_core::config::from_text(None, &origin)?,
                Some(format!("{e:#}")),
            ),
        };
    let options = crate::review::ReviewOptions {
        prompt_version: Some(
            ctx.settings
                .prompt_for(job.repo.as_str(), job.pr_number.to_db()),
        ),
        rules_only: config_error.is_some(),
        ..Default::default()
    };
    let mut review = ctx
        .reviews
        .review(&fetched.change, &loaded, &options)
        .await?
        .review;
    if let Some(e) = config_error {
        review.notes.push(format!(
            "{e}; reviewed with the default settings (rules only: no LLM without a readable policy)"
        ));
    }
    if let Some(head) = &fetched.head_config {
        review.notes.push(config_change::note(
            fetched.config_text.as_deref(),
            head.as_deref(),
        ));
    }
    Ok(review)
}

/// Rules and categories this repository mostly dismisses: held back from line comments, with
/// the figures that say why (the summary lists each such finding with it).
fn demotions(
    settings: &Settings,
    counts: &[crate::store::FeedbackCount],
) -> std::collections::HashMap<String, String> {
    counts
        .iter()
        .filter(|c| {
            c.decided >= settings.feedback_min_decided
                && c.dismissed as f64 / c.decided as f64 >= settings.feedback_dismiss_rate
        })
        .map(|c| {
            (
                c.key.clone(),
                format!(
                    "{} of {} decided findings of {} were dismissed in this repository",
                    c.dismissed, c.decided, c.key
                ),
            )
        })
        .collect()
}

fn review_record(
    job: &crate::store::Job,
    review: &redline_core::model::Review,
    posted: &Posted,
    took: Duration,
) -> ReviewRecord {
    let agent = review.agent.as_ref();
    ReviewRecord {
        job_id: job.id,
        repo: job.repo.to_string(),
        pr_number: job.pr_number.to_db(),
        head_sha: job.head_sha.to_string(),
        verdict: review.verdict().as_str().to_string(),
        summary: review.notes.join("\n"),
        engine: review.engine.as_str().to_string(),
        model: agent.and_then(|a| a.files.iter().find_map(|f| f.model.clone())),
        prompt_version: agent.map(|a| a.prompt_version.clone()),
        tokens_in: agent.map(|a| a.prompt_tokens as i64).unwrap_or(0),
        tokens_out: agent.map(|a| a.completion_tokens as i64).unwrap_or(0),
        cost_usd: agent.map(|a| a.cost_usd).unwrap_or(0.0),
        latency_ms: took.as_millis() as i64,
        github_review_id: posted.review_id.map(|i| i as i64),
        audit: Some(audit_of(review)),
        scope: None,
    }
}

/// The data-boundary audit: which endpoint and model got which files, how much, and a hash of it.
fn audit_of(review: &redline_core::model::Review) -> serde_json::Value {
    match &review.agent {
        None => serde_json::json!({ "llm": "none", "files": [] }),
        Some(a) => serde_json::json!({
            "llm_skipped": a.llm_skipped,
            "redactions": a.redactions,
            "files": a.files.iter().filter(|f| f.sent_bytes > 0).map(|f| serde_json::json!({
                "path": f.path,
                "endpoint": f.endpoint,
                "model": f.model,
                "bytes": f.sent_bytes,
                "tokens": f.prompt_tokens_sent,
                "sha256": f.sent_sha256,
                "redactions": f.redactions,
            })).collect::<Vec<_>>(),
            "withheld": a.files.iter().filter(|f| f.sent_bytes == 0).map(|f| serde_json::json!({
                "path": f.path,
                "why": f.reason,
            })).collect::<Vec<_>>(),
        }),
    }
}
