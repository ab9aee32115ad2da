//! A fake GitHub REST API on 127.0.0.1 for tests: real HTTP, GitHub's wire format (JSON bodies,
//! `Link` pagination, rate-limit headers, 401/404/422/403 error bodies).
//!
//! It knows one GitHub App (its id and the public half of `fixtures/github/test-app-key.pem`),
//! installations with the repositories they cover, pull requests with their files, and whatever the
//! client posts (reviews, review comments, check runs, issue comments). Every request is recorded.
//!
//! Modelled on GitHub:
//! - `POST /app/installations/{id}/access_tokens` needs an RS256 JWT from the app (`iss` = app id,
//!   `exp` in the future and at most ~10 minutes ahead, `iat` not in the future); it mints `ghs_…`
//!   tokens valid for one hour. Every other endpoint (except `GET /rate_limit`) needs such a token,
//!   for an installation that covers the repository.
//! - A review is all-or-nothing: any invalid comment (path not in the PR, line outside the hunks of
//!   the file's patch, `start_line >= line`, …) answers 422 and stores nothing. Only one PENDING
//!   review per pull request may exist (the bot is the only reviewer here).
//! - Listings paginate with `per_page` (default 30, max 100) and `page`, with a `Link` header
//!   (`prev`, `next`, `last`, `first`) built from the request's `Host`.
//! - It sends webhooks as GitHub does (`send_webhook`: signed with the webhook secret, answered
//!   within 10 s or counted as failed) and keeps a log of every delivery, which the App lists with
//!   its JWT (`GET /app/hook/deliveries`, newest first, paginated with `cursor`) and asks to
//!   redeliver (`POST /app/hook/deliveries/{id}/attempts`: 202, then the same delivery, same
//!   `X-GitHub-Delivery`, is sent again and logged with `redelivery: true`).
//!
//! - Pull requests have a history: each `set_pr` with a new head is a push on top of the previous
//!   head, `force_push` replaces it (and may drop the old head, as garbage collection does), and
//!   `GET /repos/{o}/{r}/compare/{base}...{head}` answers from that history (`ahead`, `behind`,
//!   `identical` or `diverged`, the files that differ with their patches; 404 for a dropped or
//!   unknown commit).
//! - Review threads: `POST .../pulls/{n}/comments/{id}/replies` answers in a thread (the reply,
//!   like GitHub's, is its own submitted review with `in_reply_to_id` set to the thread's first
//!   comment); `add_reply` and `add_issue_comment` stand for people writing; issue comments are
//!   listed with `GET .../issues/{n}/comments`.
//!
//! Deliberate differences from GitHub are noted where they happen (e.g. a `commit_id` that is not
//! the PR's *current* head is refused, where GitHub would accept an older commit of the PR).

// Handlers answer an error as the whole HTTP response (`Err(Response)`), as axum handlers do.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DOCS: &str = "https://docs.github.com/rest";
const DOCS_REVIEW: &str =
    "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request";
const DOCS_TOKEN: &str =
    "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
const DOCS_SECONDARY: &str = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const RATE_LIMIT: u64 = 5000;
const BOT_LOGIN: &str = "redline[bot]";
const BOT_ID: u64 = 149_000_001;

/// One request the fake received. `status` is 0 while the request is being answered, and stays 0
/// if the client went away before the answer (e.g. a worker killed during `delay_files`).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    pub at: Instant,
    /// The request came under `/api/v3` (GitHub Enterprise Server's prefix, removed from `path`).
    pub enterprise_prefix: bool,
}

/// A pull request as the test sets it up.
#[derive(Debug, Clone)]
pub struct FakePr {
    pub number: u64,
    pub head_sha: String,
    pub base_sha: String,
    pub title: String,
    pub draft: bool,
    /// "open" or "closed"; "merged" is also accepted (answered as closed with `merged: true`).
    pub state: String,
    pub author: String,
    pub files: Vec<FakeFile>,
}

impl FakePr {
    /// An open, non-draft PR by `octocat` titled "Test change", with base sha `"b" * 40`.
    pub fn new(number: u64, head_sha: &str, files: Vec<FakeFile>) -> FakePr {
        FakePr {
            number,
            head_sha: head_sha.to_string(),
            base_sha: "b".repeat(40),
            title: "Test change".into(),
            draft: false,
            state: "open".into(),
            author: "octocat".into(),
            files,
        }
    }
}

/// A file of a pull request: its diff entry and its content at the head commit.
#[derive(Debug, Clone)]
pub struct FakeFile {
    pub path: String,
    /// "added", "modified", "removed" or "renamed".
    pub status: String,
    /// GitHub's `patch`: hunks only, starting with `@@`. None for binary or huge files.
    pub patch: Option<String>,
    /// Content at the PR head (served by the contents endpoint); None for removed files.
    pub content: Option<String>,
    pub additions: u64,
    pub deletions: u64,
    /// Content at the PR base (None: added); for comparisons between heads.
    pub base: Option<String>,
}

/// A file whose patch is computed from its text at the base (`None`: added) and at the head
/// (`None`: removed), with 3 lines of context, like GitHub's `patch` field.
pub fn fake_file(path: &str, base: Option<&str>, head: Option<&str>) -> FakeFile {
    let (patch, additions, deletions) = unified_patch(base.unwrap_or(""), head.unwrap_or(""));
    let status = match (base, head) {
        (None, _) => "added",
        (_, None) => "removed",
        _ => "modified",
    };
    FakeFile {
        path: path.to_string(),
        status: status.to_string(),
        patch,
        content: head.map(str::to_string),
        additions,
        deletions,
        base: base.map(str::to_string),
    }
}

/// GitHub's `patch` of a change from `old` to `new` (hunks with 3 lines of context; None when
/// nothing changed), with the counts of added and removed lines.
fn unified_patch(old: &str, new: &str) -> (Option<String>, u64, u64) {
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut additions, mut deletions) = (0u64, 0u64);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => additions += 1,
            similar::ChangeTag::Delete => deletions += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let mut unified = diff.unified_diff();
    unified.context_radius(3);
    let text = unified.to_string();
    // No `---`/`+++` header is written unless asked for; drop anything before the first hunk anyway.
    let text = match text.find("@@") {
        Some(i) => &text[i..],
        None => "",
    };
    let text = text.strip_suffix('\n').unwrap_or(text);
    let patch = if text.is_empty() {
        None
    } else {
        Some(text.to_string())
    };
    (patch, additions, deletions)
}

struct Installation {
    repos: Vec<String>,
}

struct Token {
    installation: u64,
    expires: u64,
    /// A fork pull request's `GITHUB_TOKEN`: reads only (see `actions_token`).
    read_only: bool,
}

struct PrEntry {
    pr: FakePr,
    created: u64,
    updated: u64,
}

struct StoredReview {
    id: u64,
    repo: String,
    number: u64,
    /// The wire object (without comments).
    value: Value,
}

struct StoredComment {
    id: u64,
    review_id: u64,
    repo: String,
    number: u64,
    value: Value,
    resolved: bool,
}

struct StoredCheckRun {
    id: u64,
    repo: String,
    /// The wire object; `output.annotations` (not sent back by GitHub) is kept out of it.
    value: Value,
    annotations: Vec<Value>,
}

/// One attempt at delivering a webhook, as GitHub logs it.
#[derive(Debug, Clone)]
pub struct FakeDelivery {
    pub id: u64,
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub redelivery: bool,
    /// The server's answer; 0 when it did not answer within GitHub's 10 s.
    pub status_code: u16,
    pub delivered_at: u64,
    pub duration: Duration,
    body: Vec<u8>,
}

/// GitHub waits this long for a webhook's answer.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

struct Shared {
    base_url: String,
    /// Where webhooks go and the secret they are signed with.
    webhook: Option<(String, String)>,
    hook_deliveries: Vec<FakeDelivery>,
    /// A review creation waits this long after storing the review, before answering.
    review_answer_delay: Option<Duration>,
    app_id: u64,
    public_key: octocrab::jsonwebtoken::DecodingKey,
    installations: HashMap<u64, Installation>,
    tokens: HashMap<String, Token>,
    token_mints: usize,
    /// Key: (lower-case "owner/name", number).
    prs: HashMap<(String, u64), PrEntry>,
    /// Key: (lower-case "owner/name", sha, path).
    contents: HashMap<(String, String, String), String>,
    /// Lower-case "owner/name" → the most recently set head sha (contents without `ref`).
    latest_head: HashMap<String, String>,
    reviews: Vec<StoredReview>,
    comments: Vec<StoredComment>,
    check_runs: Vec<StoredCheckRun>,
    issue_comments: Vec<(String, u64, Value)>,
    /// Key: (lower-case "owner/name", sha) → the parent commit (None for a base).
    commits: HashMap<(String, String), Option<String>>,
    /// Key: (lower-case "owner/name", sha) → the pull request's files at that commit (None:
    /// removed there); files not listed are as at the base.
    trees: HashMap<(String, String), HashMap<String, Option<String>>>,
    /// Key: (lower-case "owner/name", path) → the file at the base (None: not there).
    base_texts: HashMap<(String, String), Option<String>>,
    /// Commits a force-push dropped: unknown to the compare API.
    dropped: std::collections::HashSet<(String, String)>,
    requests: Vec<Recorded>,
    rate_used: u64,
    rate_reset: u64,
    next_id: u64,
    secondary_limit: Option<u64>,
    /// Seconds until the primary limit resets, when the next `/repos/` request must find it spent.
    primary_limit: Option<u64>,
    fail_comments: Vec<(String, u64)>,
    files_delay: Option<Duration>,
}

impl Shared {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

type St = Arc<Mutex<Shared>>;

fn lock(st: &St) -> MutexGuard<'_, Shared> {
    st.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running fake GitHub; it stops with the test process.
#[derive(Clone)]
pub struct FakeGitHub {
    /// `http://127.0.0.1:PORT`, the API base URL (no trailing slash).
    pub url: String,
    state: St,
}

impl FakeGitHub {
    /// Starts the server on a free port for the GitHub App `app_id`, whose public key is
    /// `fixtures/github/test-app-key.pub.pem`.
    pub fn start(app_id: u64) -> FakeGitHub {
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github/test-app-key.pub.pem"
        ))
        .expect("fixtures/github/test-app-key.pub.pem");
        let public_key =
            octocrab::jsonwebtoken::DecodingKey::from_rsa_pem(&pem).expect("RSA public key");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(Shared {
            base_url: url.clone(),
            webhook: None,
            hook_deliveries: Vec::new(),
            review_answer_delay: None,
            app_id,
            public_key,
            installations: HashMap::new(),
            tokens: HashMap::new(),
            token_mints: 0,
            prs: HashMap::new(),
            contents: HashMap::new(),
            latest_head: HashMap::new(),
            reviews: Vec::new(),
            comments: Vec::new(),
            check_runs: Vec::new(),
            issue_comments: Vec::new(),
            commits: HashMap::new(),
            trees: HashMap::new(),
            base_texts: HashMap::new(),
            dropped: Default::default(),
            requests: Vec::new(),
            rate_used: 0,
            rate_reset: now_secs() + 3600,
            next_id: 1_000_000,
            secondary_limit: None,
            primary_limit: None,
            fail_comments: Vec::new(),
            files_delay: None,
        }));
        let app = Router::new().fallback(handle).with_state(state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeGitHub { url, state }
    }

    /// Adds (or replaces) an installation of the app covering `repos` ("owner/name").
    pub fn add_installation(&self, installation_id: u64, repos: &[&str]) {
        lock(&self.state).installations.insert(
            installation_id,
            Installation {
                repos: repos.iter().map(|r| r.to_ascii_lowercase()).collect(),
            },
        );
    }

    /// A token such as GitHub Actions gives a workflow job in `GITHUB_TOKEN` (`ghs_…`, sent as
    /// `Authorization: Bearer`, for the workflow's repository only, valid for an hour).
    /// `write: false` is the read-only token of a pull request from a fork: reads work, and every
    /// other request answers 403 "Resource not accessible by integration", as GitHub does.
    pub fn actions_token(&self, repo: &str, write: bool) -> String {
        let mut s = lock(&self.state);
        // Actions' tokens are installation tokens of GitHub's own app, for one repository.
        let installation = s.id();
        s.installations.insert(
            installation,
            Installation {
                repos: vec![repo.to_ascii_lowercase()],
            },
        );
        let token = format!(
            "ghs_{}",
            &sha256_hex(&format!("actions:{installation}"))[..36]
        );
        let expires = now_secs() + 3600;
        s.tokens.insert(
            token.clone(),
            Token {
                installation,
                expires,
                read_only: !write,
            },
        );
        token
    }

    /// Creates or replaces a pull request (a push is `set_pr` with a new head sha and files).
    /// Contents of the files are stored under the head sha; those of earlier heads stay readable.
    pub fn set_pr(&self, repo: &str, pr: FakePr) {
        self.push_pr(repo, pr, false);
    }

    /// A force-push: the pull request's new head does not descend from the old one. With
    /// `drop_old`, the old head is gone from the repository too (as after garbage collection):
    /// comparing with it answers 404; without, the comparison says `diverged`.
    pub fn force_push(&self, repo: &str, pr: FakePr, drop_old: bool) {
        let old = self.pr_head(repo, pr.number);
        self.push_pr(repo, pr, true);
        if let (true, Some(old)) = (drop_old, old) {
            lock(&self.state)
                .dropped
                .insert((repo.to_ascii_lowercase(), old));
        }
    }

    fn push_pr(&self, repo: &str, pr: FakePr, force: bool) {
        let key = repo.to_ascii_lowercase();
        let mut s = lock(&self.state);
        // The history: a push puts the new head on top of the previous one.
        let previous = s
            .prs
            .get(&(key.clone(), pr.number))
            .map(|e| e.pr.head_sha.clone());
        let parent = match previous {
            Some(p) if p != pr.head_sha && !force => p,
            _ => pr.base_sha.clone(),
        };
        if parent != pr.head_sha {
            s.commits
                .insert((key.clone(), pr.head_sha.clone()), Some(parent));
        }
        s.commits
            .entry((key.clone(), pr.base_sha.clone()))
            .or_insert(None);
        let tree: HashMap<String, Option<String>> = pr
            .files
            .iter()
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        s.trees.insert((key.clone(), pr.head_sha.clone()), tree);
        for f in &pr.files {
            s.base_texts
                .entry((key.clone(), f.path.clone()))
                .or_insert_with(|| f.base.clone());
        }
        for f in &pr.files {
            if let Some(c) = &f.content {
                s.contents.insert(
                    (key.clone(), pr.head_sha.clone(), f.path.clone()),
                    c.clone(),
                );
            }
        }
        s.latest_head.insert(key.clone(), pr.head_sha.clone());
        let now = now_secs();
        let created = s
            .prs
            .get(&(key.clone(), pr.number))
            .map(|e| e.created)
            .unwrap_or(now);
        s.prs.insert(
            (key, pr.number),
            PrEntry {
                pr,
                created,
                updated: now,
            },
        );
    }

    /// Stores a file's content at a commit (e.g. the base), for the contents endpoint.
    pub fn set_content(&self, repo: &str, sha: &str, path: &str, content: &str) {
        lock(&self.state).contents.insert(
            (repo.to_ascii_lowercase(), sha.to_string(), path.to_string()),
            content.to_string(),
        );
    }

    /// The current head sha of a pull request.
    pub fn pr_head(&self, repo: &str, number: u64) -> Option<String> {
        lock(&self.state)
            .prs
            .get(&(repo.to_ascii_lowercase(), number))
            .map(|e| e.pr.head_sha.clone())
    }

    /// Submitted (non-pending) reviews, oldest first, each with its review comments under
    /// `"comments"`.
    pub fn reviews(&self, repo: &str, number: u64) -> Vec<Value> {
        let s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        s.reviews
            .iter()
            .filter(|r| r.repo == key && r.number == number && r.value["state"] != "PENDING")
            .map(|r| {
                let mut v = r.value.clone();
                let comments: Vec<Value> = s
                    .comments
                    .iter()
                    .filter(|c| c.review_id == r.id)
                    .map(stored_comment_value)
                    .collect();
                v["comments"] = Value::Array(comments);
                v
            })
            .collect()
    }

    /// Pending reviews (created without `event`), with their comments under `"comments"`.
    pub fn pending_reviews(&self, repo: &str, number: u64) -> Vec<Value> {
        let s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        s.reviews
            .iter()
            .filter(|r| r.repo == key && r.number == number && r.value["state"] == "PENDING")
            .map(|r| {
                let mut v = r.value.clone();
                v["comments"] = Value::Array(
                    s.comments
                        .iter()
                        .filter(|c| c.review_id == r.id)
                        .map(stored_comment_value)
                        .collect(),
                );
                v
            })
            .collect()
    }

    /// Review comments of submitted reviews, oldest first (with `"resolved"`).
    pub fn review_comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let s = lock(&self.state);
        visible_comments(&s, &repo.to_ascii_lowercase(), number)
            .into_iter()
            .map(stored_comment_value)
            .collect()
    }

    /// Check runs created on `repo`, oldest first; `output.annotations` holds every annotation sent.
    pub fn check_runs(&self, repo: &str) -> Vec<Value> {
        let s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        s.check_runs
            .iter()
            .filter(|c| c.repo == key)
            .map(|c| {
                let mut v = c.value.clone();
                v["output"]["annotations"] = Value::Array(c.annotations.clone());
                v
            })
            .collect()
    }

    /// Issue (conversation) comments posted on a pull request, oldest first.
    pub fn issue_comments(&self, repo: &str, number: u64) -> Vec<Value> {
        let key = repo.to_ascii_lowercase();
        lock(&self.state)
            .issue_comments
            .iter()
            .filter(|(r, n, _)| *r == key && *n == number)
            .map(|(_, _, v)| v.clone())
            .collect()
    }

    /// Requests received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// How many installation tokens were minted.
    pub fn token_mints(&self) -> usize {
        lock(&self.state).token_mints
    }

    /// Makes every token issued so far expired (the next use answers 401 "Bad credentials").
    pub fn expire_tokens(&self) {
        for t in lock(&self.state).tokens.values_mut() {
            t.expires = 0;
        }
    }

    /// The next content-creating request (POST of a review, a review submission, a check run or an
    /// issue comment) answers 403 (secondary rate limit) with `retry-after`, and stores nothing.
    /// The next request under `/repos/` finds the installation's primary rate limit spent: 403,
    /// `x-ratelimit-remaining: 0`, and a reset `reset_in_secs` from now (answered once).
    pub fn exhaust_primary_limit_once(&self, reset_in_secs: u64) {
        lock(&self.state).primary_limit = Some(reset_in_secs);
    }

    /// Creates a PENDING review by the bot, as an interrupted earlier run could leave behind.
    pub fn add_pending_review(&self, repo: &str, number: u64) {
        let mut s = lock(&self.state);
        let id = s.id();
        let commit = s
            .latest_head
            .get(&repo.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        let key = s
            .prs
            .keys()
            .find(|(r, n)| r.eq_ignore_ascii_case(repo) && *n == number)
            .map(|(r, _)| r.clone())
            .unwrap_or_else(|| repo.to_string());
        s.reviews.push(StoredReview {
            id,
            repo: key,
            number,
            value: json!({"id": id, "state": "PENDING", "body": "", "commit_id": commit, "user": user_json(BOT_LOGIN, "Bot")}),
        });
    }

    pub fn secondary_limit_once(&self, retry_after_secs: u64) {
        lock(&self.state).secondary_limit = Some(retry_after_secs);
    }

    /// Any review with a comment at `path`:`line` fails with 422 "Line could not be resolved".
    pub fn fail_comment_at(&self, path: &str, line: u64) {
        lock(&self.state)
            .fail_comments
            .push((path.to_string(), line));
    }

    /// Where GitHub sends the App's webhooks (`{server}/webhook`), signed with `secret`.
    pub fn set_webhook(&self, url: &str, secret: &str) {
        lock(&self.state).webhook = Some((url.to_string(), secret.to_string()));
    }

    /// Sends a webhook as GitHub does and logs the delivery; returns the server's status (0: no
    /// answer within 10 s, or no connection) and how long it took.
    pub async fn send_webhook(&self, event: &str, guid: &str, body: &[u8]) -> (u16, Duration) {
        let id = lock(&self.state).id();
        let d = deliver_webhook(&self.state, id, event, guid, body.to_vec(), false).await;
        (d.status_code, d.duration)
    }

    /// Every delivery attempt so far, oldest first.
    pub fn hook_deliveries(&self) -> Vec<FakeDelivery> {
        lock(&self.state).hook_deliveries.clone()
    }

    /// Review creations store the review, then wait `d` before answering.
    pub fn delay_review_answers(&self, d: Duration) {
        lock(&self.state).review_answer_delay = if d.is_zero() { None } else { Some(d) };
    }

    /// The files listing waits `d` before answering (its answer is computed before the wait).
    pub fn delay_files(&self, d: Duration) {
        lock(&self.state).files_delay = if d.is_zero() { None } else { Some(d) };
    }

    /// Adds a reaction (`+1`, `-1`, `laugh`, ...) to a review comment: its `reactions` rollup counts
    /// it, as GitHub's does.
    pub fn react(&self, comment_id: u64, content: &str) {
        let mut s = lock(&self.state);
        if let Some(c) = s.comments.iter_mut().find(|c| c.id == comment_id) {
            let r = &mut c.value["reactions"];
            let n = r[content].as_u64().unwrap_or(0);
            r[content] = Value::from(n + 1);
            let total = r["total_count"].as_u64().unwrap_or(0);
            r["total_count"] = Value::from(total + 1);
        }
    }

    /// A person replies in a review thread (`to`: any comment of the thread): stored as GitHub
    /// stores it, and returned in its wire format (for a `pull_request_review_comment` webhook).
    /// A login ending in `[bot]` is a bot.
    pub fn add_reply(
        &self,
        repo: &str,
        number: u64,
        to: u64,
        login: &str,
        association: &str,
        body: &str,
    ) -> Value {
        let mut s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        let kind = if login.ends_with("[bot]") {
            "Bot"
        } else {
            "User"
        };
        store_reply(
            &mut s,
            &key,
            number,
            to,
            user_json(login, kind),
            association,
            body,
        )
        .expect("the comment replied to exists")
    }

    /// A person comments in a pull request's conversation; returns the comment's wire format.
    pub fn add_issue_comment(
        &self,
        repo: &str,
        number: u64,
        login: &str,
        association: &str,
        body: &str,
    ) -> Value {
        let mut s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        let mut v = issue_comment_value(&mut s, &key, number, body);
        v["user"] = user_json(login, "User");
        v["author_association"] = json!(association);
        s.issue_comments.push((key, number, v.clone()));
        v
    }

    /// A pull request as `GET /repos/{o}/{r}/pulls/{n}` answers it (for webhook payloads).
    pub fn pull_json(&self, repo: &str, number: u64) -> Value {
        let s = lock(&self.state);
        let key = repo.to_ascii_lowercase();
        let entry = s.prs.get(&(key.clone(), number)).expect("the pull request");
        pr_json(&s, &key, entry)
    }

    /// A repository's wire format (for webhook payloads).
    pub fn repository_json(&self, repo: &str) -> Value {
        let s = lock(&self.state);
        repo_json(&s.base_url, &repo.to_ascii_lowercase())
    }

    /// Marks a review comment's thread resolved (`"resolved": true` in `review_comments()`; the
    /// REST API has no such field, so it is not sent on the wire).
    pub fn resolve_comment(&self, comment_id: u64) {
        let mut s = lock(&self.state);
        if let Some(c) = s.comments.iter_mut().find(|c| c.id == comment_id) {
            c.resolved = true;
        }
    }
}

fn stored_comment_value(c: &StoredComment) -> Value {
    let mut v = c.value.clone();
    v["resolved"] = Value::Bool(c.resolved);
    v
}

/// Comments of non-pending reviews of a PR, in creation order.
fn visible_comments<'a>(s: &'a Shared, repo: &str, number: u64) -> Vec<&'a StoredComment> {
    s.comments
        .iter()
        .filter(|c| c.repo == repo && c.number == number)
        .filter(|c| {
            s.reviews
                .iter()
                .any(|r| r.id == c.review_id && r.value["state"] != "PENDING")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Request handling

struct Req {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    raw_query: Option<String>,
    headers: HeaderMap,
    body: Option<Value>,
    body_invalid: bool,
}

impl Req {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn handle(
    State(st): State<St>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    // GitHub Enterprise Server serves the same API under /api/v3.
    let full = uri.path();
    let stripped = full.strip_prefix("/api/v3").filter(|p| p.starts_with('/'));
    let enterprise_prefix = stripped.is_some();
    let path = stripped.unwrap_or(full).to_string();
    let raw_query = uri.query().map(str::to_string);
    let authorization = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let (body_json, body_invalid) = if body.is_empty() {
        (None, false)
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => (Some(v), false),
            Err(_) => (
                Some(Value::String(String::from_utf8_lossy(&body).into_owned())),
                true,
            ),
        }
    };
    let (index, used, spent) = {
        let mut s = lock(&st);
        let spent = if path.starts_with("/repos/") {
            s.primary_limit.take()
        } else {
            None
        };
        s.requests.push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            authorization,
            body: body_json.clone(),
            status: 0,
            at,
            enterprise_prefix,
        });
        // `GET /rate_limit` does not count against the primary limit.
        if path != "/rate_limit" {
            s.rate_used += 1;
        }
        (s.requests.len() - 1, s.rate_used, spent)
    };
    if let Some(secs) = spent {
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + secs;
        lock(&st).requests[index].status = 403;
        let mut resp = (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "API rate limit exceeded for installation ID 42.", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting", "status": "403"})),
        )
            .into_response();
        let h = resp.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", RATE_LIMIT.to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-reset", reset.to_string()),
            ("x-ratelimit-used", RATE_LIMIT.to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ] {
            h.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        return resp;
    }
    let req = Req {
        method,
        path,
        query: parse_query(raw_query.as_deref().unwrap_or("")),
        raw_query,
        headers,
        body: if body_invalid { None } else { body_json },
        body_invalid,
    };
    let mut resp = route(&st, &req).await;
    let reset = {
        let mut s = lock(&st);
        if let Some(r) = s.requests.get_mut(index) {
            r.status = resp.status().as_u16();
        }
        s.rate_reset
    };
    let h = resp.headers_mut();
    let remaining = RATE_LIMIT.saturating_sub(used);
    for (name, value) in [
        ("x-ratelimit-limit", RATE_LIMIT.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-used", used.to_string()),
        ("x-ratelimit-resource", "core".to_string()),
        ("x-github-api-version-selected", "2022-11-28".to_string()),
        ("x-github-request-id", format!("FAKE:{index:08X}")),
    ] {
        h.insert(name, HeaderValue::from_str(&value).unwrap());
    }
    resp
}

async fn route(st: &St, req: &Req) -> Response {
    if req.body_invalid {
        return error(400, "Problems parsing JSON", DOCS);
    }
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let m = &req.method;
    match segs.as_slice() {
        ["app", "installations", id, "access_tokens"] if *m == Method::POST => {
            mint_token(st, req, id)
        }
        ["rate_limit"] if *m == Method::GET => rate_limit(st),
        ["app", "hook", "deliveries"] if *m == Method::GET => match check_app_jwt(st, req) {
            Ok(()) => list_hook_deliveries(st, req),
            Err(resp) => resp,
        },
        ["app", "hook", "deliveries", id, "attempts"] if *m == Method::POST => {
            match check_app_jwt(st, req) {
                Ok(()) => redeliver(st, id),
                Err(resp) => resp,
            }
        }
        ["repos", owner, name, rest @ ..] => {
            let repo = format!("{owner}/{name}").to_ascii_lowercase();
            if let Err(resp) = check_token(st, req, &repo) {
                return resp;
            }
            if *m != Method::GET && read_only_token(st, req) {
                return error(403, "Resource not accessible by integration", DOCS);
            }
            repo_route(st, req, &repo, rest).await
        }
        _ => not_found(),
    }
}

async fn repo_route(st: &St, req: &Req, repo: &str, rest: &[&str]) -> Response {
    let m = &req.method;
    let num = |s: &str| s.parse::<u64>().ok();
    match rest {
        ["pulls", n] if *m == Method::GET => match num(n) {
            Some(n) => get_pr(st, req, repo, n),
            None => not_found(),
        },
        ["pulls", n, "files"] if *m == Method::GET => match num(n) {
            Some(n) => list_files(st, req, repo, n).await,
            None => not_found(),
        },
        ["contents", path @ ..] if *m == Method::GET && !path.is_empty() => {
            let path: Vec<String> = path.iter().map(|p| percent_decode(p, false)).collect();
            get_content(st, req, repo, &path.join("/"))
        }
        ["pulls", n, "comments"] if *m == Method::GET => match num(n) {
            Some(n) => list_review_comments(st, req, repo, n),
            None => not_found(),
        },
        ["pulls", n, "reviews"] if *m == Method::GET => match num(n) {
            Some(n) => list_reviews(st, req, repo, n),
            None => not_found(),
        },
        ["pulls", n, "reviews"] if *m == Method::POST => match num(n) {
            Some(n) => {
                let resp = create_review(st, req, repo, n);
                let delay = lock(st).review_answer_delay;
                if let Some(d) = delay.filter(|_| resp.status() == StatusCode::OK) {
                    tokio::time::sleep(d).await;
                }
                resp
            }
            None => not_found(),
        },
        ["pulls", n, "reviews", id] if *m == Method::DELETE => match (num(n), num(id)) {
            (Some(n), Some(id)) => delete_review(st, repo, n, id),
            _ => not_found(),
        },
        ["pulls", n, "reviews", id, "events"] if *m == Method::POST => match (num(n), num(id)) {
            (Some(n), Some(id)) => submit_review(st, req, repo, n, id),
            _ => not_found(),
        },
        ["check-runs"] if *m == Method::POST => create_check_run(st, req, repo),
        ["check-runs", id] if *m == Method::PATCH => match num(id) {
            Some(id) => update_check_run(st, req, repo, id),
            None => not_found(),
        },
        ["issues", n, "comments"] if *m == Method::POST => match num(n) {
            Some(n) => create_issue_comment(st, req, repo, n),
            None => not_found(),
        },
        ["issues", n, "comments"] if *m == Method::GET => match num(n) {
            Some(n) => list_issue_comments(st, req, repo, n),
            None => not_found(),
        },
        ["pulls", n, "comments", id, "replies"] if *m == Method::POST => match (num(n), num(id)) {
            (Some(n), Some(id)) => create_reply(st, req, repo, n, id),
            _ => not_found(),
        },
        ["compare", basehead] if *m == Method::GET => compare(st, req, repo, basehead),
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries

/// Posts one delivery to the webhook URL, signed, and logs the attempt.
async fn deliver_webhook(
    st: &St,
    id: u64,
    event: &str,
    guid: &str,
    body: Vec<u8>,
    redelivery: bool,
) -> FakeDelivery {
    use hmac::{Hmac, KeyInit, Mac};
    let target = lock(st).webhook.clone();
    let started = Instant::now();
    let status_code = match target {
        None => 0,
        Some((url, secret)) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(&body);
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            let client = reqwest::Client::builder()
                .timeout(WEBHOOK_TIMEOUT)
                .build()
                .unwrap();
            client
                .post(&url)
                .header("content-type", "application/json")
                .header("user-agent", "GitHub-Hookshot/fake")
                .header("x-github-event", event)
                .header("x-github-delivery", guid)
                .header("x-github-hook-id", "1")
                .header("x-hub-signature-256", signature)
                .body(body.clone())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let action = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["action"].as_str().map(str::to_string));
    let d = FakeDelivery {
        id,
        guid: guid.to_string(),
        event: event.to_string(),
        action,
        redelivery,
        status_code,
        delivered_at: now_secs(),
        duration: started.elapsed(),
        body,
    };
    lock(st).hook_deliveries.push(d.clone());
    d
}

fn delivery_json(d: &FakeDelivery) -> Value {
    json!({
        "id": d.id,
        "guid": d.guid,
        "delivered_at": rfc3339(d.delivered_at),
        "redelivery": d.redelivery,
        "duration": d.duration.as_secs_f64(),
        "status": match d.status_code { 0 => "timed out".to_string(), 200..=299 => "OK".to_string(), s => format!("Invalid HTTP Response: {s}") },
        "status_code": d.status_code,
        "event": d.event,
        "action": d.action,
        "installation_id": 42,
        "repository_id": 1,
        "throttled_at": null,
    })
}

/// `GET /app/hook/deliveries`: newest first, `per_page` (default 30, max 100), `cursor` (the
/// delivery to start after) and `status` (`success`, `failure`); the next page in `Link`.
fn list_hook_deliveries(st: &St, req: &Req) -> Response {
    let s = lock(st);
    let per_page = req
        .q("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(30)
        .min(100);
    let after: Option<u64> = req
        .q("cursor")
        .and_then(|c| c.strip_prefix("v1_"))
        .and_then(|c| c.parse().ok());
    let mut all: Vec<&FakeDelivery> = s
        .hook_deliveries
        .iter()
        .filter(|d| match req.q("status") {
            Some("success") => (200..400).contains(&d.status_code),
            Some("failure") => !(200..400).contains(&d.status_code),
            _ => true,
        })
        .collect();
    all.sort_by_key(|d| std::cmp::Reverse(d.id));
    let start = after
        .and_then(|a| all.iter().position(|d| d.id < a))
        .unwrap_or(if after.is_some() { all.len() } else { 0 });
    let page: Vec<&FakeDelivery> = all[start..].iter().take(per_page).copied().collect();
    let mut resp = json_resp(
        200,
        Value::Array(page.iter().map(|d| delivery_json(d)).collect()),
    );
    if start + page.len() < all.len()
        && let Some(last) = page.last()
    {
        let host = req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let link = format!(
            "<http://{host}/app/hook/deliveries?per_page={per_page}&cursor=v1_{}>; rel=\"next\"",
            last.id
        );
        resp.headers_mut()
            .insert("link", HeaderValue::from_str(&link).unwrap());
    }
    resp
}

/// `POST /app/hook/deliveries/{id}/attempts`: 202, then the delivery is sent again.
fn redeliver(st: &St, id: &str) -> Response {
    let Some(id) = id.parse::<u64>().ok() else {
        return not_found();
    };
    let (original, new_id) = {
        let mut s = lock(st);
        let Some(d) = s.hook_deliveries.iter().find(|d| d.id == id).cloned() else {
            return not_found();
        };
        (d, s.id())
    };
    let st = st.clone();
    tokio::spawn(async move {
        deliver_webhook(
            &st,
            new_id,
            &original.event,
            &original.guid,
            original.body,
            true,
        )
        .await;
    });
    json_resp(202, json!({}))
}

/// The request is the App's own: a valid JWT (`Bearer`), as for minting tokens; else 401.
fn check_app_jwt(st: &St, req: &Req) -> Result<(), Response> {
    let Some(jwt) = bearer(&req.headers) else {
        return Err(error(
            401,
            "A JSON web token could not be decoded",
            DOCS_TOKEN,
        ));
    };
    let s = lock(st);
    verify_jwt(&jwt, s.app_id, &s.public_key).map_err(|msg| error(401, &msg, DOCS_TOKEN))
}

// ---------------------------------------------------------------------------------------------
// Authentication

fn mint_token(st: &St, req: &Req, installation: &str) -> Response {
    let jwt = match bearer(&req.headers) {
        Some(t) => t,
        None => {
            return error(401, "A JSON web token could not be decoded", DOCS_TOKEN);
        }
    };
    let mut s = lock(st);
    if let Err(msg) = verify_jwt(&jwt, s.app_id, &s.public_key) {
        return error(401, &msg, DOCS_TOKEN);
    }
    let Some(installation) = installation.parse::<u64>().ok() else {
        return not_found();
    };
    if !s.installations.contains_key(&installation) {
        return not_found();
    }
    s.token_mints += 1;
    let serial = s.token_mints;
    let now = now_secs();
    let seed = format!(
        "{installation}:{serial}:{:?}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    );
    let token = format!("ghs_{}", &sha256_hex(&seed)[..36]);
    let expires = now + 3600;
    s.tokens.insert(
        token.clone(),
        Token {
            installation,
            expires,
            read_only: false,
        },
    );
    json_resp(
        201,
        json!({
            "token": token,
            "expires_at": rfc3339(expires),
            "permissions": {"pull_requests": "write", "contents": "read", "checks": "write", "issues": "write", "metadata": "read"},
            "repository_selection": "selected"
        }),
    )
}

/// Checks a GitHub App JWT like GitHub does; the error is the message GitHub answers with.
fn verify_jwt(
    jwt: &str,
    app_id: u64,
    key: &octocrab::jsonwebtoken::DecodingKey,
) -> Result<(), String> {
    use octocrab::jsonwebtoken::{Algorithm, Validation, decode};
    const UNDECODABLE: &str = "A JSON web token could not be decoded";
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims = Default::default();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let data = decode::<Value>(jwt, key, &validation).map_err(|_| UNDECODABLE.to_string())?;
    let claims = data.claims;
    // octocrab sends `iss` as a number; GitHub also accepts it as a string.
    let iss = match &claims["iss"] {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse::<u64>().ok(),
        _ => None,
    };
    if iss != Some(app_id) {
        return Err(UNDECODABLE.to_string());
    }
    let now = now_secs() as i64;
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| UNDECODABLE.to_string())?;
    let iat = claims["iat"]
        .as_i64()
        .ok_or_else(|| UNDECODABLE.to_string())?;
    if exp <= now {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".into());
    }
    if exp > now + 600 + 60 {
        return Err("'Expiration time' claim ('exp') is too far in the future".into());
    }
    if iat > now + 60 {
        return Err(
            "'Issued at' claim ('iat') must be an Integer representing a time in the past".into(),
        );
    }
    Ok(())
}

/// The token of `Authorization: token X` or `Bearer X`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let scheme = scheme.to_ascii_lowercase();
    (scheme == "bearer" || scheme == "token").then(|| token.trim().to_string())
}

/// An issued, unexpired installation token whose installation covers `repo`; else 401.
fn check_token(st: &St, req: &Req, repo: &str) -> Result<u64, Response> {
    let bad = || error(401, "Bad credentials", DOCS);
    let token = bearer(&req.headers).ok_or_else(bad)?;
    let s = lock(st);
    let t = s.tokens.get(&token).ok_or_else(bad)?;
    if t.expires <= now_secs() {
        return Err(bad());
    }
    let inst = s.installations.get(&t.installation).ok_or_else(bad)?;
    if !inst.repos.iter().any(|r| r == repo) {
        return Err(bad());
    }
    Ok(t.installation)
}

/// Whether the request's token may only read (`actions_token` with `write: false`).
fn read_only_token(st: &St, req: &Req) -> bool {
    bearer(&req.headers).is_some_and(|t| lock(st).tokens.get(&t).is_some_and(|t| t.read_only))
}

/// A content-creating request while `secondary_limit_once` is armed: the 403 to answer.
fn secondary_limit(s: &mut Shared) -> Option<Response> {
    let secs = s.secondary_limit.take()?;
    let mut resp = json_resp(
        403,
        json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "documentation_url": DOCS_SECONDARY
        }),
    );
    resp.headers_mut().insert(
        "retry-after",
        HeaderValue::from_str(&secs.to_string()).unwrap(),
    );
    Some(resp)
}

fn rate_limit(st: &St) -> Response {
    let s = lock(st);
    let core = json!({
        "limit": RATE_LIMIT,
        "remaining": RATE_LIMIT.saturating_sub(s.rate_used),
        "reset": s.rate_reset,
        "used": s.rate_used,
        "resource": "core"
    });
    let other = |limit: u64, resource: &str| json!({"limit": limit, "remaining": limit, "reset": s.rate_reset, "used": 0, "resource": resource});
    json_resp(
        200,
        json!({
            "resources": {
                "core": core,
                "search": other(30, "search"),
                "graphql": other(5000, "graphql"),
                "integration_manifest": other(5000, "integration_manifest"),
                "code_search": other(10, "code_search")
            },
            "rate": core
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Pull requests, files, contents

fn get_pr(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let s = lock(st);
    let Some(entry) = s.prs.get(&(repo.to_string(), number)) else {
        return not_found();
    };
    let accept = req
        .headers
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if accept.contains("diff") {
        return text_resp(200, &pr_diff(&entry.pr));
    }
    json_resp(200, pr_json(&s, repo, entry))
}

fn pr_json(s: &Shared, repo: &str, entry: &PrEntry) -> Value {
    let base = &s.base_url;
    let pr = &entry.pr;
    let n = pr.number;
    let merged = pr.state == "merged";
    let state = if pr.state == "open" { "open" } else { "closed" };
    let additions: u64 = pr.files.iter().map(|f| f.additions).sum();
    let deletions: u64 = pr.files.iter().map(|f| f.deletions).sum();
    let owner = repo.split('/').next().unwrap_or("");
    let author_kind = if pr.author.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    let review_comments = visible_comments(s, repo, n).len();
    let comments = s
        .issue_comments
        .iter()
        .filter(|(r, num, _)| r == repo && *num == n)
        .count();
    let api = format!("{base}/repos/{repo}/pulls/{n}");
    let html = format!("https://github.com/{repo}/pull/{n}");
    let branch = |r: &str, sha: &str| {
        json!({
            "label": format!("{owner}:{r}"),
            "ref": r,
            "sha": sha,
            "user": user_json(owner, "User"),
            "repo": repo_json(base, repo)
        })
    };
    let links = json!({
        "self": {"href": api},
        "html": {"href": html},
        "issue": {"href": format!("{base}/repos/{repo}/issues/{n}")},
        "comments": {"href": format!("{base}/repos/{repo}/issues/{n}/comments")},
        "review_comments": {"href": format!("{api}/comments")},
        "review_comment": {"href": format!("{base}/repos/{repo}/pulls/comments{{/number}}")},
        "commits": {"href": format!("{api}/commits")},
        "statuses": {"href": format!("{base}/repos/{repo}/statuses/{}", pr.head_sha)}
    });
    let updated = rfc3339(entry.updated);
    let mut v = json!({
        "url": api,
        "id": 2_000_000 + n,
        "node_id": format!("PR_kwFake{n}"),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": format!("{base}/repos/{repo}/issues/{n}"),
        "commits_url": format!("{api}/commits"),
        "review_comments_url": format!("{api}/comments"),
        "review_comment_url": format!("{base}/repos/{repo}/pulls/comments{{/number}}"),
        "comments_url": format!("{base}/repos/{repo}/issues/{n}/comments"),
        "statuses_url": format!("{base}/repos/{repo}/statuses/{}", pr.head_sha),
        "number": n,
        "state": state,
        "locked": false,
        "title": pr.title,
        "user": user_json(&pr.author, author_kind),
        "body": null,
        "labels": [],
        "milestone": null,
        "active_lock_reason": null,
        "created_at": rfc3339(entry.created),
        "updated_at": updated,
        "closed_at": if state == "closed" { Value::String(updated.clone()) } else { Value::Null },
        "merged_at": if merged { Value::String(updated.clone()) } else { Value::Null },
        "merge_commit_sha": null,
        "assignee": null,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": branch(&format!("feature/pr-{n}"), &pr.head_sha),
        "base": branch("main", &pr.base_sha),
    });
    // Split in two: one `json!` this large exceeds the default macro recursion limit.
    let more = json!({
        "_links": links,
        "author_association": "CONTRIBUTOR",
        "auto_merge": null,
        "draft": pr.draft,
        "merged": merged,
        "mergeable": null,
        "rebaseable": null,
        "mergeable_state": "unknown",
        "merged_by": null,
        "comments": comments,
        "review_comments": review_comments,
        "maintainer_can_modify": false,
        "commits": 1,
        "additions": additions,
        "deletions": deletions,
        "changed_files": pr.files.len()
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, more) {
        a.extend(b);
    }
    v
}

/// The PR as `application/vnd.github.diff`: a git diff built from the files' patches.
fn pr_diff(pr: &FakePr) -> String {
    let mut out = String::new();
    for f in &pr.files {
        let p = &f.path;
        out.push_str(&format!("diff --git a/{p} b/{p}\n"));
        let (old, new) = match f.status.as_str() {
            "added" => {
                out.push_str("new file mode 100644\n");
                ("/dev/null".to_string(), format!("b/{p}"))
            }
            "removed" => {
                out.push_str("deleted file mode 100644\n");
                (format!("a/{p}"), "/dev/null".to_string())
            }
            _ => (format!("a/{p}"), format!("b/{p}")),
        };
        match &f.patch {
            Some(patch) => {
                out.push_str(&format!("index 1111111..2222222\n--- {old}\n+++ {new}\n"));
                out.push_str(patch);
                out.push('\n');
            }
            None => out.push_str(&format!("Binary files {old} and {new} differ\n")),
        }
    }
    out
}

async fn list_files(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let (resp, delay) = {
        let s = lock(st);
        let Some(entry) = s.prs.get(&(repo.to_string(), number)) else {
            return not_found();
        };
        let base = &s.base_url;
        let sha = &entry.pr.head_sha;
        // GitHub lists at most 3000 files.
        let entries: Vec<Value> = entry
            .pr
            .files
            .iter()
            .take(3000)
            .map(|f| {
                let mut v = json!({
                    "sha": sha256_hex(&format!("{}:{}", f.path, f.content.as_deref().unwrap_or("")))[..40],
                    "filename": f.path,
                    "status": f.status,
                    "additions": f.additions,
                    "deletions": f.deletions,
                    "changes": f.additions + f.deletions,
                    "blob_url": format!("https://github.com/{repo}/blob/{sha}/{}", f.path),
                    "raw_url": format!("https://github.com/{repo}/raw/{sha}/{}", f.path),
                    "contents_url": format!("{base}/repos/{repo}/contents/{}?ref={sha}", f.path),
                });
                if let Some(p) = &f.patch {
                    v["patch"] = Value::String(p.clone());
                }
                v
            })
            .collect();
        (paginate(req, entries), s.files_delay)
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    resp
}

fn get_content(st: &St, req: &Req, repo: &str, path: &str) -> Response {
    let s = lock(st);
    let sha = match req.q("ref") {
        Some(r) => resolve_ref(&s, repo, r),
        None => s.latest_head.get(repo).cloned(),
    };
    let Some(sha) = sha else {
        return not_found();
    };
    let Some(content) = s
        .contents
        .get(&(repo.to_string(), sha.clone(), path.to_string()))
    else {
        return not_found();
    };
    let accept = req
        .headers
        .get("accept")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if accept.contains("raw") {
        return text_resp(200, content);
    }
    let base = &s.base_url;
    let blob_sha = &sha256_hex(&format!("blob:{content}"))[..40];
    let url = format!("{base}/repos/{repo}/contents/{path}?ref={sha}");
    let html = format!("https://github.com/{repo}/blob/{sha}/{path}");
    let git = format!("{base}/repos/{repo}/git/blobs/{blob_sha}");
    json_resp(
        200,
        json!({
            "type": "file",
            "encoding": "base64",
            "size": content.len(),
            "name": path.rsplit('/').next().unwrap_or(path),
            "path": path,
            "content": base64_wrapped(content.as_bytes()),
            "sha": blob_sha,
            "url": url,
            "git_url": git,
            "html_url": html,
            "download_url": format!("https://raw.githubusercontent.com/{repo}/{sha}/{path}"),
            "_links": {"self": url, "git": git, "html": html}
        }),
    )
}

/// A `ref`: a sha, a PR head branch (`feature/pr-N`) or anything stored with `set_content`.
fn resolve_ref(s: &Shared, repo: &str, r: &str) -> Option<String> {
    if let Some(n) = r
        .strip_prefix("feature/pr-")
        .and_then(|n| n.parse::<u64>().ok())
    {
        return s
            .prs
            .get(&(repo.to_string(), n))
            .map(|e| e.pr.head_sha.clone());
    }
    Some(r.to_string())
}

// ---------------------------------------------------------------------------------------------
// Reviews and review comments

fn list_review_comments(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let s = lock(st);
    if !s.prs.contains_key(&(repo.to_string(), number)) {
        return not_found();
    }
    let items = visible_comments(&s, repo, number)
        .into_iter()
        .map(|c| c.value.clone())
        .collect();
    paginate(req, items)
}

fn list_reviews(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let s = lock(st);
    if !s.prs.contains_key(&(repo.to_string(), number)) {
        return not_found();
    }
    // The caller is the bot, the author of every review here, so its PENDING reviews are listed
    // too (GitHub shows a pending review to its author only).
    let items = s
        .reviews
        .iter()
        .filter(|r| r.repo == repo && r.number == number)
        .map(|r| r.value.clone())
        .collect();
    paginate(req, items)
}

/// A line of a parsed patch.
#[derive(Clone, Debug)]
struct PatchLine {
    kind: char,
    old: Option<u64>,
    new: Option<u64>,
    /// GitHub's (deprecated) `position`: 1 is the line below the first `@@` header.
    position: u64,
}

#[derive(Clone, Debug)]
struct Hunk {
    /// The header then the hunk's lines, as text.
    text: Vec<String>,
    lines: Vec<PatchLine>,
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

/// Parses `@@ -a,b +c,d @@` headers and the lines below them.
fn parse_patch(patch: &str) -> Vec<Hunk> {
    let mut hunks: Vec<Hunk> = Vec::new();
    let (mut old, mut new, mut position) = (0u64, 0u64, 0u64);
    let mut first = true;
    for line in patch.split('\n') {
        if let Some(rest) = line.strip_prefix("@@ -") {
            let Some(end) = rest.find(" @@") else {
                continue;
            };
            let Some((o, n)) = rest[..end].split_once(" +") else {
                continue;
            };
            let (Some((a, _)), Some((c, _))) = (parse_range(o), parse_range(n)) else {
                continue;
            };
            if !first {
                position += 1;
            }
            first = false;
            old = a;
            new = c;
            hunks.push(Hunk {
                text: vec![line.to_string()],
                lines: Vec::new(),
            });
            continue;
        }
        let Some(h) = hunks.last_mut() else { continue };
        position += 1;
        let kind = line.chars().next().unwrap_or(' ');
        let (o, n) = match kind {
            '+' => {
                new += 1;
                (None, Some(new - 1))
            }
            '-' => {
                old += 1;
                (Some(old - 1), None)
            }
            '\\' => (None, None),
            _ => {
                old += 1;
                new += 1;
                (Some(old - 1), Some(new - 1))
            }
        };
        h.text.push(line.to_string());
        h.lines.push(PatchLine {
            kind,
            old: o,
            new: n,
            position,
        });
    }
    hunks
}

/// The hunk and line index of `line` on `side` ("LEFT": old numbers, "RIGHT": new numbers).
fn locate(hunks: &[Hunk], side: &str, line: u64) -> Option<(usize, usize)> {
    for (hi, h) in hunks.iter().enumerate() {
        for (li, l) in h.lines.iter().enumerate() {
            let n = if side == "LEFT" { l.old } else { l.new };
            if n == Some(line) {
                return Some((hi, li));
            }
        }
    }
    None
}

/// A validated review comment, ready to store.
struct NewComment {
    path: String,
    body: String,
    line: u64,
    side: String,
    start_line: Option<u64>,
    start_side: Option<String>,
    position: u64,
    diff_hunk: String,
}

enum Invalid {
    /// 422 "Invalid request.\n\n…" (schema errors).
    Schema(String),
    /// 422 "Unprocessable Entity" with `errors: [msg]`.
    Thread(String),
}

fn side_of(v: &Value, field: &str) -> Result<Option<String>, Invalid> {
    match &v[field] {
        Value::Null => Ok(None),
        Value::String(s) if s == "LEFT" || s == "RIGHT" => Ok(Some(s.clone())),
        other => Err(Invalid::Schema(format!(
            "For 'properties/{field}', {other} is not one of [\"LEFT\", \"RIGHT\"]."
        ))),
    }
}

fn uint_of(v: &Value, field: &str) -> Result<Option<u64>, Invalid> {
    match &v[field] {
        Value::Null => Ok(None),
        Value::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
        other => Err(Invalid::Schema(format!(
            "For 'properties/{field}', {other} is not an integer."
        ))),
    }
}

fn validate_comment(
    c: &Value,
    pr: &FakePr,
    fail_at: &[(String, u64)],
) -> Result<NewComment, Invalid> {
    if !c.is_object() {
        return Err(Invalid::Schema(
            "For 'items', \"comments\" must be objects.".into(),
        ));
    }
    let Some(path) = c["path"].as_str() else {
        return Err(Invalid::Schema("\"path\" wasn't supplied.".into()));
    };
    let Some(body) = c["body"].as_str() else {
        return Err(Invalid::Schema("\"body\" wasn't supplied.".into()));
    };
    let side = side_of(c, "side")?;
    let start_side = side_of(c, "start_side")?;
    let line = uint_of(c, "line")?;
    let start_line = uint_of(c, "start_line")?;
    let position = uint_of(c, "position")?;
    if let (Some(start), Some(end)) = (start_line, line)
        && start >= end
    {
        return Err(Invalid::Thread(
            "Pull request review thread start line must precede the end line.".into(),
        ));
    }
    if let Some(l) = line
        && fail_at.iter().any(|(p, fl)| p == path && *fl == l)
    {
        return Err(Invalid::Thread("Line could not be resolved".into()));
    }
    let Some(file) = pr.files.iter().find(|f| f.path == path) else {
        return Err(Invalid::Thread(
            "Pull request review thread path is invalid".into(),
        ));
    };
    let hunks = parse_patch(file.patch.as_deref().unwrap_or(""));
    if hunks.is_empty() {
        return Err(Invalid::Thread(
            "Pull request review thread diff hunk can't be blank".into(),
        ));
    }
    // The end of the thread: (side, line, hunk index, line index).
    let (side, line, hi, li) = match (line, position) {
        (Some(line), _) => {
            let side = side.unwrap_or_else(|| "RIGHT".into());
            let Some((hi, li)) = locate(&hunks, &side, line) else {
                return Err(Invalid::Thread(
                    "Pull request review thread line must be part of the diff".into(),
                ));
            };
            (side, line, hi, li)
        }
        (None, Some(pos)) => {
            let found = hunks.iter().enumerate().find_map(|(hi, h)| {
                h.lines
                    .iter()
                    .position(|l| l.position == pos && l.kind != '\\')
                    .map(|li| (hi, li))
            });
            let Some((hi, li)) = found else {
                return Err(Invalid::Thread(
                    "Pull request review thread position is invalid".into(),
                ));
            };
            let l = &hunks[hi].lines[li];
            match (l.kind, l.old, l.new) {
                ('-', Some(o), _) => ("LEFT".to_string(), o, hi, li),
                (_, _, Some(n)) => ("RIGHT".to_string(), n, hi, li),
                _ => {
                    return Err(Invalid::Thread(
                        "Pull request review thread position is invalid".into(),
                    ));
                }
            }
        }
        (None, None) => {
            return Err(Invalid::Thread(
                "Pull request review thread diff hunk can't be blank".into(),
            ));
        }
    };
    if let Some(start) = start_line {
        let s_side = start_side.clone().unwrap_or_else(|| side.clone());
        match locate(&hunks, &s_side, start) {
            None => {
                return Err(Invalid::Thread(
                    "Pull request review thread start line must be part of the diff".into(),
                ));
            }
            Some((shi, _)) if shi != hi => {
                return Err(Invalid::Thread(
                    "Pull request review thread start line must be part of the same hunk as the line."
                        .into(),
                ));
            }
            Some(_) => {}
        }
    }
    let diff_hunk = hunks[hi].text[..li + 2].join("\n");
    Ok(NewComment {
        path: path.to_string(),
        body: body.to_string(),
        line,
        side: side.clone(),
        start_line,
        start_side: start_line.map(|_| start_side.unwrap_or(side)),
        position: hunks[hi].lines[li].position,
        diff_hunk,
    })
}

fn review_state(event: Option<&str>) -> Option<&'static str> {
    match event {
        None => Some("PENDING"),
        Some("COMMENT") => Some("COMMENTED"),
        Some("APPROVE") => Some("APPROVED"),
        Some("REQUEST_CHANGES") => Some("CHANGES_REQUESTED"),
        Some(_) => None,
    }
}

fn create_review(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let mut s = lock(st);
    let Some(entry) = s.prs.get(&(repo.to_string(), number)) else {
        return not_found();
    };
    let pr = entry.pr.clone();
    if let Some(resp) = secondary_limit(&mut s) {
        return resp;
    }
    let body = req.body.clone().unwrap_or_else(|| json!({}));
    if !body.is_object() {
        return invalid_request("Body must be a JSON object.", DOCS_REVIEW);
    }
    let event = match &body["event"] {
        Value::Null => None,
        Value::String(e) if e.is_empty() => None,
        Value::String(e) => Some(e.as_str()),
        _ => return invalid_request("For 'properties/event', must be a string.", DOCS_REVIEW),
    };
    let Some(state) = review_state(event) else {
        return invalid_request(
            &format!(
                "For 'properties/event', {} is not one of [\"APPROVE\", \"REQUEST_CHANGES\", \"COMMENT\"].",
                body["event"]
            ),
            DOCS_REVIEW,
        );
    };
    let text = body["body"].as_str().unwrap_or("").to_string();
    let commit_id = match &body["commit_id"] {
        Value::Null => pr.head_sha.clone(),
        Value::String(c) => c.clone(),
        _ => {
            return invalid_request("For 'properties/commit_id', must be a string.", DOCS_REVIEW);
        }
    };
    let comments_in: Vec<Value> = match &body["comments"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a.clone(),
        _ => {
            return invalid_request("For 'properties/comments', must be an array.", DOCS_REVIEW);
        }
    };
    // GitHub accepts any commit of the PR here; the fake only the current head, so that a push
    // during a review shows up as a refused review.
    if commit_id != pr.head_sha {
        return unprocessable("commit_id is not part of the pull request", DOCS_REVIEW);
    }
    if matches!(state, "COMMENTED" | "CHANGES_REQUESTED")
        && text.is_empty()
        && comments_in.is_empty()
    {
        return unprocessable(
            &format!(
                "Body is required when using {} for the event parameter",
                event.unwrap_or("")
            ),
            DOCS_REVIEW,
        );
    }
    if s.reviews
        .iter()
        .any(|r| r.repo == repo && r.number == number && r.value["state"] == "PENDING")
    {
        return unprocessable(
            "User can only have one pending review per pull request",
            DOCS_REVIEW,
        );
    }
    let mut valid = Vec::new();
    for c in &comments_in {
        match validate_comment(c, &pr, &s.fail_comments) {
            Ok(nc) => valid.push(nc),
            Err(Invalid::Schema(msg)) => return invalid_request(&msg, DOCS_REVIEW),
            Err(Invalid::Thread(msg)) => return unprocessable(&msg, DOCS_REVIEW),
        }
    }
    // Every comment is valid: store the review and its comments.
    let id = s.id();
    let now = rfc3339(now_secs());
    let base = s.base_url.clone();
    let pr_url = format!("{base}/repos/{repo}/pulls/{number}");
    let html = format!("https://github.com/{repo}/pull/{number}#pullrequestreview-{id}");
    let mut review = json!({
        "id": id,
        "node_id": format!("PRR_kwFake{id}"),
        "user": user_json(BOT_LOGIN, "Bot"),
        "body": text,
        "state": state,
        "html_url": html,
        "pull_request_url": pr_url,
        "author_association": "NONE",
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
        "commit_id": commit_id,
    });
    if state != "PENDING" {
        review["submitted_at"] = Value::String(now.clone());
    }
    for nc in valid {
        let cid = s.id();
        let url = format!("{base}/repos/{repo}/pulls/comments/{cid}");
        let html = format!("https://github.com/{repo}/pull/{number}#discussion_r{cid}");
        let value = json!({
            "url": url,
            "pull_request_review_id": id,
            "id": cid,
            "node_id": format!("PRRC_kwFake{cid}"),
            "diff_hunk": nc.diff_hunk,
            "path": nc.path,
            "position": nc.position,
            "original_position": nc.position,
            "commit_id": commit_id,
            "original_commit_id": commit_id,
            "user": user_json(BOT_LOGIN, "Bot"),
            "body": nc.body,
            "created_at": now,
            "updated_at": now,
            "html_url": html,
            "pull_request_url": pr_url,
            "author_association": "NONE",
            "_links": {"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pr_url}},
            "start_line": nc.start_line,
            "original_start_line": nc.start_line,
            "start_side": nc.start_side,
            "line": nc.line,
            "original_line": nc.line,
            "side": nc.side,
            "subject_type": "line",
            "reactions": {"total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0},
        });
        s.comments.push(StoredComment {
            id: cid,
            review_id: id,
            repo: repo.to_string(),
            number,
            value,
            resolved: false,
        });
    }
    s.reviews.push(StoredReview {
        id,
        repo: repo.to_string(),
        number,
        value: review.clone(),
    });
    json_resp(200, review)
}

fn delete_review(st: &St, repo: &str, number: u64, id: u64) -> Response {
    let mut s = lock(st);
    let Some(i) = s
        .reviews
        .iter()
        .position(|r| r.id == id && r.repo == repo && r.number == number)
    else {
        return not_found();
    };
    if s.reviews[i].value["state"] != "PENDING" {
        return unprocessable(
            "Can not delete a non-pending pull request review",
            "https://docs.github.com/rest/pulls/reviews#delete-a-pending-review-for-a-pull-request",
        );
    }
    let review = s.reviews.remove(i);
    s.comments.retain(|c| c.review_id != id);
    json_resp(200, review.value)
}

fn submit_review(st: &St, req: &Req, repo: &str, number: u64, id: u64) -> Response {
    const DOCS_SUBMIT: &str =
        "https://docs.github.com/rest/pulls/reviews#submit-a-review-for-a-pull-request";
    let mut s = lock(st);
    let Some(i) = s
        .reviews
        .iter()
        .position(|r| r.id == id && r.repo == repo && r.number == number)
    else {
        return not_found();
    };
    if let Some(resp) = secondary_limit(&mut s) {
        return resp;
    }
    let body = req.body.clone().unwrap_or_else(|| json!({}));
    let state = match body["event"].as_str() {
        Some(e @ ("COMMENT" | "APPROVE" | "REQUEST_CHANGES")) => review_state(Some(e)).unwrap(),
        _ => return invalid_request("\"event\" wasn't supplied.", DOCS_SUBMIT),
    };
    if s.reviews[i].value["state"] != "PENDING" {
        return unprocessable(
            "Can not submit a non-pending pull request review",
            DOCS_SUBMIT,
        );
    }
    let review = &mut s.reviews[i].value;
    if let Some(text) = body["body"].as_str() {
        review["body"] = Value::String(text.to_string());
    }
    review["state"] = Value::String(state.to_string());
    review["submitted_at"] = Value::String(rfc3339(now_secs()));
    let review = review.clone();
    json_resp(200, review)
}

// ---------------------------------------------------------------------------------------------
// Check runs and issue comments

const DOCS_CHECKS: &str = "https://docs.github.com/rest/checks/runs#create-a-check-run";

/// Validates `output` of a check run; returns its annotations.
fn check_output(output: &Value) -> Result<Vec<Value>, Response> {
    if output.is_null() {
        return Ok(Vec::new());
    }
    for field in ["title", "summary"] {
        if !output[field].is_string() {
            return Err(invalid_request(
                &format!("\"{field}\" wasn't supplied."),
                DOCS_CHECKS,
            ));
        }
    }
    for field in ["summary", "text"] {
        if output[field]
            .as_str()
            .is_some_and(|t| t.chars().count() > 65535)
        {
            return Err(invalid_request(
                &format!("For 'properties/{field}', is too long (maximum is 65535 characters)."),
                DOCS_CHECKS,
            ));
        }
    }
    let annotations = output["annotations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if annotations.len() > 50 {
        return Err(invalid_request(
            "For 'properties/annotations', is too long (maximum is 50 items).",
            DOCS_CHECKS,
        ));
    }
    for a in &annotations {
        for field in [
            "path",
            "start_line",
            "end_line",
            "annotation_level",
            "message",
        ] {
            if a[field].is_null() {
                return Err(invalid_request(
                    &format!("\"{field}\" wasn't supplied."),
                    DOCS_CHECKS,
                ));
            }
        }
        if !matches!(
            a["annotation_level"].as_str(),
            Some("notice" | "warning" | "failure")
        ) {
            return Err(invalid_request(
                "For 'properties/annotation_level', is not one of [\"notice\", \"warning\", \"failure\"].",
                DOCS_CHECKS,
            ));
        }
    }
    Ok(annotations)
}

const CONCLUSIONS: [&str; 8] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
];

fn create_check_run(st: &St, req: &Req, repo: &str) -> Response {
    let mut s = lock(st);
    if let Some(resp) = secondary_limit(&mut s) {
        return resp;
    }
    let body = req.body.clone().unwrap_or_else(|| json!({}));
    for field in ["name", "head_sha"] {
        if body[field].as_str().is_none_or(|v| v.is_empty()) {
            return invalid_request(&format!("\"{field}\" wasn't supplied."), DOCS_CHECKS);
        }
    }
    let conclusion = body["conclusion"].as_str();
    if conclusion.is_some_and(|c| !CONCLUSIONS.contains(&c)) {
        return invalid_request(
            "For 'properties/conclusion', is not a valid conclusion.",
            DOCS_CHECKS,
        );
    }
    let status = match (body["status"].as_str(), conclusion) {
        (_, Some(_)) => "completed",
        (None, None) => "queued",
        (Some("completed"), None) => {
            return invalid_request("\"conclusion\" wasn't supplied.", DOCS_CHECKS);
        }
        (Some(st @ ("queued" | "in_progress" | "requested" | "waiting" | "pending")), None) => st,
        (Some(_), None) => {
            return invalid_request(
                "For 'properties/status', is not a valid status.",
                DOCS_CHECKS,
            );
        }
    };
    let annotations = match check_output(&body["output"]) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let id = s.id();
    let base = s.base_url.clone();
    let now = rfc3339(now_secs());
    let url = format!("{base}/repos/{repo}/check-runs/{id}");
    let value = json!({
        "id": id,
        "node_id": format!("CR_kwFake{id}"),
        "head_sha": body["head_sha"],
        "external_id": body["external_id"].as_str().unwrap_or(""),
        "url": url,
        "html_url": format!("https://github.com/{repo}/runs/{id}"),
        "details_url": body["details_url"],
        "status": status,
        "conclusion": conclusion,
        "started_at": body["started_at"].as_str().map(str::to_string).unwrap_or(now.clone()),
        "completed_at": if status == "completed" { Value::String(body["completed_at"].as_str().map(str::to_string).unwrap_or(now.clone())) } else { Value::Null },
        "output": {
            "title": body["output"]["title"],
            "summary": body["output"]["summary"],
            "text": body["output"]["text"],
            "annotations_count": annotations.len(),
            "annotations_url": format!("{url}/annotations"),
        },
        "name": body["name"],
        "check_suite": {"id": id + 500_000_000},
        "app": {"id": s.app_id, "slug": "redline", "name": "redline", "owner": user_json("redline", "Organization")},
        "pull_requests": [],
    });
    s.check_runs.push(StoredCheckRun {
        id,
        repo: repo.to_string(),
        value: value.clone(),
        annotations,
    });
    json_resp(201, value)
}

fn update_check_run(st: &St, req: &Req, repo: &str, id: u64) -> Response {
    let mut s = lock(st);
    let Some(i) = s
        .check_runs
        .iter()
        .position(|c| c.id == id && c.repo == repo)
    else {
        return not_found();
    };
    let body = req.body.clone().unwrap_or_else(|| json!({}));
    let annotations = match check_output(&body["output"]) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let conclusion = body["conclusion"].as_str();
    if conclusion.is_some_and(|c| !CONCLUSIONS.contains(&c)) {
        return invalid_request(
            "For 'properties/conclusion', is not a valid conclusion.",
            DOCS_CHECKS,
        );
    }
    let now = rfc3339(now_secs());
    let run = &mut s.check_runs[i];
    if let Some(name) = body["name"].as_str() {
        run.value["name"] = json!(name);
    }
    if let Some(st) = body["status"].as_str() {
        run.value["status"] = json!(st);
    }
    if let Some(c) = conclusion {
        run.value["conclusion"] = json!(c);
        run.value["status"] = json!("completed");
    }
    if run.value["status"] == "completed" && run.value["completed_at"].is_null() {
        run.value["completed_at"] = json!(now);
    }
    if !body["output"].is_null() {
        for field in ["title", "summary", "text"] {
            if !body["output"][field].is_null() {
                run.value["output"][field] = body["output"][field].clone();
            }
        }
        run.annotations.extend(annotations);
        run.value["output"]["annotations_count"] = json!(run.annotations.len());
    }
    let value = run.value.clone();
    json_resp(200, value)
}

/// A comment's `body` as GitHub checks it: present (422 otherwise) and at most 65,536 characters.
fn comment_text<'a>(req: &'a Req, docs: &str) -> Result<&'a str, Response> {
    let Some(text) = req.body.as_ref().and_then(|b| b["body"].as_str()) else {
        return Err(invalid_request("\"body\" wasn't supplied.", docs));
    };
    if text.chars().count() > 65536 {
        return Err(unprocessable(
            "Body is too long (maximum is 65536 characters)",
            docs,
        ));
    }
    Ok(text)
}

fn create_issue_comment(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    const DOCS_COMMENT: &str =
        "https://docs.github.com/rest/issues/comments#create-an-issue-comment";
    let mut s = lock(st);
    if !s.prs.contains_key(&(repo.to_string(), number)) {
        return not_found();
    }
    if let Some(resp) = secondary_limit(&mut s) {
        return resp;
    }
    let text = match comment_text(req, DOCS_COMMENT) {
        Ok(text) => text,
        Err(refused) => return refused,
    };
    let value = issue_comment_value(&mut s, repo, number, text);
    s.issue_comments
        .push((repo.to_string(), number, value.clone()));
    json_resp(201, value)
}

/// A new issue comment by the bot, in GitHub's wire format.
fn issue_comment_value(s: &mut Shared, repo: &str, number: u64, text: &str) -> Value {
    let id = s.id();
    let base = s.base_url.clone();
    let now = rfc3339(now_secs());
    json!({
        "id": id,
        "node_id": format!("IC_kwFake{id}"),
        "url": format!("{base}/repos/{repo}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{repo}/pull/{number}#issuecomment-{id}"),
        "issue_url": format!("{base}/repos/{repo}/issues/{number}"),
        "body": text,
        "user": user_json(BOT_LOGIN, "Bot"),
        "created_at": now,
        "updated_at": now,
        "author_association": "NONE",
        "performed_via_github_app": null,
    })
}

fn list_issue_comments(st: &St, req: &Req, repo: &str, number: u64) -> Response {
    let s = lock(st);
    if !s.prs.contains_key(&(repo.to_string(), number)) {
        return not_found();
    }
    let items = s
        .issue_comments
        .iter()
        .filter(|(r, n, _)| r == repo && *n == number)
        .map(|(_, _, v)| v.clone())
        .collect();
    paginate(req, items)
}

// ---------------------------------------------------------------------------------------------
// Review threads

/// Stores a reply in the thread of comment `to` (the thread's first comment when `to` is itself a
/// reply), written by `user`: like GitHub, a reply is a submitted review of its own holding one
/// comment. None when `to` is not a comment of the pull request.
fn store_reply(
    s: &mut Shared,
    repo: &str,
    number: u64,
    to: u64,
    user: Value,
    association: &str,
    body: &str,
) -> Option<Value> {
    let target = s
        .comments
        .iter()
        .find(|c| c.id == to && c.repo == repo && c.number == number)?
        .value
        .clone();
    let root = target["in_reply_to_id"].as_u64().unwrap_or(to);
    let review_id = s.id();
    let id = s.id();
    let base = s.base_url.clone();
    let now = rfc3339(now_secs());
    let pr_url = format!("{base}/repos/{repo}/pulls/{number}");
    let url = format!("{base}/repos/{repo}/pulls/comments/{id}");
    let html = format!("https://github.com/{repo}/pull/{number}#discussion_r{id}");
    let mut value = target.clone();
    for (k, v) in [
        ("url", json!(url)),
        ("id", json!(id)),
        ("node_id", json!(format!("PRRC_kwFake{id}"))),
        ("pull_request_review_id", json!(review_id)),
        ("in_reply_to_id", json!(root)),
        ("user", user.clone()),
        ("body", json!(body)),
        ("created_at", json!(now)),
        ("updated_at", json!(now)),
        ("html_url", json!(html)),
        ("author_association", json!(association)),
        (
            "_links",
            json!({"self": {"href": url}, "html": {"href": html}, "pull_request": {"href": pr_url}}),
        ),
        (
            "reactions",
            json!({"total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0, "confused": 0, "heart": 0, "rocket": 0, "eyes": 0}),
        ),
    ] {
        value[k] = v;
    }
    let review_html =
        format!("https://github.com/{repo}/pull/{number}#pullrequestreview-{review_id}");
    s.reviews.push(StoredReview {
        id: review_id,
        repo: repo.to_string(),
        number,
        value: json!({
            "id": review_id,
            "node_id": format!("PRR_kwFake{review_id}"),
            "user": user,
            "body": "",
            "state": "COMMENTED",
            "html_url": review_html,
            "pull_request_url": pr_url,
            "author_association": association,
            "_links": {"html": {"href": review_html}, "pull_request": {"href": pr_url}},
            "commit_id": target["commit_id"],
            "submitted_at": now,
        }),
    });
    s.comments.push(StoredComment {
        id,
        review_id,
        repo: repo.to_string(),
        number,
        value: value.clone(),
        resolved: false,
    });
    Some(value)
}

/// `POST /repos/{o}/{r}/pulls/{n}/comments/{comment_id}/replies`: 201 with the reply.
fn create_reply(st: &St, req: &Req, repo: &str, number: u64, to: u64) -> Response {
    const DOCS_REPLY: &str =
        "https://docs.github.com/rest/pulls/comments#create-a-reply-for-a-review-comment";
    let mut s = lock(st);
    if !s.prs.contains_key(&(repo.to_string(), number)) {
        return not_found();
    }
    if let Some(resp) = secondary_limit(&mut s) {
        return resp;
    }
    let text = match comment_text(req, DOCS_REPLY) {
        Ok(text) => text,
        Err(refused) => return refused,
    };
    match store_reply(
        &mut s,
        repo,
        number,
        to,
        user_json(BOT_LOGIN, "Bot"),
        "NONE",
        text,
    ) {
        Some(v) => json_resp(201, v),
        None => not_found(),
    }
}

// ---------------------------------------------------------------------------------------------
// Comparing commits

/// The text of `path` at commit `sha`: the pull request's file at that head, else the base's.
fn text_at(s: &Shared, repo: &str, sha: &str, path: &str) -> Option<String> {
    if let Some(v) = s
        .trees
        .get(&(repo.to_string(), sha.to_string()))
        .and_then(|t| t.get(path))
    {
        return v.clone();
    }
    s.base_texts
        .get(&(repo.to_string(), path.to_string()))
        .cloned()
        .flatten()
}

/// `sha` and its ancestors, nearest first.
fn ancestry(s: &Shared, repo: &str, sha: &str) -> Vec<String> {
    let mut out = vec![sha.to_string()];
    let mut at = sha.to_string();
    while let Some(Some(parent)) = s.commits.get(&(repo.to_string(), at.clone())) {
        if out.contains(parent) {
            break;
        }
        out.push(parent.clone());
        at = parent.clone();
    }
    out
}

fn commit_json(base: &str, repo: &str, sha: &str, parent: Option<&str>) -> Value {
    json!({
        "sha": sha,
        "node_id": format!("C_kwFake{}", &sha[..sha.len().min(12)]),
        "url": format!("{base}/repos/{repo}/commits/{sha}"),
        "html_url": format!("https://github.com/{repo}/commit/{sha}"),
        "commit": {"message": "change", "tree": {"sha": sha256_hex(sha)[..40].to_string()}},
        "parents": parent.map(|p| vec![json!({"sha": p, "url": format!("{base}/repos/{repo}/commits/{p}")})]).unwrap_or_default(),
    })
}

/// `GET /repos/{o}/{r}/compare/{base}...{head}`: how head relates to base, and the files that
/// differ between their merge base and head (GitHub's three-dot comparison), with patches.
fn compare(st: &St, req: &Req, repo: &str, basehead: &str) -> Response {
    let s = lock(st);
    let Some((a, b)) = basehead.split_once("...") else {
        return not_found();
    };
    let key = |sha: &str| (repo.to_string(), sha.to_string());
    let known = |sha: &str| s.commits.contains_key(&key(sha)) && !s.dropped.contains(&key(sha));
    if !known(a) || !known(b) {
        return not_found();
    }
    let from_b = ancestry(&s, repo, b);
    let from_a = ancestry(&s, repo, a);
    let (status, ahead_by, behind_by, merge_base) = if a == b {
        ("identical", 0, 0, a.to_string())
    } else if let Some(i) = from_b.iter().position(|x| x == a) {
        ("ahead", i, 0, a.to_string())
    } else if let Some(i) = from_a.iter().position(|x| x == b) {
        ("behind", 0, i, b.to_string())
    } else {
        let mb = from_b
            .iter()
            .find(|x| from_a.contains(x))
            .cloned()
            .unwrap_or_default();
        let ahead = from_b.iter().position(|x| *x == mb).unwrap_or(0);
        let behind = from_a.iter().position(|x| *x == mb).unwrap_or(0);
        ("diverged", ahead, behind, mb)
    };
    let mut paths: Vec<String> = [merge_base.as_str(), b]
        .iter()
        .filter_map(|sha| s.trees.get(&key(sha)))
        .flat_map(|t| t.keys().cloned())
        .collect();
    paths.sort();
    paths.dedup();
    let base_url = &s.base_url;
    let files: Vec<Value> = paths
        .iter()
        .filter_map(|p| {
            let old = text_at(&s, repo, &merge_base, p);
            let new = text_at(&s, repo, b, p);
            if old == new {
                return None;
            }
            let (patch, additions, deletions) =
                unified_patch(old.as_deref().unwrap_or(""), new.as_deref().unwrap_or(""));
            let status = match (&old, &new) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "modified",
            };
            let mut v = json!({
                "sha": sha256_hex(&format!("{p}:{}", new.as_deref().unwrap_or("")))[..40],
                "filename": p,
                "status": status,
                "additions": additions,
                "deletions": deletions,
                "changes": additions + deletions,
                "blob_url": format!("https://github.com/{repo}/blob/{b}/{p}"),
                "raw_url": format!("https://github.com/{repo}/raw/{b}/{p}"),
                "contents_url": format!("{base_url}/repos/{repo}/contents/{p}?ref={b}"),
            });
            if let Some(patch) = patch {
                v["patch"] = json!(patch);
            }
            Some(v)
        })
        .take(300)
        .collect();
    let parent_of = |sha: &str| s.commits.get(&key(sha)).cloned().flatten();
    let commits: Vec<Value> = from_b[..ahead_by]
        .iter()
        .rev()
        .map(|c| commit_json(base_url, repo, c, parent_of(c).as_deref()))
        .collect();
    // Commits are paginated (`per_page`, default 250 here as on GitHub); files come with the
    // first page only.
    let per_page = req
        .q("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(250)
        .min(250);
    let page = req
        .q("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let page_commits: Vec<Value> = commits
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    json_resp(
        200,
        json!({
            "url": format!("{base_url}/repos/{repo}/compare/{basehead}"),
            "html_url": format!("https://github.com/{repo}/compare/{basehead}"),
            "permalink_url": format!("https://github.com/{repo}/compare/{basehead}"),
            "diff_url": format!("https://github.com/{repo}/compare/{basehead}.diff"),
            "patch_url": format!("https://github.com/{repo}/compare/{basehead}.patch"),
            "base_commit": commit_json(base_url, repo, a, parent_of(a).as_deref()),
            "merge_base_commit": commit_json(base_url, repo, &merge_base, parent_of(&merge_base).as_deref()),
            "status": status,
            "ahead_by": ahead_by,
            "behind_by": behind_by,
            "total_commits": commits.len(),
            "commits": page_commits,
            "files": if page == 1 { Value::Array(files) } else { Value::Array(Vec::new()) },
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Pagination and responses

/// One page of `items` per `per_page` (default 30, at most 100) and `page` (from 1), with GitHub's
/// `Link` header (absolute URLs built from the request's `Host`).
fn paginate(req: &Req, items: Vec<Value>) -> Response {
    let per_page = req
        .q("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(30)
        .min(100);
    let page = req
        .q("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let total = items.len();
    let last = total.div_ceil(per_page).max(1);
    let page_items: Vec<Value> = items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let mut resp = json_resp(200, Value::Array(page_items));
    if last > 1 || page > 1 {
        let host = req
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let others: Vec<String> = req
            .raw_query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && kv.split('=').next() != Some("page"))
            .map(str::to_string)
            .collect();
        let link_to = |p: usize| {
            let mut q = others.clone();
            q.push(format!("page={p}"));
            format!("<http://{host}{}?{}>", req.path, q.join("&"))
        };
        let mut rels = Vec::new();
        if page > 1 {
            rels.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(last))));
        }
        if page < last {
            rels.push(format!("{}; rel=\"next\"", link_to(page + 1)));
            rels.push(format!("{}; rel=\"last\"", link_to(last)));
        }
        if page > 1 {
            rels.push(format!("{}; rel=\"first\"", link_to(1)));
        }
        if !rels.is_empty() {
            resp.headers_mut()
                .insert("link", HeaderValue::from_str(&rels.join(", ")).unwrap());
        }
    }
    resp
}

fn json_resp(status: u16, v: Value) -> Response {
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        serde_json::to_string(&v).unwrap(),
    )
        .into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

fn text_resp(status: u16, text: &str) -> Response {
    let mut resp = (StatusCode::from_u16(status).unwrap(), text.to_string()).into_response();
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn error(status: u16, message: &str, docs: &str) -> Response {
    json_resp(
        status,
        json!({"message": message, "documentation_url": docs, "status": status.to_string()}),
    )
}

fn not_found() -> Response {
    error(404, "Not Found", DOCS)
}

/// 422 with `errors: [message]`, as GitHub answers invalid review threads.
fn unprocessable(message: &str, docs: &str) -> Response {
    json_resp(
        422,
        json!({
            "message": "Unprocessable Entity",
            "errors": [message],
            "documentation_url": docs,
            "status": "422"
        }),
    )
}

/// 422 for a body that does not match the schema.
fn invalid_request(detail: &str, docs: &str) -> Response {
    error(422, &format!("Invalid request.\n\n{detail}"), docs)
}

// ---------------------------------------------------------------------------------------------
// Small helpers

fn user_json(login: &str, kind: &str) -> Value {
    let id = if login == BOT_LOGIN {
        BOT_ID
    } else {
        1000 + u64::from_str_radix(&sha256_hex(login)[..8], 16).unwrap_or(0) % 100_000_000
    };
    let enc = login.replace('[', "%5B").replace(']', "%5D");
    let api = format!("https://api.github.com/users/{enc}");
    let html = match login.strip_suffix("[bot]") {
        Some(app) => format!("https://github.com/apps/{app}"),
        None => format!("https://github.com/{login}"),
    };
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcjFake{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": html,
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false
    })
}

fn repo_json(base: &str, repo: &str) -> Value {
    let (owner, name) = repo.split_once('/').unwrap_or((repo, repo));
    let id = u64::from_str_radix(&sha256_hex(repo)[..8], 16).unwrap_or(0) % 1_000_000_000;
    json!({
        "id": id,
        "node_id": format!("R_kgFake{id}"),
        "name": name,
        "full_name": repo,
        "owner": user_json(owner, "User"),
        "private": false,
        "html_url": format!("https://github.com/{repo}"),
        "description": null,
        "fork": false,
        "url": format!("{base}/repos/{repo}"),
        "default_branch": "main",
        "visibility": "public"
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Standard base64 with padding, a newline after every 60 characters (GitHub's contents format).
pub fn base64_wrapped(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut plain = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        plain.push(ALPHABET[(n >> 18) as usize & 63] as char);
        plain.push(ALPHABET[(n >> 12) as usize & 63] as char);
        plain.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        plain.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    let mut out = String::with_capacity(plain.len() + plain.len() / 60 + 1);
    for line in plain.as_bytes().chunks(60) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    fn hex_val(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex_val),
                bytes.get(i + 2).copied().and_then(hex_val),
            )
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(if plus_is_space && bytes[i] == b'+' {
            b' '
        } else {
            bytes[i]
        });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}
