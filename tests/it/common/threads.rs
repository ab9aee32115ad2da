//! Conversations with the reviewer in tests: webhook payloads for replies in review threads and
//! comments on a pull request, in GitHub's wire format (the `pull_request_review_comment` and
//! `issue_comment` events), and a check that a posted body renders inert, as GitHub would show it.

use super::fake_github::FakeGitHub;
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

/// GitHub's Markdown (comrak follows cmark-gfm), raw HTML passed through as written.
pub fn render(md: &str) -> String {
    let mut o = comrak::Options::default();
    o.extension.table = true;
    o.extension.autolink = true;
    o.extension.strikethrough = true;
    o.render.r#unsafe = true;
    comrak::markdown_to_html(md, &o)
}

/// The text GitHub would scan for mentions: outside `<code>` and `<pre>`, tags removed.
fn text_outside_code(html: &str) -> String {
    let mut depth = 0i32;
    let mut rest = html;
    let mut text = String::new();
    while let Some(i) = rest.find('<') {
        if depth == 0 {
            text.push_str(&rest[..i]);
        }
        let end = rest[i..].find('>').map(|j| i + j + 1).unwrap_or(rest.len());
        let tag = &rest[i..end];
        if tag.starts_with("<code") || tag.starts_with("<pre") {
            depth += 1;
        } else if tag.starts_with("</code") || tag.starts_with("</pre") {
            depth -= 1;
        }
        text.push(' ');
        rest = &rest[end..];
    }
    text.push_str(rest);
    text
}

/// Whether GitHub would link a mention in `text`.
fn has_mention(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(1)).any(|i| {
        chars[i] == '@'
            && chars[i + 1].is_ascii_alphanumeric()
            && (i == 0 || !chars[i - 1].is_alphanumeric())
    })
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
    let openers = html.matches("<!--").count();
    assert_eq!(
        openers,
        html.matches("<!-- redline:").count(),
        "{what}: a comment that is not ours\n{html}"
    );
    assert_eq!(openers, html.matches("-->").count(), "{what}: {html}");
    for (i, _) in lower.match_indices("href=\"") {
        let url = &lower[i + 6..];
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{what}: a link that is not http(s): {}\n{html}",
            &url[..url.len().min(60)]
        );
    }
    assert!(
        !has_mention(&text_outside_code(&html)),
        "{what}: a mention GitHub would link\n{html}"
    );
}
