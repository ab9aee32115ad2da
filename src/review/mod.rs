//! The review pipeline: a `ChangeSet` in, findings and per-file coverage out. Every file is either
//! reviewed or listed as skipped with its reason; nothing is dropped silently.

use crate::change::{ChangeSet, ChangedFile};
use crate::config;
use crate::context::{self, FileContext};
use crate::diff::FileStatus;
use crate::lang::{self, Language};
use crate::rules::{RuleSet, Severity};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// Files larger than this are skipped (generated or data files, not code to review).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

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
    /// `rules` or `llm`.
    pub source: String,
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
    pub status: &'static str,
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
    pub context_tokens: usize,
    pub file_tokens: usize,
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

/// The result of a review.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub description: String,
    /// `rules` (no LLM configured) or `agent`.
    pub engine: String,
    pub rules_version: String,
    pub findings: Vec<Finding>,
    pub files: Vec<FileReport>,
    pub notes: Vec<String>,
    pub timings: Timings,
    /// What the agent did, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<crate::agent::AgentRecord>,
}

/// One file through the rules stage, with what the agent needs to review it further.
pub struct FileResult {
    pub report: FileReport,
    pub findings: Vec<Finding>,
    /// Parse, rules and context milliseconds.
    pub timings: [f64; 3],
    pub material: Option<Material>,
}

/// A reviewed file's text, diff and trimmed context.
pub struct Material {
    pub language: Language,
    /// The new text (LF line ends).
    pub text: String,
    pub diff: crate::diff::FileDiff,
    /// The trimmed context (spans and outline).
    pub context: FileContext,
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
    pub fn verdict(&self) -> &'static str {
        if self
            .findings
            .iter()
            .any(|f| f.severity == Severity::Critical)
        {
            "request_changes"
        } else {
            "comment"
        }
    }
}

/// What the pipeline needs besides the change.
pub struct Reviewer<'a> {
    pub rules: &'a RuleSet,
    pub config: &'a config::Loaded,
    /// Findings below this are dropped (the stricter of this and the config's).
    pub min_severity: Severity,
}

/// Reviews a change with the rules, or with the agent when an LLM is configured and the
/// repository's policy (`llm = "off" | "local-only" | "any"`) lets its code go to one of the
/// endpoints; a refusal is said in the review's notes. Returns the LLM client too (for its
/// recording) when the agent ran. `prompt_version` overrides `REDLINE_PROMPT_VERSION`.
pub async fn review_with_policy(
    change: &ChangeSet,
    reviewer: &Reviewer<'_>,
    llm: Option<&crate::llm::LlmConfig>,
    loaded: &config::Loaded,
    record: bool,
    prompt_version: Option<&str>,
) -> anyhow::Result<(Review, Option<crate::llm::LlmClient>)> {
    use crate::config::LlmPolicy;
    let Some(llm) = llm else {
        return Ok((reviewer.review(change), None));
    };
    let mut llm = llm.clone();
    let refused = match loaded.config.llm {
        LlmPolicy::Off => Some("this repository's .redline.toml sets llm = \"off\"".to_string()),
        LlmPolicy::LocalOnly => {
            llm.endpoints.retain(|e| e.local);
            llm.endpoints.is_empty().then(|| "this repository's .redline.toml sets llm = \"local-only\" and no configured endpoint is marked local".to_string())
        }
        LlmPolicy::Any => None,
    };
    if let Some(why) = refused {
        let mut review = reviewer.review(change);
        review
            .notes
            .push(format!("LLM not used: {why}; rules review only"));
        return Ok((review, None));
    }
    let store = crate::knowledge::Store::with_extra(&loaded.extra_dirs)?;
    let mut client = crate::llm::LlmClient::new(llm)?;
    if record {
        client = client.record();
    }
    let mut settings = crate::agent::AgentSettings::from_env();
    settings.never_send = loaded.never_send.clone();
    if let Some(v) = prompt_version {
        settings.prompt_version = v.to_string();
    }
    crate::agent::check_prompt_version(&settings.prompt_version)?;
    let review = crate::agent::review(change, reviewer, &client, &store, &settings).await;
    Ok((review, Some(client)))
}

/// The version of the built-in rules: a short hash of their files, so results can be compared.
pub fn rules_version() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (p, t) in crate::knowledge::builtin_files()
        .iter()
        .filter(|(p, _)| p.ends_with(".rules.toml"))
    {
        h.update(p.as_bytes());
        h.update(t.as_bytes());
    }
    format!(
        "{}+{}",
        env!("CARGO_PKG_VERSION"),
        &hex::encode(h.finalize())[..12]
    )
}

impl Reviewer<'_> {
    /// Reviews a change with the rules engine.
    pub fn review(&self, change: &ChangeSet) -> Review {
        let start = Instant::now();
        let results = self.prepare(change);
        assemble(change, results, start)
    }

    /// Runs every file through parsing, rules and context trimming, on all cores.
    pub fn prepare(&self, change: &ChangeSet) -> Vec<FileResult> {
        std::thread::scope(|s| {
            let workers = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .min(change.files.len().max(1));
            let chunks: Vec<Vec<(usize, &ChangedFile)>> = (0..workers)
                .map(|w| {
                    change
                        .files
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % workers == w)
                        .collect()
                })
                .collect();
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .into_iter()
                            .map(|(i, f)| (i, self.review_file(f)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<(usize, FileResult)> = handles
                .into_iter()
                .flat_map(|h| h.join().expect("review thread"))
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, r)| r).collect()
        })
    }

    fn review_file(&self, file: &ChangedFile) -> FileResult {
        let diff = &file.diff;
        let path = diff.path().to_string();
        let added = diff
            .hunks
            .iter()
            .flat_map(|h| &h.lines)
            .filter(|l| l.kind == crate::diff::LineKind::Added)
            .count();
        let removed = diff.changed_line_count() - added;
        let text = file.new_content.as_deref().map(String::from_utf8_lossy);
        let language = lang::detect(&path, text.as_deref());
        let mut report = FileReport {
            path: path.clone(),
            status: diff.status.as_str(),
            language: language.map(Language::name),
            skipped: None,
            added_lines: added,
            removed_lines: removed,
            context: None,
        };
        let skip = |mut r: FileReport, why: String| {
            r.skipped = Some(why);
            FileResult {
                report: r,
                findings: Vec::new(),
                timings: [0.0; 3],
                material: None,
            }
        };
        if self.config.is_ignored(&path) {
            return skip(
                report,
                "ignored (vendored, generated, lock or minified file, or listed in .redline.toml)"
                    .into(),
            );
        }
        if diff.status == FileStatus::Deleted {
            return skip(report, "deleted".into());
        }
        if diff.binary
            || file
                .new_content
                .as_deref()
                .is_some_and(|b| b.iter().take(8000).any(|&c| c == 0))
        {
            return skip(report, "binary file".into());
        }
        if diff.mode_only() {
            return skip(report, "mode change only".into());
        }
        if diff.hunks.is_empty() {
            let why = if diff.status == FileStatus::Renamed {
                "renamed without content changes"
            } else {
                "no content changes"
            };
            return skip(report, why.into());
        }
        if added == 0 {
            return skip(report, "only removed lines".into());
        }
        let Some(language) = language else {
            let ext = std::path::Path::new(&path)
                .extension()
                .and_then(|e| e.to_str())
                .map(|e| format!(".{e}"))
                .unwrap_or_else(|| "no extension".into());
            return skip(report, format!("unsupported language ({ext})"));
        };
        let Some(bytes) = file.new_content.as_deref() else {
            return skip(report, "file content unavailable".into());
        };
        if bytes.len() > MAX_FILE_BYTES {
            return skip(
                report,
                format!(
                    "too large ({} KiB > {} KiB)",
                    bytes.len() / 1024,
                    MAX_FILE_BYTES / 1024
                ),
            );
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return skip(report, "not UTF-8 text".into());
        };
        if is_generated(text) {
            return skip(
                report,
                "generated file (has a `Code generated ... DO NOT EDIT` header)".into(),
            );
        }
        // CRLF files: tree-sitter and line numbers work on LF; the line count is unchanged.
        let text: std::borrow::Cow<str> = if text.contains('\r') {
            text.replace("\r\n", "\n").into()
        } else {
            text.into()
        };
        let t0 = Instant::now();
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&language.grammar())
            .expect("bundled grammar loads");
        let Some(tree) = parser.parse(text.as_bytes(), None) else {
            return skip(report, "parser gave up".into());
        };
        let t1 = Instant::now();
        let added_lines = diff.added_lines();
        let hits = self.rules.run(language, &text, &tree);
        let min = self
            .config
            .config
            .min_severity
            .unwrap_or(Severity::Suggestion)
            .min(self.min_severity);
        let mut findings: Vec<Finding> = Vec::new();
        for h in hits {
            if h.severity > min {
                continue;
            }
            if !(h.line..=h.end_line).any(|l| added_lines.contains(&l)) {
                continue;
            }
            // Tests do insecure things on purpose (a local server without TLS, eval of a fixture,
            // a made-up password): one level lower there, except for values with the shape of a
            // real key, which leak from tests as well.
            let severity = if is_test_path(&path) && !h.rule_id.ends_with("known-shape") {
                h.severity.lower()
            } else {
                h.severity
            };
            // Several rules of one category on one line are one finding: the surest one speaks,
            // at the higher of their severities.
            if let Some(prev) = findings
                .iter_mut()
                .find(|f| f.line == h.line && f.category == h.category)
            {
                prev.severity = prev.severity.min(severity);
                if h.confidence > prev.confidence {
                    prev.confidence = h.confidence;
                    prev.rule_id = Some(h.rule_id);
                    prev.message = h.message;
                    prev.guidance = h.guidance;
                }
                continue;
            }
            // Point at the first changed line of a multi-line node.
            let line = (h.line..=h.end_line)
                .find(|l| added_lines.contains(l))
                .unwrap_or(h.line);
            findings.push(Finding {
                path: path.clone(),
                line,
                end_line: line.max(h.end_line.min(line + 2)),
                severity,
                category: h.category,
                message: h.message,
                confidence: h.confidence,
                rule_id: Some(h.rule_id),
                source: "rules".into(),
                cwe: h.cwe,
                guidance: h.guidance,
                suggestion: None,
            });
        }
        let t2 = Instant::now();
        let ctx: FileContext = context::trim(language, &text, &tree, diff);
        let t3 = Instant::now();
        report.context = Some(ContextStats {
            context_lines: ctx.context_lines,
            file_lines: ctx.file_lines,
            context_tokens: ctx.context_tokens,
            file_tokens: ctx.file_tokens,
            capped: ctx.capped,
        });
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        let material = Material {
            language,
            context: ctx,
            text: text.into_owned(),
            diff: diff.clone(),
        };
        FileResult {
            report,
            findings,
            timings: [ms(t0, t1), ms(t1, t2), ms(t2, t3)],
            material: Some(material),
        }
    }
}

/// Builds a rules review from the files' results.
pub fn assemble(change: &ChangeSet, results: Vec<FileResult>, start: Instant) -> Review {
    let mut timings = Timings::default();
    let mut findings = Vec::new();
    let mut files = Vec::new();
    for r in results {
        timings.parse_ms += r.timings[0];
        timings.rules_ms += r.timings[1];
        timings.context_ms += r.timings[2];
        files.push(r.report);
        findings.extend(r.findings);
    }
    sort_findings(&mut findings);
    timings.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    Review {
        description: change.description.clone(),
        engine: "rules".into(),
        rules_version: rules_version(),
        findings,
        files,
        notes: change.notes.clone(),
        timings,
        agent: None,
    }
}

/// Findings in reading order: by path, line, then most severe first.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then(a.line.cmp(&b.line))
            .then(a.severity.cmp(&b.severity))
    });
}

/// Test code, by the conventions of the four languages.
pub fn is_test_path(path: &str) -> bool {
    static TEST: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(^|/)(tests?|__tests__|testing|spec|e2e)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|(^|/)conftest\.py$|\.(test|spec)\.[cm]?[jt]sx?$").unwrap()
    });
    TEST.is_match(path)
}

/// Go's and others' convention for generated code, in the first lines of a file.
fn is_generated(text: &str) -> bool {
    text.lines().take(5).any(|l| {
        let l = l.trim_start_matches(['/', '#', ' ', '*']);
        (l.starts_with("Code generated") && l.contains("DO NOT EDIT"))
            || l.starts_with("@generated")
    })
}
