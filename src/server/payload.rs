//! The webhook payloads the App acts on, as typed structs: only the fields redline reads. A body
//! whose fields have the wrong type is refused with the path of the field that failed
//! (`serde_path_to_error`); a field the event needs but the body lacks is named with its JSON
//! pointer (`payload has no /pull_request/number`).

use crate::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A delivery's event, parsed.
pub enum Event {
    Ping,
    PullRequest(PullRequestEvent),
    IssueComment(IssueCommentEvent),
    ReviewComment(ReviewCommentEvent),
    ReviewThread(ReviewThreadEvent),
    Installation(InstallationEvent),
    InstallationRepositories(InstallationRepositoriesEvent),
    /// An event the App does not act on.
    Other(String),
}

impl Event {
    /// Parses `body` as the payload of `event`; the error says which field is wrong or missing.
    pub fn parse(event: &str, body: &serde_json::Value) -> Result<Event, String> {
        Ok(match event {
            "ping" => Event::Ping,
            "pull_request" => Event::PullRequest(typed(body)?),
            "issue_comment" => Event::IssueComment(typed(body)?),
            "pull_request_review_comment" => Event::ReviewComment(typed(body)?),
            "pull_request_review_thread" => Event::ReviewThread(typed(body)?),
            "installation" => Event::Installation(typed(body)?),
            "installation_repositories" => Event::InstallationRepositories(typed(body)?),
            other => Event::Other(other.to_string()),
        })
    }
}

fn typed<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("payload: {inner}")
        } else {
            format!("payload field /{}: {inner}", path.replace('.', "/"))
        }
    })
}

/// A required field, or the error that names it.
pub fn need<T>(value: Option<T>, pointer: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("payload has no {pointer}"))
}

#[derive(Debug, Deserialize)]
pub struct Repository {
    pub full_name: Option<RepoName>,
}

#[derive(Debug, Deserialize)]
pub struct Account {
    pub login: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Installation {
    pub id: Option<InstallationId>,
    pub account: Option<Account>,
}

#[derive(Debug, Deserialize)]
pub struct Head {
    pub sha: Option<CommitSha>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequest {
    pub number: Option<PrNumber>,
    pub head: Option<Head>,
    #[serde(default)]
    pub draft: Option<bool>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub merged: Option<bool>,
}

/// `pull_request`.
#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    #[serde(default)]
    pub action: String,
    pub repository: Option<Repository>,
    pub pull_request: Option<PullRequest>,
    pub installation: Option<Installation>,
}

impl PullRequestEvent {
    pub fn repo(&self) -> Result<RepoName, String> {
        repo_name(self.repository.as_ref())
    }

    pub fn number(&self) -> Result<PrNumber, String> {
        need(
            self.pull_request.as_ref().and_then(|p| p.number),
            "/pull_request/number",
        )
    }

    pub fn head(&self) -> Result<CommitSha, String> {
        need(
            self.pull_request
                .as_ref()
                .and_then(|p| p.head.as_ref())
                .and_then(|h| h.sha.clone()),
            "/pull_request/head/sha",
        )
    }

    pub fn installation(&self) -> Result<InstallationId, String> {
        installation_id(self.installation.as_ref())
    }
}

fn repo_name(r: Option<&Repository>) -> Result<RepoName, String> {
    need(r.and_then(|r| r.full_name.clone()), "/repository/full_name")
}

fn installation_id(i: Option<&Installation>) -> Result<InstallationId, String> {
    need(i.and_then(|i| i.id), "/installation/id")
}

#[derive(Debug, Deserialize)]
pub struct User {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub login: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Comment {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Option<User>,
    pub author_association: Option<String>,
    pub performed_via_github_app: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Issue {
    pub number: Option<PrNumber>,
    /// Present (an object) when the issue is a pull request.
    pub pull_request: Option<serde_json::Value>,
}

/// `issue_comment`.
#[derive(Debug, Deserialize)]
pub struct IssueCommentEvent {
    #[serde(default)]
    pub action: String,
    pub repository: Option<Repository>,
    pub issue: Option<Issue>,
    pub comment: Option<Comment>,
    pub sender: Option<User>,
    pub installation: Option<Installation>,
}

impl IssueCommentEvent {
    pub fn comment_id(&self) -> Result<i64, String> {
        need(self.comment.as_ref().and_then(|c| c.id), "/comment/id")
    }

    /// The commenter's login ("" when absent).
    pub fn login(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .or(self.sender.as_ref())
            .and_then(|u| u.login.as_deref())
            .unwrap_or("")
    }

    pub fn repo(&self) -> Result<RepoName, String> {
        repo_name(self.repository.as_ref())
    }

    pub fn number(&self) -> Result<PrNumber, String> {
        need(self.issue.as_ref().and_then(|i| i.number), "/issue/number")
    }

    pub fn installation(&self) -> Result<InstallationId, String> {
        installation_id(self.installation.as_ref())
    }

    /// Whether the comment is on a pull request (not a plain issue).
    pub fn on_pull_request(&self) -> bool {
        self.issue
            .as_ref()
            .and_then(|i| i.pull_request.as_ref())
            .is_some_and(|p| !p.is_null())
    }

    pub fn body(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.body.as_deref())
            .unwrap_or("")
    }

    /// Written by a bot, or posted by an app.
    pub fn by_bot(&self) -> bool {
        let kind = self
            .comment
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .and_then(|u| u.kind.as_deref())
            .or(self.sender.as_ref().and_then(|u| u.kind.as_deref()))
            .unwrap_or("");
        kind == "Bot"
            || self
                .comment
                .as_ref()
                .and_then(|c| c.performed_via_github_app.as_ref())
                .is_some_and(|a| a.is_object())
    }

    /// The commenter's association with the repository (`OWNER`, `MEMBER`, ...).
    pub fn association(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.author_association.as_deref())
            .unwrap_or("NONE")
    }
}

/// A line comment of a pull request review, as `pull_request_review_comment` carries it.
#[derive(Debug, Deserialize)]
pub struct LineComment {
    pub id: Option<i64>,
    /// The thread's first comment, when this one is a reply.
    #[serde(default)]
    pub in_reply_to_id: Option<i64>,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Option<User>,
    pub author_association: Option<String>,
    #[serde(default)]
    pub performed_via_github_app: Option<serde_json::Value>,
}

/// `pull_request_review_comment`.
#[derive(Debug, Deserialize)]
pub struct ReviewCommentEvent {
    #[serde(default)]
    pub action: String,
    pub repository: Option<Repository>,
    pub pull_request: Option<PullRequest>,
    pub comment: Option<LineComment>,
    pub sender: Option<User>,
    pub installation: Option<Installation>,
}

impl ReviewCommentEvent {
    pub fn repo(&self) -> Result<RepoName, String> {
        repo_name(self.repository.as_ref())
    }

    pub fn number(&self) -> Result<PrNumber, String> {
        need(
            self.pull_request.as_ref().and_then(|p| p.number),
            "/pull_request/number",
        )
    }

    pub fn installation(&self) -> Result<InstallationId, String> {
        installation_id(self.installation.as_ref())
    }

    pub fn comment_id(&self) -> Result<i64, String> {
        need(self.comment.as_ref().and_then(|c| c.id), "/comment/id")
    }

    pub fn body(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.body.as_deref())
            .unwrap_or("")
    }

    /// The commenter's login ("" when absent).
    pub fn login(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.user.as_ref())
            .or(self.sender.as_ref())
            .and_then(|u| u.login.as_deref())
            .unwrap_or("")
    }

    /// Written by a bot (redline included), or posted by an app.
    pub fn by_bot(&self) -> bool {
        let user = self.comment.as_ref().and_then(|c| c.user.as_ref());
        let kind = user
            .and_then(|u| u.kind.as_deref())
            .or(self.sender.as_ref().and_then(|u| u.kind.as_deref()))
            .unwrap_or("");
        kind == "Bot"
            || self.login().ends_with("[bot]")
            || self
                .comment
                .as_ref()
                .and_then(|c| c.performed_via_github_app.as_ref())
                .is_some_and(|a| a.is_object())
    }

    /// The commenter's association with the repository (`OWNER`, `MEMBER`, ...).
    pub fn association(&self) -> &str {
        self.comment
            .as_ref()
            .and_then(|c| c.author_association.as_deref())
            .unwrap_or("NONE")
    }
}

#[derive(Debug, Deserialize)]
pub struct ThreadComment {
    pub id: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Thread {
    pub comments: Option<Vec<ThreadComment>>,
}

/// `pull_request_review_thread`.
#[derive(Debug, Deserialize)]
pub struct ReviewThreadEvent {
    #[serde(default)]
    pub action: String,
    pub repository: Option<Repository>,
    pub thread: Option<Thread>,
}

#[derive(Debug, Deserialize)]
pub struct RepositoryRef {
    pub full_name: Option<String>,
}

/// `installation`.
#[derive(Debug, Deserialize)]
pub struct InstallationEvent {
    #[serde(default)]
    pub action: String,
    pub installation: Option<Installation>,
    pub repositories: Option<Vec<RepositoryRef>>,
}

/// `installation_repositories`.
#[derive(Debug, Deserialize)]
pub struct InstallationRepositoriesEvent {
    #[serde(default)]
    pub action: String,
    pub installation: Option<Installation>,
    #[serde(default)]
    pub repositories_added: Vec<RepositoryRef>,
    #[serde(default)]
    pub repositories_removed: Vec<RepositoryRef>,
}

impl Installation {
    pub fn login(&self) -> &str {
        self.account
            .as_ref()
            .and_then(|a| a.login.as_deref())
            .unwrap_or("")
    }
}

/// The `full_name`s of a list of repositories.
pub fn names(repos: &[RepositoryRef]) -> Vec<String> {
    repos.iter().filter_map(|r| r.full_name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_names_its_field_and_a_missing_field_its_pointer() {
        let e = Event::parse(
            "pull_request",
            &serde_json::json!({"action": "opened", "pull_request": {"number": "seven"}}),
        )
        .err()
        .unwrap();
        assert!(e.contains("/pull_request/number"), "{e}");
        let Ok(Event::PullRequest(p)) =
            Event::parse("pull_request", &serde_json::json!({"action": "opened"}))
        else {
            panic!("parses")
        };
        assert_eq!(
            p.number().unwrap_err(),
            "payload has no /pull_request/number"
        );
        let e = Event::parse(
            "pull_request",
            &serde_json::json!({"repository": {"full_name": "no-slash"}}),
        )
        .err()
        .unwrap();
        assert!(e.contains("/repository/full_name"), "{e}");
    }
}
