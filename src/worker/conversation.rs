//! Answering comments: a command in one of redline's review threads (`explain`, `fix`,
//! `ignore [reason]`, a free question) is answered in that thread; `/redline help` on the pull
//! request is answered there. The webhook recorded the comment once (a unique key per comment);
//! the answer carries a hidden marker naming the comment, so a job that posted and then died
//! finds its answer instead of posting a second one.
//!
//! What reaches GitHub goes through `github::markdown`: the developer's words, the model's, the
//! code (redacted: a secret a finding points at is never echoed) and the guidance. With an LLM
//! (`agent::thread`), the repository's policy, `never_send`, the redactor and the audit record
//! apply as in a review; without one, or when it fails, the answer is made from the finding and
//! its guidance, and says so.

use super::Context;
use crate::agent::thread::{self, Ask, NotAsked, Question};
use crate::github::markdown;
use crate::github::{PrRef, PullRequest, ReviewComment};
use crate::queue::Claim;
use crate::store::{Conversation, ThreadFinding};
use anyhow::Result;
use redline_core::config::Loaded;
use redline_core::knowledge::{self, Entry};
use redline_core::redact::Redactor;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Lines of context either side of a finding, in an excerpt.
const EXCERPT_CONTEXT: usize = 6;
/// The longest piece of guidance quoted in an answer, in characters.
const MAX_GUIDANCE_QUOTE: usize = 1_200;

/// The hidden marker of an answer to comment `comment_id`.
fn answer_marker(comment_id: i64) -> String {
    markdown::html_comment(&format!("redline:answer={comment_id}"))
}

/// What an answer posts and records.
struct Composed {
    body: String,
    outcome: String,
    audit: Option<serde_json::Value>,
    tokens: (i64, i64),
}

/// Runs a reply job: answers the comment the webhook recorded for it, once.
pub async fn answer_job(
    ctx: &Arc<Context>,
    claim: &Claim,
    lost: &CancellationToken,
    at: &PrRef,
    pr: &PullRequest,
) -> Result<String> {
    let job = &claim.job;
    let Some(conv) = ctx.store.conversation_for_job(job.id).await? else {
        return Ok("nothing to answer: no comment is recorded for this job".into());
    };
    if let Some(a) = conv.answer_id {
        return Ok(format!(
            "already answered comment {} as {a}",
            conv.comment_id
        ));
    }
    let marker = answer_marker(conv.comment_id);
    // An earlier attempt may have posted the answer and died before recording it.
    if let Some(id) = posted_answer(ctx, at, &conv, &marker).await? {
        ctx.store
            .conversation_answered(conv.id, id as i64, "answer found on GitHub", None, (0, 0))
            .await?;
        return Ok(format!(
            "already answered comment {} as {id}; recorded now",
            conv.comment_id
        ));
    }
    let mut composed = match conv.command.as_str() {
        "help" => help(&ctx.settings.github_app_slug, &conv.argument),
        _ => thread_answer(ctx, at, pr, &conv).await?,
    };
    composed.body.push_str("\n\n");
    composed.body.push_str(&marker);
    if !super::still_ours(ctx, claim, lost).await? {
        return Ok(super::STOPPED_BEFORE_POSTING.into());
    }
    let id = match (conv.kind.as_str(), conv.thread_id) {
        ("review_comment", Some(thread)) => {
            ctx.github
                .reply_in_thread(at, thread as u64, &composed.body)
                .await?
        }
        _ => ctx.github.comment_on_pull(at, &composed.body).await?,
    };
    ctx.store
        .conversation_answered(
            conv.id,
            id as i64,
            &composed.outcome,
            composed.audit.as_ref(),
            composed.tokens,
        )
        .await?;
    Ok(format!(
        "answered `{}` (comment {}) as {id}: {}",
        conv.command, conv.comment_id, composed.outcome
    ))
}

/// The answer an earlier attempt posted, found by its marker.
async fn posted_answer(
    ctx: &Context,
    at: &PrRef,
    conv: &Conversation,
    marker: &str,
) -> Result<Option<u64>> {
    Ok(if conv.kind == "review_comment" {
        ctx.github
            .review_comments(at)
            .await?
            .into_iter()
            .find(|c| c.body.contains(marker))
            .map(|c| c.id)
    } else {
        ctx.github
            .issue_comments(at)
            .await?
            .into_iter()
            .find(|c| c.body.contains(marker))
            .map(|c| c.id)
    })
}

/// The list of commands. `asked`: a finding command given on the pull request instead of in a
/// thread.
fn help(slug: &str, asked: &str) -> Composed {
    let mention = markdown::code_span(&format!("@{slug} <question>"));
    let mut b = String::new();
    if !asked.is_empty() {
        b.push_str(&format!(
            "{} works in a finding's thread: reply to redline's comment on the line.\n\n",
            markdown::code_span(&format!("/redline {asked}"))
        ));
    }
    b.push_str(&format!(
        "**redline commands** (from the repository's owners, members and collaborators)\n\n\
         In a finding's thread, reply to redline's comment with:\n\n\
         - `/redline explain`: the guidance behind the finding, its CWE, and why this line.\n\
         - `/redline fix`: a fix, as a one-click suggestion when one can be made safely.\n\
         - `/redline ignore [reason]`: dismiss the finding; the reason is recorded and counts in this repository's feedback.\n\
         - {mention}: a question about the finding, answered from the code and the guidance (needs an LLM).\n\n\
         On the pull request:\n\n\
         - `/redline review`: review the whole pull request again (a push reviews only what changed).\n\
         - `/redline help`: this list."
    ));
    Composed {
        body: b,
        outcome: "listed the commands".into(),
        audit: None,
        tokens: (0, 0),
    }
}

/// What a thread's answer is made from.
struct Grounds {
    finding: ThreadFinding,
    /// The file at the pull request's head (None: not there any more).
    head_text: Option<String>,
    /// The code the finding points at is still there, somewhere in the file.
    present: bool,
    /// Where a suggestion in this thread applies, when it would replace exactly the finding's
    /// code: (first line, last line) at the head.
    suggestible: Option<(u32, u32)>,
    /// The repository's settings at the base commit; Err: unreadable (no LLM then).
    repo: Result<Loaded, String>,
    entries: Vec<Entry>,
    language: Option<&'static str>,
    /// The pull request's head, short.
    head: String,
}

async fn thread_answer(
    ctx: &Context,
    at: &PrRef,
    pr: &PullRequest,
    conv: &Conversation,
) -> Result<Composed> {
    let thread_id = conv.thread_id.unwrap_or(0);
    let Some(finding) = ctx
        .store
        .finding_by_comment(at.repo.as_str(), thread_id)
        .await?
    else {
        return Ok(Composed {
            body: "This thread's finding is not in redline's records, so there is nothing to answer about it.".into(),
            outcome: "no finding recorded for the thread".into(),
            audit: None,
            tokens: (0, 0),
        });
    };
    let grounds = grounds(ctx, at, pr, finding, thread_id).await?;
    Ok(match conv.command.as_str() {
        "ignore" => ignore(ctx, &grounds, conv).await?,
        "fix" => fix(ctx, &grounds, conv, pr).await,
        "ask" => ask(ctx, &grounds, conv).await,
        _ => explain(ctx, &grounds, conv).await,
    })
}

async fn grounds(
    ctx: &Context,
    at: &PrRef,
    pr: &PullRequest,
    finding: ThreadFinding,
    thread_id: i64,
) -> Result<Grounds> {
    let gh = &ctx.github;
    let head_text = match gh
        .file_content(at.installation, &at.repo, &finding.path, &pr.head.sha)
        .await
    {
        Ok(b) => b.map(|b| String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.status == Some(413) => None,
        Err(e) => return Err(e.into()),
    };
    let n = finding.code_lines.max(1) as usize;
    let present = head_text.as_deref().is_some_and(|t| {
        crate::github::post::still_present(&finding.fingerprint, finding.key(), &finding.path, t, n)
    });
    // A suggestion in a reply replaces the thread's lines as they are now: only when those
    // lines are still exactly the finding's code.
    let root: Option<ReviewComment> = gh
        .review_comments(at)
        .await?
        .into_iter()
        .find(|c| c.id as i64 == thread_id);
    let suggestible = match (&root, head_text.as_deref()) {
        (Some(c), Some(text)) => c.line.and_then(|end| {
            let start = c.start_line.unwrap_or(end);
            let span = (finding.end_line.max(finding.line) - finding.line + 1) as u64;
            if start < 1 || end < start {
                return None;
            }
            let lines: Vec<&str> = text.lines().collect();
            let window = lines.get(start as usize - 1..end as usize)?.join("\n");
            (end - start + 1 == span
                && crate::github::post::still_present(
                    &finding.fingerprint,
                    finding.key(),
                    &finding.path,
                    &window,
                    n,
                ))
            .then_some((start as u32, end as u32))
        }),
        _ => None,
    };
    let origin = format!("{}/.redline.toml on the base branch", at.repo);
    let config_text = gh
        .file_content(
            at.installation,
            &at.repo,
            redline_core::config::FILE_NAME,
            &pr.base.sha,
        )
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    let repo = redline_core::config::from_text(config_text.as_deref(), &origin)
        .map_err(|e| format!("{e:#}"));
    let store = knowledge_store(ctx).await?;
    let mut entries: Vec<Entry> = finding
        .guidance_ids()
        .iter()
        .filter_map(|id| store.entry(id).cloned())
        .collect();
    if entries.is_empty()
        && let Some(e) = store
            .entries
            .iter()
            .find(|e| e.categories.contains(&finding.category))
    {
        entries.push(e.clone());
    }
    let language =
        redline_core::lang::detect(&finding.path, head_text.as_deref()).map(|l| l.name());
    Ok(Grounds {
        finding,
        head_text,
        present,
        suggestible,
        repo,
        entries,
        language,
        head: pr.head.sha.short().to_string(),
    })
}

/// The built-in knowledge, loaded once per process.
async fn knowledge_store(ctx: &Context) -> Result<Arc<knowledge::Store>> {
    Ok(ctx
        .knowledge
        .get_or_try_init(|| async { anyhow::Ok(Arc::new(knowledge::Store::builtin()?)) })
        .await?
        .clone())
}

impl Grounds {
    /// Lines `from..=to` of the head text (1-based), each numbered when `numbered`; redacted
    /// with `redactor` when given (text for the model is redacted once, whole, by
    /// `thread::answer`, so that its audit counts every redaction).
    fn lines(
        &self,
        from: usize,
        to: usize,
        numbered: bool,
        redactor: Option<&mut Redactor>,
    ) -> String {
        let Some(text) = &self.head_text else {
            return String::new();
        };
        let out: Vec<String> = text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .take(to.saturating_sub(from.max(1)) + 1)
            .map(|(i, l)| {
                if numbered {
                    format!("{:>4} {l}", i + 1)
                } else {
                    l.to_string()
                }
            })
            .collect();
        let out = out.join("\n");
        match redactor {
            Some(r) => r.redact(&out),
            None => out,
        }
    }

    fn span(&self) -> (u32, u32) {
        let f = &self.finding;
        (f.line as u32, f.end_line.max(f.line) as u32)
    }

    /// What the finding says: severity, class, rule and message (plain text, for the model).
    fn finding_text(&self) -> String {
        let f = &self.finding;
        format!(
            "{} {} (rule {}, source {}, confidence {:.2}{}): {}",
            f.severity,
            f.category,
            f.rule_id.as_deref().unwrap_or("none"),
            f.source,
            f.confidence,
            f.cwe
                .as_deref()
                .map(|c| format!(", {c}"))
                .unwrap_or_default(),
            f.message.as_deref().unwrap_or("(no message recorded)")
        )
    }

    /// The guidance entries as plain text, for the model.
    fn guidance_text(&self) -> String {
        self.entries
            .iter()
            .map(|e| {
                format!(
                    "{} ({}{})\n{}",
                    e.title,
                    e.id,
                    e.cwe
                        .as_deref()
                        .map(|c| format!(", {c}"))
                        .unwrap_or_default(),
                    e.body
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// The CWE: the finding's, else its guidance's.
    fn cwe(&self) -> Option<String> {
        self.finding
            .cwe
            .clone()
            .or_else(|| self.entries.iter().find_map(|e| e.cwe.clone()))
    }

    /// The question for the model.
    fn question<'a>(
        &'a self,
        ask: Ask,
        text: &'a str,
        strings: &'a QuestionStrings,
    ) -> Question<'a> {
        let (line, end_line) = self.span();
        Question {
            ask,
            text,
            path: &self.finding.path,
            line,
            end_line,
            excerpt: &strings.excerpt,
            target: &strings.target,
            finding: &strings.finding,
            guidance: &strings.guidance,
        }
    }

    fn strings(&self) -> QuestionStrings {
        let (line, end) = self.span();
        // Not redacted here: `thread::answer` redacts the whole prompt before it leaves.
        QuestionStrings {
            excerpt: self.lines(
                (line as usize).saturating_sub(EXCERPT_CONTEXT).max(1),
                end as usize + EXCERPT_CONTEXT,
                true,
                None,
            ),
            target: self.lines(line as usize, end as usize, false, None),
            finding: self.finding_text(),
            guidance: self.guidance_text(),
        }
    }
}

/// The texts a question is made of.
struct QuestionStrings {
    excerpt: String,
    target: String,
    finding: String,
    guidance: String,
}

/// Asks the model, when one is configured and the repository lets its code go to it.
async fn ask_model(
    ctx: &Context,
    g: &Grounds,
    ask: Ask,
    text: &str,
) -> Result<thread::Answer, NotAsked> {
    let Some(llm) = &ctx.llm else {
        return Err(NotAsked("no LLM is configured for this server".into()));
    };
    let repo = g.repo.as_ref().map_err(|e| {
        NotAsked(format!(
            "{e}; no code goes to an LLM without a readable policy"
        ))
    })?;
    if !g.present {
        return Err(NotAsked(
            "the code this comment points at is no longer in the file".into(),
        ));
    }
    let strings = g.strings();
    thread::answer(llm, repo, &g.question(ask, text, &strings)).await
}

/// The finding's head line: severity, class, rule, where.
fn finding_header(f: &ThreadFinding) -> String {
    let mut h = format!(
        "**{}** · {}",
        markdown::prose_line(&f.severity),
        markdown::prose_line(&crate::truncate(&f.category, 80))
    );
    if let Some(r) = &f.rule_id {
        h.push_str(&format!(" · {}", markdown::code_span(r)));
    }
    h.push_str(&format!(
        " on {}",
        markdown::code_span(&format!("{}:{}", f.path, f.line))
    ));
    h
}

/// The guidance in Markdown: each entry's title, CWE and OWASP class, its opening paragraph (or
/// `section`, such as the language's), and its references.
fn guidance_markdown(g: &Grounds, section: Option<&str>) -> String {
    let mut out = String::new();
    for e in &g.entries {
        let mut tags: Vec<String> = Vec::new();
        if let Some(c) = &e.cwe {
            tags.push(markdown::prose_line(c));
        }
        if let Some(o) = &e.owasp {
            tags.push(format!("OWASP {}", markdown::prose_line(o)));
        }
        out.push_str(&format!(
            "**Guidance: {}**{} ({})\n\n",
            markdown::prose_line(&e.title),
            if tags.is_empty() {
                String::new()
            } else {
                format!(" · {}", tags.join(" · "))
            },
            markdown::code_span(&e.id)
        ));
        let text = section
            .and_then(|s| language_section(&e.body, s))
            .unwrap_or_else(|| opening(&e.body));
        out.push_str(&markdown::prose(&crate::truncate(
            unwrapped(text.trim()).as_str(),
            MAX_GUIDANCE_QUOTE,
        )));
        out.push('\n');
        let refs: Vec<String> = e
            .references
            .iter()
            .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
            .take(4)
            .map(|r| markdown::prose_line(r))
            .collect();
        if !refs.is_empty() {
            out.push_str(&format!("\nReferences: {}\n", refs.join(" · ")));
        }
        out.push('\n');
    }
    out
}

/// Knowledge text with each soft-wrapped paragraph (or list item) on one line: `prose` escapes
/// line by line, so a code span wrapped over two lines would show its backticks.
fn unwrapped(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let (mut in_fence, mut joinable) = (false, false);
    for line in text.lines() {
        let t = line.trim_start();
        let fence = t.starts_with("```") || t.starts_with("~~~");
        if fence {
            in_fence = !in_fence;
        }
        if fence || in_fence || t.is_empty() {
            out.push(line.to_string());
            joinable = false;
            continue;
        }
        let item = t.starts_with("- ")
            || t.starts_with("* ")
            || t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        match out.last_mut() {
            Some(last) if joinable && !item => {
                last.push(' ');
                last.push_str(t);
            }
            _ => out.push(line.to_string()),
        }
        joinable = true;
    }
    out.join("\n")
}

/// The first paragraph of an entry's text.
fn opening(body: &str) -> String {
    body.split("\n\n")
        .find(|p| !p.trim().is_empty() && !p.trim_start().starts_with('#'))
        .unwrap_or("")
        .to_string()
}

/// The `## <Language>` section of an entry's text, if it has one.
fn language_section(body: &str, language: &str) -> Option<String> {
    let mut lines = body.lines();
    let start = lines.position(|l| {
        l.starts_with("## ")
            && l.to_ascii_lowercase()
                .contains(&language.to_ascii_lowercase())
    })?;
    let section: Vec<&str> = body
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("## "))
        .collect();
    Some(section.join("\n"))
}

/// The commands a thread answer ends with.
fn footer() -> &'static str {
    "<sub>Reply `/redline fix` for a fix, `/redline ignore <reason>` to dismiss this finding, or `/redline help` for the commands.</sub>"
}

/// The code at the finding's lines, redacted, as a block.
fn code_block(g: &Grounds) -> Option<String> {
    if !g.present {
        return None;
    }
    let (line, end) = g.span();
    let code = g.lines(
        line as usize,
        end as usize,
        false,
        Some(&mut Redactor::new()),
    );
    (!code.trim().is_empty()).then(|| markdown::code(g.language.unwrap_or(""), &code))
}

/// Why the finding is on this line, in Markdown.
fn why_this_line(g: &Grounds, head: &str) -> String {
    let f = &g.finding;
    if !g.present {
        return format!(
            "**Why this line:** the code this comment pointed at is no longer in the file at {}{}.",
            markdown::code_span(head),
            if f.outcome == "fixed" {
                ": the finding is settled as fixed"
            } else {
                ""
            }
        );
    }
    let who = match (f.source.as_str(), &f.rule_id) {
        ("rules", Some(r)) => format!("rule {} matched this code", markdown::code_span(r)),
        (_, Some(r)) => format!(
            "the LLM reviewer reported it and rule {} agrees",
            markdown::code_span(r)
        ),
        _ => "the LLM reviewer reported it".to_string(),
    };
    format!("**Why this line:** {who} (confidence {:.2}):", f.confidence)
}

async fn explain(ctx: &Context, g: &Grounds, conv: &Conversation) -> Composed {
    let f = &g.finding;
    let head = g.head.clone();
    let mut b = finding_header(f);
    if let Some(cwe) = g.cwe() {
        b.push_str(&format!(" · {}", markdown::prose_line(&cwe)));
    }
    b.push_str("\n\n");
    let model = ask_model(ctx, g, Ask::Explain, &conv.argument).await;
    let (outcome, audit, tokens) = match &model {
        Ok(a) => {
            b.push_str(&markdown::prose(&a.text));
            b.push_str("\n\n");
            (
                "explained with the LLM".to_string(),
                Some(a.audit.clone()),
                (a.prompt_tokens as i64, a.completion_tokens as i64),
            )
        }
        Err(_) => ("explained from the guidance".to_string(), None, (0, 0)),
    };
    if let Some(m) = &f.message {
        b.push_str(&markdown::prose(&crate::truncate(m.trim(), 1_500)));
        b.push_str("\n\n");
    }
    b.push_str(&why_this_line(g, &head));
    b.push('\n');
    if let Some(code) = code_block(g) {
        b.push_str(&format!("\n{code}\n"));
    }
    b.push('\n');
    b.push_str(&guidance_markdown(g, None));
    if let Err(NotAsked(why)) = &model
        && ctx.llm.is_some()
    {
        b.push_str(&format!(
            "<sub>Answered from the guidance, without the LLM: {}.</sub>\n",
            markdown::prose_line(why)
        ));
    }
    b.push_str(footer());
    Composed {
        body: b,
        outcome,
        audit,
        tokens,
    }
}

async fn fix(ctx: &Context, g: &Grounds, conv: &Conversation, pr: &PullRequest) -> Composed {
    let f = &g.finding;
    let mut b = finding_header(f);
    b.push_str("\n\n");
    if f.outcome == "fixed" || !g.present {
        b.push_str(&format!(
            "The code this comment points at has changed since (head {}): there is nothing left to fix here.\n\n",
            markdown::code_span(pr.head.sha.short())
        ));
        b.push_str(footer());
        return Composed {
            body: b,
            outcome: "nothing to fix: the code changed".into(),
            audit: None,
            tokens: (0, 0),
        };
    }
    // A stored suggestion (the review's) first; else the model's.
    let mut audit = None;
    let mut tokens = (0, 0);
    let mut model_words = None;
    let mut why_not = None;
    let stored = f
        .suggestion
        .clone()
        .filter(|s| s.lines().count() <= thread::MAX_FIX_LINES && !s.contains("<secret:"));
    let candidate = match stored {
        Some(s) => Some(s),
        None => match ask_model(ctx, g, Ask::Fix, &conv.argument).await {
            Ok(a) => {
                audit = Some(a.audit.clone());
                tokens = (a.prompt_tokens as i64, a.completion_tokens as i64);
                if !a.text.is_empty() {
                    model_words = Some(a.text.clone());
                }
                if a.fix.is_none() {
                    why_not = Some("the LLM did not propose a fix that fits these lines".into());
                }
                a.fix
            }
            Err(NotAsked(why)) => {
                why_not = Some(format!(
                    "this finding carries no replacement code and {why}"
                ));
                None
            }
        },
    };
    // The fix must differ from the code it replaces.
    let target = g
        .suggestible
        .map(|(s, e)| g.lines(s as usize, e as usize, false, Some(&mut Redactor::new())));
    let candidate =
        candidate.filter(|c| Some(c.trim_end()) != target.as_deref().map(str::trim_end));
    let outcome = match (&candidate, g.suggestible) {
        (Some(code), Some((start, end))) => {
            b.push_str(&format!(
                "Suggested fix for lines {start}–{end} (one click applies it):\n\n{}\n\n",
                markdown::suggestion(code)
            ));
            if let Some(w) = &model_words {
                b.push_str(&markdown::prose(w));
                b.push_str("\n\n");
            }
            "suggested a fix".to_string()
        }
        (Some(code), None) => {
            b.push_str(
                "No one-click suggestion: the thread's lines no longer hold exactly this finding's code, so a suggestion could replace the wrong lines. The fix, to apply by hand:\n\n",
            );
            b.push_str(&markdown::code(g.language.unwrap_or(""), code));
            b.push_str("\n\n");
            "fix shown, not suggested: the lines moved".to_string()
        }
        (None, _) => {
            b.push_str(&format!(
                "No one-click suggestion: {}. How to fix it:\n\n",
                markdown::prose_line(why_not.as_deref().unwrap_or("no safe fix was found"))
            ));
            if let Some(w) = &model_words {
                b.push_str(&markdown::prose(w));
                b.push_str("\n\n");
            }
            b.push_str(&guidance_markdown(g, g.language));
            "no suggestion: guidance given".to_string()
        }
    };
    b.push_str(footer());
    Composed {
        body: b,
        outcome,
        audit,
        tokens,
    }
}

async fn ignore(ctx: &Context, g: &Grounds, conv: &Conversation) -> Result<Composed> {
    let f = &g.finding;
    let reason_text = Redactor::new().redact(conv.argument.trim());
    let reason_text = crate::truncate(&reason_text, 300);
    let recorded = if reason_text.is_empty() {
        format!("ignored by {}", conv.author)
    } else {
        format!("ignored by {}: {reason_text}", conv.author)
    };
    let mut b = finding_header(f);
    b.push_str("\n\n");
    let outcome = match f.outcome.as_str() {
        "open" if ctx.store.dismiss_finding(f.id, &recorded).await? => {
            b.push_str(&format!(
                "Dismissed{}. It counts as dismissed in `redline stats`, and in whether {} is held back from line comments in this repository.",
                if reason_text.is_empty() {
                    String::new()
                } else {
                    format!(", with the reason: {}", markdown::prose_line(&reason_text))
                },
                match &f.rule_id {
                    Some(r) => format!("rule {}", markdown::code_span(r)),
                    None => format!("the class {}", markdown::prose_line(&f.category)),
                }
            ));
            "dismissed".to_string()
        }
        "fixed" => {
            b.push_str("Already settled as fixed (the code changed): nothing to dismiss.");
            "already fixed".to_string()
        }
        _ => {
            b.push_str(&format!(
                "Already dismissed ({}).",
                markdown::prose_line(f.outcome_reason.as_deref().unwrap_or("earlier"))
            ));
            "already dismissed".to_string()
        }
    };
    Ok(Composed {
        body: b,
        outcome,
        audit: None,
        tokens: (0, 0),
    })
}

async fn ask(ctx: &Context, g: &Grounds, conv: &Conversation) -> Composed {
    let f = &g.finding;
    let mut b = finding_header(f);
    b.push_str("\n\n");
    match ask_model(ctx, g, Ask::Question, &conv.argument).await {
        Ok(a) => {
            b.push_str(&markdown::prose(&a.text));
            b.push_str("\n\n");
            b.push_str(&format!(
                "<sub>Answered by the LLM from the code at this line and the guidance{}.</sub>\n\n",
                g.entries
                    .first()
                    .map(|e| format!(" ({})", markdown::prose_line(&e.title)))
                    .unwrap_or_default()
            ));
            b.push_str(footer());
            Composed {
                body: b,
                outcome: "answered with the LLM".into(),
                audit: Some(a.audit),
                tokens: (a.prompt_tokens as i64, a.completion_tokens as i64),
            }
        }
        Err(NotAsked(why)) => {
            b.push_str(&format!(
                "A question in free text needs an LLM, and {}. These work without one: `/redline explain` (the guidance, the CWE and why this line), `/redline fix`, `/redline ignore <reason>`.\n\n",
                markdown::prose_line(&why)
            ));
            b.push_str(footer());
            Composed {
                body: b,
                outcome: "question not answered: no LLM".into(),
                audit: None,
                tokens: (0, 0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_guidance_is_joined_outside_code_blocks() {
        let text = "Use `cursor.execute(sql,\nparams)` and bind.\n\n- one\n  more\n- two\n```python\nx = 1\ny = 2\n```";
        assert_eq!(
            unwrapped(text),
            "Use `cursor.execute(sql, params)` and bind.\n\n- one more\n- two\n```python\nx = 1\ny = 2\n```"
        );
        let md = markdown::prose(&unwrapped(text));
        assert!(md.contains("`cursor.execute(sql, params)`"), "{md}");
    }
}
