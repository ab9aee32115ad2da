//! The REST calls a review makes, with the few fields of each answer it uses.

use super::{GitHub, GitHubError};
use crate::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use base64::Engine;
use http::Method;
use serde::Deserialize;
use serde_json::Value;

/// GitHub lists at most this many files of a pull request.
pub const MAX_PR_FILES: usize = 3000;

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub state: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub title: String,
    pub head: GitRef,
    pub base: GitRef,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GitRef {
    pub sha: CommitSha,
    #[serde(rename = "ref", default)]
    pub name: String,
}

/// One file of a pull request, with its patch (hunks only; absent for binary or huge files).
#[derive(Debug, Clone, Deserialize)]
pub struct PrFile {
    pub filename: String,
    pub status: String,
    #[serde(default)]
    pub additions: u64,
    #[serde(default)]
    pub deletions: u64,
    pub patch: Option<String>,
    pub previous_filename: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReviewComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
    pub path: Option<String>,
    /// The comment's (last) line in the pull request's current diff; None once it is outdated.
    pub line: Option<u64>,
    /// The first line of a multi-line comment.
    #[serde(default)]
    pub start_line: Option<u64>,
    /// The thread's first comment, for a reply.
    #[serde(default)]
    pub in_reply_to_id: Option<u64>,
    /// GitHub's reaction counts on the comment.
    #[serde(default)]
    pub reactions: Option<Reactions>,
}

/// A comment in a pull request's conversation (an issue comment).
#[derive(Debug, Clone, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: String,
}

/// `GET /repos/{owner}/{repo}/compare/{base}...{head}`: how `head` relates to `base` and the files
/// that differ (at most 300; GitHub lists no more).
#[derive(Debug, Clone, Deserialize)]
pub struct Comparison {
    /// `ahead`, `behind`, `identical` or `diverged`.
    pub status: String,
    #[serde(default)]
    pub ahead_by: u64,
    #[serde(default)]
    pub behind_by: u64,
    #[serde(default)]
    pub files: Vec<PrFile>,
}

/// GitHub lists at most this many files of a comparison.
pub const MAX_COMPARE_FILES: usize = 300;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reactions {
    #[serde(rename = "+1", default)]
    pub thumbs_up: u64,
    #[serde(rename = "-1", default)]
    pub thumbs_down: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub commit_id: Option<String>,
    #[serde(default)]
    pub state: String,
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &str) -> Result<T, GitHubError> {
    serde_json::from_str(body).map_err(|e| GitHubError {
        method: Method::GET,
        path: path.to_string(),
        status: Some(200),
        message: format!("unexpected answer: {e}"),
        retryable: false,
        retry_after: None,
    })
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// Path and query of an absolute URL (requests go to the configured base).
fn path_of(url: &str) -> String {
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => url[i + 3 + j..].to_string(),
            None => "/".to_string(),
        },
        None => url.to_string(),
    }
}

/// One delivery of the App's webhook, as `GET /app/hook/deliveries` lists it (GitHub keeps
/// them for a few days). Redeliveries share the original's `guid` (the `X-GitHub-Delivery`).
#[derive(Debug, Clone, Deserialize)]
pub struct HookDelivery {
    pub id: u64,
    pub guid: String,
    #[serde(default)]
    pub delivered_at: String,
    #[serde(default)]
    pub redelivery: bool,
    /// The status our server answered with; 0 or absent when it did not answer in time.
    #[serde(default)]
    pub status_code: Option<i64>,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl HookDelivery {
    /// Unix seconds of `delivered_at` (0 when unreadable).
    pub fn delivered_unix(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.delivered_at)
            .map(|t| t.timestamp())
            .unwrap_or(0)
    }

    /// Whether our server accepted it (a 2xx answer).
    pub fn succeeded(&self) -> bool {
        matches!(self.status_code, Some(200..=299))
    }
}

/// A pull request, as the App reaches it: through an installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    pub installation: InstallationId,
    pub repo: RepoName,
    pub number: PrNumber,
}

impl PrRef {
    /// `/repos/{owner}/{name}/pulls/{number}{rest}`.
    fn path(&self, rest: &str) -> String {
        format!("/repos/{}/pulls/{}{rest}", self.repo, self.number)
    }
}

impl std::fmt::Display for PrRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

impl GitHub {
    /// Every page of a list endpoint, following `Link: rel="next"`, up to `cap` items.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        installation: InstallationId,
        first: String,
        cap: usize,
    ) -> Result<Vec<T>, GitHubError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(path) = next.take() {
            let r = self.request(installation, Method::GET, &path, None).await?;
            let page: Vec<T> = decode(&path, &r.body)?;
            let empty = page.is_empty();
            out.extend(page);
            if out.len() >= cap || empty {
                out.truncate(cap);
                break;
            }
            next = next_link(&r.headers).map(|u| path_of(&u));
        }
        Ok(out)
    }

    pub async fn pull(&self, pr: &PrRef) -> Result<PullRequest, GitHubError> {
        let path = pr.path("");
        let r = self
            .request(pr.installation, Method::GET, &path, None)
            .await?;
        decode(&path, &r.body)
    }

    pub async fn pull_files(&self, pr: &PrRef) -> Result<Vec<PrFile>, GitHubError> {
        self.all_pages(
            pr.installation,
            pr.path("/files?per_page=100"),
            MAX_PR_FILES,
        )
        .await
    }

    /// A file's bytes at a commit; None when it does not exist there (or is not a file). A file
    /// too large for the contents API is an error with status 413.
    pub async fn file_content(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        path: &str,
        sha: &CommitSha,
    ) -> Result<Option<Vec<u8>>, GitHubError> {
        let encoded: String = path
            .split('/')
            .map(encode_segment)
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("/repos/{repo}/contents/{encoded}?ref={sha}");
        let r = match self.request(installation, Method::GET, &url, None).await {
            Ok(r) => r,
            Err(GitHubError {
                status: Some(404), ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let v: Value = decode(&url, &r.body)?;
        if v["type"] != "file" {
            return Ok(None);
        }
        if v["encoding"] != "base64" {
            // Files over 1 MB come with `"encoding": "none"` and no content.
            return Err(GitHubError {
                method: Method::GET,
                path: url.split('?').next().unwrap_or(&url).to_string(),
                status: Some(413),
                message: "larger than the contents API serves (1 MB)".into(),
                retryable: false,
                retry_after: None,
            });
        }
        let content: String = v["content"]
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(content)
            .map(Some)
            .map_err(|e| GitHubError {
                method: Method::GET,
                path: url,
                status: Some(200),
                message: format!("file content is not base64: {e}"),
                retryable: false,
                retry_after: None,
            })
    }

    pub async fn review_comments(&self, pr: &PrRef) -> Result<Vec<ReviewComment>, GitHubError> {
        self.all_pages(pr.installation, pr.path("/comments?per_page=100"), 10_000)
            .await
    }

    /// Answers in a review thread: a reply to its first comment `thread_id`; returns its id.
    pub async fn reply_in_thread(
        &self,
        pr: &PrRef,
        thread_id: u64,
        body: &str,
    ) -> Result<u64, GitHubError> {
        let path = pr.path(&format!("/comments/{thread_id}/replies"));
        self.post_comment(pr, &path, body).await
    }

    /// The comments of a pull request's conversation, oldest first.
    pub async fn issue_comments(&self, pr: &PrRef) -> Result<Vec<IssueComment>, GitHubError> {
        let first = format!(
            "/repos/{}/issues/{}/comments?per_page=100",
            pr.repo, pr.number
        );
        self.all_pages(pr.installation, first, 10_000).await
    }

    /// Comments in a pull request's conversation; returns the comment's id.
    pub async fn comment_on_pull(&self, pr: &PrRef, body: &str) -> Result<u64, GitHubError> {
        let path = format!("/repos/{}/issues/{}/comments", pr.repo, pr.number);
        self.post_comment(pr, &path, body).await
    }

    /// POSTs a comment `{ "body": … }` to `path`; returns the created comment's id.
    async fn post_comment(&self, pr: &PrRef, path: &str, body: &str) -> Result<u64, GitHubError> {
        let r = self
            .request(
                pr.installation,
                Method::POST,
                path,
                Some(&serde_json::json!({ "body": body })),
            )
            .await?;
        created_id(path, &r)
    }

    /// How `head` relates to `base`, with the files that differ; None when GitHub does not know
    /// one of the commits (404: a force-push dropped it) or cannot compare them (422).
    pub async fn compare(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        base: &CommitSha,
        head: &CommitSha,
    ) -> Result<Option<Comparison>, GitHubError> {
        // The files come with the first page; one commit a page keeps the answer small.
        let path = format!("/repos/{repo}/compare/{base}...{head}?per_page=1");
        match self.request(installation, Method::GET, &path, None).await {
            Ok(r) => decode(&path, &r.body).map(Some),
            Err(GitHubError {
                status: Some(404 | 422),
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn reviews(&self, pr: &PrRef) -> Result<Vec<Review>, GitHubError> {
        self.all_pages(pr.installation, pr.path("/reviews?per_page=100"), 10_000)
            .await
    }

    /// Creates a review (`event` absent: a pending review); returns its id.
    pub async fn create_review(&self, pr: &PrRef, review: &Value) -> Result<u64, GitHubError> {
        let path = pr.path("/reviews");
        let r = self
            .request(pr.installation, Method::POST, &path, Some(review))
            .await?;
        let v: Value = decode(&path, &r.body)?;
        v["id"].as_u64().ok_or_else(|| GitHubError {
            method: Method::POST,
            path,
            status: Some(r.status),
            message: "the created review has no id".into(),
            retryable: true,
            retry_after: None,
        })
    }

    pub async fn delete_pending_review(&self, pr: &PrRef, id: u64) -> Result<(), GitHubError> {
        let path = pr.path(&format!("/reviews/{id}"));
        self.request(pr.installation, Method::DELETE, &path, None)
            .await?;
        Ok(())
    }

    /// The App's webhook deliveries, newest first, as the App (JWT): pages of 100 followed by
    /// their `cursor` until one reaches back before `since_unix` or `max` are listed.
    pub async fn hook_deliveries(
        &self,
        since_unix: i64,
        max: usize,
    ) -> Result<Vec<HookDelivery>, GitHubError> {
        let mut out: Vec<HookDelivery> = Vec::new();
        let mut next = Some("/app/hook/deliveries?per_page=100".to_string());
        while let Some(path) = next.take() {
            let r = self.app_request(Method::GET, &path, None).await?;
            let page: Vec<HookDelivery> = decode(&path, &r.body)?;
            let reached_back = page.is_empty()
                || page
                    .iter()
                    .any(|d| d.delivered_unix() > 0 && d.delivered_unix() < since_unix);
            out.extend(page);
            if reached_back || out.len() >= max {
                break;
            }
            next = next_link(&r.headers).map(|u| path_of(&u));
        }
        out.retain(|d| d.delivered_unix() == 0 || d.delivered_unix() >= since_unix);
        out.truncate(max);
        Ok(out)
    }

    /// Asks GitHub to deliver delivery `id` again (`202 Accepted`), as the App (JWT).
    pub async fn redeliver(&self, id: u64) -> Result<(), GitHubError> {
        let path = format!("/app/hook/deliveries/{id}/attempts");
        self.app_request(Method::POST, &path, None).await?;
        Ok(())
    }

    pub async fn create_check_run(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        run: &Value,
    ) -> Result<u64, GitHubError> {
        let path = format!("/repos/{repo}/check-runs");
        let r = self
            .request(installation, Method::POST, &path, Some(run))
            .await?;
        let v: Value = decode(&path, &r.body)?;
        Ok(v["id"].as_u64().unwrap_or(0))
    }
}

/// The `id` of a created object.
fn created_id(path: &str, r: &super::Response) -> Result<u64, GitHubError> {
    let v: Value = decode(path, &r.body)?;
    v["id"].as_u64().ok_or_else(|| GitHubError {
        method: Method::POST,
        path: path.to_string(),
        status: Some(r.status),
        message: "the created comment has no id".into(),
        retryable: true,
        retry_after: None,
    })
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay). A segment that is
/// `.` or `..` is encoded too, so that nothing on the way reads it as a step up the path.
fn encode_segment(s: &str) -> String {
    if s == "." || s == ".." {
        return "%2E".repeat(s.len());
    }
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "link",
            "<https://api.github.com/repositories/1/pulls/7/files?per_page=100&page=2>; rel=\"next\", <https://api.github.com/repositories/1/pulls/7/files?per_page=100&page=3>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        let next = next_link(&h).unwrap();
        assert_eq!(
            path_of(&next),
            "/repositories/1/pulls/7/files?per_page=100&page=2"
        );
        assert_eq!(encode_segment("a b+c.py"), "a%20b%2Bc.py");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("."), "%2E");
        assert_eq!(encode_segment("..x"), "..x");
        assert_eq!(encode_segment("new\nline?#%.py"), "new%0Aline%3F%23%25.py");
        assert_eq!(encode_segment("caf\u{e9}"), "caf%C3%A9");
    }
}
