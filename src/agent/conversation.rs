//! The tool-calling conversation of one pass over a file: requests, replies, tool calls answered,
//! tokens and cost accounted, and every text sent to the model redacted and hashed for the audit.

use super::prompts::{PROMPT_VERSION, system_prompt};
use super::tools::{self, execute};
use super::{Draft, Run, parse};
use crate::llm::{LlmError, Reply, Route};
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestToolMessageArgs,
    ChatCompletionRequestUserMessageArgs, ChatCompletionToolChoiceOption,
    CreateChatCompletionRequestArgs, FunctionCall, ToolChoiceOptions,
};
use redline_core::model::{FileRecord, note_quirk};
use redline_core::pipeline::Material;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Tokens of a request's message texts and tool definitions, as we count them (the text the
/// model reads, not its JSON escaping).
pub(super) fn prompt_size(req: &async_openai::types::chat::CreateChatCompletionRequest) -> u64 {
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
    redline_core::context::tokens::count(&text) as u64
}

/// The text with secrets replaced, counted in the file's audit record (bytes, hash, redactions).
pub(super) fn redact(run: &Run<'_>, rec: &mut FileRecord, text: &str) -> String {
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

pub(super) fn system_message(run: &Run<'_>) -> ChatCompletionRequestMessage {
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

pub(super) fn user_message(text: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .expect("user message")
        .into()
}

pub(super) fn account(run: &Run<'_>, rec: &mut FileRecord, reply: &Reply) {
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
    if let Some(budget) = run.settings.budget_usd
        && *spent >= budget
        && !run.stopped.swap(true, Ordering::SeqCst)
    {
        *run.stop_reason.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("the per-PR LLM budget of ${budget:.4} is spent"));
    }
}

/// One pass of the tool-calling loop. Ends on finish_file, at the tool-call bound, on repeated
/// calls, or when the model stops calling tools.
pub(super) async fn file_loop(
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
            .temperature(run.settings.temperature)
            .build()
            .map_err(|e| LlmError::Refused(e.to_string()))?;
        rec.prompt_tokens_sent += prompt_size(&req);
        let reply = run.llm.chat(&req, route).await?;
        account(run, rec, &reply);
        if reply.finish_reason.as_deref() == Some("length") {
            note_quirk(&mut rec.quirks, "reply cut off at the token limit");
        }
        let mut calls: Vec<(String, String, String)> = reply
            .tool_calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
            .collect();
        let mut from_text = false;
        if calls.is_empty()
            && let Some(text) = &reply.content
        {
            let found = parse::tool_calls_in_text(text, tools::NAMES);
            if !found.is_empty() {
                note_quirk(&mut rec.quirks, "tool call written as text");
                from_text = true;
                calls = found
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, a))| (format!("text_call_{}_{i}", rec.llm_calls), n, a))
                    .collect();
            }
        }
        if calls.is_empty() {
            if reply.content.is_none() {
                note_quirk(&mut rec.quirks, "empty reply");
            } else {
                note_quirk(&mut rec.quirks, "reply without a tool call");
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
                    note_quirk(&mut rec.quirks, "repeated identical call");
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
