//! Talking to the reviewer, and reviewing only what a push changed (issue 20), end to end:
//! `redline serve` on 127.0.0.1, signed `pull_request_review_comment` / `issue_comment` /
//! `pull_request` deliveries, the fake GitHub (real HTTP, GitHub's wire format) and, where an
//! LLM answers, the fake OpenAI server. Every check that something did *not* happen is made after
//! the job in question has ended (or after a later job has), never after a fixed sleep.

use crate::common::app::*;
use crate::common::fake_github::{FakeGitHub, FakePr, fake_file};
use crate::common::fake_openai::{FakeOpenAi, text_reply, tool_calls};
use crate::common::threads::{assert_inert, issue_comment_created, review_comment_created};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// The login of the app's own comments in the fake GitHub.
const BOT: &str = "redline[bot]";

fn serve(gh: &FakeGitHub, dir: &Path, extra: &[(&str, &str)]) -> Proc {
    let mut env = app_env(dir, gh);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    start("serve", dir, &env)
}

fn llm_env(llm: &FakeOpenAi) -> Vec<(&'static str, String)> {
    vec![
        ("REDLINE_LLM_BASE_URL", llm.base_url.clone()),
        ("REDLINE_LLM_API_KEY", "sk-test-conversation".into()),
        ("REDLINE_LLM_MODEL", "fake-large".into()),
    ]
}

/// The `pull_request` delivery `action` for pull request `number` at `head`.
fn pull_request(action: &str, number: u64, head: &str) -> Vec<u8> {
    payload("pull_request.opened.json", |v| {
        v["action"] = json!(action);
        v["number"] = json!(number);
        v["pull_request"]["number"] = json!(number);
        v["pull_request"]["head"]["sha"] = json!(head);
    })
}

/// Delivers `body` and, when it enqueued a job, waits for the worker to let go of it; returns
/// the webhook's status and answer, and the job as `redline jobs` shows it.
async fn deliver_and_wait(
    server: &Proc,
    dir: &Path,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, Value, Option<Value>) {
    let addr = server.addr.clone().unwrap();
    let (status, answer) = deliver_signed(&addr, event, delivery, body).await;
    let job = match answer["job"].as_i64() {
        Some(id) => {
            wait_job_ended(server, id, 90).await;
            jobs(dir).into_iter().find(|j| j["id"] == id)
        }
        None => None,
    };
    (status, answer, job)
}

/// Opens pull request `number` at `head` and waits for its review; returns the review's line
/// comments (the threads) by path and line.
async fn open_and_review(
    server: &Proc,
    dir: &Path,
    gh: &FakeGitHub,
    number: u64,
    head: &str,
) -> BTreeMap<(String, u64), u64> {
    let (status, answer, job) = deliver_and_wait(
        server,
        dir,
        "pull_request",
        &format!("open-{number}"),
        &pull_request("opened", number, head),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(job.unwrap()["status"], "done");
    gh.review_comments(REPO, number)
        .iter()
        .filter(|c| c["in_reply_to_id"].is_null())
        .map(|c| {
            (
                (
                    c["path"].as_str().unwrap().to_string(),
                    c["line"].as_u64().unwrap(),
                ),
                c["id"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A person's reply in the thread of `thread` on pull request 7, delivered as `delivery`: the
/// webhook's status and answer, and the reply job (when one was enqueued) once it has ended.
#[allow(clippy::too_many_arguments)]
async fn reply(
    server: &Proc,
    dir: &Path,
    gh: &FakeGitHub,
    thread: u64,
    login: &str,
    association: &str,
    text: &str,
    delivery: &str,
) -> (u16, Value, Option<Value>) {
    let comment = gh.add_reply(REPO, 7, thread, login, association, text);
    let body = review_comment_created(gh, REPO, 7, &comment);
    deliver_and_wait(server, dir, "pull_request_review_comment", delivery, &body).await
}

/// A reply by the repository's owner (write access) in the thread of `thread`.
async fn owner_reply(
    server: &Proc,
    dir: &Path,
    gh: &FakeGitHub,
    thread: u64,
    text: &str,
    delivery: &str,
) -> (u16, Value, Option<Value>) {
    reply(server, dir, gh, thread, "alice", "OWNER", text, delivery).await
}

/// redline's answers in the thread of `thread` on pull request `number`.
fn answers(gh: &FakeGitHub, number: u64, thread: u64) -> Vec<String> {
    gh.review_comments(REPO, number)
        .iter()
        .filter(|c| c["in_reply_to_id"] == thread && c["user"]["login"] == BOT)
        .map(|c| c["body"].as_str().unwrap().to_string())
        .collect()
}

/// The one answer in a thread.
fn only_answer(gh: &FakeGitHub, number: u64, thread: u64) -> String {
    let a = answers(gh, number, thread);
    assert_eq!(a.len(), 1, "one answer in thread {thread}: {a:#?}");
    a.into_iter().next().unwrap()
}

/// Every answer redline posted on pull request 7: replies in threads and PR comments (the
/// reviews themselves are checked in `hardening.rs`).
fn everything_answered(gh: &FakeGitHub) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in gh.review_comments(REPO, 7) {
        if c["user"]["login"] == BOT && !c["in_reply_to_id"].is_null() {
            out.push((
                format!("comment {}", c["id"]),
                c["body"].as_str().unwrap().into(),
            ));
        }
    }
    for c in gh.issue_comments(REPO, 7) {
        if c["user"]["login"] == BOT {
            out.push((
                format!("issue comment {}", c["id"]),
                c["body"].as_str().unwrap().into(),
            ));
        }
    }
    out
}

/// `redline stats --format json` against the database in `dir`.
fn stats(dir: &Path) -> Value {
    let out = crate::common::redline()
        .args(["stats", "--format", "json"])
        .env(
            "REDLINE_DATABASE_URL",
            format!("sqlite://{}", dir.join("redline.db").display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn thread_at(threads: &BTreeMap<(String, u64), u64>, path: &str, line: u64) -> u64 {
    *threads
        .get(&(path.to_string(), line))
        .unwrap_or_else(|| panic!("no thread at {path}:{line}: {threads:?}"))
}

// ---------------------------------------------------------------------------------------------
// Commands

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_fix_ignore_ask_and_help_are_answered_without_an_llm() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let sql = thread_at(&threads, "app/reports.py", 15);
    let shell = thread_at(&threads, "app/reports.py", 21);
    let token = thread_at(&threads, "app/reports.py", 25);

    // explain: the guidance, the CWE, why this line, the code; in the thread, once.
    let (status, answer, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        sql,
        "/redline explain",
        "r-explain",
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let job = job.unwrap();
    assert_eq!(job["status"], "done", "{job:#}");
    assert_eq!(job["cause"], "reply");
    assert_eq!(job["conversation"]["command"], "explain");
    assert_eq!(job["conversation"]["author"], "alice");
    assert_eq!(
        job["conversation"]["outcome"],
        "explained from the guidance"
    );
    assert!(
        job["conversation"]["audit"].is_null(),
        "nothing left for an LLM"
    );
    let body = only_answer(&gh, 7, sql);
    assert!(body.contains("CWE-89"), "{body}");
    assert!(body.contains("**Why this line:** rule"), "{body}");
    assert!(body.contains("SELECT * FROM reports WHERE owner"), "{body}");
    assert!(body.contains("**Guidance:"), "{body}");
    let reply_id = job["conversation"]["comment_id"].as_i64().unwrap();
    assert!(
        body.contains(&format!("<!-- redline:answer={reply_id} -->")),
        "{body}"
    );
    assert_eq!(
        job["conversation"]["answer_id"].as_u64(),
        gh.review_comments(REPO, 7)
            .iter()
            .find(|c| c["body"] == body.as_str())
            .and_then(|c| c["id"].as_u64())
    );

    // explain on the hard-coded token: the code is shown redacted, never the token.
    let (_, _, job) = reply(
        &server,
        dir.path(),
        &gh,
        token,
        "alice",
        "MEMBER",
        "@redline explain",
        "r-explain-token",
    )
    .await;
    assert_eq!(job.unwrap()["status"], "done");
    let body = only_answer(&gh, 7, token);
    assert!(body.contains("API_TOKEN"), "{body}");
    assert!(!body.contains(PLANTED_TOKEN), "{body}");

    // fix without an LLM: this rule finding carries no replacement code, so no suggestion.
    let (_, _, job) = reply(
        &server,
        dir.path(),
        &gh,
        sql,
        "bob",
        "COLLABORATOR",
        "> quoted line of the finding\n\n@redline fix",
        "r-fix",
    )
    .await;
    let job = job.unwrap();
    assert_eq!(
        job["conversation"]["outcome"], "no suggestion: guidance given",
        "{job:#}"
    );
    let fix = answers(&gh, 7, sql);
    assert_eq!(fix.len(), 2, "explain and fix: {fix:#?}");
    assert!(fix[1].contains("No one-click suggestion"), "{}", fix[1]);
    assert!(!fix[1].contains("```suggestion"), "{}", fix[1]);

    // A question without an LLM says what works without one.
    let (_, _, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        shell,
        "@redline is `target` not checked in the caller?",
        "r-ask",
    )
    .await;
    assert_eq!(
        job.unwrap()["conversation"]["outcome"],
        "question not answered: no LLM"
    );
    let body = only_answer(&gh, 7, shell);
    assert!(body.contains("needs an LLM"), "{body}");

    // ignore: dismissed with the reason, counted in the statistics.
    let before = stats(dir.path());
    assert_eq!(before["acceptance"]["dismissed"], 0, "{before:#}");
    let (_, _, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        shell,
        "/redline ignore the target is validated in the caller",
        "r-ignore",
    )
    .await;
    assert_eq!(job.unwrap()["conversation"]["outcome"], "dismissed");
    let ignore = answers(&gh, 7, shell);
    assert_eq!(ignore.len(), 2);
    assert!(
        ignore[1].contains("Dismissed, with the reason: the target is validated in the caller"),
        "{}",
        ignore[1]
    );
    let after = stats(dir.path());
    assert_eq!(after["acceptance"]["dismissed"], 1, "{after:#}");
    let rule = rule_row(&after, "py.cmd.shell-true");
    assert_eq!(rule["dismissed"], 1, "{after:#}");
    // A second ignore of the same finding says so, and changes nothing.
    let (_, _, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        shell,
        "/redline ignore again",
        "r-ignore-2",
    )
    .await;
    assert_eq!(job.unwrap()["conversation"]["outcome"], "already dismissed");
    assert_eq!(stats(dir.path())["acceptance"]["dismissed"], 1);

    // /redline help on the pull request: the list of commands, as a PR comment.
    let comment = gh.add_issue_comment(REPO, 7, "alice", "OWNER", "/redline help");
    let (status, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "issue_comment",
        "r-help",
        &issue_comment_created(&gh, REPO, 7, &comment),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        job.unwrap()["conversation"]["outcome"],
        "listed the commands"
    );
    let help: Vec<Value> = gh
        .issue_comments(REPO, 7)
        .into_iter()
        .filter(|c| c["user"]["login"] == BOT)
        .collect();
    assert_eq!(help.len(), 1);
    let help = help[0]["body"].as_str().unwrap();
    for cmd in [
        "/redline explain",
        "/redline fix",
        "/redline ignore",
        "/redline review",
    ] {
        assert!(help.contains(cmd), "{cmd} in {help}");
    }

    // Nothing posted carries anything active, or the planted token.
    for (what, body) in everything_answered(&gh) {
        assert_inert(&body, &what);
        assert!(!body.contains(PLANTED_TOKEN), "{what}: {body}");
    }
    assert!(!server.logs().contains(PLANTED_TOKEN));
    // Answers are not reviews: still the one review with a summary (GitHub files each reply as
    // a review of its own, with an empty body).
    let summaries = gh
        .reviews(REPO, 7)
        .iter()
        .filter(|r| {
            r["body"]
                .as_str()
                .is_some_and(|b| b.contains("## redline review"))
        })
        .count();
    assert_eq!(summaries, 1);
}

/// The statistics row of `rule`.
fn rule_row<'a>(stats: &'a Value, rule: &str) -> &'a Value {
    stats["by"]["rule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == rule)
        .unwrap_or_else(|| panic!("no row for {rule}: {stats:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_reply_is_answered_once() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    let addr = server.addr.clone().unwrap();
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let sql = thread_at(&threads, "app/reports.py", 15);

    let comment = gh.add_reply(REPO, 7, sql, "alice", "OWNER", "/redline explain");
    let body = review_comment_created(&gh, REPO, 7, &comment);
    let event = "pull_request_review_comment";
    let (status, first) = deliver_signed(&addr, event, "same-1", &body).await;
    assert_eq!(status, 202, "{first}");
    // The same delivery again (GitHub's redelivery), and the same comment under a new delivery
    // id, while the first is queued or running and after it is answered.
    let (status, again) = deliver_signed(&addr, event, "same-1", &body).await;
    assert_eq!(
        (status, again["outcome"].as_str()),
        (200, Some("duplicate delivery: already handled"))
    );
    let (status, other) = deliver_signed(&addr, event, "same-2", &body).await;
    assert_eq!(
        (status, other["outcome"].as_str()),
        (200, Some("duplicate comment: already answered or queued"))
    );
    wait_job_ended(&server, first["job"].as_i64().unwrap(), 60).await;
    let (status, late) = deliver_signed(&addr, event, "same-3", &body).await;
    assert_eq!(
        (status, late["outcome"].as_str()),
        (200, Some("duplicate comment: already answered or queued"))
    );

    only_answer(&gh, 7, sql);
    let replies: Vec<Value> = jobs(dir.path())
        .into_iter()
        .filter(|j| j["cause"] == "reply")
        .collect();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert_eq!(replies[0]["status"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_from_users_without_write_access_or_from_bots_are_not_answered() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let sql = thread_at(&threads, "app/reports.py", 15);
    let shell = thread_at(&threads, "app/reports.py", 21);

    let ignored = [
        (
            "mallory",
            "CONTRIBUTOR",
            "/redline ignore not a problem",
            "without write access",
        ),
        (
            "mallory",
            "NONE",
            "@redline explain",
            "without write access",
        ),
        (
            "dependabot[bot]",
            "NONE",
            "/redline ignore bump",
            "by a bot",
        ),
        (
            "alice",
            "OWNER",
            "I will look at this tomorrow",
            "without a command",
        ),
        ("alice", "OWNER", "cc @redline-team", "without a command"),
    ];
    for (i, (login, association, text, why)) in ignored.iter().enumerate() {
        let (status, answer, job) = reply(
            &server,
            dir.path(),
            &gh,
            shell,
            login,
            association,
            text,
            &format!("no-{i}"),
        )
        .await;
        assert_eq!(status, 200, "{text}: {answer}");
        assert!(
            answer["outcome"].as_str().unwrap().contains(why),
            "{text}: {answer}"
        );
        assert!(job.is_none());
    }
    // `/redline help` on the pull request from a user without write access: ignored too.
    let comment = gh.add_issue_comment(REPO, 7, "mallory", "NONE", "/redline help");
    let (status, answer) = deliver_signed(
        server.addr.as_ref().unwrap(),
        "issue_comment",
        "no-help",
        &issue_comment_created(&gh, REPO, 7, &comment),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        answer["outcome"]
            .as_str()
            .unwrap()
            .contains("without write access"),
        "{answer}"
    );

    // An owner's command after them is answered; once it has been, nothing else was.
    let (status, _, job) =
        owner_reply(&server, dir.path(), &gh, sql, "/redline explain", "yes-1").await;
    assert_eq!(status, 202);
    assert_eq!(job.unwrap()["status"], "done");
    only_answer(&gh, 7, sql);
    assert!(answers(&gh, 7, shell).is_empty());
    assert!(
        gh.issue_comments(REPO, 7)
            .iter()
            .all(|c| c["user"]["login"] != BOT)
    );
    assert_eq!(
        stats(dir.path())["acceptance"]["dismissed"],
        0,
        "mallory dismissed nothing"
    );
    let replies = jobs(dir.path())
        .into_iter()
        .filter(|j| j["cause"] == "reply")
        .count();
    assert_eq!(replies, 1);
}

// ---------------------------------------------------------------------------------------------
// With an LLM: grounded answers, the data boundary, hostile text both ways

/// Hostile text: mentions, HTML, a closing `</details>`, comment openers, a `javascript:` link,
/// fences and a heading.
fn hostile(prefix: &str) -> String {
    format!(
        "{prefix} @octocat @acme/admins <img src=x onerror=alert(1)></details><details open><!-- \
         [click](javascript:alert(1)) <a href=\"javascript:alert(2)\">x</a>\n```\n# not a heading\n````\n\
         <script>alert(3)</script> --> </reply> [x]: javascript:alert(4)"
    )
}

/// The model: answers about a finding with hostile text (and, for a fix, a one-line fix).
fn answering_model() -> FakeOpenAi {
    FakeOpenAi::start().with_script(|body, _| {
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        let reply = if system.contains("Give a fix for the commented lines only") {
            text_reply(
                "```fix\n    rows = db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,)).fetchall()\n```\nBinds the name as a parameter.",
            )
        } else if system.contains("answering a developer's reply") {
            text_reply(&hostile("The name reaches the query unescaped."))
        } else {
            // A review (not expected in this test): finish every file.
            tool_calls(&[("finish_file", r#"{"summary": "done"}"#)])
        };
        (200, reply, Duration::ZERO)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_llm_answers_are_grounded_audited_within_the_policy_and_inert() {
    let gh = github_with_pr();
    // Pull request 8: its base's `.redline.toml` keeps its code from every LLM.
    let base_off = "c".repeat(40);
    let mut pr8 = FakePr::new(
        8,
        HEAD_2,
        vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))],
    );
    pr8.base_sha = base_off.clone();
    gh.set_pr(REPO, pr8);
    gh.set_content(REPO, &base_off, ".redline.toml", "llm = \"off\"\n");
    let dir = tempfile::tempdir().unwrap();

    // The reviews are rules reviews (no LLM yet), so that the threads hold rule findings.
    let mut server = serve(&gh, dir.path(), &[]);
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let threads8 = open_and_review(&server, dir.path(), &gh, 8, HEAD_2).await;
    server.terminate();
    let llm = answering_model();
    let env = llm_env(&llm);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = serve(&gh, dir.path(), &env);
    let sql = thread_at(&threads, "app/reports.py", 15);
    let token = thread_at(&threads, "app/reports.py", 25);

    // A hostile question: the model gets it fenced, with the code and the guidance.
    let question = hostile("@redline is `name` not validated in the caller?");
    let (status, _, job) = owner_reply(&server, dir.path(), &gh, sql, &question, "l-ask").await;
    assert_eq!(status, 202);
    let job = job.unwrap();
    let conv = &job["conversation"];
    assert_eq!(conv["command"], "ask", "{job:#}");
    assert_eq!(conv["outcome"], "answered with the LLM", "{job:#}");
    assert_eq!(conv["audit"]["model"], "fake-large", "{conv:#}");
    assert_eq!(conv["audit"]["path"], "app/reports.py");
    assert_eq!(conv["audit"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(conv["tokens_in"], 800);
    assert_eq!(conv["tokens_out"], 40);
    let asked = llm.chat_requests();
    assert_eq!(asked.len(), 1);
    let user = asked[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        user.contains("SELECT * FROM reports WHERE owner"),
        "the code: {user}"
    );
    assert!(user.contains("## Guidance"), "{user}");
    assert!(
        user.contains("<reply>\nis `name` not validated in the caller?"),
        "{user}"
    );
    assert_eq!(
        user.matches("</reply>").count(),
        1,
        "the fence holds: {user}"
    );
    let body = only_answer(&gh, 7, sql);
    assert!(
        body.contains("The name reaches the query unescaped."),
        "{body}"
    );
    assert!(
        body.contains("octocat"),
        "the hostile text is there, escaped: {body}"
    );
    assert_inert(&body, "the answer to a hostile question");

    // explain on the token line: the token never reaches the model, nor GitHub.
    let (_, _, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        token,
        "/redline explain",
        "l-explain",
    )
    .await;
    let job = job.unwrap();
    assert_eq!(
        job["conversation"]["outcome"], "explained with the LLM",
        "{job:#}"
    );
    assert!(
        job["conversation"]["audit"]["redactions"].as_u64().unwrap() >= 1,
        "{job:#}"
    );
    let sent: String = llm
        .chat_requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert!(
        !sent.contains(PLANTED_TOKEN),
        "the planted token reached the LLM"
    );
    assert_inert(&only_answer(&gh, 7, token), "explain with the LLM");

    // fix: the model's fix becomes a one-click suggestion on the thread's line.
    let (_, _, job) = owner_reply(&server, dir.path(), &gh, sql, "/redline fix", "l-fix").await;
    assert_eq!(job.unwrap()["conversation"]["outcome"], "suggested a fix");
    let fix = answers(&gh, 7, sql).pop().unwrap();
    assert!(
        fix.contains("```suggestion\n    rows = db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,)).fetchall()\n```"),
        "{fix}"
    );
    assert_inert(&fix, "fix");

    // A hostile reason for ignore is recorded and echoed inert.
    let (_, _, job) = owner_reply(
        &server,
        dir.path(),
        &gh,
        token,
        &hostile("/redline ignore"),
        "l-ignore",
    )
    .await;
    assert_eq!(job.unwrap()["conversation"]["outcome"], "dismissed");
    let ignored = answers(&gh, 7, token).pop().unwrap();
    assert!(
        ignored.contains("Dismissed, with the reason:") && ignored.contains("octocat"),
        "{ignored}"
    );
    assert_inert(&ignored, "ignore with a hostile reason");

    // Pull request 8's base says llm = "off": nothing goes to the model.
    let calls = llm.chat_requests().len();
    let sql8 = thread_at(&threads8, "app/reports.py", 15);
    let comment = gh.add_reply(
        REPO,
        8,
        sql8,
        "alice",
        "OWNER",
        "@redline why build the query like this?",
    );
    let (status, answer, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request_review_comment",
        "l-off",
        &review_comment_created(&gh, REPO, 8, &comment),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        job.unwrap()["conversation"]["outcome"],
        "question not answered: no LLM"
    );
    let body = only_answer(&gh, 8, sql8);
    assert!(body.contains("llm = \"off\""), "{body}");
    assert_eq!(llm.chat_requests().len(), calls, "the model was not asked");

    for (what, body) in everything_answered(&gh) {
        assert_inert(&body, &what);
        assert!(!body.contains(PLANTED_TOKEN), "{what}");
    }
    assert!(
        !server.logs().contains("sk-test-conversation"),
        "the API key is in the logs"
    );
}

// ---------------------------------------------------------------------------------------------
// Incremental review

/// A new function in `b.py` with one more SQL query built from input.
const MORE_SQL: &str = "\n\ndef audit():\n    who = request.args.get(\"who\")\n    db = connect()\n    return db.execute(\"SELECT * FROM audit WHERE who = '\" + who + \"'\").fetchall()\n";

/// Pull request 7 with `n` files (`f0.py`, `f1.py`, ...) of `head_py()`; `changed` (index, text)
/// replaces one of them.
fn many_files(
    n: usize,
    changed: Option<(usize, &str)>,
) -> Vec<crate::common::fake_github::FakeFile> {
    (0..n)
        .map(|i| {
            let text = match changed {
                Some((j, t)) if j == i => t.to_string(),
                _ => head_py(),
            };
            fake_file(&format!("app/f{i}.py"), Some(BASE_PY), Some(&text))
        })
        .collect()
}

/// The `synchronize` delivery for pull request 7 at `head`.
fn synchronize(before: &str, head: &str) -> Vec<u8> {
    payload("pull_request.synchronize.json", |v| {
        v["before"] = json!(before);
        v["after"] = json!(head);
        v["pull_request"]["head"]["sha"] = json!(head);
    })
}

fn summary_of_last_review(gh: &FakeGitHub) -> (String, String, Vec<Value>) {
    let r = gh.reviews(REPO, 7).pop().unwrap();
    (
        r["body"].as_str().unwrap().to_string(),
        r["state"].as_str().unwrap().to_string(),
        r["comments"].as_array().cloned().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_touching_one_file_reviews_that_file_and_redline_review_reviews_all() {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    gh.set_pr(REPO, FakePr::new(7, HEAD_1, many_files(3, None)));
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    assert_eq!(
        threads.len(),
        9,
        "three findings in each of three files: {threads:?}"
    );

    // The push changes f1.py only: it fixes its query and adds another one built from input.
    let fixed = head_py().replace(
        "db.execute(\"SELECT * FROM reports WHERE owner = '\" + name + \"'\")",
        "db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,))",
    );
    assert_ne!(fixed, head_py());
    let changed = format!("{fixed}{MORE_SQL}");
    gh.set_pr(
        REPO,
        FakePr::new(7, HEAD_2, many_files(3, Some((1, &changed)))),
    );
    let (status, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "push-2",
        &synchronize(HEAD_1, HEAD_2),
    )
    .await;
    assert_eq!(status, 202);
    let job = job.unwrap();
    assert_eq!(job["status"], "done", "{job:#}");
    let outcome = job["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("incremental since 1111111111: 1 of 3 file(s)"),
        "{outcome}"
    );
    let (summary, state, comments) = summary_of_last_review(&gh);
    assert!(
        summary.contains("1 file changed since the last review of 1111111111"),
        "{summary}"
    );
    assert!(summary.contains("1 file(s) reviewed"), "{summary}");
    assert!(summary.contains("`app/f1.py`"), "{summary}");
    assert!(
        !summary.contains("f0.py") && !summary.contains("f2.py"),
        "the untouched files are not reviewed again: {summary}"
    );
    // The PR-wide picture: the six findings on untouched files carry forward, still open, and
    // keep the verdict.
    assert!(
        summary.contains("6 of them on code this push did not touch"),
        "{summary}"
    );
    assert_eq!(state, "CHANGES_REQUESTED");
    let new: Vec<(String, u64)> = comments
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().into(),
                c["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        new,
        vec![("app/f1.py".to_string(), 31)],
        "only the new finding: {summary}"
    );
    let st = stats(dir.path());
    // f1.py's old query is settled as fixed; the rest stays open, with the new one.
    assert_eq!(st["acceptance"]["open"], 9, "{st:#}");
    assert_eq!(st["acceptance"]["fixed"], 1, "{st:#}");

    // `/redline review` reviews everything again.
    let comment = gh.add_issue_comment(REPO, 7, "alice", "OWNER", "/redline review");
    let (status, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "issue_comment",
        "full-3",
        &issue_comment_created(&gh, REPO, 7, &comment),
    )
    .await;
    assert_eq!(status, 202);
    let job = job.unwrap();
    assert_eq!(job["status"], "done", "{job:#}");
    assert!(
        !job["outcome"].as_str().unwrap().contains("incremental"),
        "{job:#}"
    );
    let (summary, _, comments) = summary_of_last_review(&gh);
    assert!(summary.contains("3 file(s) reviewed"), "{summary}");
    assert!(
        !summary.contains("changed since the last review"),
        "{summary}"
    );
    assert!(summary.contains("9 already reported"), "{summary}");
    assert!(comments.is_empty());
    assert_eq!(gh.reviews(REPO, 7).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_critical_findings_on_untouched_files_keep_requesting_changes() {
    let util = |body: &str| fake_file("app/util.py", None, Some(body));
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    let reports = || fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()));
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![reports(), util("def add(a, b):\n    return a + b\n")],
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;

    // The push touches only the clean file: this review finds nothing, the pull request still
    // has three open critical findings.
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_2,
            vec![reports(), util("def add(a, b):\n    return b + a\n")],
        ),
    );
    let (_, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "clean-2",
        &synchronize(HEAD_1, HEAD_2),
    )
    .await;
    assert_eq!(job.unwrap()["status"], "done");
    let (summary, state, comments) = summary_of_last_review(&gh);
    assert!(summary.contains("No findings."), "{summary}");
    assert!(
        summary.contains("Open across the pull request: 3 finding(s) (3 critical"),
        "{summary}"
    );
    assert_eq!(state, "CHANGES_REQUESTED", "{summary}");
    assert!(comments.is_empty());
}

/// A file whose pull request diff has two hunks far apart: a SQL query built from input near
/// the top, a shell command built from input at the end; `tail` ends the shell function.
fn two_hunks(tail: &str) -> (String, String) {
    let head = "import sqlite3\nimport subprocess\n\nfrom flask import request\n\n\ndef connect():\n    return sqlite3.connect(\"app.db\")\n";
    let filler: String = (0..12)
        .map(|i| format!("\n\ndef helper_{i}():\n    return {i}\n"))
        .collect();
    let sql = "\n\ndef report():\n    name = request.args.get(\"name\")\n    db = connect()\n    return db.execute(\"SELECT * FROM reports WHERE owner = '\" + name + \"'\").fetchall()\n";
    let shell = format!(
        "\n\ndef export():\n    target = request.args.get(\"target\")\n    subprocess.run(\"tar czf /tmp/out.tgz \" + target, shell=True)\n    {tail}\n"
    );
    (
        format!("{head}{filler}"),
        format!("{head}{sql}{filler}{shell}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn within_a_changed_file_only_the_hunks_a_push_touched_are_reviewed() {
    let (base, head1) = two_hunks("return \"ok\"");
    let (_, head2) = two_hunks("return \"done\"");
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![fake_file("app/export.py", Some(&base), Some(&head1))],
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    let threads = open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    assert_eq!(
        threads.len(),
        2,
        "the query and the shell command: {threads:?}"
    );
    let (summary, _, _) = summary_of_last_review(&gh);
    assert!(
        summary.contains("2 critical · 0 warning · 0 suggestion. "),
        "{summary}"
    );

    // The push changes the shell function's last line: the query's hunk is not looked at.
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_2,
            vec![fake_file("app/export.py", Some(&base), Some(&head2))],
        ),
    );
    let (_, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "hunk-2",
        &synchronize(HEAD_1, HEAD_2),
    )
    .await;
    let job = job.unwrap();
    assert!(
        job["outcome"]
            .as_str()
            .unwrap()
            .contains("incremental since 1111111111: 1 of 1 file(s)"),
        "{job:#}"
    );
    let (summary, state, comments) = summary_of_last_review(&gh);
    assert!(
        summary.contains("1 critical · 0 warning · 0 suggestion (1 already reported"),
        "only the shell command's hunk: {summary}"
    );
    assert!(
        summary.contains("Open across the pull request: 2 finding(s)"),
        "{summary}"
    );
    assert_eq!(state, "CHANGES_REQUESTED");
    assert!(comments.is_empty(), "nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_push_reviews_every_file_and_says_so() {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    gh.set_pr(REPO, FakePr::new(7, HEAD_1, many_files(3, None)));
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[]);
    open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let changed = format!("{}{MORE_SQL}", head_py());

    // A force-push that keeps the old head in the repository: GitHub compares it as diverged.
    gh.force_push(
        REPO,
        FakePr::new(7, HEAD_2, many_files(3, Some((1, &changed)))),
        false,
    );
    let (_, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "force-2",
        &synchronize(HEAD_1, HEAD_2),
    )
    .await;
    let outcome = job.unwrap()["outcome"].as_str().unwrap().to_string();
    assert!(
        outcome.contains("full review: A force-push replaced"),
        "{outcome}"
    );
    let (summary, _, _) = summary_of_last_review(&gh);
    assert!(
        summary.contains("A force-push replaced the last reviewed head 1111111111"),
        "{summary}"
    );
    assert!(
        summary.contains("so this review covered every file"),
        "{summary}"
    );
    assert!(summary.contains("3 file(s) reviewed"), "{summary}");

    // One that drops it: the compare API does not know it any more (404).
    let head_3 = "3333333333333333333333333333333333333333";
    let again = format!("{changed}\n\nX = 1\n");
    gh.force_push(
        REPO,
        FakePr::new(7, head_3, many_files(3, Some((2, &again)))),
        true,
    );
    let (_, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "force-3",
        &synchronize(HEAD_2, head_3),
    )
    .await;
    let outcome = job.unwrap()["outcome"].as_str().unwrap().to_string();
    assert!(outcome.contains("full review"), "{outcome}");
    let (summary, _, _) = summary_of_last_review(&gh);
    assert!(
        summary.contains("The last reviewed head 2222222222 is no longer in the repository (a force-push dropped it), so this review covered every file"),
        "{summary}"
    );
    assert!(summary.contains("3 file(s) reviewed"), "{summary}");
    let compares: Vec<u16> = gh
        .requests()
        .iter()
        .filter(|r| r.path.contains("/compare/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(compares, vec![200, 404], "diverged, then dropped");
}

// ---------------------------------------------------------------------------------------------
// Measurement (run by hand): tokens and wall time of a push touching 1 file of a 10-file PR.

/// The model for the measurement: finishes each file at once; its usage counts the prompt's
/// characters / 4, so that tokens follow what was sent.
fn measuring_model() -> FakeOpenAi {
    FakeOpenAi::start().with_script(|body, _| {
        let sent = body["messages"].to_string().len() as u64;
        let mut r = tool_calls(&[("finish_file", r#"{"summary": "done"}"#)]);
        r["usage"] = json!({"prompt_tokens": sent / 4, "completion_tokens": 20, "total_tokens": sent / 4 + 20});
        (200, r, Duration::ZERO)
    })
}

/// Opens a 10-file pull request, then pushes a change to one file; returns the push review's
/// tokens in and out, its LLM calls and the wall time from the delivery to the posted review.
async fn push_cost(incremental: bool) -> (i64, i64, usize, Duration, i64) {
    let llm = measuring_model();
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    gh.set_pr(REPO, FakePr::new(7, HEAD_1, many_files(10, None)));
    let dir = tempfile::tempdir().unwrap();
    let mut env = llm_env(&llm);
    env.push(("REDLINE_INCREMENTAL_REVIEW", incremental.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = serve(&gh, dir.path(), &env);
    open_and_review(&server, dir.path(), &gh, 7, HEAD_1).await;
    let calls = llm.chat_requests().len();
    let changed = format!("{}{MORE_SQL}", head_py());
    gh.set_pr(
        REPO,
        FakePr::new(7, HEAD_2, many_files(10, Some((4, &changed)))),
    );
    let t = Instant::now();
    let (_, _, job) = deliver_and_wait(
        &server,
        dir.path(),
        "pull_request",
        "m-2",
        &synchronize(HEAD_1, HEAD_2),
    )
    .await;
    let wall = t.elapsed();
    let job = job.unwrap();
    let r = &job["review"];
    (
        r["tokens_in"].as_i64().unwrap(),
        r["tokens_out"].as_i64().unwrap(),
        llm.chat_requests().len() - calls,
        wall,
        r["latency_ms"].as_i64().unwrap(),
    )
}

/// `cargo test --locked --test it conversation::measure -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_a_push_touching_one_file_of_ten_incremental_vs_full() {
    for incremental in [true, false] {
        let (tin, tout, calls, wall, latency) = push_cost(incremental).await;
        println!(
            "{}: tokens_in={tin} tokens_out={tout} llm_calls={calls} review_latency_ms={latency} wall_ms={}",
            if incremental { "incremental" } else { "full" },
            wall.as_millis()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_comment_is_answered_once_and_ignore_is_recorded() {
    let pg = crate::common::services::TempPg::start();
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[("REDLINE_DATABASE_URL", &pg.url)]);
    let addr = server.addr.clone().unwrap();
    let (status, answer) = deliver_signed(&addr, "pull_request", "pg-open", &opened()).await;
    assert_eq!(status, 202, "{answer}");
    wait_job_ended(&server, answer["job"].as_i64().unwrap(), 60).await;
    let shell = gh
        .review_comments(REPO, 7)
        .iter()
        .find(|c| c["line"] == 21)
        .and_then(|c| c["id"].as_u64())
        .expect("the shell command's thread");

    let comment = gh.add_reply(
        REPO,
        7,
        shell,
        "alice",
        "OWNER",
        "/redline ignore validated upstream",
    );
    let body = review_comment_created(&gh, REPO, 7, &comment);
    let event = "pull_request_review_comment";
    let (status, first) = deliver_signed(&addr, event, "pg-r1", &body).await;
    assert_eq!(status, 202, "{first}");
    let (status, other) = deliver_signed(&addr, event, "pg-r2", &body).await;
    assert_eq!(
        (status, other["outcome"].as_str()),
        (200, Some("duplicate comment: already answered or queued"))
    );
    wait_job_ended(&server, first["job"].as_i64().unwrap(), 60).await;
    let body = only_answer(&gh, 7, shell);
    assert!(
        body.contains("Dismissed, with the reason: validated upstream"),
        "{body}"
    );
    let js = jobs_in(&pg.url);
    let reply = js
        .iter()
        .find(|j| j["cause"] == "reply")
        .expect("the reply job");
    assert_eq!(reply["status"], "done", "{reply:#}");
    assert_eq!(reply["conversation"]["outcome"], "dismissed");
    assert_eq!(reply["conversation"]["argument"], "validated upstream");
    assert_eq!(js.iter().filter(|j| j["cause"] == "reply").count(), 1);
    let out = crate::common::redline()
        .args(["stats", "--format", "json"])
        .env("REDLINE_DATABASE_URL", &pg.url)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acceptance"]["dismissed"], 1, "{v:#}");
}
