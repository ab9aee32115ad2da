//! What the model said, kept only where it holds up: on a line of the diff, with a code reference
//! that matches for criticals, cited or confident, and not a repeat; merged with the rules' findings.

use super::{Draft, Run};
use redline_core::model::{FileRecord, Finding, FindingSource, Severity, note_quirk};
use redline_core::pipeline::Material;

/// Warnings and suggestions whose code reference does not match their line are dropped unless the
/// model is at least this sure (a critical one is downgraded instead, so it is still seen).
const ANCHOR_EXEMPT_CONFIDENCE: f64 = 0.9;

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Keeps what the model said only where it holds up: on a line of the diff, with a code reference
/// that matches for criticals, cited or confident, and not a repeat; merged with the rules' findings.
pub(super) fn validate(
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
                    note_quirk(&mut rec.quirks, "comment outside the diff");
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
            source: FindingSource::Llm,
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
                source: FindingSource::Llm,
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
