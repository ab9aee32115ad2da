//! Learning from the team, end to end against the fake GitHub: a finding whose code changes on
//! the next push becomes fixed; one whose thread is resolved (or that gets a thumbs-down) with the
//! code unchanged becomes dismissed; `redline stats` reports the rates; a rule past the dismissal
//! threshold is held back from line comments on the next review, and the summary says why.

use crate::common::app::*;
use crate::common::fake_github::{FakePr, fake_file};
use serde_json::{Value, json};

fn stats(dir: &std::path::Path, format: &str) -> String {
    let out = crate::common::redline()
        .args(["stats", "--format", format])
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
    String::from_utf8(out.stdout).unwrap()
}

/// The comment id of the posted comment on `line` of app/reports.py.
fn comment_at(gh: &crate::common::fake_github::FakeGitHub, pr: u64, line: u64) -> u64 {
    gh.review_comments(REPO, pr)
        .iter()
        .find(|c| c["path"] == "app/reports.py" && c["line"] == line)
        .and_then(|c| c["id"].as_u64())
        .unwrap_or_else(|| panic!("no comment on line {line}"))
}

fn rule_row<'a>(v: &'a Value, rule: &str) -> &'a Value {
    v["by"]["rule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == rule)
        .unwrap_or_else(|| panic!("no row for {rule}: {v:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_stats_and_feedback() {
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    // Small thresholds so that one repository's few findings decide.
    env.push(("REDLINE_FEEDBACK_MIN_DECIDED".into(), "1".into()));
    env.push(("REDLINE_FEEDBACK_DISMISS_RATE".into(), "0.5".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();

    // 1. The first review: three findings posted (SQL line 15, shell line 21, token line 25).
    let (status, _) = deliver_signed(&addr, "pull_request", "o-1", &opened()).await;
    assert_eq!(status, 202);
    wait_for(60, "the first review", || gh.reviews(REPO, 7).len() == 1).await;
    wait_jobs_settled(dir.path(), 30).await;
    let v: Value = serde_json::from_str(&stats(dir.path(), "json")).unwrap();
    assert_eq!(v["acceptance"]["open"], 3);
    assert_eq!(v["acceptance"]["decided"], 0);

    // 2. The shell finding's thread is resolved with the code unchanged: dismissed at once.
    let shell_comment = comment_at(&gh, 7, 21);
    let resolved = payload("pull_request_review_thread.resolved.json", |v| {
        v["thread"]["comments"][0]["id"] = json!(shell_comment);
    });
    let (status, answer) =
        deliver_signed(&addr, "pull_request_review_thread", "o-2", &resolved).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["outcome"],
        "recorded: thread resolved, 1 finding(s) updated"
    );

    // 3. A thumbs-down on the token finding; then a push that fixes the SQL (and moves lines).
    gh.react(comment_at(&gh, 7, 25), "-1");
    let fixed = head_py().replace(
        "    rows = db.execute(\"SELECT * FROM reports WHERE owner = '\" + name + \"'\").fetchall()",
        "    # owners are matched exactly\n    rows = db.execute(\"SELECT * FROM reports WHERE owner = ?\", (name,)).fetchall()",
    );
    assert_ne!(fixed, head_py());
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_2,
            vec![fake_file("app/reports.py", Some(BASE_PY), Some(&fixed))],
        ),
    );
    let (status, _) = deliver_signed(
        &addr,
        "pull_request",
        "o-3",
        &payload("pull_request.synchronize.json", |_| {}),
    )
    .await;
    assert_eq!(status, 202);
    let js = wait_jobs_settled(dir.path(), 60).await;
    let push_job = js.iter().find(|j| j["head_sha"] == HEAD_2).unwrap();
    assert!(
        push_job["outcome"]
            .as_str()
            .unwrap()
            .contains("earlier findings: 1 fixed, 1 dismissed"),
        "{push_job:#}"
    );

    let v: Value = serde_json::from_str(&stats(dir.path(), "json")).unwrap();
    assert_eq!(v["acceptance"]["fixed"], 1, "{v:#}");
    assert_eq!(v["acceptance"]["dismissed"], 2, "{v:#}");
    assert_eq!(
        v["acceptance"]["open"], 0,
        "the moved, unchanged findings were not reposted"
    );
    assert!((v["acceptance"]["rate"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(rule_row(&v, "py.sql.dynamic-query")["fixed"], 1);
    assert_eq!(rule_row(&v, "py.cmd.shell-true")["dismissed"], 1);
    assert_eq!(rule_row(&v, "py.secret.known-shape")["dismissed"], 1);
    let by_lang = &v["by"]["language"][0];
    assert_eq!(
        (by_lang["key"].as_str(), by_lang["decided"].as_u64()),
        (Some("python"), Some(3))
    );
    assert_eq!(v["by"]["engine"][0]["key"], "rules");
    assert_eq!(v["reviews"]["count"], 2);
    assert_eq!(v["reviews"]["pull_requests"], 1);
    assert!(v["reviews"]["latency_ms"]["p50"].as_i64().is_some());
    let text = stats(dir.path(), "text");
    assert!(
        text.contains("acceptance: 33% (1 fixed / 3 decided; 2 dismissed, 0 open)"),
        "{text}"
    );
    println!("{text}");

    // 4. Another pull request with the same code: the dismissed rules are held back from line
    //    comments and the summary says why; the fixed rule is still posted inline.
    let head_9 = "9999999999999999999999999999999999999999";
    gh.set_pr(
        REPO,
        FakePr::new(
            9,
            head_9,
            vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))],
        ),
    );
    let opened_9 = payload("pull_request.opened.json", |v| {
        v["number"] = json!(9);
        v["pull_request"]["number"] = json!(9);
        v["pull_request"]["head"]["sha"] = json!(head_9);
    });
    let (status, _) = deliver_signed(&addr, "pull_request", "o-4", &opened_9).await;
    assert_eq!(status, 202);
    wait_for(60, "the review of #9", || gh.reviews(REPO, 9).len() == 1).await;
    let review = &gh.reviews(REPO, 9)[0];
    let lines: Vec<u64> = review["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![15], "only the rule developers fix stays inline");
    let body = review["body"].as_str().unwrap();
    assert!(
        body.contains("`app/reports.py:21`") && body.contains("held back: 1 of 1 decided findings"),
        "{body}"
    );
    assert!(body.contains("were dismissed in this repository"), "{body}");
    let js = wait_jobs_settled(dir.path(), 30).await;
    let j9 = js.iter().find(|j| j["pr_number"] == 9).unwrap();
    assert!(
        j9["outcome"]
            .as_str()
            .unwrap()
            .contains("2 held back by feedback"),
        "{j9:#}"
    );

    // 5. #9 merges with its SQL finding unchanged: dismissed.
    let merged = payload("pull_request.closed.json", |v| {
        v["number"] = json!(9);
        v["pull_request"]["number"] = json!(9);
        v["pull_request"]["head"]["sha"] = json!(head_9);
        v["pull_request"]["merged"] = json!(true);
    });
    let (status, _) = deliver_signed(&addr, "pull_request", "o-5", &merged).await;
    assert_eq!(status, 202);
    let js = wait_jobs_settled(dir.path(), 30).await;
    let m = js.iter().find(|j| j["cause"] == "merged").unwrap();
    assert_eq!(m["outcome"], "merged: 0 finding(s) fixed, 1 dismissed");
    let v: Value = serde_json::from_str(&stats(dir.path(), "json")).unwrap();
    assert_eq!(
        (
            v["acceptance"]["fixed"].as_u64(),
            v["acceptance"]["dismissed"].as_u64()
        ),
        (Some(1), Some(3))
    );
    let metrics = reqwest::get(format!("{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("redline_findings{outcome=\"fixed\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redline_acceptance_rate 0.25"),
        "{metrics}"
    );
    // By rule: the same decisions, each under the rule that made the finding.
    let by_rule = |outcome: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("redline_findings_by_rule{rule=\"")
                    && l.contains(&format!("outcome=\"{outcome}\"}}"))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        (by_rule("fixed"), by_rule("dismissed")),
        (1, 3),
        "{metrics}"
    );
}

/// Which prompt a chat request was sent with.
fn is_candidate_prompt(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.contains("name to yourself the concrete input"))
}

#[test]
fn bench_compares_prompt_versions_on_the_same_cases() {
    use crate::common::fake_openai::{FakeOpenAi, tool_calls};
    use std::time::Duration;
    // review-v1 adds a comment on an import (a false alarm); review-v2 stays quiet.
    let llm = FakeOpenAi::start().with_script(|body, _| {
        let already = body["messages"].as_array().is_some_and(|m| m.len() > 2);
        let reply = if is_candidate_prompt(body) || already {
            tool_calls(&[("finish_file", r#"{"summary": "done"}"#)])
        } else {
            tool_calls(&[
                ("post_review_comment", r#"{"line": 1, "severity": "warning", "category": "unused-import", "body": "logging is imported but the module barely uses it.", "confidence": 0.9, "code_reference": "import logging", "guideline_ids": []}"#),
                ("finish_file", r#"{"summary": "done"}"#),
            ])
        };
        (200, reply, Duration::ZERO)
    });
    let dir = tempfile::tempdir().unwrap();
    let json_out = dir.path().join("compare.json");
    let out = crate::common::redline()
        .current_dir(crate::common::project_root())
        .args([
            "bench",
            "fixtures/cases/python/py-discount-rule-eval",
            "--compare-prompts",
            "review-v1,review-v2",
            "--json",
        ])
        .arg(&json_out)
        .env("REDLINE_LLM_BASE_URL", &llm.base_url)
        .env("REDLINE_LLM_MODEL", "fake-large")
        // The script plays the review loop only; verification is tested on its own.
        .env("REDLINE_AGENT_VERIFY", "0")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("## review-v1")
            && stdout.contains("## review-v2")
            && stdout.contains("## Comparison"),
        "{stdout}"
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json_out).unwrap()).unwrap();
    assert_eq!(v[0]["prompt_version"], "review-v1");
    assert_eq!(v[1]["prompt_version"], "review-v2");
    assert_eq!(v[0]["recall"], 1.0);
    assert_eq!(v[1]["recall"], 1.0);
    assert_eq!(
        v[0]["precision"], 0.5,
        "v1's extra comment is a false alarm: {v:#}"
    );
    assert_eq!(v[1]["precision"], 1.0);
    // Both versions really went to the model.
    let prompts: Vec<bool> = llm
        .chat_requests()
        .iter()
        .map(|r| is_candidate_prompt(&r.body))
        .collect();
    assert!(prompts.contains(&true) && prompts.contains(&false));

    // An unknown version is named with the ones that exist.
    let out = crate::common::redline()
        .current_dir(crate::common::project_root())
        .args([
            "bench",
            "fixtures/cases/python/py-discount-rule-eval",
            "--compare-prompts",
            "review-v1,review-v7",
        ])
        .env("REDLINE_LLM_BASE_URL", &llm.base_url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("review-v7") && err.contains("review-v2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_candidate_prompt_gets_its_share_of_pull_requests_and_stats_compare_them() {
    use crate::common::fake_openai::{FakeOpenAi, tool_calls};
    use std::time::Duration;
    let llm = FakeOpenAi::start().with_script(|_, _| {
        (
            200,
            tool_calls(&[("finish_file", r#"{"summary": "ok"}"#)]),
            Duration::ZERO,
        )
    });
    let gh = github_with_pr();
    let dir = tempfile::tempdir().unwrap();
    let mut env = app_env(dir.path(), &gh);
    env.push(("REDLINE_LLM_BASE_URL".into(), llm.base_url.clone()));
    env.push(("REDLINE_LLM_MODEL".into(), "fake-large".into()));
    env.push(("REDLINE_PROMPT_CANDIDATE".into(), "review-v2".into()));
    env.push(("REDLINE_PROMPT_CANDIDATE_SHARE".into(), "50".into()));
    let server = start("serve", dir.path(), &env);
    let addr = server.addr.clone().unwrap();
    // Six pull requests, each reviewed twice (opened, then `/redline review`).
    for n in 20..26u64 {
        let head = format!("{n:0>40}");
        gh.set_pr(
            REPO,
            FakePr::new(
                n,
                &head,
                vec![fake_file("app/reports.py", Some(BASE_PY), Some(&head_py()))],
            ),
        );
        let body = payload("pull_request.opened.json", |v| {
            v["number"] = json!(n);
            v["pull_request"]["number"] = json!(n);
            v["pull_request"]["head"]["sha"] = json!(head);
        });
        assert_eq!(
            deliver_signed(&addr, "pull_request", &format!("ab-{n}"), &body)
                .await
                .0,
            202
        );
    }
    wait_jobs_settled(dir.path(), 90).await;
    for n in 20..26u64 {
        let body = payload("issue_comment.review_command.json", |v| {
            v["issue"]["number"] = json!(n)
        });
        assert_eq!(
            deliver_signed(&addr, "issue_comment", &format!("ab-c-{n}"), &body)
                .await
                .0,
            202
        );
    }
    let js = wait_jobs_settled(dir.path(), 90).await;
    assert_eq!(js.len(), 12);
    let mut by_pr: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
    for j in &js {
        by_pr
            .entry(j["pr_number"].as_i64().unwrap())
            .or_default()
            .push(j["review"]["prompt_version"].as_str().unwrap().to_string());
    }
    for (pr, versions) in &by_pr {
        assert_eq!(
            versions[0], versions[1],
            "sticky per pull request: #{pr} {versions:?}"
        );
    }
    let used: std::collections::BTreeSet<&String> = by_pr.values().map(|v| &v[0]).collect();
    assert_eq!(
        used.len(),
        2,
        "both versions got pull requests at a 50% share: {by_pr:?}"
    );
    let v: Value = serde_json::from_str(&stats(dir.path(), "json")).unwrap();
    let versions: Vec<&str> = v["by"]["prompt_version"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(
        versions.contains(&"review-v1") && versions.contains(&"review-v2"),
        "{v:#}"
    );
}
