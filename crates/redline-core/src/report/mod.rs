//! Output formats of a review: text for people at a terminal, JSON (the bench findings format plus a
//! summary), SARIF 2.1.0 for code scanning, and Markdown as the PR summary would read.

mod sarif;

pub use sarif::sarif;

use crate::model::Review;
use crate::model::Severity;
use serde_json::json;
use std::fmt::Write;

/// The JSON output: `findings` as in bench-format.md, plus `summary`.
pub fn json(review: &Review) -> serde_json::Value {
    let skipped: Vec<_> = review
        .skipped()
        .map(|f| json!({"path": f.path, "reason": f.skipped}))
        .collect();
    // Token counts exist when an LLM reviewed (a rules review does not count them).
    let counted: Vec<_> = review
        .reviewed()
        .filter_map(|f| f.context.as_ref())
        .filter_map(|c| Some((c.context_tokens?, c.file_tokens?)))
        .collect();
    let (ctx_tokens, file_tokens) = if counted.is_empty() {
        (None, None)
    } else {
        let (a, b) = counted
            .iter()
            .fold((0usize, 0usize), |(a, b), (c, f)| (a + c, b + f));
        (Some(a), Some(b))
    };
    json!({
        "findings": review.findings,
        "summary": {
            "change": review.description,
            "engine": review.engine,
            "engine_note": engine_note(review),
            "rules_version": review.rules_version,
            "verdict": review.verdict(),
            "counts": review.counts(),
            "files_reviewed": review.reviewed().count(),
            "files_skipped": skipped,
            "files": review.files,
            "context_tokens": ctx_tokens,
            "file_tokens": file_tokens,
            "notes": review.notes,
            "timings_ms": review.timings,
            "agent": review.agent,
        }
    })
}

fn engine_note(review: &Review) -> String {
    match &review.agent {
        None => "rules review: deterministic detectors only (no LLM configured)".into(),
        Some(a) => {
            let models: Vec<String> = {
                let mut m: Vec<String> = a.files.iter().filter_map(|f| f.model.clone()).collect();
                m.sort();
                m.dedup();
                m
            };
            let mut note = format!(
                "agent review ({}; prompt {}; {} LLM calls, {} tokens in, {} out, ${:.4})",
                if models.is_empty() {
                    "no model answered".to_string()
                } else {
                    models.join(", ")
                },
                a.prompt_version,
                a.llm_calls,
                a.prompt_tokens,
                a.completion_tokens,
                a.cost_usd
            );
            if let Some(why) = &a.llm_skipped {
                note.push_str(&format!("; LLM skipped: {why}"));
            }
            note
        }
    }
}

/// Text for a terminal: findings grouped by file, each with a code excerpt, then the counts and
/// the skipped files; colour when `color`. Notes are left to the caller (stderr).
pub fn text(review: &Review, sources: &dyn Fn(&str) -> Option<String>, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let sev = |s: Severity| match s {
        Severity::Critical => paint("1;31", "critical"),
        Severity::Warning => paint("1;33", "warning"),
        Severity::Suggestion => paint("1;36", "suggestion"),
    };
    let mut out = String::new();
    let mut current = "";
    let mut lines_cache: Option<Vec<String>> = None;
    for f in &review.findings {
        if f.path != current {
            current = &f.path;
            // A blank line between files, none before the first.
            if !out.is_empty() {
                let _ = writeln!(out);
            }
            let _ = writeln!(out, "{}", paint("1", &f.path));
            lines_cache = sources(&f.path).map(|t| t.lines().map(str::to_string).collect());
        }
        let rule = f
            .rule_id
            .as_deref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}:{} {} {}: {}{}",
            f.path,
            f.line,
            sev(f.severity),
            f.category,
            f.message,
            paint("2", &rule)
        );
        if let Some(lines) = &lines_cache {
            let from = f.line.saturating_sub(1).max(1);
            let to = (f.end_line + 1).min(lines.len() as u32);
            for n in from..=to {
                if let Some(l) = lines.get(n as usize - 1) {
                    let marker = if (f.line..=f.end_line).contains(&n) {
                        ">"
                    } else {
                        " "
                    };
                    let _ = writeln!(
                        out,
                        "    {marker}{n:>5} | {}",
                        crate::text::truncate(l, 140)
                    );
                }
            }
        }
    }
    let counts = review.counts();
    if !out.is_empty() {
        let _ = writeln!(out);
    }
    if review.findings.is_empty() {
        let _ = writeln!(out, "No findings.");
    }
    let _ = writeln!(
        out,
        "{} critical, {} warning, {} suggestion in {} file(s) reviewed ({}).",
        counts["critical"],
        counts["warning"],
        counts["suggestion"],
        review.reviewed().count(),
        engine_note(review)
    );
    let skipped: Vec<_> = review.skipped().collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "Skipped {} file(s):", skipped.len());
        for f in skipped {
            let _ = writeln!(out, "  {}: {}", f.path, f.skipped.as_deref().unwrap_or(""));
        }
    }
    // The review's notes (how the change was read, suppressions) are not part of the report:
    // the command line prints them on stderr, so that they stay out of pipes and output files.
    out
}

/// Markdown, as the pull-request summary review would read.
pub fn markdown(review: &Review) -> String {
    let counts = review.counts();
    let mut out = String::new();
    let _ = writeln!(out, "## redline review\n");
    let verdict = if review.verdict() == crate::model::Verdict::RequestChanges {
        "**Changes requested**: critical findings below."
    } else {
        "No critical findings."
    };
    let _ = writeln!(
        out,
        "{verdict} {} critical · {} warning · {} suggestion\n",
        counts["critical"], counts["warning"], counts["suggestion"]
    );
    // What changed, in the agent's words (its finish_file summaries), when it ran.
    if let Some(agent) = &review.agent {
        let summaries: Vec<String> = agent
            .files
            .iter()
            .filter_map(|f| {
                f.summary.as_ref().map(|s| {
                    format!(
                        "- `{}`: {}",
                        f.path,
                        crate::text::truncate(&s.replace('\n', " "), 300)
                    )
                })
            })
            .collect();
        if !summaries.is_empty() {
            let _ = writeln!(out, "**What changed**\n\n{}\n", summaries.join("\n"));
        }
    }
    if !review.findings.is_empty() {
        let _ = writeln!(out, "| | file | line | finding |\n|---|---|---|---|");
        for f in &review.findings {
            let icon = match f.severity {
                Severity::Critical => "🔴 critical",
                Severity::Warning => "🟠 warning",
                Severity::Suggestion => "🔵 suggestion",
            };
            let refs = if f.guidance.is_empty() {
                String::new()
            } else {
                format!(" _({})_", f.guidance.join(", "))
            };
            let _ = writeln!(
                out,
                "| {icon} | `{}` | {} | **{}**: {}{} |",
                f.path,
                f.line,
                f.category,
                f.message.replace('|', "\\|"),
                refs
            );
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "<details><summary>Coverage: {} reviewed, {} skipped</summary>\n",
        review.reviewed().count(),
        review.skipped().count()
    );
    let _ = writeln!(out, "| file | status | coverage |\n|---|---|---|");
    for f in &review.files {
        let agent_cov = review
            .agent
            .as_ref()
            .and_then(|a| a.files.iter().find(|r| r.path == f.path))
            .map(|r| match r.coverage.as_str() {
                "agent" => format!(", agent ({} model, {} tool calls)", r.route, r.tool_calls),
                other => format!(
                    ", {}: {}",
                    other.replace('-', " "),
                    r.reason.clone().unwrap_or_default()
                ),
            });
        let cov = match (&f.skipped, &f.context) {
            (Some(why), _) => format!("skipped: {why}"),
            (None, Some(c)) => format!(
                "reviewed ({} of {} lines as context{}{})",
                c.context_lines,
                c.file_lines,
                if c.capped { ", capped" } else { "" },
                agent_cov.clone().unwrap_or_default()
            ),
            (None, None) => "reviewed".into(),
        };
        let _ = writeln!(out, "| `{}` | {} | {} |", f.path, f.status.as_str(), cov);
    }
    let _ = writeln!(out, "\n</details>\n");
    let _ = writeln!(
        out,
        "<sub>{} · rules {}</sub>",
        engine_note(review),
        review.rules_version
    );
    out
}
