//! The offline review pipeline: a `ChangeSet` in, findings and per-file coverage out. Every file
//! is either reviewed or listed as skipped with its reason; nothing is dropped silently.
//!
//! `Reviewer::prepare` runs each file through parsing, the rules and context trimming and returns
//! `PreparedFile`s; a rules review assembles them at once, and an agent review (in the `redline`
//! crate) takes the same prepared files further before assembling.

mod skip;

use crate::change::{ChangeSet, ChangedFile};
use crate::config;
use crate::context::{self, FileContext};
use crate::lang::Language;
use crate::model::{
    ContextStats, Engine, FileReport, Finding, FindingSource, Review, Severity, Timings,
};
use crate::rules::{RuleHit, RuleSet};
use std::time::Instant;

pub use skip::{MAX_FILE_BYTES, is_test_path};

/// One file through the rules stage, with what an agent needs to review it further.
pub struct PreparedFile {
    pub report: FileReport,
    pub findings: Vec<Finding>,
    /// Parse, rules and context milliseconds.
    pub timings: [f64; 3],
    /// None when the file was skipped.
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

/// What the pipeline needs besides the change.
pub struct Reviewer<'a> {
    pub rules: &'a RuleSet,
    pub config: &'a config::Loaded,
    /// Findings below this are dropped (the stricter of this and the config's).
    pub min_severity: Severity,
}

/// The version of the built-in rules: a short hash of their files, so results can be compared.
pub fn rules_version() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (p, t) in crate::builtin::files()
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
        let prepared = self.prepare(change);
        assemble(change, prepared, start)
    }

    /// Runs every file through parsing, rules and context trimming, on all cores.
    pub fn prepare(&self, change: &ChangeSet) -> Vec<PreparedFile> {
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
                            .map(|(i, f)| (i, self.prepare_file(f)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<(usize, PreparedFile)> = handles
                .into_iter()
                .flat_map(|h| h.join().expect("review thread"))
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, r)| r).collect()
        })
    }

    /// One file: skipped with a reason, or parsed, run through the rules and trimmed.
    pub fn prepare_file(&self, file: &ChangedFile) -> PreparedFile {
        let (report, readable) = skip::check(self.config, file);
        let (language, text) = match readable {
            Ok(r) => r,
            Err(why) => return PreparedFile::skipped(report, why),
        };
        let t0 = Instant::now();
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&language.grammar())
            .expect("bundled grammar loads");
        let Some(tree) = parser.parse(text.as_bytes(), None) else {
            return PreparedFile::skipped(report, "parser gave up".into());
        };
        let t1 = Instant::now();
        let hits = self
            .rules
            .run_except(language, &text, &tree, &self.config.config.rules.disable);
        let findings = self.changed_line_findings(&report.path, &file.diff, hits);
        let t2 = Instant::now();
        let ctx: FileContext = context::trim(language, &text, &tree, &file.diff);
        let t3 = Instant::now();
        let mut report = report;
        report.context = Some(ContextStats {
            context_lines: ctx.context_lines,
            file_lines: ctx.file_lines,
            context_tokens: ctx.context_tokens,
            file_tokens: ctx.file_tokens,
            capped: ctx.capped,
        });
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        PreparedFile {
            report,
            findings,
            timings: [ms(t0, t1), ms(t1, t2), ms(t2, t3)],
            material: Some(Material {
                language,
                context: ctx,
                text,
                diff: file.diff.clone(),
            }),
        }
    }

    /// The hits that touch a changed line and pass the severity threshold, one per line and
    /// category, lowered a level in test code.
    fn changed_line_findings(
        &self,
        path: &str,
        diff: &crate::diff::FileDiff,
        hits: Vec<RuleHit>,
    ) -> Vec<Finding> {
        let added_lines = diff.added_lines();
        let min = self
            .config
            .config
            .min_severity
            .unwrap_or(Severity::Suggestion)
            .min(self.min_severity);
        let in_tests = is_test_path(path);
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
            let severity = if in_tests && !h.rule_id.ends_with("known-shape") {
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
                path: path.to_string(),
                line,
                end_line: line.max(h.end_line.min(line + 2)),
                severity,
                category: h.category,
                message: h.message,
                confidence: h.confidence,
                rule_id: Some(h.rule_id),
                source: FindingSource::Rules,
                cwe: h.cwe,
                guidance: h.guidance,
                suggestion: None,
            });
        }
        findings
    }
}

impl PreparedFile {
    fn skipped(mut report: FileReport, why: String) -> PreparedFile {
        report.skipped = Some(why);
        PreparedFile {
            report,
            findings: Vec::new(),
            timings: [0.0; 3],
            material: None,
        }
    }
}

/// Builds a rules review from the prepared files.
pub fn assemble(change: &ChangeSet, prepared: Vec<PreparedFile>, start: Instant) -> Review {
    let mut timings = Timings::default();
    let mut findings = Vec::new();
    let mut files = Vec::new();
    for r in prepared {
        add_timings(&mut timings, &r);
        files.push(r.report);
        findings.extend(r.findings);
    }
    sort_findings(&mut findings);
    timings.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    Review {
        description: change.description.clone(),
        engine: Engine::Rules,
        rules_version: rules_version(),
        findings,
        files,
        notes: change.notes.clone(),
        timings,
        agent: None,
    }
}

/// Adds a prepared file's stage times to a review's.
pub fn add_timings(timings: &mut Timings, file: &PreparedFile) {
    timings.parse_ms += file.timings[0];
    timings.rules_ms += file.timings[1];
    timings.context_ms += file.timings[2];
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
