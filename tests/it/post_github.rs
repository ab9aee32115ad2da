//! `redline review --post github` as a GitHub Actions job runs it: the binary, the environment
//! Actions sets (a `ghs_` token, the repository, the `pull_request` event file, the API URL, the
//! job summary file), a checkout in a temporary git repository, and the fake GitHub over HTTP.

use crate::common::fake_github::{FakeGitHub, FakePr, fake_file};
use crate::common::{Run, git, project_root, redline, run_cmd, write_files};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const REPO: &str = "octo/shop";
const PR: u64 = 7;

/// The example's Python change: base and head of app/orders.py.
fn orders(side: &str) -> String {
    std::fs::read_to_string(
        project_root().join(format!("examples/first-review/{side}/app/orders.py")),
    )
    .unwrap()
}

fn badge(side: &str) -> Option<String> {
    std::fs::read_to_string(
        project_root().join(format!("examples/first-review/{side}/web/badge.ts")),
    )
    .ok()
}

/// A checkout: `main` with the base of the example, and a `feature` branch with its head of
/// app/orders.py (and, with `badge`, of web/badge.ts too). Returns (dir, base sha, head sha).
struct Checkout {
    dir: tempfile::TempDir,
    base: String,
    head: String,
}

fn checkout() -> Checkout {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    write_files(
        d,
        &[
            ("app/orders.py", orders("base").as_bytes()),
            ("web/badge.ts", badge("base").unwrap().as_bytes()),
        ],
    );
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "base"]);
    let base = git(d, &["rev-parse", "HEAD"]);
    git(d, &["checkout", "-q", "-b", "feature"]);
    write_files(d, &[("app/orders.py", orders("head").as_bytes())]);
    git(d, &["commit", "-q", "-am", "order search"]);
    let head = git(d, &["rev-parse", "HEAD"]);
    Checkout { dir, base, head }
}

/// The pull request as GitHub has it: the same files and patches as the checkout's change.
fn github_pr(co: &Checkout, with_badge: bool) -> FakePr {
    let mut files = vec![fake_file(
        "app/orders.py",
        Some(&orders("base")),
        Some(&orders("head")),
    )];
    if with_badge {
        files.push(fake_file(
            "web/badge.ts",
            badge("base").as_deref(),
            badge("head").as_deref(),
        ));
    }
    let mut pr = FakePr::new(PR, &co.head, files);
    pr.base_sha = co.base.clone();
    pr
}

/// The `pull_request` event file Actions writes (the fields redline reads, and a few more).
fn event_file(dir: &Path, co: &Checkout, head_repo: &str) -> PathBuf {
    let path = dir.join("event.json");
    let event = json!({
        "action": "synchronize",
        "number": PR,
        "pull_request": {
            "number": PR,
            "state": "open",
            "title": "Add order search",
            "base": {"ref": "main", "sha": co.base, "repo": {"full_name": REPO}},
            "head": {"ref": "feature", "sha": co.head, "repo": {"full_name": head_repo}},
        },
        "repository": {"full_name": REPO},
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&event).unwrap()).unwrap();
    path
}

/// Where a job's files go (`RUNNER_TEMP`, the event file, the job summary).
struct Job {
    temp: tempfile::TempDir,
}

impl Job {
    fn new() -> Job {
        Job {
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn summary_path(&self) -> PathBuf {
        self.temp.path().join("step_summary.md")
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.summary_path()).unwrap_or_default()
    }
}

/// Runs `redline review --post github ARGS` in the checkout with the Actions environment.
fn run_action(
    gh: &FakeGitHub,
    co: &Checkout,
    job: &Job,
    token: Option<&str>,
    event: &Path,
    args: &[&str],
) -> Run {
    let mut cmd = redline();
    cmd.current_dir(co.dir.path())
        .args(["review", "--post", "github"])
        .args(args)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_API_URL", &gh.url)
        .env("GITHUB_STEP_SUMMARY", job.summary_path())
        .env("RUNNER_TEMP", job.temp.path())
        // A rules review: no LLM endpoint from the environment of the test run.
        .env_remove("REDLINE_LLM_BASE_URL")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("GITHUB_TOKEN");
    if let Some(t) = token {
        cmd.env("GITHUB_TOKEN", t);
    }
    run_cmd(&mut cmd)
}

/// (path, line) of a JSON review's findings.
fn located(v: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// (path, line) of the line comments on the pull request.
fn commented(gh: &FakeGitHub) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = gh
        .review_comments(REPO, PR)
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_string(),
                c["line"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn posts_one_review_and_never_repeats_a_finding() {
    let gh = FakeGitHub::start(1);
    let co = checkout();
    gh.set_pr(REPO, github_pr(&co, false));
    let token = gh.actions_token(REPO, true);
    let job = Job::new();
    let event = event_file(job.temp.path(), &co, REPO);
    let args = ["--format", "json", "--fail-on", "critical", "--check-run"];

    // First run: one review, a line comment per finding, the summary, a check run.
    let r = run_action(&gh, &co, &job, Some(&token), &event, &args);
    assert_eq!(r.code, 1, "a critical finding fails the job\n{}", r.stderr);
    let v = r.json();
    let found = located(&v);
    assert!(
        found.contains(&("app/orders.py".to_string(), 26)),
        "the SQL injection is found: {found:?}"
    );
    let reviews = gh.reviews(REPO, PR);
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0]["state"], "CHANGES_REQUESTED");
    assert_eq!(reviews[0]["commit_id"], co.head.as_str());
    let body = reviews[0]["body"].as_str().unwrap();
    assert!(body.starts_with("## redline review"), "{body}");
    assert!(body.contains("engine: rules (no LLM)"), "{body}");
    assert_eq!(commented(&gh), found, "every finding is a line comment");
    for c in gh.review_comments(REPO, PR) {
        let b = c["body"].as_str().unwrap();
        assert!(b.contains("<!-- redline:fp="), "fingerprinted: {b}");
        assert!(
            b.starts_with("🔴 **critical**")
                || b.starts_with("🟠 **warning**")
                || b.starts_with("🔵 **suggestion**"),
            "severity tag first: {b}"
        );
    }
    let checks = gh.check_runs(REPO);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["conclusion"], "failure");
    // Every request went with the Actions token, as a bearer token; none minted an App token.
    let reqs = gh.requests();
    assert!(!reqs.is_empty());
    for q in &reqs {
        assert_eq!(
            q.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "{} {}",
            q.method,
            q.path
        );
    }
    assert_eq!(gh.token_mints(), 0);
    assert!(r.stderr.contains("Posted as review"), "{}", r.stderr);
    assert!(
        job.summary().contains("Posted as review"),
        "{}",
        job.summary()
    );
    assert!(
        !r.stdout.contains(&token) && !r.stderr.contains(&token) && !job.summary().contains(&token),
        "the token is never printed"
    );

    // Second run on the same head (a re-run of the job): nothing new is posted.
    let r2 = run_action(&gh, &co, &job, Some(&token), &event, &args);
    assert_eq!(r2.code, 1, "{}", r2.stderr);
    assert_eq!(located(&r2.json()), found, "the same findings");
    assert_eq!(gh.reviews(REPO, PR).len(), 1, "no second review");
    assert_eq!(commented(&gh), found, "no comment repeated");
    assert_eq!(gh.check_runs(REPO).len(), 1, "no second check run");
    assert!(r2.stderr.contains("Already posted"), "{}", r2.stderr);

    // A push: the head also changes web/badge.ts. The new review comments on the new findings
    // only; those on app/orders.py are already on the pull request.
    let d = co.dir.path();
    write_files(d, &[("web/badge.ts", badge("head").unwrap().as_bytes())]);
    git(d, &["commit", "-q", "-am", "badge"]);
    let co2 = Checkout {
        head: git(d, &["rev-parse", "HEAD"]),
        base: co.base.clone(),
        dir: co.dir,
    };
    gh.set_pr(REPO, github_pr(&co2, true));
    let event2 = event_file(job.temp.path(), &co2, REPO);
    let r3 = run_action(&gh, &co2, &job, Some(&token), &event2, &args);
    assert_eq!(r3.code, 1, "{}", r3.stderr);
    let all = located(&r3.json());
    let reviews = gh.reviews(REPO, PR);
    assert_eq!(reviews.len(), 2, "one review per head");
    let new_comments: Vec<(String, u64)> = reviews[1]["comments"]
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
    assert!(!new_comments.is_empty(), "the badge's findings are posted");
    assert!(
        new_comments.iter().all(|(p, _)| p == "web/badge.ts"),
        "only new findings: {new_comments:?}"
    );
    assert_eq!(
        commented(&gh),
        all,
        "each finding commented once over both reviews"
    );
    let body = reviews[1]["body"].as_str().unwrap();
    assert!(
        body.contains("already reported on this pull request and not repeated"),
        "{body}"
    );
}

#[test]
fn a_read_only_token_writes_the_job_summary_and_sarif_and_fails_by_fail_on() {
    let gh = FakeGitHub::start(1);
    let co = checkout();
    gh.set_pr(REPO, github_pr(&co, false));
    // A pull request from a fork: its token reads only.
    let token = gh.actions_token(REPO, false);
    let job = Job::new();
    let event = event_file(job.temp.path(), &co, "forker/shop");

    let r = run_action(
        &gh,
        &co,
        &job,
        Some(&token),
        &event,
        &["--fail-on", "critical"],
    );
    assert_eq!(r.code, 1, "exit by --fail-on critical\n{}", r.stderr);
    assert!(gh.reviews(REPO, PR).is_empty(), "nothing posted");
    assert!(
        gh.pending_reviews(REPO, PR).is_empty(),
        "nothing left pending"
    );
    assert!(r.stderr.contains("403"), "{}", r.stderr);
    assert!(r.stderr.contains("fork"), "{}", r.stderr);
    assert!(r.stderr.contains("job summary"), "{}", r.stderr);
    // The text report still goes to stdout.
    assert!(
        r.stdout.contains("app/orders.py:26 critical"),
        "{}",
        r.stdout
    );

    let summary = job.summary();
    assert!(summary.starts_with("## redline review"), "{summary}");
    assert!(
        summary.contains("Not posted: GitHub refused the review with 403"),
        "{summary}"
    );
    assert!(
        summary.contains("| 🔴 critical | `app/orders.py:26` |"),
        "{summary}"
    );

    let sarif_path = job.temp.path().join("redline.sarif");
    let sarif: Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif_path).expect("SARIF written"))
            .unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|x| x["locations"][0]["physicalLocation"]["region"]["startLine"] == 26),
        "{results:#?}"
    );
    assert!(
        r.stderr.contains(&sarif_path.display().to_string()),
        "{}",
        r.stderr
    );

    // Without --fail-on, the same refusal exits 0: not posting is not an error.
    let r = run_action(
        &gh,
        &co,
        &job,
        Some(&token),
        &event,
        &["--sarif", "out.sarif"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("out.sarif"),
        "names the SARIF file: {}",
        r.stderr
    );
    assert!(
        co.dir.path().join("out.sarif").is_file(),
        "--sarif names the file"
    );
    assert_eq!(
        job.summary().matches("## redline review").count(),
        2,
        "appended"
    );
}

#[test]
fn bad_environments_fail_with_a_message_and_never_print_the_token() {
    let gh = FakeGitHub::start(1);
    let co = checkout();
    gh.set_pr(REPO, github_pr(&co, false));
    let job = Job::new();
    let event = event_file(job.temp.path(), &co, REPO);

    // No token.
    let r = run_action(&gh, &co, &job, None, &event, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("GITHUB_TOKEN is not set"), "{}", r.stderr);

    // A token GitHub does not know: 401, reported without the token; the review is kept in the
    // job summary.
    let bogus = "ghs_notarealtoken0000000000000000000000";
    let r = run_action(&gh, &co, &job, Some(bogus), &event, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("401") && r.stderr.contains("Bad credentials"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(bogus) && !r.stdout.contains(bogus));
    assert!(job.summary().contains("Not posted"), "{}", job.summary());
    assert!(!job.summary().contains(bogus));
    assert!(gh.reviews(REPO, PR).is_empty());

    // A token with a line break (a header cannot carry it).
    let r = run_action(&gh, &co, &job, Some("ghs_a\nb"), &event, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("control characters"), "{}", r.stderr);

    let token = gh.actions_token(REPO, true);
    // A malformed event file, one that is not a pull request's, and a missing one.
    let bad = job.temp.path().join("bad.json");
    std::fs::write(&bad, "{\"pull_request\": ").unwrap();
    let r = run_action(&gh, &co, &job, Some(&token), &bad, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("is not JSON"), "{}", r.stderr);
    std::fs::write(&bad, r#"{"ref": "refs/heads/main", "after": "0000"}"#).unwrap();
    let r = run_action(&gh, &co, &job, Some(&token), &bad, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a pull_request event"),
        "{}",
        r.stderr
    );
    std::fs::write(
        &bad,
        r#"{"pull_request": {"number": 7, "base": {"sha": "--output=/tmp/x"}, "head": {"sha": "abc"}}}"#,
    )
    .unwrap();
    let r = run_action(&gh, &co, &job, Some(&token), &bad, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("no commit id at pull_request.base.sha"),
        "{}",
        r.stderr
    );
    let r = run_action(
        &gh,
        &co,
        &job,
        Some(&token),
        &job.temp.path().join("nope.json"),
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read the event file"),
        "{}",
        r.stderr
    );

    // A shallow checkout without the base commit.
    let shallow = Checkout {
        base: "1".repeat(40),
        head: co.head.clone(),
        dir: co.dir,
    };
    let event = event_file(job.temp.path(), &shallow, REPO);
    let r = run_action(&gh, &shallow, &job, Some(&token), &event, &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fetch-depth: 0"), "{}", r.stderr);
    assert!(gh.reviews(REPO, PR).is_empty());
}

#[test]
fn a_comment_github_refuses_moves_to_the_summary_and_the_rest_is_posted() {
    let gh = FakeGitHub::start(1);
    let co = checkout();
    gh.set_pr(REPO, github_pr(&co, false));
    // GitHub refuses the whole review while it holds this comment (422).
    gh.fail_comment_at("app/orders.py", 35);
    let token = gh.actions_token(REPO, true);
    let job = Job::new();
    let event = event_file(job.temp.path(), &co, REPO);

    let r = run_action(&gh, &co, &job, Some(&token), &event, &["--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let found = located(&r.json());
    assert!(
        found.contains(&("app/orders.py".to_string(), 35)),
        "{found:?}"
    );
    let reviews = gh.reviews(REPO, PR);
    assert_eq!(reviews.len(), 1, "one review after the 422");
    let commented = commented(&gh);
    assert!(!commented.contains(&("app/orders.py".to_string(), 35)));
    assert_eq!(
        commented.len(),
        found.len() - 1,
        "every other finding is inline"
    );
    let body = reviews[0]["body"].as_str().unwrap();
    assert!(
        body.contains("`app/orders.py:35`") && body.contains("GitHub refused the line comment"),
        "{body}"
    );
    assert!(gh.pending_reviews(REPO, PR).is_empty(), "probes cleaned up");
}

#[test]
fn the_settings_are_the_base_commits_so_a_pull_request_cannot_silence_its_review() {
    let gh = FakeGitHub::start(1);
    let co = checkout();
    // The pull request also adds a .redline.toml that would ignore the file it breaks.
    let silencer = "ignore = [\"app/**\"]\n";
    let d = co.dir.path();
    write_files(d, &[(".redline.toml", silencer.as_bytes())]);
    git(d, &["add", ".redline.toml"]);
    git(d, &["commit", "-q", "-m", "quiet please"]);
    let co = Checkout {
        head: git(d, &["rev-parse", "HEAD"]),
        base: co.base,
        dir: co.dir,
    };
    let mut pr = github_pr(&co, false);
    pr.files
        .push(fake_file(".redline.toml", None, Some(silencer)));
    gh.set_pr(REPO, pr);
    let token = gh.actions_token(REPO, true);
    let job = Job::new();
    let event = event_file(job.temp.path(), &co, REPO);

    let r = run_action(&gh, &co, &job, Some(&token), &event, &["--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(
        located(&v).contains(&("app/orders.py".to_string(), 26)),
        "still reviewed under the base's settings: {v:#}"
    );
    assert!(commented(&gh).contains(&("app/orders.py".to_string(), 26)));
    let skipped = crate::common::skipped(&v);
    assert!(
        skipped
            .iter()
            .any(|(p, why)| p == ".redline.toml" && why.starts_with("redline configuration")),
        "{skipped:?}"
    );
}
