//! The agent's tools: their JSON schemas (sent to the model) and what calling them does.

use async_openai::types::chat::FunctionObject;
use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools};
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
