//! POST /webhook: check the delivery's headers, read its body within the bounds (its length
//! declared, within the bytes all bodies may hold in memory together, read within the body
//! timeout), verify the signature over the raw body, decide what the delivery asks for, and
//! record it (with its job) in one transaction, under the store deadline. Work happens in the
//! workers; this answers in milliseconds, and in under 2 s when the store is down (503, which the
//! reconciler later has GitHub redeliver).

use super::AppState;
use super::command::{self, Command};
use super::payload::{
    Event, InstallationEvent, InstallationRepositoriesEvent, IssueCommentEvent, PullRequestEvent,
    ReviewCommentEvent, ReviewThreadEvent, names, need,
};
use crate::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use crate::store::{Accepted, Delivery, DeliveryPlan, JobCause, NewConversation, NewJob};
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;

/// The longest `X-GitHub-Delivery` accepted (GitHub's are 36-character GUIDs).
const MAX_DELIVERY_ID: usize = 100;
/// The longest `X-GitHub-Event` accepted.
const MAX_EVENT_NAME: usize = 64;

/// Checks `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256(secret, body), in constant time.
pub fn signature_matches(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(expected) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn reply(status: StatusCode, outcome: &str) -> Response {
    (status, axum::Json(json!({ "outcome": outcome }))).into_response()
}

/// Why a delivery's headers are refused before its body is read, if they are.
fn check_headers(headers: &HeaderMap) -> Result<(), (StatusCode, &'static str)> {
    let text = |n: &str| headers.get(n).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
    if let Some(id) = text("x-github-delivery")
        && (id.len() > MAX_DELIVERY_ID || !printable(id))
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "X-GitHub-Delivery must be at most 100 printable characters",
        ));
    }
    if let Some(event) = text("x-github-event")
        && (event.len() > MAX_EVENT_NAME
            || !event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "X-GitHub-Event must be an event name",
        ));
    }
    Ok(())
}

/// The body, read within the bounds; or the answer that refuses it. Its bytes are counted
/// against the shared budget until the returned permit is dropped.
async fn read_body(
    state: &AppState,
    request: Request,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Response> {
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let Some(length) = declared else {
        state.count("rejected_headers");
        return Err(reply(
            StatusCode::LENGTH_REQUIRED,
            "a Content-Length is required",
        ));
    };
    // Over REDLINE_MAX_BODY_BYTES was answered 413 by the body limit layer already.
    let length = length.min(state.settings.max_body_bytes);
    let Ok(permit) = state
        .body_budget
        .clone()
        .try_acquire_many_owned(length.max(1) as u32)
    else {
        // Every byte the bound allows is taken by bodies being read: refuse this one unread.
        state.count("busy");
        let mut r = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: too many webhook bodies in memory",
        );
        r.headers_mut()
            .insert("retry-after", http::HeaderValue::from_static("5"));
        return Err(r);
    };
    let read = axum::body::to_bytes(request.into_body(), length);
    match tokio::time::timeout(state.settings.body_timeout, read).await {
        Ok(Ok(body)) => Ok((body, permit)),
        Ok(Err(_)) => {
            state.count("rejected_payload");
            Err(reply(
                StatusCode::BAD_REQUEST,
                "the body does not match its Content-Length",
            ))
        }
        Err(_) => {
            state.count("body_timeout");
            Err(reply(
                StatusCode::REQUEST_TIMEOUT,
                "the body was not sent in time",
            ))
        }
    }
}

pub async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let headers = request.headers().clone();
    if let Err((status, why)) = check_headers(&headers) {
        state.count("rejected_headers");
        return reply(status, why);
    }
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if header("x-hub-signature-256").is_none() {
        // Unsigned: refused without reading a byte of the body.
        state.count("rejected_signature");
        tracing::warn!(
            delivery = header("x-github-delivery").unwrap_or("-"),
            "webhook without a signature"
        );
        return reply(StatusCode::UNAUTHORIZED, "signature missing or wrong");
    }
    let (body, _permit) = match read_body(&state, request).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    if !signature_matches(&state.secret, &body, header("x-hub-signature-256")) {
        state.count("rejected_signature");
        tracing::warn!(
            delivery = header("x-github-delivery").unwrap_or("-"),
            "webhook with a wrong signature"
        );
        return reply(StatusCode::UNAUTHORIZED, "signature missing or wrong");
    }
    let (Some(event), Some(delivery_id)) = (header("x-github-event"), header("x-github-delivery"))
    else {
        state.count("rejected_headers");
        return reply(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Event and X-GitHub-Delivery are required",
        );
    };
    let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(&body) else {
        state.count("rejected_payload");
        tracing::warn!(
            delivery = delivery_id,
            event,
            "webhook body is not a JSON object"
        );
        return reply(StatusCode::BAD_REQUEST, "the body is not a JSON object");
    };
    drop(body);
    let action = value["action"].as_str().map(str::to_string);
    let delivery = Delivery {
        id: delivery_id.to_string(),
        event: event.to_string(),
        action,
    };
    let recorded = match Event::parse(event, &value) {
        Ok(e) => record(&state, e, &delivery).await,
        Err(why) => Err(Rejection::Malformed(why)),
    };
    let (plan, accepted) = match recorded {
        Ok(p) => p,
        Err(Rejection::Malformed(why)) => {
            state.count("rejected_payload");
            tracing::warn!(delivery = delivery_id, event, %why, "malformed webhook payload");
            return reply(StatusCode::BAD_REQUEST, &why);
        }
        Err(Rejection::Store(e)) => {
            state.count("store_error");
            tracing::error!(delivery = delivery_id, event, error = %format!("{e:#}"), "cannot record the delivery");
            // Nothing was recorded: the reconciler has GitHub redeliver it once the store is back.
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable");
            r.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("30"));
            return r;
        }
    };
    match accepted {
        Accepted::Duplicate => {
            state.count("duplicate");
            reply(StatusCode::OK, "duplicate delivery: already handled")
        }
        Accepted::SameComment => {
            // The same comment under another delivery id: it is answered once.
            state.count("duplicate");
            tracing::info!(
                delivery = delivery_id,
                event,
                "comment already answered or queued"
            );
            reply(
                StatusCode::OK,
                "duplicate comment: already answered or queued",
            )
        }
        Accepted::New {
            job: Some(job),
            cancelled,
        } => {
            if let Err(e) = state.queue.push(&job).await {
                // The job is in the store: the queue's sweeper sends it once the queue is back.
                tracing::error!(delivery = delivery_id, job = job.id, error = %format!("{e:#}"), "cannot hand the job to the queue now; it will be sent again");
                state.count("queue_error");
            }
            state.count("enqueued");
            tracing::info!(delivery = delivery_id, event, job = job.id, repo = %job.repo, pr = %job.pr_number, cause = job.cause.as_str(), cancelled, "job enqueued");
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "outcome": "enqueued", "job": job.id, "cancelled": cancelled })),
            )
                .into_response()
        }
        Accepted::New {
            job: None,
            cancelled,
        } => {
            state.count(if cancelled > 0 {
                "cancelled"
            } else {
                "ignored"
            });
            tracing::info!(delivery = delivery_id, event, outcome = %plan.outcome, cancelled, "webhook handled");
            reply(StatusCode::OK, &plan.outcome)
        }
    }
}

/// Decides what the delivery asks for and records both, all under one store deadline (an
/// unreachable database must not hold GitHub past its 10 s: it would count a timeout).
async fn record(
    state: &AppState,
    event: Event,
    delivery: &Delivery,
) -> Result<(DeliveryPlan, Accepted), Rejection> {
    let work = async {
        let (plan, conversation) = match decide(state, event).await {
            Ok(p) => p,
            Err(r) => return Ok(Err(r)),
        };
        let accepted = state
            .store
            .accept_delivery_with(delivery, &plan, conversation.as_ref())
            .await?;
        anyhow::Ok(Ok((plan, accepted)))
    };
    match state.store_call(work).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(Rejection::Store(e))) => {
            state.health.failed();
            Err(Rejection::Store(e))
        }
        Ok(Err(r)) => Err(r),
        Err(e) => Err(Rejection::Store(e)),
    }
}

/// Why a delivery is not acted on: its payload lacks what the event needs (400), or the store
/// failed (503, so that a redelivery can succeed).
enum Rejection {
    Malformed(String),
    Store(anyhow::Error),
}

impl From<String> for Rejection {
    fn from(s: String) -> Self {
        Rejection::Malformed(s)
    }
}

/// A job for a pull request (its installation, repository, number, the head to review).
fn new_job(
    state: &AppState,
    installation: InstallationId,
    repo: &RepoName,
    number: PrNumber,
    head: CommitSha,
    cause: JobCause,
) -> NewJob {
    NewJob {
        delivery_id: None,
        installation_id: installation,
        priority: state.settings.priority_of(repo.as_str()),
        repo: repo.clone(),
        pr_number: number,
        head_sha: head,
        cause,
        max_attempts: state.settings.max_attempts,
    }
}

/// `/redline review`: cancel what runs for the pull request and review it again. The comment
/// names no commit: the worker reviews the current head.
fn review_now(
    state: &AppState,
    installation: InstallationId,
    repo: &RepoName,
    number: PrNumber,
) -> DeliveryPlan {
    DeliveryPlan {
        outcome: "enqueued".into(),
        cancel: Some((repo.clone(), number)),
        enqueue: Some(new_job(
            state,
            installation,
            repo,
            number,
            CommitSha::default(),
            JobCause::Comment,
        )),
    }
}

/// A command to answer (`help`, `explain`, ...): a reply job for the pull request.
fn answer(
    state: &AppState,
    installation: InstallationId,
    repo: &RepoName,
    number: PrNumber,
    command: &str,
) -> DeliveryPlan {
    DeliveryPlan {
        outcome: format!("enqueued: answer `{command}`"),
        cancel: None,
        enqueue: Some(new_job(
            state,
            installation,
            repo,
            number,
            CommitSha::default(),
            JobCause::Reply,
        )),
    }
}

fn ignored(why: &str) -> DeliveryPlan {
    DeliveryPlan {
        outcome: format!("ignored: {why}"),
        ..DeliveryPlan::default()
    }
}

/// What a delivery asks for, and the comment to answer when it asks for an answer. Errors name
/// the missing field of a malformed payload.
async fn decide(
    state: &AppState,
    event: Event,
) -> Result<(DeliveryPlan, Option<NewConversation>), Rejection> {
    let plan = match event {
        Event::Ping => Ok(ignored("ping")),
        Event::PullRequest(p) => pull_request(state, &p).await,
        Event::IssueComment(c) => return issue_comment(state, &c).await,
        Event::ReviewComment(c) => return review_comment(state, &c).await,
        Event::ReviewThread(t) => review_thread(state, &t).await,
        Event::Installation(i) => installation(state, &i).await,
        Event::InstallationRepositories(i) => installation_repositories(state, &i).await,
        Event::Other(other) => Ok(ignored(&format!("event {other}"))),
    };
    plan.map(|p| (p, None))
}

/// `pull_request`: a new head is reviewed (and older jobs of the pull request cancelled); a
/// merge settles the findings; closing or going back to draft cancels.
async fn pull_request(state: &AppState, p: &PullRequestEvent) -> Result<DeliveryPlan, Rejection> {
    let repo = p.repo()?;
    let number = p.number()?;
    let cancel = Some((repo.clone(), number));
    let pr = p.pull_request.as_ref();
    if let Some(cause) = JobCause::of_action(&p.action) {
        let installation = p.installation()?;
        let head = p.head()?;
        if pr.and_then(|x| x.draft) == Some(true) && !state.settings.review_drafts {
            return Ok(DeliveryPlan {
                cancel,
                ..ignored("draft pull request")
            });
        }
        if pr.and_then(|x| x.state.as_deref()) == Some("closed") {
            return Ok(ignored("closed pull request"));
        }
        if let Some(why) = installation_blocked(state, installation).await {
            return Ok(ignored(&why));
        }
        return Ok(DeliveryPlan {
            outcome: "enqueued".into(),
            // A newer head makes older reviews of the pull request pointless.
            cancel,
            enqueue: Some(new_job(state, installation, &repo, number, head, cause)),
        });
    }
    match p.action.as_str() {
        "closed" if pr.and_then(|x| x.merged) == Some(true) => {
            // Merged: a light job settles what became of the posted findings.
            let installation = p.installation()?;
            Ok(DeliveryPlan {
                outcome: "enqueued".into(),
                cancel,
                enqueue: Some(new_job(
                    state,
                    installation,
                    &repo,
                    number,
                    p.head()?,
                    JobCause::Merged,
                )),
            })
        }
        "closed" | "converted_to_draft" => Ok(DeliveryPlan {
            outcome: format!("cancelled: {}", p.action),
            cancel,
            enqueue: None,
        }),
        other => Ok(ignored(&format!("pull_request {other}"))),
    }
}

/// Whether a commenter may give commands: the repository's owner, a member of its organization
/// or a collaborator (GitHub's `author_association`), as for `/redline review`.
fn has_write_access(association: &str) -> bool {
    ["OWNER", "MEMBER", "COLLABORATOR"].contains(&association)
}

/// The hidden marker on redline's own answers: a comment that carries it is never answered.
const ANSWER_MARK: &str = "<!-- redline:answer=";

/// `issue_comment`: `/redline review` from someone with write access reviews the current head;
/// `/redline help` (or another `/redline` command, which belongs in a finding's thread) is
/// answered on the pull request with the list of commands.
async fn issue_comment(
    state: &AppState,
    c: &IssueCommentEvent,
) -> Result<(DeliveryPlan, Option<NewConversation>), Rejection> {
    let none = |p: DeliveryPlan| Ok((p, None));
    if c.action != "created" {
        return none(ignored(&format!("issue_comment {}", c.action)));
    }
    if !c.on_pull_request() {
        return none(ignored("comment on an issue, not a pull request"));
    }
    let Some(cmd) = command::parse(c.body(), &state.settings.github_app_slug, false) else {
        return none(ignored("comment without a command"));
    };
    if c.by_bot() || c.body().contains(ANSWER_MARK) {
        return none(ignored("comment by a bot or an app"));
    }
    let association = c.association();
    if !has_write_access(association) {
        return none(ignored(&format!(
            "`/redline {}` from a user without write access ({association})",
            cmd.name()
        )));
    }
    let repo = c.repo()?;
    let number = c.number()?;
    let installation = c.installation()?;
    if let Some(why) = installation_blocked(state, installation).await {
        return none(ignored(&why));
    }
    if cmd == Command::Review {
        return none(review_now(state, installation, &repo, number));
    }
    // Every other command on the pull request is answered with the list of commands (the
    // finding commands work in a finding's thread).
    let conversation = NewConversation {
        repo: repo.to_string(),
        pr_number: number.to_db(),
        kind: "issue_comment".into(),
        comment_id: c.comment_id()?,
        thread_id: None,
        command: "help".into(),
        argument: if cmd == Command::Help {
            String::new()
        } else {
            cmd.name().to_string()
        },
        author: c.login().to_string(),
    };
    Ok((
        answer(state, installation, &repo, number, "help"),
        Some(conversation),
    ))
}

/// `pull_request_review_comment`: a reply in one of redline's threads that starts with
/// `/redline` or mentions the app, from someone with write access, is answered in the thread.
/// Bots (redline included) and apps are never answered; other comments are conversation between
/// people.
async fn review_comment(
    state: &AppState,
    c: &ReviewCommentEvent,
) -> Result<(DeliveryPlan, Option<NewConversation>), Rejection> {
    let none = |p: DeliveryPlan| Ok((p, None));
    if c.action != "created" {
        return none(ignored(&format!(
            "pull_request_review_comment {}",
            c.action
        )));
    }
    if c.by_bot() || c.body().contains(ANSWER_MARK) {
        return none(ignored("comment by a bot or an app"));
    }
    let Some(thread) = c.comment.as_ref().and_then(|x| x.in_reply_to_id) else {
        return none(ignored("review comment that is not a reply in a thread"));
    };
    let Some(cmd) = command::parse(c.body(), &state.settings.github_app_slug, true) else {
        return none(ignored("reply without a command"));
    };
    let association = c.association();
    if !has_write_access(association) {
        return none(ignored(&format!(
            "`{}` from a user without write access ({association})",
            cmd.name()
        )));
    }
    let repo = c.repo()?;
    let number = c.number()?;
    let installation = c.installation()?;
    let comment_id = c.comment_id()?;
    if let Some(why) = installation_blocked(state, installation).await {
        return none(ignored(&why));
    }
    if cmd == Command::Review {
        return none(review_now(state, installation, &repo, number));
    }
    let finding = state
        .store
        .finding_by_comment(repo.as_str(), thread)
        .await
        .map_err(Rejection::Store)?;
    if finding.is_none() {
        return none(ignored("reply in a thread redline did not start"));
    }
    let conversation = NewConversation {
        repo: repo.to_string(),
        pr_number: number.to_db(),
        kind: "review_comment".into(),
        comment_id,
        thread_id: Some(thread),
        command: cmd.name().into(),
        argument: cmd.argument().to_string(),
        author: c.login().to_string(),
    };
    Ok((
        answer(state, installation, &repo, number, cmd.name()),
        Some(conversation),
    ))
}

/// `pull_request_review_thread`: a resolved thread dismisses its finding; unresolved undoes it.
async fn review_thread(state: &AppState, t: &ReviewThreadEvent) -> Result<DeliveryPlan, Rejection> {
    let action = t.action.as_str();
    if action != "resolved" && action != "unresolved" {
        return Ok(ignored("event pull_request_review_thread"));
    }
    let repo = need(
        t.repository.as_ref().and_then(|r| r.full_name.clone()),
        "/repository/full_name",
    )?;
    let ids: Vec<i64> = need(
        t.thread.as_ref().and_then(|x| x.comments.as_ref()),
        "/thread/comments",
    )?
    .iter()
    .filter_map(|c| c.id)
    .collect();
    let n = state
        .store
        .thread_resolved(repo.as_str(), &ids, action == "resolved")
        .await
        .map_err(Rejection::Store)?;
    Ok(DeliveryPlan {
        outcome: format!("recorded: thread {action}, {n} finding(s) updated"),
        ..DeliveryPlan::default()
    })
}

/// `installation`: created, suspended, deleted or changed permissions.
async fn installation(state: &AppState, i: &InstallationEvent) -> Result<DeliveryPlan, Rejection> {
    let inst = need(i.installation.as_ref(), "/installation/id")?;
    let id = need(inst.id, "/installation/id")?;
    let status = match i.action.as_str() {
        "deleted" => "deleted",
        "suspend" => "suspended",
        _ => "active",
    };
    let repos: Option<Vec<String>> = i.repositories.as_deref().map(names);
    state
        .store
        .upsert_installation(id.to_db(), inst.login(), status, repos.as_deref())
        .await
        .map_err(Rejection::Store)?;
    if let Some(gh) = &state.github {
        // New permissions or a suspension: the cached token is stale.
        gh.forget_installation(id);
    }
    Ok(ignored(&format!("installation {} recorded", i.action)))
}

/// `installation_repositories`: repositories added to or removed from an installation.
async fn installation_repositories(
    state: &AppState,
    i: &InstallationRepositoriesEvent,
) -> Result<DeliveryPlan, Rejection> {
    let inst = need(i.installation.as_ref(), "/installation/id")?;
    let id = need(inst.id, "/installation/id")?;
    state
        .store
        .change_installation_repos(
            id.to_db(),
            inst.login(),
            &names(&i.repositories_added),
            &names(&i.repositories_removed),
        )
        .await
        .map_err(Rejection::Store)?;
    Ok(ignored(&format!(
        "installation_repositories {} recorded",
        i.action
    )))
}

/// Why an installation's events are not acted on (suspended or deleted), if they are not.
async fn installation_blocked(state: &AppState, installation: InstallationId) -> Option<String> {
    match state.store.installation_status(installation.to_db()).await {
        Ok(Some(s)) if s != "active" => Some(format!("installation {installation} is {s}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::signature_matches;

    #[test]
    fn githubs_documented_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signature_matches(secret, b"Hello, World!", Some(sig)));
        assert!(!signature_matches(secret, b"Hello, World?", Some(sig)));
        assert!(!signature_matches(b"other", b"Hello, World!", Some(sig)));
        assert!(!signature_matches(secret, b"Hello, World!", None));
        assert!(!signature_matches(
            secret,
            b"Hello, World!",
            Some("sha1=757107ea")
        ));
        assert!(!signature_matches(
            secret,
            b"Hello, World!",
            Some("sha256=zz")
        ));
    }
}
