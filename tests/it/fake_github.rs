//! The fake GitHub API of `tests/common/fake_github.rs`, exercised over real HTTP: installation
//! tokens from app JWTs, pagination, all-or-nothing reviews, pending reviews, secondary limits, and
//! octocrab reading its answers.

use crate::common::fake_github::{FakeGitHub, FakePr, fake_file};
use octocrab::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

const APP_ID: u64 = 424_242;
const INSTALLATION: u64 = 77;
const REPO: &str = "octo-org/widgets";

fn private_key_pem() -> Vec<u8> {
    std::fs::read(crate::common::project_root().join("fixtures/github/test-app-key.pem")).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT like octocrab's (`iss` as a number, issued 60 s ago, expiring in 9 minutes).
fn app_jwt(pem: &[u8], iss: u64) -> String {
    let key = EncodingKey::from_rsa_pem(pem).unwrap();
    let claims = json!({"iss": iss, "iat": now() - 60, "exp": now() + 540});
    encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

async fn mint(gh: &FakeGitHub, jwt: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!(
            "{}/app/installations/{INSTALLATION}/access_tokens",
            gh.url
        ))
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "redline-test");
    if let Some(jwt) = jwt {
        req = req.bearer_auth(jwt);
    }
    req.send().await.unwrap()
}

async fn token(gh: &FakeGitHub) -> String {
    let resp = mint(gh, Some(&app_jwt(&private_key_pem(), APP_ID))).await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

async fn get(gh: &FakeGitHub, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", gh.url))
        .header("authorization", format!("token {token}"))
        .header("user-agent", "redline-test")
        .send()
        .await
        .unwrap()
}

async fn post(gh: &FakeGitHub, token: &str, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", gh.url))
        .header("authorization", format!("Bearer {token}"))
        .header("user-agent", "redline-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `src/lib.rs`, 20 lines, line 10 changed: one hunk `@@ -7,7 +7,7 @@` (new lines 7..=13).
fn setup() -> (FakeGitHub, String, String) {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(INSTALLATION, &[REPO]);
    let base: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let head = base.replace("line 10\n", "line ten\n");
    let file = fake_file("src/lib.rs", Some(&base), Some(&head));
    assert_eq!(
        file.patch.as_deref(),
        Some(
            "@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten\n line 11\n line 12\n line 13"
        )
    );
    assert_eq!((file.additions, file.deletions), (1, 1));
    let head_sha = "a".repeat(40);
    gh.set_pr(REPO, FakePr::new(1, &head_sha, vec![file]));
    (gh, head_sha, head)
}

fn errors(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn installation_tokens_need_a_valid_app_jwt() {
    let (gh, _, _) = setup();
    let pem = private_key_pem();

    let resp = mint(&gh, Some(&app_jwt(&pem, APP_ID))).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["x-ratelimit-limit"], "5000");
    assert_eq!(resp.headers()["x-ratelimit-resource"], "core");
    let v: Value = resp.json().await.unwrap();
    let tok = v["token"].as_str().unwrap().to_string();
    assert!(tok.starts_with("ghs_"), "{v}");
    let expires = v["expires_at"].as_str().unwrap();
    assert_eq!(expires.len(), 20, "{expires}");
    assert!(expires.ends_with('Z') && expires.as_bytes()[10] == b'T');
    assert_eq!(v["permissions"]["pull_requests"], "write");
    assert_eq!(gh.token_mints(), 1);

    // The token works on the installation's repositories only.
    let resp = get(&gh, &tok, &format!("/repos/{REPO}/pulls/1")).await;
    assert_eq!(resp.status(), 200);
    let remaining: u64 = resp.headers()["x-ratelimit-remaining"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(remaining, 4998);
    let pr: Value = resp.json().await.unwrap();
    assert_eq!(pr["head"]["sha"], "a".repeat(40));
    assert_eq!(pr["state"], "open");
    assert_eq!(pr["changed_files"], 1);
    let resp = get(&gh, &tok, "/repos/someone/else/pulls/1").await;
    assert_eq!(resp.status(), 401);
    let resp = get(&gh, &tok, &format!("/repos/{REPO}/pulls/9")).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["message"], "Not Found");
    assert_eq!(
        get(&gh, "ghs_made_up", &format!("/repos/{REPO}/pulls/1"))
            .await
            .status(),
        401
    );

    // Bad JWTs: none, a tampered signature, another app id, a key that is not the app's.
    let undecodable = "A JSON web token could not be decoded";
    for jwt in [
        None,
        Some(format!("{}x", app_jwt(&pem, APP_ID))),
        Some(app_jwt(&pem, APP_ID + 1)),
    ] {
        let resp = mint(&gh, jwt.as_deref()).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.json::<Value>().await.unwrap()["message"], undecodable);
    }
    let other_key = std::process::Command::new("openssl")
        .args(["genrsa", "2048"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    match other_key {
        Some(out) => {
            let resp = mint(&gh, Some(&app_jwt(&out.stdout, APP_ID))).await;
            assert_eq!(resp.status(), 401);
            assert_eq!(resp.json::<Value>().await.unwrap()["message"], undecodable);
        }
        None => eprintln!("openssl not available: the wrong-key case is not exercised"),
    }
    // An installation token is not a JWT.
    assert_eq!(mint(&gh, Some(&tok)).await.status(), 401);
    assert_eq!(gh.token_mints(), 1);

    // Expired tokens are refused.
    gh.expire_tokens();
    let resp = get(&gh, &tok, &format!("/repos/{REPO}/pulls/1")).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["message"],
        "Bad credentials"
    );

    let reqs = gh.requests();
    assert!(reqs.iter().all(|r| r.status != 0));
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].status, 201);
    assert!(
        reqs[0]
            .authorization
            .as_deref()
            .unwrap()
            .starts_with("Bearer ")
    );
}

#[tokio::test]
async fn files_are_paginated_with_link_headers() {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(INSTALLATION, &[REPO]);
    let files = (0..150)
        .map(|i| fake_file(&format!("src/f{i:03}.rs"), None, Some("fn main() {}\n")))
        .collect();
    gh.set_pr(REPO, FakePr::new(3, &"c".repeat(40), files));
    let tok = token(&gh).await;
    let host = gh.url.trim_start_matches("http://");
    let path = format!("/repos/{REPO}/pulls/3/files");

    let resp = get(&gh, &tok, &format!("{path}?per_page=100")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["link"],
        format!(
            "<http://{host}{path}?per_page=100&page=2>; rel=\"next\", <http://{host}{path}?per_page=100&page=2>; rel=\"last\""
        )
        .as_str()
    );
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0]["filename"], "src/f000.rs");
    assert_eq!(page[0]["status"], "added");
    assert_eq!(page[0]["patch"], "@@ -0,0 +1 @@\n+fn main() {}");
    assert_eq!(page[0]["changes"], 1);

    let resp = get(&gh, &tok, &format!("{path}?per_page=100&page=2")).await;
    assert_eq!(
        resp.headers()["link"],
        format!(
            "<http://{host}{path}?per_page=100&page=1>; rel=\"prev\", <http://{host}{path}?per_page=100&page=1>; rel=\"first\""
        )
        .as_str()
    );
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 50);
    assert_eq!(page[49]["filename"], "src/f149.rs");

    // Default 30 per page; per_page is capped at 100.
    let resp = get(&gh, &tok, &format!("{path}?page=2")).await;
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    assert!(link.contains("page=3>; rel=\"next\""), "{link}");
    assert!(link.contains("page=5>; rel=\"last\""), "{link}");
    assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    assert_eq!(resp.json::<Vec<Value>>().await.unwrap().len(), 30);
    let resp = get(&gh, &tok, &format!("{path}?per_page=500")).await;
    assert_eq!(resp.json::<Vec<Value>>().await.unwrap().len(), 100);

    // Contents at the head: base64 with a newline every 60 characters.
    let resp = get(
        &gh,
        &tok,
        &format!("/repos/{REPO}/contents/src/f007.rs?ref={}", "c".repeat(40)),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "file");
    assert_eq!(v["encoding"], "base64");
    assert_eq!(v["content"], "Zm4gbWFpbigpIHt9Cg==\n");
    assert_eq!(v["size"], 13);
    assert_eq!(v["name"], "f007.rs");
    let resp = get(
        &gh,
        &tok,
        &format!("/repos/{REPO}/contents/src/nope.rs?ref={}", "c".repeat(40)),
    )
    .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        crate::common::fake_github::base64_wrapped(&[b'x'; 50]),
        format!("{}\neHh4eHg=\n", "eHh4".repeat(15))
    );
}

#[tokio::test]
async fn a_review_with_a_line_outside_the_diff_is_refused_whole() {
    let (gh, head_sha, _) = setup();
    let tok = token(&gh).await;
    let reviews = format!("/repos/{REPO}/pulls/1/reviews");
    let review = |comments: Value| json!({"commit_id": head_sha, "body": "redline found 2 issues", "event": "COMMENT", "comments": comments});
    let good = json!({"path": "src/lib.rs", "line": 10, "side": "RIGHT", "body": "ten?"});

    let cases = [
        (
            json!([good, {"path": "src/lib.rs", "line": 2, "side": "RIGHT", "body": "outside"}]),
            "Pull request review thread line must be part of the diff",
        ),
        (
            json!([{"path": "src/lib.rs", "start_line": 10, "line": 10, "body": "range"}]),
            "Pull request review thread start line must precede the end line.",
        ),
        (
            json!([good, {"path": "README.md", "line": 1, "body": "not in the PR"}]),
            "Pull request review thread path is invalid",
        ),
        (
            // Line 10 of the old side is the deleted line; line 14 is outside the hunk.
            json!([{"path": "src/lib.rs", "line": 14, "side": "LEFT", "body": "left"}]),
            "Pull request review thread line must be part of the diff",
        ),
    ];
    for (comments, message) in cases {
        let resp = post(&gh, &tok, &reviews, review(comments)).await;
        assert_eq!(resp.status(), 422);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["message"], "Unprocessable Entity");
        assert_eq!(errors(&v), vec![message.to_string()]);
    }
    // A stale commit is refused too.
    let mut stale = review(json!([good]));
    stale["commit_id"] = json!("d".repeat(40));
    assert_eq!(post(&gh, &tok, &reviews, stale).await.status(), 422);
    // A scripted failure on a line that is in the diff.
    gh.fail_comment_at("src/lib.rs", 11);
    let resp = post(
        &gh,
        &tok,
        &reviews,
        review(json!([good, {"path": "src/lib.rs", "line": 11, "body": "eleven"}])),
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(
        errors(&resp.json::<Value>().await.unwrap()),
        vec!["Line could not be resolved".to_string()]
    );
    // Nothing was stored.
    assert!(gh.reviews(REPO, 1).is_empty());
    assert!(gh.review_comments(REPO, 1).is_empty());
    let listed: Vec<Value> = get(&gh, &tok, &format!("/repos/{REPO}/pulls/1/comments"))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());

    // A valid review: a single line on the right and a range across the hunk, one on the left.
    let resp = post(
        &gh,
        &tok,
        &reviews,
        review(json!([
            good,
            {"path": "src/lib.rs", "start_line": 8, "line": 12, "side": "RIGHT", "body": "range"},
            {"path": "src/lib.rs", "line": 10, "side": "LEFT", "body": "was ten"}
        ])),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["state"], "COMMENTED");
    assert_eq!(v["user"]["login"], "redline[bot]");
    assert_eq!(v["user"]["type"], "Bot");
    assert_eq!(v["commit_id"], head_sha);
    let stored = gh.reviews(REPO, 1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["comments"].as_array().unwrap().len(), 3);

    let listed: Vec<Value> = get(&gh, &tok, &format!("/repos/{REPO}/pulls/1/comments"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["line"], 10);
    assert_eq!(listed[0]["side"], "RIGHT");
    assert_eq!(listed[0]["position"], 5);
    assert_eq!(listed[0]["pull_request_review_id"], v["id"]);
    assert_eq!(
        listed[0]["diff_hunk"],
        "@@ -7,7 +7,7 @@\n line 7\n line 8\n line 9\n-line 10\n+line ten"
    );
    assert_eq!(listed[1]["start_line"], 8);
    assert_eq!(listed[1]["start_side"], "RIGHT");
    assert_eq!(listed[2]["side"], "LEFT");
    assert!(listed[0].get("in_reply_to_id").is_none());
    assert!(listed[0].get("resolved").is_none());

    let id = listed[0]["id"].as_u64().unwrap();
    gh.resolve_comment(id);
    assert_eq!(gh.review_comments(REPO, 1)[0]["resolved"], true);
    assert_eq!(gh.review_comments(REPO, 1)[1]["resolved"], false);

    // A push moves the head: the old commit_id is refused.
    let base: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let newer = base.replace("line 3\n", "line three\n");
    gh.set_pr(
        REPO,
        FakePr::new(
            1,
            &"e".repeat(40),
            vec![fake_file("src/lib.rs", Some(&base), Some(&newer))],
        ),
    );
    assert_eq!(gh.pr_head(REPO, 1), Some("e".repeat(40)));
    let resp = post(&gh, &tok, &reviews, review(json!([good]))).await;
    assert_eq!(resp.status(), 422);
    assert_eq!(gh.reviews(REPO, 1).len(), 1);
}

#[tokio::test]
async fn a_pending_review_is_hidden_until_deleted() {
    let (gh, head_sha, _) = setup();
    let tok = token(&gh).await;
    let reviews = format!("/repos/{REPO}/pulls/1/reviews");
    let resp = post(
        &gh,
        &tok,
        &reviews,
        json!({"commit_id": head_sha, "body": "draft", "comments": [{"path": "src/lib.rs", "line": 9, "body": "nine"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let pending: Value = resp.json().await.unwrap();
    assert_eq!(pending["state"], "PENDING");
    assert!(pending.get("submitted_at").is_none());
    assert!(gh.reviews(REPO, 1).is_empty());
    assert!(gh.review_comments(REPO, 1).is_empty());
    let listed: Vec<Value> = get(&gh, &tok, &format!("/repos/{REPO}/pulls/1/comments"))
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.is_empty());
    // The author sees its own pending review in the listing.
    let listed: Vec<Value> = get(&gh, &tok, &reviews).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    // Only one pending review per pull request.
    let resp = post(
        &gh,
        &tok,
        &reviews,
        json!({"commit_id": head_sha, "body": "done", "event": "COMMENT"}),
    )
    .await;
    assert_eq!(resp.status(), 422);
    assert_eq!(
        errors(&resp.json::<Value>().await.unwrap()),
        vec!["User can only have one pending review per pull request".to_string()]
    );

    let client = reqwest::Client::new();
    let delete = |id: &Value| {
        client
            .delete(format!("{}{reviews}/{id}", gh.url))
            .header("authorization", format!("token {tok}"))
            .send()
    };
    let resp = delete(&pending["id"]).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["state"], "PENDING");
    assert_eq!(delete(&pending["id"]).await.unwrap().status(), 404);
    assert!(gh.pending_reviews(REPO, 1).is_empty());

    // A submitted review cannot be deleted.
    let resp = post(
        &gh,
        &tok,
        &reviews,
        json!({"commit_id": head_sha, "body": "done", "event": "APPROVE"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let approved: Value = resp.json().await.unwrap();
    assert_eq!(approved["state"], "APPROVED");
    assert_eq!(delete(&approved["id"]).await.unwrap().status(), 422);
    assert_eq!(gh.reviews(REPO, 1).len(), 1);
    assert!(
        gh.reviews(REPO, 1)[0]["comments"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_secondary_limit_answers_403_once_and_stores_nothing() {
    let (gh, head_sha, _) = setup();
    let tok = token(&gh).await;
    let check = json!({"name": "redline", "head_sha": head_sha, "status": "in_progress"});
    let path = format!("/repos/{REPO}/check-runs");

    gh.secondary_limit_once(7);
    let resp = post(&gh, &tok, &path, check.clone()).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    assert!(gh.check_runs(REPO).is_empty());

    let resp = post(&gh, &tok, &path, check).await;
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "in_progress");
    assert!(v["conclusion"].is_null());
    assert_eq!(gh.check_runs(REPO).len(), 1);
    let resp = post(&gh, &tok, &path, json!({"head_sha": head_sha})).await;
    assert_eq!(resp.status(), 422);

    // Issue comments and reviews are content-creating too.
    gh.secondary_limit_once(1);
    let comments = format!("/repos/{REPO}/issues/1/comments");
    assert_eq!(
        post(&gh, &tok, &comments, json!({"body": "hi"}))
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&gh, &tok, &comments, json!({"body": "hi"}))
            .await
            .status(),
        201
    );
    assert_eq!(gh.issue_comments(REPO, 1).len(), 1);

    // GET /rate_limit does not count.
    let before = gh.requests().len() as u64;
    let rl: Value = get(&gh, &tok, "/rate_limit").await.json().await.unwrap();
    assert_eq!(rl["resources"]["core"]["used"], before);
    assert_eq!(rl["rate"]["remaining"], 5000 - before);
    assert_eq!(get(&gh, &tok, "/nothing/here").await.status(), 404);
    assert_eq!(gh.requests().last().unwrap().status, 404);
}

#[tokio::test]
async fn octocrab_reads_the_fake() {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(INSTALLATION, &[REPO]);
    let files: Vec<_> = (0..45)
        .map(|i| fake_file(&format!("f{i}.txt"), Some("a\n"), Some("b\n")))
        .collect();
    gh.set_pr(REPO, FakePr::new(5, &"f".repeat(40), files));
    gh.delay_files(std::time::Duration::from_millis(50));

    let app = octocrab::Octocrab::builder()
        .base_uri(gh.url.as_str())
        .unwrap()
        .app(
            octocrab::models::AppId(APP_ID),
            EncodingKey::from_rsa_pem(&private_key_pem()).unwrap(),
        )
        .build()
        .unwrap();
    let crab = app
        .installation(octocrab::models::InstallationId(INSTALLATION))
        .unwrap();
    let pr = crab.pulls("octo-org", "widgets").get(5).await.unwrap();
    assert_eq!(pr.head.sha, "f".repeat(40));
    assert_eq!(pr.draft, Some(false));
    let page = crab
        .pulls("octo-org", "widgets")
        .list_files(5)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 30);
    // The Link URLs are absolute, as on GitHub. octocrab sends credentials only to relative URIs
    // and to api.github.com, so `all_pages` against another host gets 401: follow by path instead.
    let next = page.next.clone().unwrap();
    assert_eq!(
        next.authority().map(|a| a.as_str().to_string()),
        Some(gh.url.trim_start_matches("http://").to_string())
    );
    let by_path = next.path_and_query().unwrap().as_str().parse().unwrap();
    let page2 = crab
        .get_page::<octocrab::models::repos::DiffEntry>(&Some(by_path))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page2.items.len(), 15);
    assert!(page2.next.is_none());
    assert_eq!(
        page2.items[14].patch.as_deref(),
        Some("@@ -1 +1 @@\n-a\n+b")
    );
    let content = crab
        .repos("octo-org", "widgets")
        .get_content()
        .path("f3.txt")
        .r#ref("f".repeat(40))
        .send()
        .await
        .unwrap();
    assert_eq!(content.items[0].decoded_content().as_deref(), Some("b\n"));
    let comment = crab
        .issues("octo-org", "widgets")
        .create_comment(5, "hello")
        .await
        .unwrap();
    assert_eq!(comment.body.as_deref(), Some("hello"));
    let run = crab
        .checks("octo-org", "widgets")
        .create_check_run("redline", "f".repeat(40))
        .send()
        .await
        .unwrap();
    assert_eq!(run.name, "redline");
    let reviews = crab
        .pulls("octo-org", "widgets")
        .list_reviews(5)
        .send()
        .await
        .unwrap();
    assert!(reviews.items.is_empty());
    assert_eq!(gh.token_mints(), 1);
    assert!(gh.requests().iter().all(|r| r.status < 300));

    // An expired token: octocrab gets 401, mints a new token and retries once.
    gh.expire_tokens();
    let pr = crab.pulls("octo-org", "widgets").get(5).await.unwrap();
    assert_eq!(pr.number, 5);
    assert_eq!(gh.token_mints(), 2);
    let statuses: Vec<u16> = gh
        .requests()
        .iter()
        .rev()
        .take(3)
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![200, 201, 401]);
}
