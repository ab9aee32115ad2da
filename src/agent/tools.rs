//! The agent's tools: their JSON schemas (sent to the model) and what calling them does.

use super::{Draft, Reference, Run, parse};
use async_openai::types::chat::FunctionObject;
use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools};
use redline_core::model::{FileRecord, note_quirk};
use redline_core::pipeline::Material;
use serde_json::{Value, json};

/// Tool names, in the order they are offered.
pub const NAMES: &[&str] = &[
    "get_file_content",
    "get_security_guidelines",
    "get_code_patterns",
    "post_review_comment",
    "finish_file",
];

/// Most lines `get_file_content` returns at once.
pub const MAX_FILE_LINES: u64 = 200;

fn tool(name: &str, description: &str, parameters: Value) -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: name.into(),
            description: Some(description.into()),
            parameters: Some(parameters),
            strict: None,
        },
    })
}

/// The tool definitions.
pub fn definitions() -> Vec<ChatCompletionTools> {
    vec![
        tool(
            "get_file_content",
            "Read lines of a file of the reviewed revision (at most 200 lines per call).",
            json!({"type": "object", "properties": {
                "path": {"type": "string"}, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
                "required": ["path", "start_line", "end_line"]}),
        ),
        tool(
            "get_security_guidelines",
            "Search the security guidance (OWASP Top 10 mapped to code) for a topic or API.",
            json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
        ),
        tool(
            "get_code_patterns",
            "Search the style and correctness guidance for a language.",
            json!({"type": "object", "properties": {"language": {"type": "string"}, "query": {"type": "string"}}, "required": ["language", "query"]}),
        ),
        tool(
            "post_review_comment",
            "Leave a review comment on a changed line of this file. It is buffered and validated, not posted at once.",
            json!({"type": "object", "properties": {
                "line": {"type": "integer", "description": "new-side line number of a changed line"},
                "end_line": {"type": "integer"},
                "severity": {"type": "string", "enum": ["critical", "warning", "suggestion"]},
                "category": {"type": "string", "description": "short kebab-case class, e.g. sql-injection"},
                "body": {"type": "string", "description": "what is wrong, why it matters, how to fix it"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "code_reference": {"type": "string", "description": "the exact code of that line, verbatim"},
                "guideline_ids": {"type": "array", "items": {"type": "string"}},
                "suggestion": {"type": "string", "description": "optional: the corrected code that replaces lines line..end_line exactly, when the fix is a few lines"}},
                "required": ["line", "severity", "category", "body", "confidence", "code_reference"]}),
        ),
        tool(
            "finish_file",
            "Finish the review of this file.",
            json!({"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}),
        ),
    ]
}

/// Runs one tool; returns its result text and whether the file is finished.
pub(super) fn execute(
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
        note_quirk(&mut rec.quirks, "malformed tool arguments");
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
                .min(start + MAX_FILE_LINES - 1);
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
            // "app/users.py:11" is a location, not code: it is resolved against the file later.
            let reference = Reference::parse(a["code_reference"].as_str().unwrap_or(""));
            if matches!(reference, Reference::Location { .. }) {
                note_quirk(q, "code reference was a location");
            }
            let draft = Draft {
                line,
                end_line: a.get("end_line").and_then(|v| parse::int_arg(v, q)),
                severity: parse::severity_arg(&a["severity"], q),
                category: parse::category_arg(&a["category"], q),
                body,
                confidence: parse::confidence_arg(&a["confidence"], q).unwrap_or(0.5),
                reference,
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
            note_quirk(q, "unknown tool");
            (
                format!(
                    "error: unknown tool `{other}`; the tools are {}",
                    NAMES.join(", ")
                ),
                false,
            )
        }
    }
}
