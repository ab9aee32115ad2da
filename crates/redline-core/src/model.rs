//! The types every layer speaks: severities, findings, per-file reports, a review and the record
//! of what an LLM agent did. They live at the bottom so that the pipeline, the agent, the report
//! formats and the GitHub poster can share them without importing each other.

use crate::diff::FileStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Suggestion,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Suggestion];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        }
    }

    /// One level less severe (a suggestion stays a suggestion).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::Warning,
            _ => Severity::Suggestion,
        }
    }

    /// Parses `critical`, `warning` or `suggestion`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "warning" => Some(Severity::Warning),
            "suggestion" => Some(Severity::Suggestion),
            _ => None,
        }
    }
}

/// Which engine produced a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FindingSource {
    /// The deterministic rules engine.
    Rules,
    /// The LLM agent (possibly confirming a rule's finding, which then keeps its rule id).
    Llm,
    /// Another tool's findings, read for scoring.
    External,
}

impl FindingSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingSource::Rules => "rules",
            FindingSource::Llm => "llm",
            FindingSource::External => "external",
        }
    }

    /// Parses a stored or reported source; anything else is another tool's.
    pub fn parse(s: &str) -> FindingSource {
        match s {
            "rules" => FindingSource::Rules,
            "llm" => FindingSource::Llm,
            _ => FindingSource::External,
        }
    }
}

/// One reported finding, in the bench-format findings shape plus extra fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub path: String,
    pub line: u32,
    pub end_line: u32,
    pub severity: Severity,
    pub category: String,
    pub message: String,
    pub confidence: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    pub source: FindingSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwe: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guidance: Vec<String>,
    /// Replacement code for line..end_line, posted as a GitHub suggestion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// What happened to one changed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub status: FileStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'static str>,
    /// None when reviewed; otherwise why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub added_lines: usize,
    pub removed_lines: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextStats>,
}

/// Context sizes of a reviewed file: what an LLM would be sent, against the whole file.
#[derive(Debug, Clone, Serialize)]
pub struct ContextStats {
    pub context_lines: u32,
    pub file_lines: u32,
    /// Tokens (cl100k) of the context and of the whole file; counted only when an LLM reviews.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_tokens: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_tokens: Option<usize>,
    pub capped: bool,
}

/// Milliseconds spent in each stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub load_ms: f64,
    pub parse_ms: f64,
    pub rules_ms: f64,
    pub context_ms: f64,
    pub total_ms: f64,
}

/// Which engine reviewed a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The rules alone (no LLM configured, or the repository's policy refused it).
    Rules,
    /// The rules, then the LLM agent per file.
    Agent,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Rules => "rules",
            Engine::Agent => "agent",
        }
    }
}

/// The verdict a pull-request review carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At least one critical finding.
    RequestChanges,
    Comment,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RequestChanges => "request_changes",
            Verdict::Comment => "comment",
        }
    }
}

/// The result of a review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub description: String,
    pub engine: Engine,
    pub rules_version: String,
    pub findings: Vec<Finding>,
    pub files: Vec<FileReport>,
    pub notes: Vec<String>,
    pub timings: Timings,
    /// What the agent did, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentRecord>,
}

impl Review {
    /// Finding counts by severity.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::from([("critical", 0), ("warning", 0), ("suggestion", 0)]);
        for f in &self.findings {
            *m.entry(f.severity.as_str()).or_default() += 1;
        }
        m
    }

    /// Files reviewed.
    pub fn reviewed(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.skipped.is_none())
    }

    /// Files skipped, with reasons.
    pub fn skipped(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.skipped.is_some())
    }

    /// The verdict a PR review would carry: request changes on a critical, else comment.
    pub fn verdict(&self) -> Verdict {
        if self
            .findings
            .iter()
            .any(|f| f.severity == Severity::Critical)
        {
            Verdict::RequestChanges
        } else {
            Verdict::Comment
        }
    }
}

/// Counts of each kind of repair made to what a model emitted, by name.
pub type Quirks = BTreeMap<String, usize>;

/// Notes one repair.
pub fn note_quirk(quirks: &mut Quirks, kind: &str) {
    *quirks.entry(kind.to_string()).or_default() += 1;
}

/// How a file was covered by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// The LLM reviewed it.
    #[default]
    Agent,
    /// The LLM was skipped for it (policy, budget, outage): rules findings only.
    RulesOnly,
    /// The LLM refused the request.
    Failed,
}

impl Coverage {
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Agent => "agent",
            Coverage::RulesOnly => "rules-only",
            Coverage::Failed => "failed",
        }
    }
}

/// What the agent did for one file.
#[derive(Debug, Clone, Serialize, Default)]
pub struct FileRecord {
    pub path: String,
    pub coverage: Coverage,
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
    /// What the verification call said of each finding only the model made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub verification: Vec<String>,
    /// The findings only the model made, as they would stand without verification (what
    /// verification was asked to check), for the record and for measuring what it changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before_verification: Vec<Finding>,
    /// Independent reviews of the file (agreement), when more than one.
    #[serde(skip_serializing_if = "is_one")]
    pub samples: usize,
    pub quirks: Quirks,
    pub summary: Option<String>,
}

fn is_one(n: &usize) -> bool {
    *n <= 1
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

impl AgentRecord {
    /// The model of the first file an LLM reviewed.
    pub fn model(&self) -> Option<String> {
        self.files.iter().find_map(|f| f.model.clone())
    }
}
