//! POST /webhook: verify the signature over the raw body, decide what the delivery asks for, and
//! record it (with its job) in one transaction. Work happens in the workers; this answers in
//! milliseconds.

use super::AppState;
use crate::store::{Accepted, Delivery, DeliveryPlan, NewJob};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;

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

pub async fn handle(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if !signature_matches(&state.secret, &body, header("x-hub-signature-256")) {
        state.count("rejected_signature");
        tracing::warn!(
            delivery = header("x-github-delivery").unwrap_or("-"),
            "webhook with a missing or wrong signature"
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
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            state.count("rejected_payload");
            tracing::warn!(
                delivery = delivery_id,
                event,
                "webhook body is not a JSON object"
            );
            return reply(StatusCode::BAD_REQUEST, "the body is not a JSON object");
        }
    };
    let action = payload["action"].as_str().map(str::to_string);
    let plan = match decide(&state, event, &payload).await {
        Ok(p) => p,
        Err(Rejection::Malformed(why)) => {
            state.count("rejected_payload");
            tracing::warn!(delivery = delivery_id, event, %why, "malformed webhook payload");
            return reply(StatusCode::BAD_REQUEST, &why);
        }
        Err(Rejection::Store(e)) => {
            state.count("store_error");
            tracing::error!(delivery = delivery_id, event, error = %format!("{e:#}"), "cannot record the event");
            return reply(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable");
        }
    };
    let delivery = Delivery {
        id: delivery_id.to_string(),
        event: event.to_string(),
        action,
    };
    let accepted = match state.store.accept_delivery(&delivery, &plan).await {
        Ok(a) => a,
        Err(e) => {
            state.count("store_error");
            tracing::error!(delivery = delivery_id, error = %format!("{e:#}"), "cannot record the delivery");
            // GitHub can redeliver: nothing was recorded.
            return reply(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable");
        }
    };
    match accepted {
        Accepted::Duplicate => {
            state.count("duplicate");
            reply(StatusCode::OK, "duplicate delivery: already handled")
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
            tracing::info!(delivery = delivery_id, event, job = job.id, repo = %job.repo, pr = job.pr_number, cancelled, "review job enqueued");
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

impl From<&str> for Rejection {
    fn from(s: &str) -> Self {
        Rejection::Malformed(s.to_string())
    }
}

fn str_field<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, Rejection> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| Rejection::Malformed(format!("payload has no {pointer}")))
}

fn int_field(v: &Value, pointer: &str) -> Result<i64, Rejection> {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .ok_or_else(|| Rejection::Malformed(format!("payload has no {pointer}")))
}

/// A job for a pull request (its installation, repository, number, the head to review).
fn new_job(
    state: &AppState,
    installation: i64,
    repo: &str,
    number: i64,
    head: String,
    cause: &str,
) -> NewJob {
    NewJob {
        delivery_id: None,
        installation_id: installation,
        priority: state.settings.priority_of(repo),
        repo: repo.to_string(),
        pr_number: number,
        head_sha: head,
        cause: cause.to_string(),
        max_attempts: state.settings.max_attempts,
    }
}

fn ignored(why: &str) -> DeliveryPlan {
    DeliveryPlan {
        outcome: format!("ignored: {why}"),
        ..DeliveryPlan::default()
    }
}

/// What a delivery asks for. Errors name the missing field of a malformed payload.
async fn decide(state: &AppState, event: &str, p: &Value) -> Result<DeliveryPlan, Rejection> {
    let action = p["action"].as_str().unwrap_or("");
    match event {
        "ping" => Ok(ignored("ping")),
        "pull_request" => {
            let repo = str_field(p, "/repository/full_name")?.to_string();
            let number = int_field(p, "/pull_request/number")?;
            let cancel = Some((repo.clone(), number));
            match action {
                "opened" | "reopened" | "ready_for_review" | "synchronize" => {
                    let installation = int_field(p, "/installation/id")?;
                    let head = str_field(p, "/pull_request/head/sha")?.to_string();
                    if p["pull_request"]["draft"].as_bool() == Some(true)
                        && !state.settings.review_drafts
                    {
                        return Ok(DeliveryPlan {
                            cancel,
                            ..ignored("draft pull request")
                        });
                    }
                    if p["pull_request"]["state"].as_str() == Some("closed") {
                        return Ok(ignored("closed pull request"));
                    }
                    if let Some(why) = installation_blocked(state, installation).await {
                        return Ok(ignored(&why));
                    }
                    Ok(DeliveryPlan {
                        outcome: "enqueued".into(),
                        // A newer head makes older reviews of the pull request pointless.
                        cancel,
                        enqueue: Some(new_job(state, installation, &repo, number, head, action)),
                    })
                }
                "closed" if p["pull_request"]["merged"].as_bool() == Some(true) => {
                    // Merged: a light job settles what became of the posted findings.
                    let installation = int_field(p, "/installation/id")?;
                    Ok(DeliveryPlan {
                        outcome: "enqueued".into(),
                        cancel,
                        enqueue: Some(new_job(
                            state,
                            installation,
                            &repo,
                            number,
                            str_field(p, "/pull_request/head/sha")?.to_string(),
                            "merged",
                        )),
                    })
                }
                "closed" | "converted_to_draft" => Ok(DeliveryPlan {
                    outcome: format!("cancelled: {action}"),
                    cancel,
                    enqueue: None,
                }),
                other => Ok(ignored(&format!("pull_request {other}"))),
            }
        }
        "issue_comment" => {
            if action != "created" {
                return Ok(ignored(&format!("issue_comment {action}")));
            }
            if p["issue"]["pull_request"].is_null() {
                return Ok(ignored("comment on an issue, not a pull request"));
            }
            let body = p["comment"]["body"].as_str().unwrap_or("").trim_start();
            if !body.starts_with("/redline review") {
                return Ok(ignored("comment without a command"));
            }
            let user_type = p["comment"]["user"]["type"]
                .as_str()
                .or(p["sender"]["type"].as_str())
                .unwrap_or("");
            if user_type == "Bot" || p["comment"]["performed_via_github_app"].is_object() {
                return Ok(ignored("comment by a bot or an app"));
            }
            let association = p["comment"]["author_association"]
                .as_str()
                .unwrap_or("NONE");
            if !["OWNER", "MEMBER", "COLLABORATOR"].contains(&association) {
                return Ok(ignored(&format!(
                    "`/redline review` from a user without write access ({association})"
                )));
            }
            let repo = str_field(p, "/repository/full_name")?.to_string();
            let number = int_field(p, "/issue/number")?;
            let installation = int_field(p, "/installation/id")?;
            if let Some(why) = installation_blocked(state, installation).await {
                return Ok(ignored(&why));
            }
            Ok(DeliveryPlan {
                outcome: "enqueued".into(),
                cancel: Some((repo.clone(), number)),
                // The comment does not name a commit: the worker reviews the current head.
                enqueue: Some(new_job(
                    state,
                    installation,
                    &repo,
                    number,
                    String::new(),
                    "comment",
                )),
            })
        }
        "pull_request_review_thread" if action == "resolved" || action == "unresolved" => {
            let repo = str_field(p, "/repository/full_name")?;
            let ids: Vec<i64> = p["thread"]["comments"]
                .as_array()
                .ok_or("payload has no /thread/comments")?
                .iter()
                .filter_map(|c| c["id"].as_i64())
                .collect();
            let n = state
                .store
                .thread_resolved(repo, &ids, action == "resolved")
                .await
                .map_err(Rejection::Store)?;
            Ok(DeliveryPlan {
                outcome: format!("recorded: thread {action}, {n} finding(s) updated"),
                ..DeliveryPlan::default()
            })
        }
        "installation" => {
            let id = int_field(p, "/installation/id")?;
            let account = p["installation"]["account"]["login"].as_str().unwrap_or("");
            let status = match action {
                "deleted" => "deleted",
                "suspend" => "suspended",
                _ => "active",
            };
            let repos: Option<Vec<String>> = p["repositories"].as_array().map(|a| {
                a.iter()
                    .filter_map(|r| r["full_name"].as_str().map(str::to_string))
                    .collect()
            });
            state
                .store
                .upsert_installation(id, account, status, repos.as_deref())
                .await
                .map_err(Rejection::Store)?;
            if let Some(gh) = &state.github {
                // New permissions or a suspension: the cached token is stale.
                gh.forget_installation(id as u64);
            }
            Ok(ignored(&format!("installation {action} recorded")))
        }
        "installation_repositories" => {
            let id = int_field(p, "/installation/id")?;
            let account = p["installation"]["account"]["login"].as_str().unwrap_or("");
            let names = |k: &str| -> Vec<String> {
                p[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|r| r["full_name"].as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            state
                .store
                .change_installation_repos(
                    id,
                    account,
                    &names("repositories_added"),
                    &names("repositories_removed"),
                )
                .await
                .map_err(Rejection::Store)?;
            Ok(ignored(&format!(
                "installation_repositories {action} recorded"
            )))
        }
        other => Ok(ignored(&format!("event {other}"))),
    }
}

/// Why an installation's events are not acted on (suspended or deleted), if they are not.
async fn installation_blocked(state: &AppState, installation: i64) -> Option<String> {
    match state.store.installation_status(installation).await {
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
