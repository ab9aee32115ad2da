//! One file's review: which model it goes to, what the model is sent (the change in context,
//! retrieved guidance, the rules' findings as evidence), and the passes a large file is split into.

use super::conversation::{account, file_loop, prompt_size, redact, system_message, user_message};
use super::validate::{Checked, check_drafts, confirms, merge_with_rules, settle_severity};
use super::verify::{confirm_candidates, verify_all};
use super::{Draft, Run};
use crate::llm::{LlmError, Route};
use async_openai::types::chat::CreateChatCompletionRequestArgs;
use redline_core::knowledge::query;
use redline_core::model::{Coverage, FileRecord, Finding, FindingSource};
use redline_core::pipeline::{Material, PreparedFile};
use std::sync::atomic::Ordering;

/// Small model for small, low-risk files; large for security-sensitive or complex ones.
fn route(result: &PreparedFile, m: &Material) -> (Route, String) {
    let changed = result.report.added_lines + result.report.removed_lines;
    static SENSITIVE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)auth|login|passw|crypto|token|secret|session|payment|billing|admin|upload|sql|query|permission|acl|webhook|oauth|jwt").unwrap()
    });
    if !result.findings.is_empty() {
        return (
            Route::Large,
            format!("{} rule finding(s)", result.findings.len()),
        );
    }
    if !result.candidates.is_empty() {
        return (
            Route::Large,
            format!("{} candidate(s) to confirm", result.candidates.len()),
        );
    }
    if SENSITIVE.is_match(m.diff.path()) {
        return (Route::Large, "security-sensitive path".into());
    }
    if changed > 80 {
        return (Route::Large, format!("{changed} changed lines"));
    }
    (
        Route::Small,
        format!("{changed} changed lines, no rule findings, ordinary path"),
    )
}

pub(super) async fn review_file(
    run: &Run<'_>,
    result: &PreparedFile,
) -> (FileRecord, Vec<Finding>) {
    let m = result
        .material
        .as_ref()
        .expect("filtered to reviewed files");
    let path = m.diff.path().to_string();
    let (route, route_reason) = route(result, m);
    let mut rec = FileRecord {
        path: path.clone(),
        route: format!("{route:?}").to_lowercase(),
        route_reason,
        coverage: Coverage::Agent,
        ..Default::default()
    };
    if run.stopped.load(Ordering::SeqCst) {
        rec.coverage = Coverage::RulesOnly;
        rec.reason = run
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        return (rec, result.findings.clone());
    }
    if run.settings.never_send.is_match(&path) {
        rec.coverage = Coverage::RulesOnly;
        rec.reason = Some("never sent to an LLM (.redline.toml never_send)".into());
        return (rec, result.findings.clone());
    }
    let prompt = Prompt::new(run, result, m).await;
    let passes = passes(run, route, m, &prompt, &mut rec).await;
    let mut samples: Vec<Vec<Checked>> = Vec::new();
    for _ in 0..run.settings.samples.max(1) {
        let mut drafts: Vec<Draft> = Vec::new();
        let mut calls_left = run.settings.max_tool_calls;
        let mut failed = false;
        for user in &passes {
            if calls_left == 0 || run.stopped.load(Ordering::SeqCst) {
                break;
            }
            rec.passes += 1;
            let user = redact(run, &mut rec, user);
            let outcome =
                file_loop(run, route, &user, m, &mut rec, &mut drafts, &mut calls_left).await;
            if let Err(e) = outcome {
                note_failure(run, &mut rec, e, drafts.is_empty());
                failed = true;
                break;
            }
        }
        samples.push(check_drafts(run, m, drafts, &mut rec));
        if failed || run.stopped.load(Ordering::SeqCst) {
            break;
        }
    }
    rec.samples = samples.len();
    let checked = agree(samples, run.settings.agree, &mut rec);
    // Candidates join the rules' findings only once confirmed.
    let confirmed = confirm_candidates(run, route, m, &result.candidates, &checked, &mut rec).await;
    let rule_findings: Vec<Finding> = result.findings.iter().cloned().chain(confirmed).collect();
    // A finding that confirms a rule's stands with the rule; only the model's own are verified.
    let (confirming, own): (Vec<Checked>, Vec<Checked>) = checked
        .into_iter()
        .partition(|c| rule_findings.iter().any(|rf| confirms(&c.finding, rf)));
    if run.settings.verify {
        rec.before_verification = own
            .iter()
            .map(|c| {
                let mut c = c.clone();
                settle_severity(run, &mut c, None, &mut FileRecord::default());
                c.finding
            })
            .collect();
    }
    let own: Vec<(Checked, Option<bool>)> = if run.settings.verify && !own.is_empty() {
        verify_all(run, route, m, own, &mut rec).await
    } else {
        own.into_iter().map(|c| (c, None)).collect()
    };
    let mut kept = Vec::new();
    for (mut c, confirmed) in confirming.into_iter().map(|c| (c, None)).chain(own) {
        settle_severity(run, &mut c, confirmed, &mut rec);
        kept.push(c.finding);
    }
    let findings = merge_with_rules(&rule_findings, kept);
    rec.comments_kept = findings
        .iter()
        .filter(|f| f.source == FindingSource::Llm)
        .count();
    (rec, findings)
}

/// Across independent reviews of a file, the findings at least `m` of them made (same class,
/// within two lines); with one review, all of them. A kept finding asks for the severity that
/// `m` of its reviews asked for or exceeded.
fn agree(samples: Vec<Vec<Checked>>, m: usize, rec: &mut FileRecord) -> Vec<Checked> {
    if samples.len() <= 1 {
        return samples.into_iter().next().unwrap_or_default();
    }
    let mut groups: Vec<(Checked, Vec<(usize, redline_core::model::Severity)>)> = Vec::new();
    for (i, sample) in samples.into_iter().enumerate() {
        for c in sample {
            match groups.iter_mut().find(|(g, members)| {
                g.finding.category == c.finding.category
                    && g.finding.line.abs_diff(c.finding.line) <= 2
                    && !members.iter().any(|(s, _)| *s == i)
            }) {
                Some((_, members)) => members.push((i, c.asked)),
                None => {
                    let asked = c.asked;
                    groups.push((c, vec![(i, asked)]));
                }
            }
        }
    }
    let mut kept = Vec::new();
    for (mut c, mut members) in groups {
        if members.len() < m {
            rec.validation.push(format!(
                "line {} {}: reported by {} of {} reviews (needs {m}): dropped",
                c.finding.line,
                c.finding.category,
                members.len(),
                rec.samples
            ));
            continue;
        }
        members.sort_by_key(|(_, s)| *s);
        c.asked = members[m.max(1) - 1].1;
        c.finding.severity = c.asked;
        kept.push(c);
    }
    kept
}

/// What a file's user message is made of besides the code: the header, the guidance retrieved
/// for this code, and the rules' findings as evidence.
struct Prompt {
    header: String,
    guidance: String,
    evidence: String,
}

impl Prompt {
    async fn new(run: &Run<'_>, result: &PreparedFile, m: &Material) -> Prompt {
        // Guidance for this code: its language, its identifiers and calls, the rules that fired.
        let added: String = m
            .diff
            .hunks
            .iter()
            .flat_map(|h| &h.lines)
            .filter(|l| l.kind == redline_core::diff::LineKind::Added)
            .map(|l| format!("{}\n", l.text))
            .collect();
        let categories: Vec<String> = result.findings.iter().map(|f| f.category.clone()).collect();
        let q = query::for_hunks(m.language.name(), &added, &categories);
        // With embeddings, the query's vector joins BM25 (reciprocal rank fusion); an embeddings
        // failure leaves BM25 alone.
        let vector = match run.embedder {
            Some(e) => e
                .embed(std::slice::from_ref(&q))
                .await
                .ok()
                .and_then(|mut v| v.pop()),
            None => None,
        };
        let mut guidance = String::new();
        for g in run
            .store
            .search_with(&q, vector.as_deref(), Some(m.language.name()), 3)
        {
            let body: String = g.text.chars().take(700).collect();
            guidance.push_str(&format!(
                "[{}] {} ({})\n{}\n\n",
                g.id, g.title, g.section, body
            ));
        }
        let mut evidence = String::new();
        for f in &result.findings {
            evidence.push_str(&format!(
                "- line {}: {} {} ({}): {}\n",
                f.line,
                f.severity.as_str(),
                f.category,
                f.rule_id.as_deref().unwrap_or(""),
                f.message
            ));
        }
        if evidence.is_empty() {
            evidence.push_str("(none)\n");
        }
        Prompt {
            header: format!("File: {} ({})\n", m.diff.path(), m.language.name()),
            guidance,
            evidence,
        }
    }

    /// The user message for a view of the change, with a note after the header.
    fn message(&self, view: &str, note: &str) -> String {
        let view_title = "## The change in context (new-side line numbers; `+` added, `-` removed)";
        format!(
            "{}{note}\n{view_title}\n{view}\n## Guidance\n{}## Rule findings (evidence)\n{}",
            self.header, self.guidance, self.evidence
        )
    }
}

/// The user messages of a file's passes: one when it fits the token budget; else a summary
/// pass, then the hunks packed into passes that fit.
async fn passes(
    run: &Run<'_>,
    route: Route,
    m: &Material,
    prompt: &Prompt,
    rec: &mut FileRecord,
) -> Vec<String> {
    use redline_core::context::tokens::count;
    let view = m.context.review_view(&m.text, &m.diff);
    let whole = prompt.message(&view, "");
    let budget = run.settings.context_token_budget.saturating_sub(1500);
    if count(&whole) <= budget || m.diff.hunks.len() <= 1 {
        return vec![whole];
    }
    let fixed = count(&prompt.message("", "")) + 200;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut size = 0;
    for i in 0..m.diff.hunks.len() {
        let t = count(&m.context.render_review(&m.text, &m.diff, Some(&[i])));
        match groups.last_mut() {
            Some(g) if size + t + fixed <= budget => {
                g.push(i);
                size += t;
            }
            _ => {
                groups.push(vec![i]);
                size = t;
            }
        }
    }
    let summary = summarize(run, route, m.diff.path(), m, rec).await;
    let n = groups.len();
    groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let note = format!(
                "This file is too large for one pass; this is part {} of {n}. Summary of the whole change: {}\n",
                i + 1,
                summary.as_deref().unwrap_or("(unavailable)")
            );
            prompt.message(&m.context.render_review(&m.text, &m.diff, Some(g)), &note)
        })
        .collect()
}

/// Records why a pass failed; once every endpoint's breaker is open, the rest of the pull
/// request is rules-only.
fn note_failure(run: &Run<'_>, rec: &mut FileRecord, e: LlmError, nothing_drafted: bool) {
    match e {
        LlmError::Unavailable(why) => {
            if run.llm.all_open() {
                run.stopped.store(true, Ordering::SeqCst);
                let reason = format!(
                    "circuit breaker open on every endpoint after repeated failures (last: {why})"
                );
                run.stop_reason
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(reason);
            }
            rec.coverage = if nothing_drafted {
                Coverage::RulesOnly
            } else {
                Coverage::Agent
            };
            rec.reason = Some(format!("LLM unavailable: {why}"));
        }
        LlmError::Refused(why) => {
            rec.coverage = Coverage::Failed;
            rec.reason = Some(why);
        }
    }
}

async fn summarize(
    run: &Run<'_>,
    route: Route,
    path: &str,
    m: &Material,
    rec: &mut FileRecord,
) -> Option<String> {
    let stat: String = m
        .diff
        .hunks
        .iter()
        .map(|h| format!("@@ +{},{} {}\n", h.new_start, h.new_count, h.section))
        .collect();
    let outline: String = m
        .context
        .outline
        .iter()
        .map(|(n, l)| format!("{n:>5}  {l}\n"))
        .collect();
    let user = format!(
        "Summarize in at most three sentences what this change to {path} does.\n\nOutline:\n{outline}\nHunks:\n{stat}"
    );
    let user = redact(run, rec, &user);
    let messages = vec![system_message(run), user_message(&user)];
    let req = CreateChatCompletionRequestArgs::default()
        .messages(messages)
        .max_completion_tokens(200u32)
        .temperature(0.0)
        .build()
        .ok()?;
    rec.prompt_tokens_sent += prompt_size(&req);
    let reply = run.llm.chat(&req, route).await.ok()?;
    account(run, rec, &reply);
    reply.content
}
