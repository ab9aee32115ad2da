//! Turning a review into one GitHub pull-request review: line comments on the new side of the diff
//! (each with a hidden fingerprint so it is never posted twice), a summary body with the coverage
//! of every file, and the event from the verdict. Findings that cannot go inline (over the cap,
//! outside the diff, refused by GitHub) are listed in the summary: nothing is lost. Every piece of
//! text from the pull request or a model goes through `markdown` for the place it takes.

use super::markdown;
use super::{GitHub, GitHubError, PrRef};
use crate::ids::{CommitSha, InstallationId, RepoName};
use redline_core::model::{Coverage, Finding, Review, Severity, Verdict};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// The marker that carries a comment's fingerprint (invisible in rendered Markdown).
const FP_MARK: &str = "<!-- redline:fp=";
/// Where the summary's coverage table stops growing (GitHub's body limit is 65,536 characters).
const SUMMARY_TABLE_BUDGET: usize = 50_000;
/// Longest message of a line comment (a model can write pages).
const MAX_MESSAGE_CHARS: usize = 4_000;
/// Longest note in the summary, and all notes together.
const MAX_NOTE_CHARS: usize = 1_500;
const MAX_NOTES_CHARS: usize = 6_000;

/// The hidden marker of a line comment: its fingerprint.
fn fingerprint_marker(fp: &str) -> String {
    markdown::html_comment(&format!("redline:fp={fp}"))
}

/// The hidden marker of a summary review: which job and head it belongs to.
fn review_marker(job_id: i64, head: &CommitSha) -> String {
    markdown::html_comment(&format!("redline:review job={job_id} head={head}"))
}

/// Lines of code a fingerprint covers at most.
const MAX_CODE_LINES: usize = 20;

/// How many lines of code a finding's fingerprint covers.
pub fn code_lines(f: &Finding) -> usize {
    ((f.end_line.max(f.line) - f.line + 1) as usize).min(MAX_CODE_LINES)
}

/// `n` lines of `text` from `line` (1-based), each with its whitespace folded.
fn code_at(text: &str, line: usize, n: usize) -> String {
    text.lines()
        .skip(line.saturating_sub(1))
        .take(n)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn fingerprint_of(key: &str, path: &str, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(path.as_bytes());
    h.update(b"\n");
    h.update(code.as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

/// What a fingerprint is keyed on: the rule, or the category when no rule produced it.
pub fn key_of(f: &Finding) -> &str {
    f.rule_id.as_deref().unwrap_or(&f.category)
}

/// A finding's identity across pushes: its rule (or category) and the code it points at, with
/// whitespace folded, but not its line number, so an unchanged finding that moved is still known.
pub fn fingerprint(f: &Finding, new_text: Option<&str>) -> String {
    let code = new_text
        .map(|t| code_at(t, f.line as usize, code_lines(f)))
        .unwrap_or_default();
    fingerprint_of(key_of(f), &f.path, &code)
}

/// Whether `text` (a file's new content) still holds the code a fingerprint was taken of,
/// anywhere in the file: code that only moved is still there.
pub fn still_present(fp: &str, key: &str, path: &str, text: &str, n: usize) -> bool {
    let folded: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let n = n.max(1);
    if folded.is_empty() {
        return fingerprint_of(key, path, "") == fp;
    }
    // Every window of n lines (shorter at the end of the file, as code_at takes them).
    (0..folded.len())
        .any(|i| fingerprint_of(key, path, &folded[i..(i + n).min(folded.len())].join("\n")) == fp)
}

/// The fingerprints found in comment bodies.
pub fn fingerprints_in<'a>(bodies: impl Iterator<Item = &'a str>) -> HashSet<String> {
    bodies
        .filter_map(|b| {
            let start = b.find(FP_MARK)? + FP_MARK.len();
            let rest = &b[start..];
            Some(
                rest[..rest.find(' ').or(rest.find('-'))?]
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}

/// Where a finding went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A line comment.
    Inline,
    /// Already on the pull request (or decided before): not posted again.
    Repeat,
    /// Held back from a line comment by this repository's feedback; listed in the summary.
    Demoted(String),
    /// Listed in the summary instead of a line comment, with why.
    Summary(String),
}

impl Placement {
    /// The kind, as the store keeps it: `inline`, `repeat`, `demoted` or `summary`.
    pub fn kind(&self) -> &'static str {
        match self {
            Placement::Inline => "inline",
            Placement::Repeat => "repeat",
            Placement::Demoted(_) => "demoted",
            Placement::Summary(_) => "summary",
        }
    }
}

/// A finding on its way to GitHub.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub finding: Finding,
    pub fingerprint: String,
    pub placement: Placement,
    pub comment_id: Option<u64>,
}

/// What one posting did.
#[derive(Debug, Default)]
pub struct Posted {
    pub review_id: Option<u64>,
    pub findings: Vec<Outgoing>,
    /// The summary review already existed (a worker died after posting it): nothing was posted.
    pub already_posted: bool,
}

/// Everything needed to post.
pub struct PostRequest<'a> {
    pub pr: &'a PrRef,
    pub head_sha: &'a CommitSha,
    pub job_id: i64,
    pub review: &'a Review,
    /// (path, new-side lines GitHub accepts comments on: every line of every hunk)
    pub commentable: &'a (dyn Fn(&str, u32) -> Option<usize> + Sync),
    pub new_text: &'a (dyn Fn(&str) -> Option<String> + Sync),
    /// Fingerprints already on the pull request or decided before (never repeated).
    pub known: &'a HashSet<String>,
    pub max_comments: usize,
    /// Files left out before the review (over the size budget), with why.
    pub not_reviewed: &'a [(String, String)],
    /// Learned from this repository's past outcomes: `rule:<id>` or `category:<name>` mapped to
    /// why its findings are held back from line comments.
    pub demoted: &'a std::collections::HashMap<String, String>,
    /// With the `confidence` feedback action, demoted findings at or above this stay inline.
    pub demoted_min_confidence: Option<f64>,
    /// What this review covered when it was not simply the pull request (a push reviewed
    /// incrementally, or in full after a force-push), and the pull request's open findings: one
    /// line of text, escaped as prose.
    pub scope: Option<&'a str>,
    /// An open critical finding on a file this review did not look at (an incremental review):
    /// it still requests changes, as a full review that found it again would.
    pub carried_critical: bool,
}

impl PostRequest<'_> {
    /// Why a finding is held back from a line comment by past feedback, if it is.
    fn held_back(&self, f: &Finding) -> Option<&String> {
        let why = f
            .rule_id
            .as_ref()
            .and_then(|r| self.demoted.get(&format!("rule:{r}")))
            .or_else(|| self.demoted.get(&format!("category:{}", f.category)))?;
        match self.demoted_min_confidence {
            Some(min) if f.confidence >= min => None,
            _ => Some(why),
        }
    }
}

fn severity_tag(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "🔴 **critical**",
        Severity::Warning => "🟠 **warning**",
        Severity::Suggestion => "🔵 **suggestion**",
    }
}

/// Longest suggestion posted as a GitHub suggestion block (longer fixes stay in the prose).
const MAX_SUGGESTION_LINES: usize = 8;

/// A line comment's Markdown. `suggest`: the comment covers exactly the lines the finding's
/// suggestion replaces, so it can be offered as a one-click GitHub suggestion. The category,
/// message, guidance and suggestion may come from a model: each is escaped for its place.
pub fn comment_body(f: &Finding, fp: &str, suggest: bool) -> String {
    let mut b = format!(
        "{} · {}",
        severity_tag(f.severity),
        markdown::prose_line(&crate::truncate(&f.category, 80))
    );
    if let Some(r) = &f.rule_id {
        b.push_str(&format!(" · {}", markdown::code_span(r)));
    }
    b.push_str("\n\n");
    b.push_str(&markdown::prose(&crate::truncate(
        f.message.trim(),
        MAX_MESSAGE_CHARS,
    )));
    b.push('\n');
    let mut meta = Vec::new();
    if !f.guidance.is_empty() {
        meta.push(format!(
            "guidance: {}",
            markdown::prose_line(&f.guidance.join(", "))
        ));
    }
    if let Some(c) = &f.cwe {
        meta.push(markdown::prose_line(c));
    }
    meta.push(format!("confidence {:.2}", f.confidence));
    meta.push(format!("source: {}", f.source.as_str()));
    if let Some(sug) = f.suggestion.as_deref().filter(|s| {
        suggest && s.lines().count() <= MAX_SUGGESTION_LINES && s.len() <= MAX_MESSAGE_CHARS
    }) {
        b.push_str(&format!("\n{}\n", markdown::suggestion(sug)));
    }
    b.push_str(&format!("\n<sub>{}</sub>\n", meta.join(" · ")));
    b.push_str(&fingerprint_marker(fp));
    b
}

impl GitHub {
    /// Posts the review; 422s on some comments move those into the summary and the rest go out.
    pub async fn post_review(&self, req: &PostRequest<'_>) -> Result<Posted, GitHubError> {
        // A worker that died after posting leaves its review behind: do not post it twice, but
        // record what it posted (matched by fingerprint).
        let marker = review_marker(req.job_id, req.head_sha);
        let existing = self.reviews(req.pr).await?;
        if let Some(r) = existing.iter().find(|r| {
            r.state != "PENDING" && r.body.as_deref().is_some_and(|b| b.contains(&marker))
        }) {
            return self.already_posted(req, r.id).await;
        }
        // A pending review of ours (left by an interrupted probe) would make GitHub refuse every
        // new review on this pull request.
        for r in existing.iter().filter(|r| r.state == "PENDING") {
            self.delete_pending_review(req.pr, r.id).await?;
        }
        let mut out = place_findings(req);
        let mut to_post: Vec<usize> = (0..out.len())
            .filter(|&i| out[i].placement == Placement::Inline)
            .collect();
        let event = match req.review.verdict() {
            Verdict::RequestChanges => "REQUEST_CHANGES",
            Verdict::Comment if req.carried_critical => "REQUEST_CHANGES",
            Verdict::Comment => "COMMENT",
        };
        let mut refused_reason: Option<String> = None;
        let review_id = loop {
            let payload = json!({
                "commit_id": req.head_sha,
                "body": summary_body(req, &out, &marker),
                "event": event,
                "comments": to_post
                    .iter()
                    .map(|&i| comment_json(&out[i].finding, &out[i].fingerprint, req.commentable))
                    .collect::<Vec<_>>(),
            });
            match self.create_review(req.pr, &payload).await {
                Ok(id) => break id,
                Err(e) if e.status == Some(422) && !to_post.is_empty() => {
                    tracing::warn!(pr = %req.pr, error = %e, "GitHub refused the review's comments; finding which");
                    let bad = self.find_refused(req, &out, &to_post).await?;
                    // When no single comment is at fault, none goes inline.
                    let bad: Vec<usize> = if bad.is_empty() { to_post.clone() } else { bad };
                    let reason = refused_reason
                        .get_or_insert_with(|| e.message.clone())
                        .clone();
                    for i in &bad {
                        out[*i].placement = Placement::Summary(format!(
                            "GitHub refused the line comment ({reason})"
                        ));
                    }
                    to_post.retain(|i| !bad.contains(i));
                }
                Err(e) => return Err(e),
            }
        };
        if !to_post.is_empty() {
            self.note_comment_ids(req.pr, &mut out).await;
        }
        Ok(Posted {
            review_id: Some(review_id),
            findings: out,
            already_posted: false,
        })
    }

    /// The review this job posted before it died: what it posted, matched by fingerprint.
    async fn already_posted(
        &self,
        req: &PostRequest<'_>,
        review_id: u64,
    ) -> Result<Posted, GitHubError> {
        let comments = self.review_comments(req.pr).await?;
        let by_fp: std::collections::HashMap<String, u64> = comments
            .iter()
            .filter_map(|c| {
                Some((
                    fingerprints_in(std::iter::once(c.body.as_str()))
                        .into_iter()
                        .next()?,
                    c.id,
                ))
            })
            .collect();
        let findings = req
            .review
            .findings
            .iter()
            .map(|f| {
                let fp = fingerprint(f, (req.new_text)(&f.path).as_deref());
                let comment_id = by_fp.get(&fp).copied();
                Outgoing {
                    finding: f.clone(),
                    placement: if comment_id.is_some() {
                        Placement::Inline
                    } else {
                        Placement::Summary("posted by an earlier attempt".into())
                    },
                    fingerprint: fp,
                    comment_id,
                }
            })
            .collect();
        Ok(Posted {
            review_id: Some(review_id),
            findings,
            already_posted: true,
        })
    }

    /// Comment ids of the posted line comments, for acceptance tracking: matched by fingerprint.
    async fn note_comment_ids(&self, pr: &PrRef, out: &mut [Outgoing]) {
        let Ok(comments) = self.review_comments(pr).await else {
            return;
        };
        for c in comments {
            let Some(fp) = fingerprints_in(std::iter::once(c.body.as_str()))
                .into_iter()
                .next()
            else {
                continue;
            };
            if let Some(o) = out
                .iter_mut()
                .find(|o| o.fingerprint == fp && o.placement == Placement::Inline)
            {
                o.comment_id = Some(c.id);
            }
        }
    }

    /// Which comments GitHub refuses: since a 422 refuses the whole review without saying which
    /// comment, groups are tried as pending reviews (invisible to others, deleted at once) and
    /// split until the refused ones are alone.
    async fn find_refused(
        &self,
        req: &PostRequest<'_>,
        out: &[Outgoing],
        candidates: &[usize],
    ) -> Result<Vec<usize>, GitHubError> {
        let mut bad = Vec::new();
        let mut stack = vec![candidates.to_vec()];
        let mut cleanups = 0;
        while let Some(group) = stack.pop() {
            let payload = json!({
                "commit_id": req.head_sha,
                "comments": group.iter().map(|&i| comment_json(&out[i].finding, &out[i].fingerprint, req.commentable)).collect::<Vec<_>>(),
            });
            match self.create_review(req.pr, &payload).await {
                Ok(id) => self.delete_pending_review(req.pr, id).await?,
                // Not this group's fault: a pending review exists. Remove it and try again.
                Err(e)
                    if e.status == Some(422)
                        && e.message.to_ascii_lowercase().contains("pending review")
                        && cleanups < 3 =>
                {
                    cleanups += 1;
                    for r in self.reviews(req.pr).await? {
                        if r.state == "PENDING" {
                            self.delete_pending_review(req.pr, r.id).await?;
                        }
                    }
                    stack.push(group);
                }
                Err(e) if e.status == Some(422) => {
                    if group.len() == 1 {
                        bad.push(group[0]);
                    } else {
                        let (a, b) = group.split_at(group.len() / 2);
                        stack.push(b.to_vec());
                        stack.push(a.to_vec());
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(bad)
    }

    /// A check run for the review: never success when coverage was partial or the LLM skipped.
    pub async fn post_check_run(
        &self,
        installation: InstallationId,
        repo: &RepoName,
        head_sha: &CommitSha,
        review: &Review,
        partial: bool,
    ) -> Result<u64, GitHubError> {
        let counts = review.counts();
        let conclusion = if counts["critical"] > 0 {
            "failure"
        } else if partial {
            "neutral"
        } else {
            "success"
        };
        let run = json!({
            "name": "redline",
            "head_sha": head_sha,
            "status": "completed",
            "conclusion": conclusion,
            "output": {
                "title": format!("{} critical, {} warning, {} suggestion", counts["critical"], counts["warning"], counts["suggestion"]),
                "summary": if partial { "Coverage was partial: see the review summary for what was not reviewed." } else { "Every changed file was reviewed." },
            }
        });
        self.create_check_run(installation, repo, &run).await
    }
}

/// Where each finding goes: a line comment, the summary (with why), or nowhere (a repeat).
fn place_findings(req: &PostRequest<'_>) -> Vec<Outgoing> {
    let mut out: Vec<Outgoing> = Vec::new();
    let mut inline = 0;
    let mut seen: HashSet<String> = HashSet::new();
    for f in &req.review.findings {
        let fp = fingerprint(f, (req.new_text)(&f.path).as_deref());
        let placement = if req.known.contains(&fp) || !seen.insert(fp.clone()) {
            Placement::Repeat
        } else if let Some(why) = req.held_back(f) {
            Placement::Demoted(why.clone())
        } else if (req.commentable)(&f.path, f.line).is_none() {
            Placement::Summary("not on a line of the diff".into())
        } else if inline >= req.max_comments {
            Placement::Summary(format!(
                "over the cap of {} line comments",
                req.max_comments
            ))
        } else {
            inline += 1;
            Placement::Inline
        };
        out.push(Outgoing {
            finding: f.clone(),
            fingerprint: fp,
            placement,
            comment_id: None,
        });
    }
    out
}

fn comment_json(f: &Finding, fp: &str, commentable: &dyn Fn(&str, u32) -> Option<usize>) -> Value {
    // A range only when both ends sit in the same hunk (GitHub's rule).
    let range =
        f.end_line > f.line && commentable(&f.path, f.end_line) == commentable(&f.path, f.line);
    // A suggestion replaces exactly the commented lines: only when those are the finding's.
    let suggest = range || f.end_line <= f.line;
    let mut c = json!({
        "path": f.path,
        "line": f.line,
        "side": "RIGHT",
        "body": comment_body(f, fp, suggest),
    });
    if range {
        c["line"] = json!(f.end_line);
        c["start_line"] = json!(f.line);
        c["start_side"] = json!("RIGHT");
    }
    c
}

/// The summary review's Markdown: verdict, counts, findings that are not line comments, the
/// coverage of every file, and what the review cost.
fn summary_body(req: &PostRequest<'_>, out: &[Outgoing], marker: &str) -> String {
    let r = req.review;
    let counts = r.counts();
    let mut b = String::from("## redline review\n\n");
    let new: Vec<&Outgoing> = out
        .iter()
        .filter(|o| o.placement != Placement::Repeat)
        .collect();
    if r.findings.is_empty() {
        b.push_str("No findings. ");
    } else {
        b.push_str(&format!(
            "{} critical · {} warning · {} suggestion",
            counts["critical"], counts["warning"], counts["suggestion"]
        ));
        let repeats = out.len() - new.len();
        if repeats > 0 {
            b.push_str(&format!(
                " ({repeats} already reported on this pull request and not repeated)"
            ));
        }
        b.push_str(". ");
    }
    let reviewed = r.reviewed().count();
    let skipped = r.skipped().count() + req.not_reviewed.len();
    b.push_str(&format!(
        "{reviewed} file(s) reviewed, {skipped} not reviewed.\n"
    ));
    if let Some(scope) = req.scope {
        b.push_str(&format!("\n{}\n", markdown::prose_line(scope)));
    }

    let elsewhere: Vec<(&Outgoing, String)> = new
        .iter()
        .filter_map(|o| match &o.placement {
            Placement::Summary(why) => Some((*o, why.clone())),
            Placement::Demoted(why) => Some((*o, format!("held back: {why}"))),
            Placement::Inline | Placement::Repeat => None,
        })
        .collect();
    if !elsewhere.is_empty() {
        b.push_str("\n### Findings not posted as line comments\n\n");
        let listed = elsewhere.len();
        for (i, (o, why)) in elsewhere.into_iter().enumerate() {
            if b.len() > SUMMARY_TABLE_BUDGET / 2 {
                b.push_str(&format!("- … and {} more\n", listed - i));
                break;
            }
            let f = &o.finding;
            b.push_str(&format!(
                "- {} {} {}: {} _({})_\n",
                severity_tag(f.severity),
                markdown::code_span(&format!("{}:{}", f.path, f.line)),
                markdown::prose_line(&crate::truncate(&f.category, 80)),
                markdown::prose_line(&crate::truncate(f.message.trim(), 300)),
                markdown::prose_line(&why),
            ));
        }
    }

    b.push_str(
        "\n<details><summary>Coverage</summary>\n\n| file | status | review |\n|---|---|---|\n",
    );
    // GitHub refuses bodies over 65,536 characters: the table stops well before.
    let mut rows = 0;
    let total_rows = r.files.len() + req.not_reviewed.len();
    for f in &r.files {
        if b.len() > SUMMARY_TABLE_BUDGET {
            break;
        }
        rows += 1;
        let how = match (
            &f.skipped,
            r.agent
                .as_ref()
                .and_then(|a| a.files.iter().find(|x| x.path == f.path)),
        ) {
            (Some(why), _) => format!("skipped: {}", markdown::prose_line(why)),
            (None, Some(rec)) if rec.coverage != Coverage::Agent => format!(
                "rules only{}",
                rec.reason
                    .as_deref()
                    .map(|x| format!(" ({})", markdown::prose_line(x)))
                    .unwrap_or_default()
            ),
            (None, Some(_)) => "rules + LLM".to_string(),
            (None, None) => "rules".to_string(),
        };
        b.push_str(&format!(
            "| {} | {} | {} |\n",
            markdown::table_cell(&markdown::code_span(&f.path)),
            f.status.as_str(),
            markdown::table_cell(&how)
        ));
    }
    for (path, why) in req.not_reviewed {
        if b.len() > SUMMARY_TABLE_BUDGET {
            break;
        }
        rows += 1;
        b.push_str(&format!(
            "| {} | | {} |\n",
            markdown::table_cell(&markdown::code_span(path)),
            markdown::table_cell(&format!("not reviewed: {}", markdown::prose_line(why)))
        ));
    }
    if rows < total_rows {
        b.push_str(&format!(
            "| … and {} more file(s) | | |\n",
            total_rows - rows
        ));
    }
    b.push_str("\n</details>\n\n");
    b.push_str(&notes_quote(&r.notes));
    match &r.agent {
        Some(a) => {
            let model = a
                .files
                .iter()
                .find_map(|f| f.model.clone())
                .unwrap_or_else(|| "none".into());
            b.push_str(&format!(
                "\n<sub>engine: agent · model: {} · prompt {} · {} LLM call(s) · {} tokens in, {} out · ${:.4}{}</sub>\n",
                markdown::prose_line(&model),
                markdown::prose_line(&a.prompt_version),
                a.llm_calls,
                a.prompt_tokens,
                a.completion_tokens,
                a.cost_usd,
                a.llm_skipped
                    .as_deref()
                    .map(|s| format!(" · LLM skipped: {}", markdown::prose_line(s)))
                    .unwrap_or_default()
            ));
        }
        None => b.push_str(&format!(
            "\n<sub>engine: {} (no LLM) · rules {}</sub>\n",
            r.engine.as_str(),
            markdown::prose_line(&r.rules_version)
        )),
    }
    b.push_str(marker);
    b
}

/// The review's notes as a block quote, each escaped and bounded (a note can echo a
/// `.redline.toml` key or a model's words).
fn notes_quote(notes: &[String]) -> String {
    let mut out = String::new();
    for n in notes {
        if out.len() > MAX_NOTES_CHARS {
            out.push_str("> …\n");
            break;
        }
        for line in markdown::prose(&crate::truncate(n, MAX_NOTE_CHARS)).lines() {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(line: u32) -> Finding {
        Finding {
            path: "app/db.py".into(),
            line,
            end_line: line,
            severity: Severity::Critical,
            category: "security".into(),
            message: "SQL built from input".into(),
            confidence: 0.9,
            rule_id: Some("py-sqli".into()),
            source: redline_core::model::FindingSource::Rules,
            cwe: None,
            guidance: vec![],
            suggestion: None,
        }
    }

    #[test]
    fn fingerprints_ignore_line_moves_and_whitespace() {
        let before = "import os\n\ncur.execute(\"select \" + q)\n";
        let after = "import os\nimport sys\n\n    cur.execute(\"select \"  +  q)\n";
        let a = fingerprint(&finding(3), Some(before));
        let b = fingerprint(&finding(4), Some(after));
        assert_eq!(a, b);
        let fixed = "import os\nimport sys\n\ncur.execute(\"select ?\", q)\n";
        let c = fingerprint(&finding(4), Some(fixed));
        assert_ne!(a, c, "changed code is a new finding");
        assert!(
            still_present(&a, "py-sqli", "app/db.py", after, 1),
            "moved code is still there"
        );
        assert!(
            !still_present(&a, "py-sqli", "app/db.py", fixed, 1),
            "changed code is gone"
        );
        let body = comment_body(&finding(3), &a, true);
        assert_eq!(
            fingerprints_in(std::iter::once(body.as_str())),
            HashSet::from([a])
        );
    }

    #[test]
    fn suggestions_only_where_the_comment_covers_the_replaced_lines() {
        let mut f = finding(3);
        f.suggestion = Some("cur.execute(\"select ?\", (q,))".into());
        let one_hunk = |_: &str, _: u32| Some(0);
        assert!(
            comment_json(&f, "fp", &one_hunk)["body"]
                .as_str()
                .unwrap()
                .contains("```suggestion\ncur.execute")
        );
        // A range across two hunks is posted on its first line only: no suggestion then.
        f.end_line = 9;
        let two_hunks = |_: &str, l: u32| Some(if l < 5 { 0 } else { 1 });
        let c = comment_json(&f, "fp", &two_hunks);
        assert_eq!(
            (c["line"].as_u64(), c.get("start_line").is_none()),
            (Some(3), true)
        );
        assert!(!c["body"].as_str().unwrap().contains("```suggestion"));
        let c = comment_json(&f, "fp", &one_hunk);
        assert_eq!(
            (c["start_line"].as_u64(), c["line"].as_u64()),
            (Some(3), Some(9))
        );
        assert!(c["body"].as_str().unwrap().contains("```suggestion"));
    }
}
