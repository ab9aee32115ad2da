//! The review agent: per changed file, a bounded tool-calling loop over an OpenAI-compatible
//! model, with the trimmed context, retrieved guidance and the rules' findings as evidence.
//!
//! What the model says is advice: every comment is validated against the diff before it is kept,
//! and the verdict is computed from the kept findings, never from model prose. LLM outages,
//! timeouts and the budget never lose a review: the files the agent could not cover keep their
//! rules findings, and the record says why.

pub mod parse;
pub mod tools;

use crate::change::ChangeSet;
use crate::knowledge::{Store, query};
use crate::llm::{LlmClient, LlmError, Reply, Route};
use crate::review::{FileResult, Finding, Material, Review, Reviewer};
use crate::rules::Severity;
use async_openai::types::chat::FunctionCall;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestToolMessageArgs,
    ChatCompletionRequestUserMessageArgs, ChatCompletionToolChoiceOption,
    CreateChatCompletionRequestArgs, ToolChoiceOptions,
};
use parse::Quirks;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Warnings and suggestions whose code reference does not match their line are dropped unless the
/// model is at least this sure (a critical one is downgraded instead, so it is still seen).
const ANCHOR_EXEMPT_CONFIDENCE: f64 = 0.9;

/// The prompt version recorded with every review.
/// The prompt version used unless another is chosen (`REDLINE_PROMPT_VERSION`, or an A/B share).
pub const PROMPT_VERSION: &str = "review-v1";

mod prompts {
    include!(concat!(env!("OUT_DIR"), "/prompt_files.rs"));
}

/// The prompt versions in prompts/, built in.
pub fn prompt_versions() -> Vec<&'static str> {
    prompts::PROMPTS.iter().map(|(v, _)| *v).collect()
}

/// A version's system prompt.
pub fn system_prompt(version: &str) -> Option<&'static str> {
    prompts::PROMPTS
        .iter()
        .find(|(v, _)| *v == version)
        .map(|(_, t)| *t)
}

/// Checks a prompt version name against prompts/.
pub fn check_prompt_version(version: &str) -> anyhow::Result<()> {
    if system_prompt(version).is_none() {
        anyhow::bail!(
            "unknown prompt version `{version}` (prompts/ has: {})",
            prompt_versions().join(", ")
        );
    }
    Ok(())
}

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Tool calls per file; at the bound the loop stops and keeps what it has.
    pub max_tool_calls: usize,
    /// Files reviewed at once.
    pub concurrency: usize,
    /// Critical comments below this confidence are downgraded to warnings.
    pub min_critical_confidence: f64,
    /// Comments that cite no guidance need at least this confidence.
    pub uncited_min_confidence: f64,
    /// Prompt tokens per call above which a file is reviewed hunk by hunk.
    pub context_token_budget: usize,
    pub max_completion_tokens: u32,
    /// Stop calling the LLM for this pull request once it has cost this much (USD).
    pub budget_usd: Option<f64>,
    /// Paths whose content never goes to an LLM (`.redline.toml` `never_send`).
    pub never_send: globset::GlobSet,
    /// Which prompts/<version>/system.md the agent uses (recorded with every review).
    pub prompt_version: String,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_tool_calls: 15,
            concurrency: 4,
            min_critical_confidence: 0.7,
            uncited_min_confidence: 0.8,
            context_token_budget: 24_000,
            max_completion_tokens: 1024,
            budget_usd: None,
            never_send: globset::GlobSet::empty(),
            prompt_version: PROMPT_VERSION.to_string(),
        }
    }
}

impl AgentSettings {
    /// Defaults, with `REDLINE_AGENT_MAX_TOOL_CALLS`, `REDLINE_AGENT_CONCURRENCY`,
    /// `REDLINE_AGENT_CONTEXT_TOKENS` and `REDLINE_LLM_BUDGET_USD` applied.
    pub fn from_env() -> AgentSettings {
        let mut s = AgentSettings::default();
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let Some(v) = num("REDLINE_AGENT_MAX_TOOL_CALLS") {
            s.max_tool_calls = v.max(1.0) as usize;
        }
        if let Some(v) = num("REDLINE_AGENT_CONCURRENCY") {
            s.concurrency = v.max(1.0) as usize;
        }
        if let Some(v) = num("REDLINE_AGENT_CONTEXT_TOKENS") {
            s.context_token_budget = v.max(500.0) as usize;
        }
        s.budget_usd = num("REDLINE_LLM_BUDGET_USD");
        if let Ok(v) = std::env::var("REDLINE_PROMPT_VERSION") {
            if !v.trim().is_empty() {
                s.prompt_version = v.trim().to_string();
            }
        }
        s
    }
}

/// What the agent did for one file.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FileRecord {
    pub path: String,
    /// `agent`, `rules-only` (the LLM was skipped for it) or `failed`.
    pub coverage: String,
    pub reason: Option<String>,
    pub route: String,
    pub route_reason: String,
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub llm_calls: usize,
    pub tool_calls: usize,
    pub passes: usize,
    pub stop: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Our own count (tiktoken) of the prompt tokens sent, whatever the server reports.
    pub prompt_tokens_sent: u64,
    pub cost_usd: f64,
    pub comments_kept: usize,
    /// Audit: bytes of text sent to the LLM for this file, and a SHA-256 over all of it.
    pub sent_bytes: usize,
    pub sent_sha256: Option<String>,
    /// Secrets replaced by placeholders in what was sent.
    pub redactions: usize,
    /// Comments dropped or changed by validation, with why.
    pub validation: Vec<String>,
    pub quirks: Quirks,
    pub summary: Option<String>,
}

/// What the agent did for the whole pull request.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AgentRecord {
    pub prompt_version: String,
    pub files: Vec<FileRecord>,
    pub llm_calls: usize,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub prompt_tokens_sent: u64,
    pub cost_usd: f64,
    /// Secrets replaced by placeholders in everything sent.
    pub redactions: usize,
    /// Set when the LLM was skipped for some or all files, with why.
    pub llm_skipped: Option<String>,
    pub quirks: Quirks,
}

/// A comment the model buffered.
#[derive(Debug, Clone)]
struct Draft {
    line: u64,
    end_line: Option<u64>,
    severity: Severity,
    category: String,
    body: String,
    confidence: f64,
    code_reference: String,
    guideline_ids: Vec<String>,
    /// Replacement code for line..end_line, when the fix is a few lines.
    suggestion: Option<String>,
}

/// Shared state of one pull request's agent run.
struct Run<'a> {
    llm: &'a LlmClient,
    store: &'a Store,
    settings: &'a AgentSettings,
    change: &'a ChangeSet,
    /// Set once the LLM is unavailable or the budget is spent: the rest is rules-only.
    stopped: AtomicBool,
    stop_reason: std::sync::Mutex<Option<String>>,
    spent_usd: std::sync::Mutex<f64>,
    /// One redactor for the pull request, so a secret has the same placeholder in every file.
    redactor: std::sync::Mutex<crate::redact::Redactor>,
}

/// Reviews a change with the rules, then the agent per file; the verdict comes from the findings.
pub async fn review(
    change: &ChangeSet,
    reviewer: &Reviewer<'_>,
    llm: &LlmClient,
    store: &Store,
    settings: &AgentSettings,
) -> Review {
    let start = Instant::now();
    let results: Vec<FileResult> = reviewer.prepare(change);
    let run = Arc::new(Run {
        llm,
        store,
        settings,
        change,
        stopped: AtomicBool::new(false),
        stop_reason: std::sync::Mutex::new(None),
        spent_usd: std::sync::Mutex::new(0.0),
        redactor: std::sync::Mutex::new(crate::redact::Redactor::new()),
    });
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    let mut outputs: Vec<(FileRecord, Vec<Finding>)> = Vec::new();
    {
        let futures = results.iter().filter(|r| r.material.is_some()).map(|r| {
            let run = run.clone();
            let semaphore = semaphore.clone();
            async move {
                let _permit = semaphore.acquire().await.expect("semaphore stays open");
                review_file(&run, r).await
            }
        });
        outputs.extend(futures_join_all(futures).await);
    }
    let mut review = crate::review::assemble(change, Vec::new(), start);
    let mut record = AgentRecord {
        prompt_version: settings.prompt_version.clone(),
        ..Default::default()
    };
    let mut findings = Vec::new();
    let mut outputs = outputs.into_iter();
    for r in results {
        if r.material.is_some() {
            let (file_record, file_findings) =
                outputs.next().expect("one output per reviewed file");
            record.llm_calls += file_record.llm_calls;
            record.prompt_tokens += file_record.prompt_tokens;
            record.completion_tokens += file_record.completion_tokens;
            record.prompt_tokens_sent += file_record.prompt_tokens_sent;
            record.redactions += file_record.redactions;
            record.cost_usd += file_record.cost_usd;
            for (k, v) in &file_record.quirks {
                *record.quirks.entry(k.clone()).or_default() += v;
            }
            record.files.push(file_record);
            findings.extend(file_findings);
        } else {
            findings.extend(r.findings.clone());
        }
        review.timings.parse_ms += r.timings[0];
        review.timings.rules_ms += r.timings[1];
        review.timings.context_ms += r.timings[2];
        review.files.push(r.report);
    }
    record.llm_skipped = run
        .stop_reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .or_else(|| {
            let failed: Vec<&FileRecord> = record
                .files
                .iter()
                .filter(|f| f.coverage != "agent")
                .collect();
            failed.first().map(|f| {
                format!(
                    "{} file(s) not reviewed by the LLM ({})",
                    failed.len(),
                    f.reason.clone().unwrap_or_default()
                )
            })
        });
    crate::review::sort_findings(&mut findings);
    review.findings = findings;
    review.engine = "agent".into();
    if let Some(why) = &record.llm_skipped {
        let n = record
            .files
            .iter()
            .filter(|f| f.coverage != "agent")
            .count();
        review.notes.push(format!(
            "LLM skipped for {n} file(s): {why}; those files have rules findings only"
        ));
    }
    review.timings.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    review.agent = Some(record);
    review
}

/// Runs futures concurrently and returns their outputs in order (no extra crate for join_all).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => outputs[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

/// Small model for small, low-risk files; large for security-sensitive or complex ones.
fn route(result: &FileResult, m: &Material) -> (Route, String) {
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
    if SENSITIVE.is_match(&m.diff.path().to_string()) {
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

async fn review_file(run: &Run<'_>, result: &FileResult) -> (FileRecord, Vec<Finding>) {
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
        coverage: "agent".into(),
        ..Default::default()
    };
    if run.stopped.load(Ordering::SeqCst) {
        rec.coverage = "rules-only".into();
        rec.reason = run
            .stop_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        return (rec, result.findings.clone());
    }
    if run.settings.never_send.is_match(&path) {
        rec.coverage = "rules-only".into();
        rec.reason = Some("never sent to an LLM (.redline.toml never_send)".into());
        return (rec, result.findings.clone());
    }
    // Guidance for this code: its language, its identifiers and calls, the rules that fired.
    let added: String = m
        .diff
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind == crate::diff::LineKind::Added)
        .map(|l| format!("{}\n", l.text))
        .collect();
    let categories: Vec<String> = result.findings.iter().map(|f| f.category.clone()).collect();
    let q = query::for_hunks(m.language.name(), &added, &categories);
    let guidance = run.store.search(&q, Some(m.language.name()), 3);
    let mut guidance_text = String::new();
    for g in &guidance {
        let body: String = g.text.chars().take(700).collect();
        guidance_text.push_str(&format!(
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
    let header = format!("File: {path} ({})\n", m.language.name());
    let view_title = "## The change in context (new-side line numbers; `+` added, `-` removed)";
    let message = |view: &str, note: &str| {
        format!(
            "{header}{note}\n{view_title}\n{view}\n## Guidance\n{guidance_text}## Rule findings (evidence)\n{evidence}"
        )
    };
    // The whole file with markers can only be smaller than the trimmed view when that view
    // already covers most of the file's lines; only then is it worth rendering and counting.
    let trimmed = m.context.render_review(&m.text, &m.diff, None);
    let view = if trimmed.lines().count() * 5 >= m.context.file_lines as usize * 4 {
        let full = m.context.whole_file().render_review(&m.text, &m.diff, None);
        if crate::context::tokens::count(&full) < crate::context::tokens::count(&trimmed) {
            full
        } else {
            trimmed
        }
    } else {
        trimmed
    };
    let whole = message(&view, "");
    let budget = run.settings.context_token_budget.saturating_sub(1500);
    let mut drafts: Vec<Draft> = Vec::new();
    let mut calls_left = run.settings.max_tool_calls;
    let passes: Vec<String> = if crate::context::tokens::count(&whole) <= budget
        || m.diff.hunks.len() <= 1
    {
        vec![whole]
    } else {
        // Too big for one call: a summary pass, then the hunks packed into passes that fit.
        let fixed = crate::context::tokens::count(&message("", "")) + 200;
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut size = 0;
        for i in 0..m.diff.hunks.len() {
            let t = crate::context::tokens::count(&m.context.render_review(
                &m.text,
                &m.diff,
                Some(&[i]),
            ));
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
        let summary = summarize(run, route, &path, m, &mut rec).await;
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
                message(&m.context.render_review(&m.text, &m.diff, Some(g)), &note)
            })
            .collect()
    };
    for user in passes {
        if calls_left == 0 || run.stopped.load(Ordering::SeqCst) {
            break;
        }
        rec.passes += 1;
        let user = redact(run, &mut rec, &user);
        let outcome = file_loop(run, route, &user, m, &mut rec, &mut drafts, &mut calls_left).await;
        if let Err(e) = outcome {
            match e {
                LlmError::Unavailable(why) => {
                    // Once every endpoint's breaker is open, the rest of the PR is rules-only.
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
                    rec.coverage = if drafts.is_empty() {
                        "rules-only".into()
                    } else {
                        "agent".into()
                    };
                    rec.reason = Some(format!("LLM unavailable: {why}"));
                }
                LlmError::Refused(why) => {
                    rec.coverage = "failed".into();
                    rec.reason = Some(why);
                }
            }
            break;
        }
    }
    let findings = validate(run, m, &result.findings, drafts, &mut rec);
    rec.comments_kept = findings.iter().filter(|f| f.source == "llm").count();
    (rec, findings)
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

/// Tokens of a request's message texts and tool definitions, as we count them (the text the
/// model reads, not its JSON escaping).
fn prompt_size(req: &async_openai::types::chat::CreateChatCompletionRequest) -> u64 {
    let v = serde_json::to_value(&req.messages).unwrap_or_default();
    let mut text = String::new();
    for m in v.as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => text.push_str(s),
            other if !other.is_null() => text.push_str(&other.to_string()),
            _ => {}
        }
        if let Some(calls) = m["tool_calls"].as_array() {
            for c in calls {
                text.push_str(c["function"]["arguments"].as_str().unwrap_or(""));
            }
        }
        text.push('\n');
    }
    if let Some(tools) = &req.tools {
        text.push_str(&serde_json::to_string(tools).unwrap_or_default());
    }
    crate::context::tokens::count(&text) as u64
}

/// The text with secrets replaced, counted in the file's audit record (bytes, hash, redactions).
fn redact(run: &Run<'_>, rec: &mut FileRecord, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut r = run.redactor.lock().unwrap_or_else(|e| e.into_inner());
    let before = r.count;
    let out = r.redact(text);
    rec.redactions += r.count - before;
    rec.sent_bytes += out.len();
    let mut h = Sha256::new();
    h.update(rec.sent_sha256.as_deref().unwrap_or("").as_bytes());
    h.update(out.as_bytes());
    rec.sent_sha256 = Some(hex::encode(h.finalize()));
    out
}

fn system_message(run: &Run<'_>) -> ChatCompletionRequestMessage {
    // The version was checked when the settings were made; the default is always built in.
    let text = system_prompt(&run.settings.prompt_version)
        .or_else(|| system_prompt(PROMPT_VERSION))
        .expect("the default prompt is built in");
    ChatCompletionRequestSystemMessageArgs::default()
        .content(text)
        .build()
        .expect("system message")
        .into()
}

fn user_message(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .expect("user message")
        .into()
}

fn account(run: &Run<'_>, rec: &mut FileRecord, reply: &Reply) {
    rec.llm_calls += 1;
    rec.prompt_tokens += reply.prompt_tokens;
    rec.completion_tokens += reply.completion_tokens;
    let cost = crate::llm::pricing::cost(
        &reply.model,
        reply.local,
        reply.prompt_tokens,
        reply.completion_tokens,
    );
    rec.cost_usd += cost;
    rec.model = Some(reply.model.clone());
    rec.endpoint = Some(reply.endpoint.clone());
    let mut spent = run.spent_usd.lock().unwrap_or_else(|e| e.into_inner());
    *spent += cost;
    if let Some(budget) = run.settings.budget_usd {
        if *spent >= budget && !run.stopped.swap(true, Ordering::SeqCst) {
            *run.stop_reason.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("the per-PR LLM budget of ${budget:.4} is spent"));
        }
    }
}

/// One pass of the tool-calling loop. Ends on finish_file, at the tool-call bound, on repeated
/// calls, or when the model stops calling tools.
async fn file_loop(
    run: &Run<'_>,
    route: Route,
    user: &str,
    m: &Material,
    rec: &mut FileRecord,
    drafts: &mut Vec<Draft>,
    calls_left: &mut usize,
) -> Result<(), LlmError> {
    let mut messages = vec![system_message(run), user_message(user)];
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut nudges = 0;
    loop {
        if *calls_left == 0 {
            rec.stop = format!("tool-call limit ({}) reached", run.settings.max_tool_calls);
            return Ok(());
        }
        let req = CreateChatCompletionRequestArgs::default()
            .messages(messages.clone())
            .tools(tools::definitions())
            .tool_choice(ChatCompletionToolChoiceOption::Mode(
                ToolChoiceOptions::Auto,
            ))
            .max_completion_tokens(run.settings.max_completion_tokens)
            .temperature(0.0)
            .build()
            .map_err(|e| LlmError::Refused(e.to_string()))?;
        rec.prompt_tokens_sent += prompt_size(&req);
        let reply = run.llm.chat(&req, route).await?;
        account(run, rec, &reply);
        if reply.finish_reason.as_deref() == Some("length") {
            parse::note(&mut rec.quirks, "reply cut off at the token limit");
        }
        let mut calls: Vec<(String, String, String)> = reply
            .tool_calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
            .collect();
        let mut from_text = false;
        if calls.is_empty() {
            if let Some(text) = &reply.content {
                let found = parse::tool_calls_in_text(text, tools::NAMES);
                if !found.is_empty() {
                    parse::note(&mut rec.quirks, "tool call written as text");
                    from_text = true;
                    calls = found
                        .into_iter()
                        .enumerate()
                        .map(|(i, (n, a))| (format!("text_call_{}_{i}", rec.llm_calls), n, a))
                        .collect();
                }
            }
        }
        if calls.is_empty() {
            if reply.content.is_none() {
                parse::note(&mut rec.quirks, "empty reply");
            } else {
                parse::note(&mut rec.quirks, "reply without a tool call");
            }
            nudges += 1;
            if nudges > 2 {
                rec.stop = "the model stopped calling tools".into();
                return Ok(());
            }
            if let Some(text) = &reply.content {
                messages.push(
                    ChatCompletionRequestAssistantMessageArgs::default()
                        .content(text.as_str())
                        .build()
                        .expect("assistant message")
                        .into(),
                );
            }
            messages.push(user_message("Use the tools: call post_review_comment for each problem on a changed line, then finish_file."));
            continue;
        }
        // Echo the assistant turn, then answer every call it made.
        let echoed: Vec<ChatCompletionMessageToolCalls> = calls
            .iter()
            .map(|(id, name, args)| {
                ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                    id: id.clone(),
                    function: FunctionCall {
                        name: name.clone(),
                        arguments: args.clone(),
                    },
                })
            })
            .collect();
        let mut assistant = ChatCompletionRequestAssistantMessageArgs::default();
        assistant.tool_calls(echoed);
        if from_text {
            assistant.content("");
        }
        messages.push(assistant.build().expect("assistant message").into());
        let mut finished = false;
        for (id, name, args) in calls {
            let result = if *calls_left == 0 {
                "error: the tool-call limit for this file is reached; no more calls are run"
                    .to_string()
            } else {
                *calls_left -= 1;
                rec.tool_calls += 1;
                let key = format!("{name}:{}", normalize_args(&args));
                let count = seen.entry(key).or_default();
                *count += 1;
                if *count >= 3 {
                    rec.stop = "repeated identical tool calls".into();
                    finished = true;
                    "error: repeated identical call; the review of this file is stopped".to_string()
                } else if *count == 2 && name != "finish_file" {
                    parse::note(&mut rec.quirks, "repeated identical call");
                    "error: you already made this exact call; use its result, do something else, or call finish_file".to_string()
                } else {
                    let (text, done) = execute(run, m, &name, &args, drafts, rec);
                    finished |= done;
                    text
                }
            };
            let result = redact(run, rec, &result);
            messages.push(
                ChatCompletionRequestToolMessageArgs::default()
                    .tool_call_id(id)
                    .content(result)
                    .build()
                    .expect("tool message")
                    .into(),
            );
        }
        if finished {
            if rec.stop.is_empty() {
                rec.stop = "finish_file".into();
            }
            return Ok(());
        }
    }
}

fn normalize_args(args: &str) -> String {
    serde_json::from_str::<Value>(args)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| args.trim().to_string())
}

/// Runs one tool; returns its result text and whether the file is finished.
fn execute(
    run: &Run<'_>,
    m: &Material,
    name: &str,
    args: &str,
    drafts: &mut Vec<Draft>,
    rec: &mut FileRecord,
) -> (String, bool) {
    let parsed: Result<Value, _> =
        serde_json::from_str(if args.trim().is_empty() { "{}" } else { args });
    let Ok(a) = parsed else {
        parse::note(&mut rec.quirks, "malformed tool arguments");
        return (
            format!(
                "error: the arguments of {name} are not valid JSON; send a JSON object matching the tool's schema"
            ),
            false,
        );
    };
    let q = &mut rec.quirks;
    match name {
        "get_file_content" => {
            let path = a["path"].as_str().unwrap_or("");
            let Some(file) = run
                .change
                .files
                .iter()
                .find(|f| f.diff.new_path.as_deref() == Some(path))
            else {
                return (
                    format!("error: {path:?} is not a file of the reviewed revision"),
                    false,
                );
            };
            if run.settings.never_send.is_match(path) {
                return (
                    format!(
                        "error: {path:?} may not be sent to an LLM by this repository's policy"
                    ),
                    false,
                );
            }
            let Some(bytes) = file.new_content.as_deref() else {
                return (
                    "error: that file has no content in this revision".into(),
                    false,
                );
            };
            let text = String::from_utf8_lossy(bytes);
            let start = parse::int_arg(&a["start_line"], q).unwrap_or(1).max(1);
            let end = parse::int_arg(&a["end_line"], q)
                .unwrap_or(start + 50)
                .max(start)
                .min(start + tools::MAX_FILE_LINES - 1);
            let out: String = text
                .lines()
                .enumerate()
                .skip(start as usize - 1)
                .take((end - start + 1) as usize)
                .map(|(i, l)| format!("{:>5}: {}\n", i + 1, l))
                .collect();
            (
                if out.is_empty() {
                    "error: no such lines".into()
                } else {
                    out.chars().take(16_000).collect()
                },
                false,
            )
        }
        "get_security_guidelines" | "get_code_patterns" => {
            let query = a["query"].as_str().unwrap_or("");
            let lang = if name == "get_code_patterns" {
                a["language"].as_str().or(Some(m.language.name()))
            } else {
                None
            };
            let hits = run.store.search(query, lang, 3);
            if hits.is_empty() {
                return ("no guidance matches".into(), false);
            }
            (
                hits.iter()
                    .map(|h| {
                        format!(
                            "[{}] {} ({})\n{}\n",
                            h.id,
                            h.title,
                            h.section,
                            h.text.chars().take(1200).collect::<String>()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                false,
            )
        }
        "post_review_comment" => {
            let Some(line) = parse::int_arg(&a["line"], q) else {
                return (
                    "error: `line` (an integer, the new-side line number) is required".into(),
                    false,
                );
            };
            let body = a["body"].as_str().unwrap_or("").trim().to_string();
            if body.is_empty() {
                return ("error: `body` is required".into(), false);
            }
            let code_reference = a["code_reference"].as_str().unwrap_or("").to_string();
            // "app/users.py:11" is a location, not code.
            let code_reference = if regex_location().is_match(code_reference.trim()) {
                parse::note(q, "code reference was a location");
                String::new()
            } else {
                code_reference
            };
            let draft = Draft {
                line,
                end_line: a.get("end_line").and_then(|v| parse::int_arg(v, q)),
                severity: parse::severity_arg(&a["severity"], q),
                category: parse::category_arg(&a["category"], q),
                body,
                confidence: parse::confidence_arg(&a["confidence"], q).unwrap_or(0.5),
                code_reference,
                guideline_ids: a["guideline_ids"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
                // A placeholder in a suggestion would replace real code with `<secret:N>`.
                suggestion: a["suggestion"]
                    .as_str()
                    .filter(|x| !x.trim().is_empty() && !x.contains("<secret:"))
                    .map(|x| x.trim_end_matches('\n').to_string()),
            };
            drafts.push(draft);
            (format!("ok: comment {} buffered", drafts.len()), false)
        }
        "finish_file" => {
            rec.summary = a["summary"].as_str().map(str::to_string);
            ("ok".into(), true)
        }
        other => {
            parse::note(q, "unknown tool");
            (
                format!(
                    "error: unknown tool `{other}`; the tools are {}",
                    tools::NAMES.join(", ")
                ),
                false,
            )
        }
    }
}

fn regex_location() -> &'static regex::Regex {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[\w./-]+\.\w+:\d+(-\d+)?$|^(line|L)\s*\d+$").unwrap()
    });
    &RE
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Keeps what the model said only where it holds up: on a line of the diff, with a code reference
/// that matches for criticals, cited or confident, and not a repeat; merged with the rules' findings.
fn validate(
    run: &Run<'_>,
    m: &Material,
    rule_findings: &[Finding],
    drafts: Vec<Draft>,
    rec: &mut FileRecord,
) -> Vec<Finding> {
    let path = m.diff.path().to_string();
    let lines: Vec<&str> = m.text.lines().collect();
    let added = m.diff.added_lines();
    let mut kept: Vec<Finding> = Vec::new();
    for d in drafts {
        let mut line = d.line as u32;
        if m.diff.hunk_for_new_line(line).is_none() {
            // Outside every hunk: move it to the nearest changed line if it is just beside one.
            match added
                .iter()
                .min_by_key(|a| a.abs_diff(line))
                .filter(|a| a.abs_diff(line) <= 3)
            {
                Some(&near) => {
                    rec.validation.push(format!(
                        "line {line} is outside the diff: moved to changed line {near}"
                    ));
                    line = near;
                }
                None => {
                    rec.validation.push(format!(
                        "line {line} is outside the diff: dropped ({}: {})",
                        d.category,
                        crate::truncate(&d.body, 80)
                    ));
                    parse::note(&mut rec.quirks, "comment outside the diff");
                    continue;
                }
            }
        }
        let end_line = d
            .end_line
            .map(|e| e as u32)
            .filter(|e| *e >= line && *e <= line + 20)
            .unwrap_or(line);
        let cited: Vec<String> = d
            .guideline_ids
            .iter()
            .filter(|g| run.store.entry(g).is_some())
            .cloned()
            .collect();
        if cited.is_empty() && d.confidence < run.settings.uncited_min_confidence {
            rec.validation.push(format!(
                "line {line}: cites no guidance and confidence {:.2} is below {:.2}: dropped",
                d.confidence, run.settings.uncited_min_confidence
            ));
            continue;
        }
        let mut severity = d.severity;
        let window: String = lines
            .iter()
            .skip(line.saturating_sub(2) as usize)
            .take((end_line - line + 3) as usize)
            .copied()
            .collect::<Vec<_>>()
            .join("\n");
        let reference = squash(&d.code_reference);
        // The model saw the code with secrets as placeholders; compare with that view too.
        let redacted_window = run
            .redactor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .redact(&window);
        let anchored = !reference.is_empty()
            && (squash(&window).contains(&reference)
                || squash(&redacted_window).contains(&reference)
                || lines
                    .get(line as usize - 1)
                    .is_some_and(|l| reference.contains(&squash(l)) && !squash(l).is_empty()));
        if !anchored && severity != Severity::Critical && d.confidence < ANCHOR_EXEMPT_CONFIDENCE {
            // Not anchored to the code it names: likely on the wrong line, or about nothing.
            rec.validation.push(format!(
                "line {line}: the code reference does not match the line: dropped ({}: {})",
                d.category,
                crate::truncate(&d.body, 80)
            ));
            continue;
        }
        if severity == Severity::Critical {
            if !anchored {
                rec.validation.push(format!("line {line}: critical without a code reference matching the line: downgraded to warning"));
                severity = Severity::Warning;
            } else if d.confidence < run.settings.min_critical_confidence {
                rec.validation.push(format!(
                    "line {line}: critical with confidence {:.2}: downgraded to warning",
                    d.confidence
                ));
                severity = Severity::Warning;
            }
        }
        if let Some(prev) = kept
            .iter_mut()
            .find(|f| f.category == d.category && f.line.abs_diff(line) <= 2)
        {
            rec.validation.push(format!(
                "line {line}: repeats the comment on line {}: merged",
                prev.line
            ));
            if severity < prev.severity {
                prev.severity = severity;
            }
            prev.confidence = prev.confidence.max(d.confidence);
            continue;
        }
        kept.push(Finding {
            path: path.clone(),
            line,
            end_line,
            severity,
            category: d.category,
            message: d.body,
            confidence: d.confidence,
            rule_id: None,
            source: "llm".into(),
            cwe: None,
            guidance: cited,
            suggestion: d.suggestion,
        });
    }
    // A rule finding the agent confirmed (same category, within 3 lines) keeps its rule id and
    // line; the others stand as rules findings.
    let mut out = Vec::new();
    for rf in rule_findings {
        if let Some(pos) = kept
            .iter()
            .position(|k| k.category == rf.category && k.line.abs_diff(rf.line) <= 3)
        {
            let k = kept.remove(pos);
            out.push(Finding {
                line: rf.line,
                end_line: rf.end_line,
                severity: rf.severity.min(k.severity),
                message: k.message,
                confidence: rf.confidence.max(k.confidence),
                rule_id: rf.rule_id.clone(),
                source: "llm".into(),
                cwe: rf.cwe.clone(),
                guidance: if k.guidance.is_empty() {
                    rf.guidance.clone()
                } else {
                    k.guidance
                },
                // The agent's fix targets its own line range: keep it only if the ranges agree.
                suggestion: k
                    .suggestion
                    .filter(|_| k.line == rf.line && k.end_line == rf.end_line),
                ..rf.clone()
            });
        } else {
            out.push(rf.clone());
        }
    }
    out.extend(kept);
    out
}
