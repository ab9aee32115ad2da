//! Conversations with the reviewer in tests: webhook payloads for replies in review threads and
//! comments on a pull request, in GitHub's wire format (the `pull_request_review_comment` and
//! `issue_comment` events), and a check that a posted body renders inert, as GitHub would show it.

use super::fake_github::FakeGitHub;
use super::rendered::{assert_no_comment_link_or_mention, render};
use serde_json::{Value, json};

/// The installation the test repositories belong to (`github_with_pr`).
pub const INSTALLATION: u64 = 42;

/// The `pull_request_review_comment` `created` delivery for `comment` (as the fake stored it) on
/// pull request `number`: the comment, the pull request, the repository, the installation and
/// the sender, as GitHub sends them.
pub fn review_comment_created(
    gh: &FakeGitHub,
    repo: &str,
    number: u64,
    comment: &Value,
) -> Vec<u8> {
    let v = json!({
        "action": "created",
        "comment": comment,
        "pull_request": gh.pull_json(repo, number),
        "repository": gh.repository_json(repo),
        "installation": {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="},
        "sender": comment["user"],
    });
    serde_json::to_vec(&v).unwrap()
}

/// The `issue_comment` `created` delivery for `comment` (as the fake stored it) on pull request
/// `number`: the issue carries its `pull_request` object, as for every comment on a pull request.
pub fn issue_comment_created(gh: &FakeGitHub, repo: &str, number: u64, comment: &Value) -> Vec<u8> {
    let pr = gh.pull_json(repo, number);
    let v = json!({
        "action": "created",
        "issue": {
            "url": format!("{}/repos/{repo}/issues/{number}", gh.url),
            "html_url": pr["html_url"],
            "number": number,
            "title": pr["title"],
            "user": pr["user"],
            "state": pr["state"],
            "locked": false,
            "comments": 1,
            "body": null,
            "author_association": "CONTRIBUTOR",
            "pull_request": {
                "url": pr["url"],
                "html_url": pr["html_url"],
                "diff_url": pr["diff_url"],
                "patch_url": pr["patch_url"],
                "merged_at": null
            }
        },
        "comment": comment,
        "repository": gh.repository_json(repo),
        "installation": {"id": INSTALLATION, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI="},
        "sender": comment["user"],
    });
    serde_json::to_vec(&v).unwrap()
}

/// A posted body is inert: as rendered, no foreign HTML, no comment but redline's markers, no
/// heading, no link but http(s), no mention; and within GitHub's 65,536 characters.
pub fn assert_inert(body: &str, what: &str) {
    assert!(body.chars().count() <= 65_536, "{what}: too long");
    let html = render(body);
    let lower = html.to_ascii_lowercase();
    for tag in [
        "<img",
        "<script",
        "<details",
        "</details",
        "<h1",
        "<h2",
        "<iframe",
    ] {
        assert!(!lower.contains(tag), "{what}: {tag} in\n{html}");
    }
    assert_no_comment_link_or_mention(&html, what);
}
