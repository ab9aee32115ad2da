//! Issue 17, each item through the real `redline serve` and the fake GitHub over HTTP (with a
//! throwaway PostgreSQL for the store outages): a pull request cannot loosen its own review;
//! nothing hostile from a pull request or a model reaches GitHub's Markdown as Markdown or HTML;
//! every file name git allows is reviewed; slow, idle and oversized clients cannot starve
//! /healthz or signed webhooks; a store outage is a quick 503 and the delivery is redelivered
//! later; a review posted before the store failed is recorded when the job runs again.

use crate::common::app::*;
use crate::common::fake_github::{FakeGitHub, FakePr, fake_file};
use crate::common::fake_openai::{FakeOpenAi, text_reply, tool_calls};
use crate::common::rendered::{assert_no_comment_link_or_mention, render};
use crate::common::services::TempPg;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The base commit of the fake's pull requests.
fn base_sha() -> String {
    "b".repeat(40)
}

/// A server for `gh`, with `extra` settings on top of the usual ones; GitHub's webhooks go to it.
fn serve(gh: &FakeGitHub, dir: &std::path::Path, extra: &[(&str, &str)]) -> Proc {
    serve_under(&[], gh, dir, extra)
}

fn serve_under(
    wrapper: &[&str],
    gh: &FakeGitHub,
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Proc {
    let mut env = app_env(dir, gh);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let server = start_under(wrapper, "serve", dir, &env);
    gh.set_webhook(
        &format!("{}/webhook", server.addr.as_ref().unwrap()),
        SECRET,
    );
    server
}

/// The `pull_request` opened delivery for pull request `number` at `head`.
fn opened_pr(number: u64, head: &str) -> Vec<u8> {
    payload("pull_request.opened.json", |v| {
        v["number"] = json!(number);
        v["pull_request"]["number"] = json!(number);
        v["pull_request"]["head"]["sha"] = json!(head);
    })
}

// ---------------------------------------------------------------------------------------------
// Rendering what was posted, as GitHub would

/// A posted body is inert: as rendered, no foreign HTML, no comment but our markers, no link
/// but http(s), no mention; and within GitHub's 65,536 characters.
fn assert_inert(body: &str, what: &str) {
    assert!(body.chars().count() <= 65_536, "{what}: too long");
    let html = render(body);
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<img"), "{what}: an image\n{html}");
    assert!(!lower.contains("<script"), "{what}: a script\n{html}");
    assert!(
        html.matches("</details>").count() <= 1
            && html.matches("</details>").count() == html.matches("<details>").count(),
        "{what}: details opened or closed by the text\n{html}"
    );
    assert_no_comment_link_or_mention(&html, what);
}

/// Every body the fake received: reviews (with their comments) and check runs.
fn posted_bodies(gh: &FakeGitHub, prs: &[u64]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pr in prs {
        for r in gh.reviews(REPO, *pr) {
            out.push((
                format!("review on #{pr}"),
                r["body"].as_str().unwrap_or("").to_string(),
            ));
            for c in r["comments"].as_array().unwrap() {
                out.push((
                    format!("comment on {:?}:{}", c["path"], c["line"]),
                    c["body"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    for run in gh.check_runs(REPO) {
        for field in ["title", "summary", "text"] {
            if let Some(t) = run["output"][field].as_str() {
                out.push((format!("check run {field}"), t.to_string()));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Settings from the base commit

/// The base branch's settings: the shell-command rule is off.
const BASE_TOML: &str = "[rules]\ndisable = [\"py.cmd.shell-true\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_cannot_loosen_its_own_review() {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    let loosening = "ignore = [\"**\"]\nllm = \"off\"\nmin_severity = \"critical\"\n[rules]\ndisable = [\"py.sql.dynamic-query\"]\n";
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![
                fake_file("app/reports.py", Some(BASE_PY), Some(&head_py())),
                fake_file(".redline.toml", Some(BASE_TOML), Some(loosening)),
            ],
        ),
    );
    gh.set_content(REPO, &base_sha(), ".redline.toml", BASE_TOML);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[("REDLINE_CHECK_RUNS", "true")]);
    let (status, _) = deliver_signed(
        server.addr.as_ref().unwrap(),
        "pull_request",
        "base-1",
        &opened(),
    )
    .await;
    assert_eq!(status, 202);
    let js = wait_jobs_settled(dir.path(), 60).await;
    assert_eq!(js[0]["status"], "done", "{:#}", js[0]);

    let reviews = gh.reviews(REPO, 7);
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    let mut lines: Vec<u64> = r["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_u64().unwrap())
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![15, 25],
        "the SQL injection is commented (the head's settings are not applied) and the shell \
         command is not (the base's settings are)"
    );
    assert_eq!(r["state"], "CHANGES_REQUESTED");
    let runs = gh.check_runs(REPO);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["conclusion"], "failure", "{:#}", runs[0]);
    let summary = r["body"].as_str().unwrap();
    let html = render(summary);
    for part in [
        "This pull request changes <code>.redline.toml</code>; it was reviewed with the base branch",
        "Once merged, it would: disable rule <code>py.sql.dynamic-query</code>",
        "re-enable rule <code>py.cmd.shell-true</code>",
        "ignore <code>**</code>",
        "set min_severity to <code>critical</code> (now <code>suggestion</code>)",
        "set llm to <code>off</code> (now <code>any</code>)",
    ] {
        assert!(html.contains(part), "{part}:\n{html}");
    }
    assert_inert(summary, "summary");
    // The settings were read at the base commit, and the head's only to describe the change.
    let contents: Vec<String> = gh
        .requests()
        .iter()
        .filter(|q| q.path.ends_with("/contents/.redline.toml"))
        .map(|q| q.path.clone())
        .collect();
    assert_eq!(contents.len(), 2, "{contents:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Markdown from the pull request and the model

/// A file name with a backtick, a pipe, a mention and a tag.
const WEIRD: &str = "app/we`ird|@octocat <img src=x>.py";

fn hostile_message() -> String {
    format!(
        "@octocat and @org/team: <img src=x onerror=alert(1)></details><!-- [x](javascript:alert(1)) \
         javascript:alert(1) [ok](https://owasp.org/Top10)\n```\nnot code\n````\n# not a heading\n\
         | a | b |\n|---|---|\n日本語 ☕ {}",
        "long ".repeat(1500)
    )
}

const HOSTILE_SUGGESTION: &str =
    "    name = request.args.get(\"name\")\n```\n````\n# @octocat </details> -->";

/// The model: on each file, one comment on line 13 full of hostile text with a hostile
/// suggestion, then finish; every finding is confirmed when verified.
fn hostile_model() -> FakeOpenAi {
    FakeOpenAi::start().with_script(|body, _| {
        let msgs = body["messages"].as_array().cloned().unwrap_or_default();
        let system = msgs
            .first()
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        if system.contains("You check one finding") {
            return (
                200,
                text_reply(r#"{"verdict": "confirmed", "trigger": "name=' OR 1=1 --", "reason": "the name reaches the query"}"#),
                Duration::ZERO,
            );
        }
        let first_turn = body.get("tools").is_some() && msgs.iter().all(|m| m["role"] != "tool");
        let reply = if first_turn {
            let args = json!({
                "line": 13,
                "severity": "warning",
                "category": "@org/team <img src=x>",
                "body": hostile_message(),
                "confidence": 0.95,
                "code_reference": "name = request.args.get(\"name\")",
                "guideline_ids": [],
                "suggestion": HOSTILE_SUGGESTION,
            })
            .to_string();
            tool_calls(&[
                ("post_review_comment", args.as_str()),
                ("finish_file", r#"{"summary": "@octocat <img src=x>"}"#),
            ])
        } else {
            tool_calls(&[("finish_file", r#"{"summary": "done"}"#)])
        };
        (200, reply, Duration::ZERO)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_from_the_pull_request_or_the_model_is_inert_in_every_posted_body() {
    let llm = hostile_model();
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    let hostile_toml = "\"@octocat <img src=x onerror=alert(1)>\" = \"</details><!--\"\n";
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![
                fake_file("app/reports.py", Some(BASE_PY), Some(&head_py())),
                fake_file(WEIRD, None, Some(&head_py())),
                fake_file(".redline.toml", None, Some(hostile_toml)),
            ],
        ),
    );
    // The model's comment on the oddly named file is refused: it goes to the summary's list.
    gh.fail_comment_at(WEIRD, 13);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        &gh,
        dir.path(),
        &[
            ("REDLINE_CHECK_RUNS", "true"),
            ("REDLINE_LLM_BASE_URL", &llm.base_url),
            ("REDLINE_LLM_API_KEY", "sk-test"),
            ("REDLINE_LLM_MODEL", "fake-large"),
        ],
    );
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "md-1", &opened())
            .await
            .0,
        202
    );
    wait_for(90, "the review of #7", || gh.reviews(REPO, 7).len() == 1).await;

    // A second pull request whose base has a hostile `.redline.toml` key (echoed in a note).
    let head_3 = "3333333333333333333333333333333333333333";
    let mut pr8 = FakePr::new(
        8,
        head_3,
        vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))],
    );
    pr8.base_sha = "c".repeat(40);
    gh.set_pr(REPO, pr8);
    gh.set_content(REPO, &"c".repeat(40), ".redline.toml", hostile_toml);
    assert_eq!(
        deliver_signed(&addr, "pull_request", "md-2", &opened_pr(8, head_3))
            .await
            .0,
        202
    );
    wait_for(90, "the review of #8", || gh.reviews(REPO, 8).len() == 1).await;
    wait_jobs_settled(dir.path(), 60).await;

    let bodies = posted_bodies(&gh, &[7, 8]);
    for (what, body) in &bodies {
        assert_inert(body, what);
    }
    let all: String = bodies
        .iter()
        .map(|(_, b)| b.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    // The hostile text did reach the bodies (escaped), so the checks above meant something.
    assert!(
        all.contains("日本語 ☕"),
        "the model's message is not posted"
    );
    assert!(
        all.contains("would not parse") && all.contains("octocat"),
        "the head's .redline.toml note"
    );

    let summary = &gh.reviews(REPO, 7)[0]["body"].as_str().unwrap().to_string();
    let html = render(summary);
    // Every coverage row has its three cells; the odd name sits whole in one, as code.
    let rows = html.matches("<tr>").count();
    assert_eq!(html.matches("<td>").count(), (rows - 1) * 3, "{html}");
    assert!(
        html.contains("<td><code>app/we`ird|@octocat &lt;img src=x&gt;.py</code></td>"),
        "{html}"
    );
    assert!(
        html.contains("<code>app/we`ird|@octocat &lt;img src=x&gt;.py:13</code>"),
        "the refused comment is listed with its path: {html}"
    );
    assert!(
        html.contains("<a href=\"https://owasp.org/Top10\">ok</a>"),
        "{html}"
    );

    // The suggestion block holds the whole suggestion, its backtick lines included.
    let comment = gh
        .review_comments(REPO, 7)
        .into_iter()
        .find(|c| c["path"] == "app/reports.py" && c["line"] == 13)
        .expect("the model's comment on line 13");
    let html = render(comment["body"].as_str().unwrap());
    let code = HOSTILE_SUGGESTION
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    assert!(
        html.contains(&format!(
            "<pre><code class=\"language-suggestion\">{code}\n</code></pre>"
        )),
        "{html}"
    );
    let summary8 = gh.reviews(REPO, 8)[0]["body"].as_str().unwrap().to_string();
    assert!(
        summary8.contains("on the base branch") && summary8.contains("octocat"),
        "{summary8}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. File names

/// A path with each segment percent-encoded (RFC 3986's unreserved characters kept).
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_name_git_allows_is_reviewed() {
    let names = [
        "app/new\nline.py",
        "app/tab\there.py",
        "app/\"quoted\" 'name'.py",
        "app/caf\u{e9} \u{2615}.py",
        "app/..hidden/a..b.py",
        "app/ spaced name .py",
        "app/q?x#y%z&.py",
        "diff --git a/x b/y.py",
    ];
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    let files = names
        .iter()
        .map(|n| fake_file(n, None, Some(&head_py())))
        .collect();
    gh.set_pr(REPO, FakePr::new(7, HEAD_1, files));
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[("REDLINE_MAX_COMMENTS", "100")]);
    assert_eq!(
        deliver_signed(
            server.addr.as_ref().unwrap(),
            "pull_request",
            "names-1",
            &opened()
        )
        .await
        .0,
        202
    );
    let js = wait_jobs_settled(dir.path(), 90).await;
    assert_eq!(js[0]["status"], "done", "{:#}", js[0]);
    let comments = gh.review_comments(REPO, 7);
    for name in names {
        assert!(
            comments
                .iter()
                .any(|c| c["path"] == name && c["line"] == 15),
            "no comment on the SQL injection of {name:?}: {:?}",
            comments
                .iter()
                .map(|c| (&c["path"], &c["line"]))
                .collect::<Vec<_>>()
        );
        let url = format!("/repos/{REPO}/contents/{}", encode_path(name));
        assert!(
            gh.requests()
                .iter()
                .any(|q| q.method == "GET" && q.status == 200 && q.path == url),
            "the text of {name:?} was fetched at {url}"
        );
    }
    let summary = gh.reviews(REPO, 7)[0]["body"].as_str().unwrap().to_string();
    assert!(
        summary.contains(&format!("{} file(s) reviewed, 0 not reviewed", names.len())),
        "{summary}"
    );
    assert_inert(&summary, "summary");
}

// ---------------------------------------------------------------------------------------------
// 4. Slow and hostile clients

/// Opens a connection (within 2 s: a full accept queue leaves a connect hanging) and sends half
/// a request head.
async fn half_open(addr: &str) -> Option<TcpStream> {
    let connect = TcpStream::connect(addr.trim_start_matches("http://"));
    let mut s = tokio::time::timeout(Duration::from_secs(2), connect)
        .await
        .ok()?
        .ok()?;
    s.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: pull_request\r\n")
        .await
        .ok()?;
    Some(s)
}

/// Whether the server closed `s` within `secs` (EOF, or a reset).
async fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or 431 answer before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

/// GET /healthz with a deadline: its status and latency.
async fn healthz(addr: &str) -> (u16, Duration) {
    let t = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = client
        .get(format!("{addr}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    (status, t.elapsed())
}

/// A raw request (head and body as given) and the status line of the answer, within `secs`.
async fn raw_request(addr: &str, head: &str, body: &[u8], secs: u64) -> Option<u16> {
    let mut s = TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .ok()?;
    s.write_all(head.as_bytes()).await.ok()?;
    let _ = s.write_all(body).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !got.windows(2).any(|w| w == b"\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&got)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
}

/// The server's /metrics, within 10 s.
async fn metrics_text(addr: &str) -> String {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = client.get(format!("{addr}/metrics")).send().await;
    resp.expect("/metrics answers").text().await.unwrap()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_cannot_starve_health_checks_or_webhooks() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    // 512 open files: 1,000 half-sent requests are more than the process can hold.
    let server = serve_under(
        &["prlimit", "--nofile=512:512"],
        &gh,
        dir.path(),
        &[
            ("REDLINE_WORKERS", "0"),
            ("REDLINE_HEADER_TIMEOUT_SECS", "2"),
        ],
    );
    let addr = server.addr.clone().unwrap();
    let mut attack = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while attack.len() < 1000 && Instant::now() < deadline {
        if let Some(s) = half_open(&addr).await {
            attack.push(s);
        }
    }
    assert!(
        attack.len() >= 600,
        "only {} connections opened",
        attack.len()
    );
    for _ in 0..5 {
        let (status, took) = healthz(&addr).await;
        assert_eq!(status, 200, "/healthz under 1,000 half-sent requests");
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    }
    let (status, answer) = deliver_signed(&addr, "pull_request", "idle-1", &opened()).await;
    assert_eq!(
        status, 202,
        "a signed webhook under the same load: {answer}"
    );
    // The oldest half-sent connections were closed to make room.
    assert!(
        closed_within(&mut attack[0], 10).await,
        "the first idle connection is still open"
    );
    // One sent after the flood is closed by the header timeout.
    let mut late = half_open(&addr).await.expect("connect");
    let t = Instant::now();
    assert!(
        closed_within(&mut late, 10).await,
        "a half-sent request head was never cut off"
    );
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "cut off after {:?}",
        t.elapsed()
    );
    let text = metrics_text(&addr).await;
    let (open, cap) = (
        metric(&text, "redline_connections_open"),
        metric(&text, "redline_connections_max"),
    );
    assert!(open <= cap && cap <= 512.0 - 100.0, "{open} open of {cap}");
    assert!(
        text.contains("redline_connections_total{event=\"evicted\"}"),
        "{text}"
    );
    drop(attack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_long_headers_and_oversized_bodies_are_refused_early() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        &gh,
        dir.path(),
        &[
            ("REDLINE_WORKERS", "0"),
            ("REDLINE_BODY_TIMEOUT_SECS", "1"),
            ("REDLINE_MAX_BODY_BYTES", "2097152"),
            ("REDLINE_MAX_BUFFERED_BODY_BYTES", "3145728"),
            ("REDLINE_MAX_IN_FLIGHT", "2"),
        ],
    );
    let addr = server.addr.clone().unwrap();
    let head = |len: usize, id: &str| {
        format!(
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: pull_request\r\nX-GitHub-Delivery: {id}\r\nX-Hub-Signature-256: sha256={}\r\nContent-Length: {len}\r\n\r\n",
            "0".repeat(64)
        )
    };

    // A body sent a byte at a time: 408 once the body timeout passes.
    let mut slow = TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(head(1000, "slow-1").as_bytes())
        .await
        .unwrap();
    let t = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut answer = Vec::new();
        for _ in 0..100 {
            if slow.write_all(b"x").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
                break;
            }
        }
        String::from_utf8_lossy(&answer).to_string()
    });
    let answer = tokio::time::timeout(Duration::from_secs(15), trickle)
        .await
        .expect("no answer to a trickled body")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Headers: a delivery id over 100 characters is a 400; a 100 KiB one a 431.
    let (status, _) = deliver_signed(&addr, "pull_request", &"d".repeat(101), &opened()).await;
    assert_eq!(status, 400);
    let status = raw_request(&addr, &head(2, &"d".repeat(100 * 1024)), b"{}", 10).await;
    assert_eq!(status, Some(431));
    // No Content-Length (a chunked body): 411. Over REDLINE_MAX_BODY_BYTES: 413, unread.
    let chunked = "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: c-1\r\nX-Hub-Signature-256: sha256=00\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    assert_eq!(raw_request(&addr, chunked, b"", 10).await, Some(411));
    assert_eq!(
        raw_request(&addr, &head(3 * 1024 * 1024, "big-1"), b"", 10).await,
        Some(413)
    );
    // A request with no signature is refused before its body is read.
    let unsigned = "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: u-1\r\nContent-Length: 2000000\r\n\r\n";
    assert_eq!(raw_request(&addr, unsigned, b"", 10).await, Some(401));

    // 2 MiB of a 3 MiB budget held by a stalled body: a second 2 MiB body is refused unread...
    let mut stalled = TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    stalled
        .write_all(head(2 * 1024 * 1024, "stall-1").as_bytes())
        .await
        .unwrap();
    stalled.write_all(&[b' '; 1024]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics_text(&addr).await;
        if metric(&text, "redline_webhook_body_bytes_buffered") >= 2097152.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stalled body is not counted:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = Instant::now();
    assert_eq!(
        raw_request(&addr, &head(2 * 1024 * 1024, "second-1"), b"", 10).await,
        Some(503)
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    // ...while a signed webhook of ordinary size still fits.
    let (status, _) = deliver_signed(&addr, "pull_request", "fits-1", &opened()).await;
    assert_eq!(status, 202);
    // A second stalled body makes two requests in flight, the bound: the next one is refused at
    // once, and /healthz, outside the bound, still answers.
    let mut stalled2 = TcpStream::connect(addr.trim_start_matches("http://"))
        .await
        .unwrap();
    stalled2
        .write_all(head(1000, "stall-2").as_bytes())
        .await
        .unwrap();
    stalled2.write_all(b"{").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    let refused = loop {
        n += 1;
        let (status, answer) = deliver_signed(&addr, "ping", &format!("bound-{n}"), b"{}").await;
        if status == 503 {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "never refused: {status} {answer}"
        );
    };
    assert_eq!(refused["outcome"], "busy: too many requests in flight");
    assert_eq!(healthz(&addr).await.0, 200);
    assert!(
        closed_within(&mut stalled, 10).await,
        "the stalled body was never cut off"
    );
    assert!(closed_within(&mut stalled2, 10).await);
    assert!(
        !server.logs().contains(&"d".repeat(101)),
        "an over-long delivery id was logged"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A store outage: a quick 503, then a redelivery

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_during_a_store_outage_gets_a_quick_503_and_is_redelivered_later() {
    let pg = TempPg::start();
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    // Only the start and a recovery trigger a pass here (the start's may run before or during
    // the outage: either way the recovery's is the one that finds the failed delivery).
    let server = serve(
        &gh,
        dir.path(),
        &[
            ("REDLINE_DATABASE_URL", &pg.url),
            ("REDLINE_RECONCILE_INTERVAL_SECS", "3600"),
        ],
    );
    let addr = server.addr.clone().unwrap();

    pg.stop();
    let (status, took) = gh.send_webhook("pull_request", "outage-1", &opened()).await;
    eprintln!("webhook with the store down: {status} after {took:?}");
    assert_eq!(status, 503, "GitHub is told the delivery failed");
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    let (status, took) = healthz(&addr).await;
    assert_eq!(status, 503);
    assert!(
        took < Duration::from_secs(2),
        "/healthz answered after {took:?}"
    );

    pg.start_again();
    wait_for(90, "the redelivered review", || {
        gh.reviews(REPO, 7).len() == 1
    })
    .await;
    let deliveries = gh.hook_deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:#?}");
    assert_eq!(
        (deliveries[0].status_code, deliveries[0].redelivery),
        (503, false)
    );
    assert_eq!(
        (deliveries[1].status_code, deliveries[1].redelivery),
        (202, true)
    );
    assert_eq!(deliveries[1].guid, "outage-1");
    // Listed and redelivered as the App, with its JWT.
    let requests = gh.requests();
    let app_calls: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/app/hook/deliveries"))
        .collect();
    assert!(
        app_calls.iter().any(|r| r.method == "POST"
            && r.path == format!("/app/hook/deliveries/{}/attempts", deliveries[0].id)
            && r.status == 202),
        "{app_calls:#?}"
    );
    assert!(app_calls.iter().all(|r| {
        r.authorization
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ey"))
            && r.status < 400
    }));
    let deadline = Instant::now() + Duration::from_secs(30);
    let js = loop {
        let js = jobs_in(&pg.url);
        if js.len() == 1 && js[0]["status"] == "done" {
            break js;
        }
        assert!(Instant::now() < deadline, "{js:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(js[0]["delivery_id"], "outage-1");
    let logs = server.logs();
    assert!(
        logs.contains("reconciler: asked GitHub to redeliver")
            && logs.contains("the store is back"),
        "{logs}"
    );
    let text = metrics_text(&addr).await;
    assert_eq!(
        metric(&text, "redline_redeliveries_requested_total"),
        1.0,
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A review posted, then the store failed before it was recorded

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_posted_before_the_store_failed_is_recorded_with_its_findings() {
    let pg = TempPg::start();
    let gh = github_with_pr();
    // The review is created at once, its answer comes 3 s later: time to take the store away.
    gh.delay_review_answers(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&gh, dir.path(), &[("REDLINE_DATABASE_URL", &pg.url)]);
    let addr = server.addr.clone().unwrap();
    assert_eq!(
        deliver_signed(&addr, "pull_request", "rec-1", &opened())
            .await
            .0,
        202
    );
    wait_for(60, "the review to be created", || {
        gh.reviews(REPO, 7).len() == 1
    })
    .await;
    pg.stop();
    wait_for(60, "the worker to fail recording it", || {
        let logs = server.logs();
        logs.contains("cannot record the failure") || logs.contains("job failed")
    })
    .await;
    pg.start_again();
    gh.delay_review_answers(Duration::ZERO);

    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let js = jobs_in(&pg.url);
        if js.len() == 1 && js[0]["status"] == "done" {
            break js[0].clone();
        }
        assert!(Instant::now() < deadline, "{js:#?}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let posted = gh.reviews(REPO, 7);
    assert_eq!(posted.len(), 1, "posted once");
    let posts = gh
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/pulls/7/reviews"))
        .count();
    assert_eq!(posts, 1, "not posted again");
    assert!(
        job["outcome"].as_str().unwrap().contains("recorded now"),
        "{job:#}"
    );
    let review: &Value = &job["review"];
    assert_eq!(review["github_review_id"], posted[0]["id"], "{job:#}");
    assert_eq!(review["findings"], 3, "{job:#}");
    assert_eq!(review["inline_comments"], 3, "{job:#}");
    let out = crate::common::redline()
        .args(["stats", "--format", "json"])
        .env("REDLINE_DATABASE_URL", &pg.url)
        .output()
        .unwrap();
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["reviews"]["count"], 1, "{stats:#}");
    assert_eq!(stats["acceptance"]["open"], 3, "{stats:#}");
}
