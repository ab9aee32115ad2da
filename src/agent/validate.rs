//! What the model said, kept only where it holds up: on a line of the diff, anchored to the code
//! it names (quoted code, or a location resolved to the code there), cited or confident, and not a
//! repeat. `merge_with_rules` then joins the model's findings to the rules' findings.

use super::classes;
use super::{Draft, Reference, Run};
use redline_core::model::{FileRecord, Finding, FindingSource, Severity, note_quirk};
use redline_core::pipeline::Material;

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A model finding that passed validation, with what verification needs to know.
#[derive(Debug, Clone)]
pub(super) struct Checked {
    pub finding: Finding,
    /// The severity the model asked for (a critical is only posted as critical when its
    /// reference holds and verification confirms it).
    pub asked: Severity,
}

/// The drafts that hold up, as findings (source `llm`, no rule id).
pub(super) fn check_drafts(
    run: &Run<'_>,
    m: &Material,
    drafts: Vec<Draft>,
    rec: &mut FileRecord,
) -> Vec<Checked> {
    let path = m.diff.path().to_string();
    let lines: Vec<&str> = m.text.lines().collect();
    let added = m.diff.added_lines();
    let mut kept: Vec<Checked> = Vec::new();
    for d in drafts {
        let Some(line) = on_the_diff(m, &added, d.line as u32, &d, rec) else {
            continue;
        };
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
        if !anchored(run, m, &path, &lines, line, end_line, &d.reference, rec) {
            // Not anchored to the code it names: on the wrong line, or about nothing.
            rec.validation.push(format!(
                "line {line}: {} does not match the code there: dropped ({}: {})",
                match d.reference {
                    Reference::None => "no code reference, which",
                    Reference::Location { .. } => "the location it gives",
                    Reference::Code(_) => "the code reference",
                },
                d.category,
                crate::truncate(&d.body, 80)
            ));
            continue;
        }
        let (category, cwe) = classes::resolve(run.store, &d.category, &cited);
        // Test code gets the rules' treatment (`severity_in_test_code`).
        let severity = if redline_core::pipeline::is_test_path(&path) {
            match redline_core::pipeline::severity_in_test_code(d.severity, &category) {
                Some(s) => s,
                None => {
                    rec.validation.push(format!(
                        "line {line}: {category} below critical in test code: dropped"
                    ));
                    continue;
                }
            }
        } else {
            d.severity
        };
        if let Some(prev) = kept
            .iter_mut()
            .find(|c| c.finding.category == category && c.finding.line.abs_diff(line) <= 2)
        {
            rec.validation.push(format!(
                "line {line}: repeats the comment on line {}: merged",
                prev.finding.line
            ));
            prev.asked = prev.asked.min(severity);
            prev.finding.severity = prev.finding.severity.min(severity);
            prev.finding.confidence = prev.finding.confidence.max(d.confidence);
            continue;
        }
        kept.push(Checked {
            asked: severity,
            finding: Finding {
                path: path.clone(),
                line,
                end_line,
                severity,
                category,
                message: d.body,
                confidence: d.confidence,
                rule_id: None,
                source: FindingSource::Llm,
                cwe,
                guidance: cited,
                suggestion: d.suggestion,
            },
        });
    }
    kept
}

/// The line a draft sits on: its own when it is in a hunk, the nearest changed line when it is
/// just beside one, else None (dropped, with why).
fn on_the_diff(
    m: &Material,
    added: &std::collections::BTreeSet<u32>,
    line: u32,
    d: &Draft,
    rec: &mut FileRecord,
) -> Option<u32> {
    if m.diff.hunk_for_new_line(line).is_some() {
        return Some(line);
    }
    match added
        .iter()
        .min_by_key(|a| a.abs_diff(line))
        .filter(|a| a.abs_diff(line) <= 3)
    {
        Some(&near) => {
            rec.validation.push(format!(
                "line {line} is outside the diff: moved to changed line {near}"
            ));
            Some(near)
        }
        None => {
            rec.validation.push(format!(
                "line {line} is outside the diff: dropped ({}: {})",
                d.category,
                crate::truncate(&d.body, 80)
            ));
            note_quirk(&mut rec.quirks, "comment outside the diff");
            None
        }
    }
}

/// Whether the draft's reference points at the code around its line: quoted code found in the
/// lines around it (as sent, secrets masked, or as written), or a location of this file whose
/// lines are those lines.
#[allow(clippy::too_many_arguments)]
fn anchored(
    run: &Run<'_>,
    m: &Material,
    path: &str,
    lines: &[&str],
    line: u32,
    end_line: u32,
    reference: &Reference,
    rec: &mut FileRecord,
) -> bool {
    match reference {
        Reference::None => false,
        Reference::Location {
            path: named,
            start,
            end,
        } => {
            let same_file = named
                .as_deref()
                .is_none_or(|n| path.ends_with(n) || n.ends_with(path));
            // The location's lines must be the finding's own (give or take the two lines a
            // quoted reference may also come from).
            let overlaps =
                *start <= end_line + 2 && *end + 2 >= line && (*end as usize) <= lines.len();
            if same_file && overlaps {
                note_quirk(&mut rec.quirks, "code reference was a location (resolved)");
            }
            same_file && overlaps && m.diff.hunk_for_new_line(line).is_some()
        }
        Reference::Code(code) => {
            let reference = squash(code);
            if reference.is_empty() {
                return false;
            }
            let window: String = lines
                .iter()
                .skip(line.saturating_sub(2) as usize)
                .take((end_line - line + 3) as usize)
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            // The model saw the code with secrets as placeholders; compare with that view too.
            let redacted_window = run
                .redactor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .redact(&window);
            squash(&window).contains(&reference)
                || squash(&redacted_window).contains(&reference)
                || lines
                    .get(line as usize - 1)
                    .is_some_and(|l| reference.contains(&squash(l)) && !squash(l).is_empty())
        }
    }
}

/// A model finding at the severity it may be posted with: a critical stays critical only when
/// confirmed (by verification, or, with verification off, by its confidence); otherwise it is a
/// warning.
pub(super) fn settle_severity(
    run: &Run<'_>,
    c: &mut Checked,
    confirmed: Option<bool>,
    rec: &mut FileRecord,
) {
    if c.asked != Severity::Critical {
        return;
    }
    let line = c.finding.line;
    let keep = match confirmed {
        Some(v) => v,
        None => c.finding.confidence >= run.settings.min_critical_confidence,
    };
    if keep {
        c.finding.severity = Severity::Critical;
    } else {
        rec.validation.push(match confirmed {
            Some(_) => format!("line {line}: critical not confirmed: downgraded to warning"),
            None => format!(
                "line {line}: critical with confidence {:.2}: downgraded to warning",
                c.finding.confidence
            ),
        });
        c.finding.severity = Severity::Warning;
    }
}

/// Whether a model finding confirms a rule finding (same class, within 3 lines).
pub(super) fn confirms(model: &Finding, rule: &Finding) -> bool {
    model.category == rule.category && model.line.abs_diff(rule.line) <= 3
}

/// The rules' findings, each confirmed by a model finding where one agrees (it keeps its rule id
/// and line, takes the model's explanation), then the model's own findings.
pub(super) fn merge_with_rules(rule_findings: &[Finding], mut kept: Vec<Finding>) -> Vec<Finding> {
    let mut out = Vec::new();
    for rf in rule_findings {
        if let Some(pos) = kept.iter().position(|k| confirms(k, rf)) {
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
