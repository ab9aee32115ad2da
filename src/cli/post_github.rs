//! `redline review --post github`: inside a GitHub Actions job, review the pull request the job
//! runs for, from the checkout, and post one review with the App's poster (`github::post`:
//! severity tags, fingerprints so that nothing is posted twice across runs, 422 splitting,
//! suggestions, the summary, and a check run when asked).
//!
//! Actions sets everything this needs: `GITHUB_TOKEN` (passed by the workflow), `GITHUB_REPOSITORY`,
//! `GITHUB_EVENT_PATH` (the `pull_request` event: number, base and head commits), `GITHUB_API_URL`
//! and `GITHUB_STEP_SUMMARY`. The token is sent as `Authorization: Bearer` and never printed.
//!
//! A pull request from a fork runs with a read-only token: GitHub answers 403 to the review.
//! The review then goes to the job summary and to SARIF, stderr says so, and the exit code is
//! `--fail-on`'s as usual. Any other failure to post also leaves the review in those two places
//! before the error (exit 2).

use crate::github::post::{PostRequest, Posted};
use crate::github::{GitHub, GitHubError, PrRef, TOKEN_INSTALLATION, markdown};
use crate::ids::{CommitSha, PrNumber, RepoName};
use anyhow::{Context, Result, anyhow, bail};
use redline_core::change::ChangeSet;
use redline_core::model::{Review, Severity};
use secrecy::SecretString;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The review marker's job id for reviews posted from Actions: one review per head commit (App
/// jobs count from 1).
const ACTIONS_JOB_ID: i64 = 0;

/// GitHub's advice: at least a second between requests that create content.
const WRITE_INTERVAL: Duration = Duration::from_secs(1);

/// What the Actions environment says about the run. (`SecretString` keeps the token out of
/// `Debug`.)
#[derive(Debug)]
pub struct ActionsEnv {
    token: SecretString,
    pub repo: RepoName,
    pub api_url: String,
    pub number: PrNumber,
    pub base_sha: String,
    pub head_sha: String,
    /// The head is in another repository (a fork): its token is most likely read-only.
    pub from_fork: bool,
    pub step_summary: Option<PathBuf>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ActionsEnv {
    /// Reads the environment and the event file; errors name what is missing or malformed.
    pub fn from_env() -> Result<ActionsEnv> {
        let outside = "`--post github` runs inside a GitHub Actions job";
        let token = env_var("GITHUB_TOKEN").ok_or_else(|| {
            anyhow!(
                "GITHUB_TOKEN is not set: {outside}; give the step `env: GITHUB_TOKEN: ${{{{ github.token }}}}`"
            )
        })?;
        let repo = env_var("GITHUB_REPOSITORY")
            .ok_or_else(|| anyhow!("GITHUB_REPOSITORY is not set: {outside}"))?;
        let repo = RepoName::parse(&repo).map_err(|e| anyhow!("GITHUB_REPOSITORY: {e}"))?;
        let api_url = env_var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        if let Some(event) = env_var("GITHUB_EVENT_NAME")
            && event != "pull_request"
            && event != "pull_request_target"
        {
            bail!(
                "this job runs for a `{event}` event: `--post github` reviews pull requests (`on: pull_request`)"
            );
        }
        let path = env_var("GITHUB_EVENT_PATH")
            .ok_or_else(|| anyhow!("GITHUB_EVENT_PATH is not set: {outside}"))?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the event file GITHUB_EVENT_PATH={path}"))?;
        let event: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow!("the event file {path} is not JSON: {e}"))?;
        let pr = &event["pull_request"];
        if !pr.is_object() {
            bail!("the event file {path} is not a pull_request event (it has no `pull_request`)");
        }
        let number = pr["number"]
            .as_u64()
            .or_else(|| event["number"].as_u64())
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("the event file {path} has no pull_request.number"))?;
        let sha = |side: &str| -> Result<String> {
            let s = pr[side]["sha"].as_str().unwrap_or("");
            if !is_sha(s) {
                bail!("the event file {path} has no commit id at pull_request.{side}.sha");
            }
            Ok(s.to_ascii_lowercase())
        };
        let (base_sha, head_sha) = (sha("base")?, sha("head")?);
        let full_name = |side: &str| pr[side]["repo"]["full_name"].as_str().map(str::to_string);
        let from_fork = matches!((full_name("head"), full_name("base")), (Some(h), Some(b)) if !h.eq_ignore_ascii_case(&b));
        Ok(ActionsEnv {
            token: SecretString::from(token),
            repo,
            api_url,
            number: PrNumber(number),
            base_sha,
            head_sha,
            from_fork,
            step_summary: env_var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        })
    }

    /// The pull request's base and head, checked to be in the checkout; the base of the diff is
    /// their merge-base, as on GitHub.
    pub fn range(&self, repo: &Path) -> Result<(String, String)> {
        for (what, sha) in [("base", &self.base_sha), ("head", &self.head_sha)] {
            if !redline_core::change::has_commit(repo, sha) {
                bail!(
                    "the pull request's {what} commit {} is not in the checkout at {}: check out with `fetch-depth: 0` (actions/checkout), or fetch it",
                    &sha[..12],
                    repo.display()
                );
            }
        }
        let merge_base = redline_core::change::merge_base(repo, &self.base_sha, &self.head_sha)?;
        Ok((merge_base, self.head_sha.clone()))
    }

    /// `.redline.toml` at the pull request's base commit: a pull request cannot loosen its own
    /// review (as with the App).
    pub fn config(&self, repo: &Path) -> Result<redline_core::config::Loaded> {
        let name = redline_core::config::FILE_NAME;
        let text = redline_core::change::file_at(repo, &self.base_sha, name)?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let origin = format!(
            "{name} at the pull request's base ({})",
            &self.base_sha[..12]
        );
        redline_core::config::from_text_in(text.as_deref(), &origin, repo)
    }
}

/// What posting options the command line gave.
pub struct PostOptions {
    pub max_comments: usize,
    pub check_run: bool,
}

/// How posting ended.
pub enum Outcome {
    Posted(Posted),
    /// The token may read but not write (a fork's pull request): nothing was posted.
    ReadOnly(GitHubError),
}

/// Posts the review of `change`. A 403 on posting is `ReadOnly`; other failures are errors.
pub async fn post(
    env: &ActionsEnv,
    change: &ChangeSet,
    review: &Review,
    options: &PostOptions,
) -> Result<Outcome> {
    let gh = GitHub::with_token(env.token.clone(), &env.api_url, WRITE_INTERVAL)?;
    let at = PrRef {
        installation: TOKEN_INSTALLATION,
        repo: env.repo.clone(),
        number: env.number,
    };
    let head = CommitSha::new(env.head_sha.clone());
    // Fingerprints of the findings already on the pull request: never posted again.
    let existing = gh
        .review_comments(&at)
        .await
        .context("cannot read the pull request's review comments")?;
    let known: HashSet<String> =
        crate::github::post::fingerprints_in(existing.iter().map(|c| c.body.as_str()));
    // GitHub takes line comments on the new-side lines of the diff's hunks only.
    let hunks: HashMap<&str, Vec<(u32, u32)>> = change
        .files
        .iter()
        .map(|f| {
            (
                f.diff.path(),
                f.diff.hunks.iter().filter_map(|h| h.new_range()).collect(),
            )
        })
        .collect();
    let commentable = |path: &str, line: u32| {
        hunks
            .get(path)?
            .iter()
            .position(|&(a, b)| line >= a && line <= b)
    };
    let new_text = |path: &str| {
        change
            .files
            .iter()
            .find(|f| f.diff.path() == path)
            .and_then(|f| f.new_content.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let demoted = HashMap::new();
    let request = PostRequest {
        pr: &at,
        head_sha: &head,
        job_id: ACTIONS_JOB_ID,
        review,
        commentable: &commentable,
        new_text: &new_text,
        known: &known,
        max_comments: options.max_comments,
        not_reviewed: &[],
        demoted: &demoted,
        demoted_min_confidence: None,
        // A workflow run reviews the whole pull request each time.
        scope: None,
        carried_critical: false,
    };
    let posted = match gh.post_review(&request).await {
        Ok(p) => p,
        Err(e) if e.status == Some(403) && e.retry_after.is_none() => {
            return Ok(Outcome::ReadOnly(e));
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot post the review")),
    };
    if options.check_run && !posted.already_posted {
        let partial = review.skipped().any(|f| f.language.is_some())
            || review
                .agent
                .as_ref()
                .is_some_and(|a| a.llm_skipped.is_some());
        if let Err(e) = gh
            .post_check_run(TOKEN_INSTALLATION, &env.repo, &head, review, partial)
            .await
        {
            // The review is posted; a missing `checks: write` permission costs only the check.
            eprintln!("redline: cannot create the check run: {e}");
        }
    }
    Ok(Outcome::Posted(posted))
}

/// The review as Markdown for the job summary (`GITHUB_STEP_SUMMARY`), with `status` (what
/// happened to the posting) under the title. Text from the change or a model goes through
/// `github::markdown`, as in posted reviews.
pub fn step_summary(review: &Review, status: &str) -> String {
    let counts = review.counts();
    let mut b = String::from("## redline review\n\n");
    b.push_str(&format!(
        "{} critical · {} warning · {} suggestion · {} file(s) reviewed, {} skipped · {}\n\n",
        counts["critical"],
        counts["warning"],
        counts["suggestion"],
        review.reviewed().count(),
        review.skipped().count(),
        match review.verdict() {
            redline_core::model::Verdict::RequestChanges => "changes requested",
            redline_core::model::Verdict::Comment => "comment",
        }
    ));
    b.push_str(&markdown::prose_line(status));
    b.push_str("\n\n");
    if !review.findings.is_empty() {
        b.push_str("| severity | where | finding |\n|---|---|---|\n");
        for f in &review.findings {
            let sev = match f.severity {
                Severity::Critical => "🔴 critical",
                Severity::Warning => "🟠 warning",
                Severity::Suggestion => "🔵 suggestion",
            };
            let mut finding = markdown::prose_line(&format!(
                "{}: {}",
                crate::truncate(&f.category, 80),
                crate::truncate(f.message.trim(), 400)
            ));
            if let Some(r) = &f.rule_id {
                finding.push(' ');
                finding.push_str(&markdown::code_span(r));
            }
            b.push_str(&format!(
                "| {sev} | {} | {} |\n",
                markdown::table_cell(&markdown::code_span(&format!("{}:{}", f.path, f.line))),
                markdown::table_cell(&finding),
            ));
        }
        b.push('\n');
    }
    let skipped: Vec<_> = review.skipped().collect();
    if !skipped.is_empty() {
        b.push_str("<details><summary>Not reviewed</summary>\n\n");
        for f in skipped {
            b.push_str(&format!(
                "- {}: {}\n",
                markdown::code_span(&f.path),
                markdown::prose_line(f.skipped.as_deref().unwrap_or(""))
            ));
        }
        b.push_str("\n</details>\n\n");
    }
    b
}

/// Appends `text` to the job summary file.
pub fn append_step_summary(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the job summary {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write the job summary {}", path.display()))
}

/// Where SARIF goes when the review cannot be posted and no `--sarif` was given:
/// `$RUNNER_TEMP/redline.sarif` in Actions, else `redline.sarif` in the current folder.
pub fn default_sarif_path() -> PathBuf {
    env_var("RUNNER_TEMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join("redline.sarif")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_hex_of_sha1_or_sha256_length() {
        assert!(is_sha(&"a".repeat(40)));
        assert!(is_sha(&"0F".repeat(32)));
        assert!(!is_sha("--upload-pack=x"));
        assert!(!is_sha(&"g".repeat(40)));
        assert!(!is_sha("abc"));
    }
}
