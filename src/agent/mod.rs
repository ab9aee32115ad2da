//! The review agent: per changed file, a bounded tool-calling loop over an OpenAI-compatible
//! model, with the trimmed context, retrieved guidance and the rules' findings as evidence.
//!
//! What the model says is advice: every comment is validated against the diff before it is kept,
//! and the verdict is computed from the kept findings, never from model prose. LLM outages,
//! timeouts and the budget never lose a review: the files the agent could not cover keep their
//! rules findings, and the record says why.
//!
//! The review pipeline (`crate::review`) prepares the files and hands them here:
//! - `file`: one file's review (routing, the message, passes); `conversation`: the tool-calling
//!   loop and its accounting; `tools`: the tools' schemas and what calling them does;
//! - `validate`: what the model said, checked against the diff; `parse`: lenient reading of
//!   model output; `prompts` and `settings`: versions and bounds.

mod classes;
mod conversation;
mod file;
pub mod parse;
mod prompts;
mod settings;
pub mod thread;
pub mod tools;
mod validate;
mod verify;

pub use prompts::{PROMPT_VERSION, check_prompt_version, prompt_versions, system_prompt};
pub use settings::AgentSettings;

use crate::llm::LlmClient;
use crate::llm::embeddings::Embedder;
use futures::future::join_all;
use redline_core::change::ChangeSet;
use redline_core::knowledge::Store;
use redline_core::model::{FileRecord, Finding, Severity};
use redline_core::pipeline::PreparedFile;
use redline_core::redact::Redactor;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// A comment the model buffered.
#[derive(Debug, Clone)]
struct Draft {
    line: u64,
    end_line: Option<u64>,
    severity: Severity,
    category: String,
    body: String,
    confidence: f64,
    reference: Reference,
    guideline_ids: Vec<String>,
    /// Replacement code for line..end_line, when the fix is a few lines.
    suggestion: Option<String>,
}

/// What a comment says it is about: the code itself, or where it is.
#[derive(Debug, Clone, PartialEq)]
enum Reference {
    None,
    /// Code quoted from the file.
    Code(String),
    /// `path:12`, `app/x.py:12-14`, `line 12`, `L12-L14`: resolved to the code at those lines.
    Location {
        path: Option<String>,
        start: u32,
        end: u32,
    },
}

impl Reference {
    /// Reads what a model put in `code_reference`.
    fn parse(text: &str) -> Reference {
        static PATH_LINE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"^([\w./-]+\.\w+):(\d+)(?:-(\d+)|:\d+)?$").unwrap()
        });
        static LINE_WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r"(?i)^(?:lines?\s*|l)(\d+)(?:\s*[-–]\s*l?(\d+))?$").unwrap()
        });
        let t = text
            .trim()
            .trim_matches(|c| c == '`' || c == '"' || c == '\'');
        if t.is_empty() {
            return Reference::None;
        }
        let range = |a: &str, b: Option<&str>| {
            let start: u32 = a.parse().unwrap_or(0);
            let end = b.and_then(|b| b.parse().ok()).unwrap_or(start).max(start);
            (start, end)
        };
        if let Some(c) = PATH_LINE.captures(t) {
            let (start, end) = range(&c[2], c.get(3).map(|m| m.as_str()));
            return Reference::Location {
                path: Some(c[1].to_string()),
                start,
                end,
            };
        }
        if let Some(c) = LINE_WORD.captures(t) {
            let (start, end) = range(&c[1], c.get(2).map(|m| m.as_str()));
            return Reference::Location {
                path: None,
                start,
                end,
            };
        }
        Reference::Code(text.to_string())
    }
}

/// Shared state of one pull request's agent run.
struct Run<'a> {
    llm: &'a LlmClient,
    store: &'a Store,
    /// With embeddings attached to `store`, guidance is retrieved by BM25 and dense similarity.
    embedder: Option<&'a Embedder>,
    settings: &'a AgentSettings,
    change: &'a ChangeSet,
    /// Set once the LLM is unavailable or the budget is spent: the rest is rules-only.
    stopped: AtomicBool,
    stop_reason: Mutex<Option<String>>,
    spent_usd: Mutex<f64>,
    /// One redactor for the pull request, so a secret has the same placeholder in every file.
    redactor: Mutex<Redactor>,
}

/// What the agent made of a pull request's prepared files.
pub struct AgentOutput {
    /// One record and the kept findings per prepared file that was reviewed (has material), in
    /// the order of `prepared`.
    pub files: Vec<(FileRecord, Vec<Finding>)>,
    /// Why the LLM stopped for the rest of the pull request (outage, budget), if it did.
    pub stopped: Option<String>,
}

/// Reviews each prepared file with the agent, `settings.concurrency` files at a time.
pub async fn review_files(
    change: &ChangeSet,
    prepared: &[PreparedFile],
    llm: &LlmClient,
    store: &Store,
    embedder: Option<&Embedder>,
    settings: &AgentSettings,
) -> AgentOutput {
    let run = Arc::new(Run {
        llm,
        store,
        embedder,
        settings,
        change,
        stopped: AtomicBool::new(false),
        stop_reason: Mutex::new(None),
        spent_usd: Mutex::new(0.0),
        redactor: Mutex::new(Redactor::new()),
    });
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    let files = join_all(prepared.iter().filter(|r| r.material.is_some()).map(|r| {
        let run = run.clone();
        let semaphore = semaphore.clone();
        async move {
            let _permit = semaphore.acquire().await.expect("semaphore stays open");
            file::review_file(&run, r).await
        }
    }))
    .await;
    let stopped = run
        .stop_reason
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    AgentOutput { files, stopped }
}

#[cfg(test)]
mod tests {
    use super::Reference;

    #[test]
    fn locations_are_told_from_code() {
        let loc = |path: Option<&str>, start, end| Reference::Location {
            path: path.map(str::to_string),
            start,
            end,
        };
        assert_eq!(
            Reference::parse("app/users.py:11"),
            loc(Some("app/users.py"), 11, 11)
        );
        assert_eq!(
            Reference::parse("`src/a.ts:3-5`"),
            loc(Some("src/a.ts"), 3, 5)
        );
        assert_eq!(Reference::parse("line 7"), loc(None, 7, 7));
        assert_eq!(Reference::parse("L12-L14"), loc(None, 12, 14));
        assert_eq!(
            Reference::parse("cur.execute(q)"),
            Reference::Code("cur.execute(q)".into())
        );
        assert_eq!(Reference::parse("  "), Reference::None);
    }
}
