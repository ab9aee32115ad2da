//! The GitHub App end to end: `redline serve` on 127.0.0.1 against a fake GitHub REST API over
//! HTTP. Signed deliveries in, one review with line comments out.

use crate::common::app::*;
use crate::common::fake_github::{FakePr, fake_file};
use serde_json::{Value, json};
use std::time::Duration;

fn comment_lines(review: &Value) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = review["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Everything the fake GitHub received, as one string (to look for leaks).
fn all_request_bodies(gh: &crate::common::fake_github::FakeGitHub) -> String {
    gh.requests()
        .iter()
        .filter_map(|r| r.body.as_ref().map(|b| b.to_string()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_pull_request_gets_one_review_with_line_comments() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = start("serve", dir.path(), &app_env(dir.path(), &gh));
    let addr = server.addr.clone().unwrap();

    let body = opened();
    let (status, answer) = deliver_signed(&addr, "pull_request", "delivery-1", &body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["outcome"], "enqueued");

    wait_for(60, "the review", || !gh.reviews(REPO, 7).is_empty()).await;
    let jobs = wait_jobs_settled(dir.path(), 30).await;
    let reviews = gh.reviews(REPO, 7);
    assert_eq!(reviews.len(), 1, "one review per run");
    let r = &reviews[0];
    assert_eq!(r["commit_id"], HEAD_1);
    assert_eq!(
        r["state"], "CHANGES_REQUESTED",
        "critical findings request changes"
    );
    assert_eq!(
        comment_lines(r),
        vec![
            ("app/reports.py".into(), 15),
            ("app/reports.py".into(), 21),
            ("app/reports.py".into(), 25)
        ]
    );
    for c in r["comments"].as_array().unwrap() {
        let b = c["body"].as_str().unwrap();
        assert_eq!(c["side"], "RIGHT");
        assert!(
            b.contains("**critical**") && b.contains("<!-- redline:fp="),
            "{b}"
        );
    }
    let summary = r["body"].as_str().unwrap();
    assert!(summary.contains("3 critical"), "{summary}");
    assert!(
        summary.contains("`app/reports.py`") && summary.contains("`README.md`"),
        "coverage of every file: {summary}"
    );
    assert!(
        summary.contains("no LLM"),
        "a rules review says so: {summary}"
    );

    // The app authenticated as the installation on every call; the token was minted once.
    let calls: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/repos/"))
        .collect();
    assert!(
        calls.iter().all(|r| r.status < 400 || r.status == 404),
        "{:?}",
        calls
            .iter()
            .map(|r| (&r.method, &r.path, r.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(gh.token_mints(), 1);

    // The planted token is reported (line 25) but never repeated: not to GitHub, not in the logs.
    assert!(
        !all_request_bodies(&gh).contains(PLANTED_TOKEN),
        "the secret reached GitHub"
    );
    assert!(!server.logs().contains(PLANTED_TOKEN));
    assert!(
        !server.logs().contains(SECRET),
        "the webhook secret is in the logs"
    );

    // The store has the job and its review.
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j["status"], "done");
    assert_eq!(j["delivery_id"], "delivery-1");
    assert_eq!(j["review"]["findings"], 3);
    assert_eq!(j["review"]["inline_comments"], 3);
    assert_eq!(j["review"]["engine"], "rules");
    assert_eq!(
        j["review"]["audit"]["llm"], "none",
        "the audit says nothing left for an LLM"
    );

    // The same delivery again: acknowledged, nothing new.
    let (status, answer) = deliver_signed(&addr, "pull_request", "delivery-1", &body).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("duplicate delivery: already handled"))
    );

    // A `/redline review` comment on the unchanged pull request: a fresh review, no repeated comments.
    let comment = payload("issue_comment.review_command.json", |_| {});
    let (status, _) = deliver_signed(&addr, "issue_comment", "delivery-2", &comment).await;
    assert_eq!(status, 202);
    wait_for(60, "the second review", || gh.reviews(REPO, 7).len() == 2).await;
    let jobs = wait_jobs_settled(dir.path(), 30).await;
    assert_eq!(jobs.len(), 2, "the duplicate delivery made no job");
    let second = &gh.reviews(REPO, 7)[1];
    assert_eq!(
        second["comments"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "nothing repeated"
    );
    assert!(
        second["body"]
            .as_str()
            .unwrap()
            .contains("3 already reported"),
        "{}",
        second["body"]
    );
    assert_eq!(gh.review_comments(REPO, 7).len(), 3);

    // /metrics and /healthz.
    let metrics = reqwest::get(format!("{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("redline_jobs{status=\"done\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redline_queue_depth{queue=\"embedded\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redline_review_latency_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redline_webhook_deliveries_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redline_github_rate_limit_remaining"),
        "{metrics}"
    );
    let health = reqwest::get(format!("{addr}/healthz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_bad_payloads_store_nothing() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_WORKERS".into(), "0".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let body = opened();

    let (status, _) = deliver(&addr, "pull_request", "d-nosig", &body, None).await;
    assert_eq!(status, 401, "missing signature");
    let (status, _) = deliver(
        &addr,
        "pull_request",
        "d-badsig",
        &body,
        Some(sign(b"other body")),
    )
    .await;
    assert_eq!(status, 401, "wrong signature");
    let (status, _) = deliver(
        &addr,
        "pull_request",
        "d-junk",
        &body,
        Some("sha256=not-hex".into()),
    )
    .await;
    assert_eq!(status, 401, "malformed signature");
    let (status, _) = deliver(
        &addr,
        "pull_request",
        "d-sha1",
        &body,
        Some("sha1=0123".into()),
    )
    .await;
    assert_eq!(status, 401, "legacy SHA-1 signature");
    let garbage = b"{not json";
    let (status, answer) = deliver_signed(&addr, "pull_request", "d-garbage", garbage).await;
    assert_eq!(status, 400, "{answer}");
    let no_pr = payload("pull_request.opened.json", |v| {
        v.as_object_mut().unwrap().remove("pull_request");
    });
    let (status, answer) = deliver_signed(&addr, "pull_request", "d-nopr", &no_pr).await;
    assert_eq!(status, 400);
    assert!(
        answer["outcome"]
            .as_str()
            .unwrap()
            .contains("/pull_request/number"),
        "{answer}"
    );
    // Over the body cap: refused before anything is read into the store.
    let mut env_small = app_env(dir.path(), &gh);
    env_small.push(("REDLINE_WORKERS".into(), "0".into()));
    env_small.push(("REDLINE_MAX_BODY_BYTES".into(), "1000".into()));
    env_small.push((
        "REDLINE_DATABASE_URL".into(),
        format!("sqlite://{}", dir.path().join("small.db").display()),
    ));
    let small = start("serve", dir.path(), &env_small);
    let (status, _) =
        deliver_signed(small.addr.as_ref().unwrap(), "pull_request", "d-big", &body).await;
    assert_eq!(status, 413);

    assert!(
        jobs(dir.path()).is_empty(),
        "no job from a rejected delivery"
    );
    let metrics = reqwest::get(format!("{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("redline_deliveries_stored 0"), "{metrics}");
    assert!(
        metrics.contains("redline_webhook_deliveries_total{outcome=\"rejected_signature\"} 4"),
        "{metrics}"
    );

    // Events that ask for nothing: 2xx and no job.
    for (event, file, id) in [
        ("ping", "ping.json", "e-1"),
        ("pull_request", "pull_request.labeled.json", "e-2"),
        ("pull_request", "pull_request.opened.draft.json", "e-3"),
        ("issue_comment", "issue_comment.from_bot.json", "e-4"),
        ("issue_comment", "issue_comment.no_permission.json", "e-5"),
        ("installation", "installation.created.json", "e-6"),
        ("star", "ping.json", "e-7"),
    ] {
        let (status, answer) = deliver_signed(&addr, event, id, &payload(file, |_| {})).await;
        assert_eq!(status, 200, "{event} {file}: {answer}");
        assert!(
            answer["outcome"].as_str().unwrap().starts_with("ignored"),
            "{event} {file}: {answer}"
        );
    }
    assert!(jobs(dir.path()).is_empty(), "none of those made a job");
    assert!(!server.logs().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_during_a_review_means_the_old_review_posts_nothing() {
    let gh = github_with_pr();
    // The first job sits in the files request while the push arrives.
    gh.delay_files(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let server = start("serve", dir.path(), &app_env(dir.path(), &gh));
    let addr = server.addr.clone().unwrap();
    let (status, _) = deliver_signed(&addr, "pull_request", "push-1", &opened()).await;
    assert_eq!(status, 202);
    wait_for(20, "the first job to ask for the files", || {
        gh.requests()
            .iter()
            .any(|r| r.path.ends_with("/pulls/7/files"))
    })
    .await;

    // The push: a new head where the SQL is fixed.
    let fixed = head_py().replace(
        "db.execute(\"SELECT * FROM reports WHERE owner = '\" + name + \"'\")",
        "db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,))",
    );
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_2,
            vec![fake_file("app/reports.py", Some(BASE_PY), Some(&fixed))],
        ),
    );
    gh.delay_files(Duration::ZERO);
    let (status, answer) = deliver_signed(
        &addr,
        "pull_request",
        "push-2",
        &payload("pull_request.synchronize.json", |_| {}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(answer["cancelled"], 1, "the running job was cancelled");

    let jobs = wait_jobs_settled(dir.path(), 60).await;
    wait_for(30, "the new head's review", || {
        !gh.reviews(REPO, 7).is_empty()
    })
    .await;
    // The old job's files request ends after its delay: only once its worker has finished with
    // it is the absence of a second review meaningful.
    let old_id = jobs.iter().find(|j| j["head_sha"] == HEAD_1).unwrap()["id"]
        .as_i64()
        .unwrap();
    wait_job_ended(&server, old_id, 30).await;
    let reviews = gh.reviews(REPO, 7);
    assert_eq!(
        reviews.len(),
        1,
        "only the new head is reviewed: {reviews:#?}"
    );
    assert_eq!(reviews[0]["commit_id"], HEAD_2);
    assert_eq!(
        comment_lines(&reviews[0]),
        vec![("app/reports.py".into(), 21), ("app/reports.py".into(), 25)]
    );
    let old = jobs.iter().find(|j| j["head_sha"] == HEAD_1).unwrap();
    assert_eq!(old["status"], "cancelled", "{old:#}");
    assert!(gh.pending_reviews(REPO, 7).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_comment_moves_to_the_summary_and_the_rest_are_posted() {
    let gh = github_with_pr();
    gh.fail_comment_at("app/reports.py", 21);
    let dir = tempfile::tempdir().unwrap();
    let server = start("serve", dir.path(), &app_env(dir.path(), &gh));
    let addr = server.addr.clone().unwrap();
    let (status, _) = deliver_signed(&addr, "pull_request", "r-1", &opened()).await;
    assert_eq!(status, 202);
    let jobs = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(jobs[0]["status"], "done", "{:#}", jobs[0]);
    let reviews = gh.reviews(REPO, 7);
    assert_eq!(reviews.len(), 1, "one review, no leftovers");
    assert_eq!(
        comment_lines(&reviews[0]),
        vec![("app/reports.py".into(), 15), ("app/reports.py".into(), 25)]
    );
    let summary = reviews[0]["body"].as_str().unwrap();
    assert!(
        summary.contains("`app/reports.py:21`")
            && summary.contains("GitHub refused the line comment"),
        "{summary}"
    );
    assert!(
        gh.pending_reviews(REPO, 7).is_empty(),
        "the probes left no pending review"
    );
    assert_eq!(jobs[0]["review"]["findings"], 3);
    assert_eq!(jobs[0]["review"]["inline_comments"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_is_waited_out_and_retried() {
    let gh = github_with_pr();
    gh.secondary_limit_once(2);
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_CHECK_RUNS".into(), "true".into()));
    env.push(("REDLINE_GITHUB_WRITE_INTERVAL_MS".into(), "1000".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let (status, _) = deliver_signed(&addr, "pull_request", "l-1", &opened()).await;
    assert_eq!(status, 202);
    let jobs = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(jobs[0]["status"], "done");
    assert_eq!(
        jobs[0]["attempts"], 1,
        "waited within the attempt, no job retry"
    );
    let posts: Vec<_> = gh
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/repos/"))
        .collect();
    let review_posts: Vec<_> = posts
        .iter()
        .filter(|r| r.path.ends_with("/reviews"))
        .collect();
    assert_eq!(
        review_posts.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![403, 200]
    );
    let waited = review_posts[1].at - review_posts[0].at;
    assert!(
        waited >= Duration::from_secs(2),
        "retry-after honoured: {waited:?}"
    );
    // Content-creating requests are paced a second apart.
    for pair in posts.windows(2) {
        assert!(
            pair[1].at - pair[0].at >= Duration::from_millis(990),
            "{:?} then {:?}",
            pair[0].path,
            pair[1].path
        );
    }
    assert!(server.logs().contains("GitHub rate limit; waiting"));
    let runs = gh.check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0]["conclusion"], "failure",
        "critical findings fail the check"
    );
    assert_eq!(runs[0]["head_sha"], HEAD_1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_pull_request_cancels_its_jobs() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_WORKERS".into(), "0".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let (status, _) = deliver_signed(&addr, "pull_request", "c-1", &opened()).await;
    assert_eq!(status, 202);
    // Closed without merging: the job is cancelled.
    let unmerged = payload("pull_request.closed.json", |v| {
        v["pull_request"]["merged"] = json!(false)
    });
    let (status, answer) = deliver_signed(&addr, "pull_request", "c-2", &unmerged).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("cancelled: closed")),
        "{answer}"
    );
    let js = jobs(dir.path());
    assert_eq!(js.len(), 1);
    assert_eq!(js[0]["status"], "cancelled");
    // Merged: a job that settles the findings' outcomes (no review).
    let merged = payload("pull_request.closed.json", |v| {
        v["pull_request"]["merged"] = json!(true)
    });
    let (status, _) = deliver_signed(&addr, "pull_request", "c-2b", &merged).await;
    assert_eq!(status, 202);
    let js = jobs(dir.path());
    assert_eq!(
        (js[0]["cause"].as_str(), js[0]["status"].as_str()),
        (Some("merged"), Some("queued"))
    );
    // A comment on a plain issue (no pull_request object) is not a review command.
    let on_issue = payload("issue_comment.review_command.json", |v| {
        v["issue"].as_object_mut().unwrap().remove("pull_request");
    });
    let (status, answer) = deliver_signed(&addr, "issue_comment", "c-3", &on_issue).await;
    assert_eq!(
        (status, answer["outcome"].clone()),
        (
            200,
            json!("ignored: comment on an issue, not a pull request")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reviews_are_audited_and_local_only_repositories_keep_their_code() {
    use crate::common::fake_openai::{FakeOpenAi, tool_calls};
    // The model confirms the SQL finding with a one-line fix, then finishes.
    let llm = FakeOpenAi::start().with_script(|body, _| {
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        let first_turn = body.get("tools").is_some() && msgs.iter().all(|m| m["role"] != "tool");
        let reply = if first_turn {
            tool_calls(&[
                ("post_review_comment", r#"{"line": 15, "severity": "critical", "category": "sql-injection", "body": "The owner name is concatenated into the SQL text: a quote in it changes the query. Bind it as a parameter.", "confidence": 0.95, "code_reference": "rows = db.execute(\"SELECT * FROM reports WHERE owner = '\" + name + \"'\").fetchall()", "guideline_ids": [], "suggestion": "    rows = db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,)).fetchall()"}"#),
                ("finish_file", r#"{"summary": "looked at it"}"#),
            ])
        } else {
            tool_calls(&[("finish_file", r#"{"summary": "looked at it"}"#)])
        };
        (200, reply, Duration::ZERO)
    });
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let api_key = "sk-test-do-not-log-7c1e";
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_LLM_BASE_URL".into(), llm.base_url.clone()));
    env.push(("REDLINE_LLM_API_KEY".into(), api_key.into()));
    env.push(("REDLINE_LLM_MODEL".into(), "fake-large".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let (status, _) = deliver_signed(&addr, "pull_request", "a-1", &opened()).await;
    assert_eq!(status, 202);
    let js = wait_jobs_settled(dir.path(), 60).await;
    let review = &js[0]["review"];
    assert_eq!(review["engine"], "agent", "{:#}", js[0]);
    assert_eq!(review["model"], "fake-large");
    assert_eq!(review["prompt_version"], "review-v1");
    assert!(review["tokens_in"].as_i64().unwrap() > 0);
    // The audit: which endpoint and model got which file, how many bytes, its hash, redactions.
    let audit = &review["audit"];
    let files = audit["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{audit:#}");
    assert_eq!(files[0]["path"], "app/reports.py");
    assert_eq!(files[0]["model"], "fake-large");
    assert!(files[0]["endpoint"].is_string());
    assert!(files[0]["bytes"].as_u64().unwrap() > 0);
    assert_eq!(files[0]["sha256"].as_str().unwrap().len(), 64);
    assert!(
        files[0]["redactions"].as_u64().unwrap() >= 1,
        "the planted token was masked: {audit:#}"
    );
    let sent: String = llm
        .chat_requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(!sent.is_empty());
    assert!(
        !sent.contains(PLANTED_TOKEN),
        "the planted token reached the LLM"
    );
    assert!(
        !server.logs().contains(api_key),
        "the API key is in the logs"
    );
    // The confirmed finding carries the model's fix as a one-click suggestion on its line.
    let comments = gh.review_comments(REPO, 7);
    let sql = comments
        .iter()
        .find(|c| c["line"] == 15)
        .expect("the SQL comment");
    let body = sql["body"].as_str().unwrap();
    assert!(body.contains("```suggestion\n    rows = db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,)).fetchall()\n```"), "{body}");
    assert!(body.contains("source: llm"), "{body}");
    // `redline jobs` in text shows the agent review.
    let text = crate::common::redline()
        .args(["jobs"])
        .env(
            "REDLINE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("redline.db").display()),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("acme/shop#7") && text.contains("agent") && text.contains("fake-large"),
        "{text}"
    );
    let audit = crate::common::redline()
        .args(["jobs", "--audit"])
        .env(
            "REDLINE_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("redline.db").display()),
        )
        .output()
        .unwrap();
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains("app/reports.py -> ")
            && audit.contains("(fake-large)")
            && audit.contains("sha256 "),
        "{audit}"
    );
    assert!(!audit.contains(PLANTED_TOKEN));

    // A repository whose .redline.toml says local-only: the hosted endpoint gets nothing.
    let calls_before = llm.chat_requests().len();
    let head_3 = "3333333333333333333333333333333333333333";
    gh.set_pr(
        REPO,
        FakePr::new(
            8,
            head_3,
            vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))],
        ),
    );
    // Repository settings are read at the pull request's base commit.
    gh.set_content(
        REPO,
        &"b".repeat(40),
        ".redline.toml",
        "llm = \"local-only\"\n",
    );
    let body = payload("pull_request.opened.json", |v| {
        v["number"] = json!(8);
        v["pull_request"]["number"] = json!(8);
        v["pull_request"]["head"]["sha"] = json!(head_3);
    });
    let (status, _) = deliver_signed(&addr, "pull_request", "a-2", &body).await;
    assert_eq!(status, 202);
    wait_for(60, "the local-only review", || {
        !gh.reviews(REPO, 8).is_empty()
    })
    .await;
    let js = wait_jobs_settled(dir.path(), 30).await;
    let local = js.iter().find(|j| j["pr_number"] == 8).unwrap();
    assert_eq!(local["review"]["engine"], "rules");
    assert_eq!(
        llm.chat_requests().len(),
        calls_before,
        "no request reached the hosted endpoint"
    );
    let summary = gh.reviews(REPO, 8)[0]["body"].as_str().unwrap().to_string();
    assert!(
        summary.contains("local-only"),
        "the summary says why: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_runs_on_postgresql_too() {
    let pg = crate::common::services::TempPg::start();
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_DATABASE_URL".into(), pg.url.clone()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let body = opened();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "pg-1", &body).await.0,
        202
    );
    assert_eq!(
        deliver_signed(&addr, "pull_request", "pg-1", &body).await.0,
        200,
        "deduplicated"
    );
    wait_for(60, "the review", || gh.reviews(REPO, 7).len() == 1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let js = loop {
        let js = jobs_in(&pg.url);
        if js.len() == 1 && js[0]["status"] == "done" {
            break js;
        }
        assert!(std::time::Instant::now() < deadline, "{js:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(js[0]["review"]["inline_comments"], 3);
    // Every store query of /metrics and `redline stats` decodes on PostgreSQL.
    let metrics = reqwest::get(format!("{addr}/metrics")).await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("redline_jobs{status=\"done\"} 1")
            && metrics.contains("redline_findings{outcome=\"open\"} 3"),
        "{metrics}"
    );
    let out = crate::common::redline()
        .args(["stats", "--format", "json"])
        .env("REDLINE_DATABASE_URL", &pg.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acceptance"]["open"], 3);
    assert_eq!(v["reviews"]["count"], 1);
    let migrate = crate::common::redline()
        .arg("migrate")
        .env("REDLINE_DATABASE_URL", &pg.url)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&migrate.stdout).trim(),
        format!("{}: 0 migration(s) applied", pg.url)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_review_left_behind_is_removed_before_posting() {
    let gh = github_with_pr();
    gh.add_pending_review(REPO, 7);
    let dir = tempfile::tempdir().unwrap();
    let server = start("serve", dir.path(), &app_env(dir.path(), &gh));
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "p-1", &opened())
            .await
            .0,
        202
    );
    let js = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(js[0]["status"], "done", "{:#}", js[0]);
    assert_eq!(gh.reviews(REPO, 7).len(), 1);
    assert_eq!(
        gh.reviews(REPO, 7)[0]["comments"].as_array().unwrap().len(),
        3
    );
    assert!(gh.pending_reviews(REPO, 7).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_rate_limit_reschedules_the_job_without_using_an_attempt() {
    let gh = github_with_pr();
    gh.exhaust_primary_limit_once(600);
    let dir = tempfile::tempdir().unwrap();
    let server = start("serve", dir.path(), &app_env(dir.path(), &gh));
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "rl-1", &opened())
            .await
            .0,
        202
    );
    wait_for(30, "the job to be rescheduled", || {
        jobs(dir.path())[0]["status"] == "failed"
    })
    .await;
    let j = &jobs(dir.path())[0];
    assert_eq!(
        j["attempts"], 0,
        "a rate limit does not use up an attempt: {j:#}"
    );
    assert!(
        j["last_error"].as_str().unwrap().contains("rate limit"),
        "{j:#}"
    );
    let wait_ms = j["run_after"].as_i64().unwrap() - j["updated_at"].as_i64().unwrap();
    assert!(
        (590_000..=601_000).contains(&wait_ms),
        "runs again when the limit resets: {wait_ms} ms"
    );
    assert!(gh.reviews(REPO, 7).is_empty());
    assert!(server.logs().contains("GitHub rate limit: job rescheduled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_size_budget_the_source_files_that_fit_are_reviewed_and_the_rest_listed() {
    let gh = github_with_pr();
    let small = "import os\n\nos.system(\"rm -rf \" + os.environ[\"TARGET\"])\n";
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![
                fake_file("app/reports.py", Some(BASE_PY), Some(&head_py())),
                fake_file("app/small.py", None, Some(small)),
            ],
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_MAX_CHANGED_LINES".into(), "12".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "b-1", &opened())
            .await
            .0,
        202
    );
    wait_jobs_settled(dir.path(), 60).await;
    let review = &gh.reviews(REPO, 7)[0];
    let body = review["body"].as_str().unwrap();
    // app/reports.py (26 changed lines) does not fit in 12; app/small.py (3) does.
    assert!(
        body.contains(
            "| `app/reports.py` | | not reviewed: over the review size budget of 12 changed lines |"
        ),
        "{body}"
    );
    assert!(body.contains("`app/small.py`"), "{body}");
    let lines: Vec<(String, u64)> = review["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(lines, vec![("app/small.py".to_string(), 3)], "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_installation_gets_no_reviews_until_unsuspended() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_WORKERS".into(), "0".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    let suspend = payload("installation.created.json", |v| {
        v["action"] = json!("suspend")
    });
    assert_eq!(
        deliver_signed(&addr, "installation", "s-1", &suspend)
            .await
            .0,
        200
    );
    let (status, answer) = deliver_signed(&addr, "pull_request", "s-2", &opened()).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("ignored: installation 42 is suspended"))
    );
    let unsuspend = payload("installation.created.json", |v| {
        v["action"] = json!("unsuspend")
    });
    assert_eq!(
        deliver_signed(&addr, "installation", "s-3", &unsuspend)
            .await
            .0,
        200
    );
    let (status, _) = deliver_signed(&addr, "pull_request", "s-4", &opened()).await;
    assert_eq!(status, 202);
    assert_eq!(jobs(dir.path()).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_enterprise_server_urls_keep_their_api_prefix() {
    let gh = github_with_pr();
    // Enough files for a second page, so that the Link header is followed under the prefix too.
    let mut files = vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))];
    for i in 0..120 {
        files.push(fake_file(
            &format!("docs/note{i}.md"),
            None,
            Some("a note\n"),
        ));
    }
    gh.set_pr(REPO, FakePr::new(7, HEAD_1, files));
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push((
        "REDLINE_GITHUB_API_URL".into(),
        format!("{}/api/v3", gh.url),
    ));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "ghes-1", &opened())
            .await
            .0,
        202
    );
    let js = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(js[0]["status"], "done", "{:#}", js[0]);
    assert_eq!(
        gh.reviews(REPO, 7)[0]["comments"].as_array().unwrap().len(),
        3
    );
    let pages = gh
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/pulls/7/files"))
        .count();
    assert_eq!(pages, 2, "both pages of files were read");
    assert!(
        gh.requests().iter().all(|r| r.enterprise_prefix),
        "every request, the token's included, went under /api/v3"
    );
    assert!(
        gh.reviews(REPO, 7)[0]["body"]
            .as_str()
            .unwrap()
            .contains("`docs/note119.md`")
    );
}
