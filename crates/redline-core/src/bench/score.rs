//! Scoring, exactly as bench-format.md says: a report matches an expected finding on the same path
//! when its line lies within [line - 3, end_line + 3]; each expected finding is matched at most
//! once (a maximum matching, so the order of reports does not matter); scored over all severities
//! and for critical alone; the false-alarm rate is the share of negative cases with any critical.

use super::CaseRun;
use crate::model::Finding;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far (in lines) a report may be from an expected finding and still match it.
pub const LINE_TOLERANCE: u32 = 3;

/// An expected finding from expected.json.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Expected {
    pub path: String,
    pub line: u32,
    #[serde(default)]
    pub end_line: Option<u32>,
    pub severity: String,
    pub category: String,
    #[serde(default)]
    pub cwe: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A reported finding, reduced to what scoring reads.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reported {
    pub path: String,
    pub line: u32,
    pub severity: String,
    pub category: String,
}

impl From<&Finding> for Reported {
    fn from(f: &Finding) -> Reported {
        Reported {
            path: f.path.clone(),
            line: f.line,
            severity: f.severity.as_str().to_string(),
            category: f.category.clone(),
        }
    }
}

fn matches(r: &Reported, e: &Expected) -> bool {
    let end = e.end_line.unwrap_or(e.line).max(e.line);
    r.path == e.path && r.line + LINE_TOLERANCE >= e.line && r.line <= end + LINE_TOLERANCE
}

/// A maximum matching of reports to expected findings; returns, per report, the expected index it took.
pub fn match_findings(reported: &[Reported], expected: &[Expected]) -> Vec<Option<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; expected.len()];
    for r in 0..reported.len() {
        let mut seen = vec![false; expected.len()];
        augment(r, reported, expected, &mut owner, &mut seen);
    }
    let mut out = vec![None; reported.len()];
    for (e, r) in owner.iter().enumerate() {
        if let Some(r) = r {
            out[*r] = Some(e);
        }
    }
    out
}

fn augment(
    r: usize,
    reported: &[Reported],
    expected: &[Expected],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for e in 0..expected.len() {
        if seen[e] || !matches(&reported[r], &expected[e]) {
            continue;
        }
        seen[e] = true;
        if owner[e].is_none_or(|other| augment(other, reported, expected, owner, seen)) {
            owner[e] = Some(r);
            return true;
        }
    }
    false
}

/// Matched, reported and expected counts, with the ratios derived from them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Counts {
    pub matched: usize,
    pub reported: usize,
    pub expected: usize,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.matched += o.matched;
        self.reported += o.reported;
        self.expected += o.expected;
    }

    /// matched / reported; None when nothing was reported.
    pub fn precision(&self) -> Option<f64> {
        (self.reported > 0).then(|| self.matched as f64 / self.reported as f64)
    }

    /// matched / expected; None when nothing was expected.
    pub fn recall(&self) -> Option<f64> {
        (self.expected > 0).then(|| self.matched as f64 / self.expected as f64)
    }

    /// The harmonic mean of precision and recall (0 when either is 0 or undefined).
    pub fn f1(&self) -> f64 {
        match (self.precision(), self.recall()) {
            (Some(p), Some(r)) if p + r > 0.0 => 2.0 * p * r / (p + r),
            _ => 0.0,
        }
    }
}

/// Scores of one case: all severities and critical only.
pub fn score_case(reported: &[Reported], expected: &[Expected]) -> (Counts, Counts) {
    let m = match_findings(reported, expected);
    let all = Counts {
        matched: m.iter().flatten().count(),
        reported: reported.len(),
        expected: expected.len(),
    };
    let rc: Vec<Reported> = reported
        .iter()
        .filter(|r| r.severity == "critical")
        .cloned()
        .collect();
    let ec: Vec<Expected> = expected
        .iter()
        .filter(|e| e.severity == "critical")
        .cloned()
        .collect();
    let mc = match_findings(&rc, &ec);
    let crit = Counts {
        matched: mc.iter().flatten().count(),
        reported: rc.len(),
        expected: ec.len(),
    };
    (all, crit)
}

/// The whole bench's scores.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub cases: usize,
    pub errors: usize,
    pub all: Counts,
    pub critical: Counts,
    pub negatives: usize,
    pub negatives_with_critical: usize,
    pub by_language: BTreeMap<String, Counts>,
    /// Per category: recall from the expected findings of that category, precision from reports
    /// of that category (a matched report counts for its expected finding's category).
    pub by_category: BTreeMap<String, Counts>,
    pub total_ms: f64,
    pub per_case_ms: Vec<(String, f64)>,
}

impl Summary {
    /// False-alarm rate: share of negative cases with any critical report.
    pub fn false_alarm_rate(&self) -> Option<f64> {
        (self.negatives > 0).then(|| self.negatives_with_critical as f64 / self.negatives as f64)
    }
}

/// Scores every case run.
pub fn summarize(runs: &[CaseRun], errors: usize) -> Summary {
    let mut s = Summary {
        cases: runs.len(),
        errors,
        all: Counts::default(),
        critical: Counts::default(),
        negatives: 0,
        negatives_with_critical: 0,
        by_language: BTreeMap::new(),
        by_category: BTreeMap::new(),
        total_ms: 0.0,
        per_case_ms: Vec::new(),
    };
    for r in runs {
        let (all, crit) = score_case(&r.reported, &r.expected);
        s.all.add(all);
        s.critical.add(crit);
        s.by_language
            .entry(r.language.clone())
            .or_default()
            .add(all);
        let m = match_findings(&r.reported, &r.expected);
        for e in &r.expected {
            s.by_category
                .entry(e.category.clone())
                .or_default()
                .expected += 1;
        }
        for (i, rep) in r.reported.iter().enumerate() {
            match m[i] {
                Some(e) => {
                    let c = s
                        .by_category
                        .entry(r.expected[e].category.clone())
                        .or_default();
                    c.matched += 1;
                    c.reported += 1;
                }
                None => {
                    s.by_category
                        .entry(rep.category.clone())
                        .or_default()
                        .reported += 1
                }
            }
        }
        if r.kind == "negative" {
            s.negatives += 1;
            if r.reported.iter().any(|x| x.severity == "critical") {
                s.negatives_with_critical += 1;
            }
        }
        s.total_ms += r.millis;
        s.per_case_ms.push((r.id.clone(), r.millis));
    }
    s
}

fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.3}", v)).unwrap_or_else(|| "-".into())
}

/// The score table as plain text.
pub fn table(s: &Summary) -> String {
    let mut out = String::new();
    let row = |name: &str, c: &Counts| {
        format!(
            "{name:<26} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8}\n",
            pct(c.precision()),
            pct(c.recall()),
            format!("{:.3}", c.f1()),
            c.matched,
            c.reported,
            c.expected
        )
    };
    out.push_str(&format!(
        "{:<26} {:>9} {:>9} {:>7} {:>8} {:>8} {:>8}\n",
        "", "precision", "recall", "F1", "matched", "reported", "expected"
    ));
    out.push_str(&row("all severities", &s.all));
    out.push_str(&row("critical only", &s.critical));
    out.push_str("\nby language\n");
    for (k, c) in &s.by_language {
        out.push_str(&row(k, c));
    }
    out.push_str("\nby category\n");
    for (k, c) in &s.by_category {
        out.push_str(&row(k, c));
    }
    out.push_str(&format!(
        "\nfalse-alarm rate: {} ({} of {} negative cases with a critical report)\n",
        pct(s.false_alarm_rate()),
        s.negatives_with_critical,
        s.negatives
    ));
    let mean = if s.cases > 0 {
        s.total_ms / s.cases as f64
    } else {
        0.0
    };
    out.push_str(&format!(
        "cases: {} run, {} unreadable; review time {:.1} ms total, {:.2} ms per case\n",
        s.cases, s.errors, s.total_ms, mean
    ));
    out
}

/// The score table as Markdown.
pub fn markdown(s: &Summary) -> String {
    let mut out = String::from(
        "| | precision | recall | F1 | matched | reported | expected |\n|---|---|---|---|---|---|---|\n",
    );
    let row = |name: &str, c: &Counts| {
        format!(
            "| {name} | {} | {} | {:.3} | {} | {} | {} |\n",
            pct(c.precision()),
            pct(c.recall()),
            c.f1(),
            c.matched,
            c.reported,
            c.expected
        )
    };
    out.push_str(&row("**all severities**", &s.all));
    out.push_str(&row("**critical only**", &s.critical));
    for (k, c) in &s.by_language {
        out.push_str(&row(&format!("language: {k}"), c));
    }
    for (k, c) in &s.by_category {
        out.push_str(&row(&format!("category: {k}"), c));
    }
    out.push_str(&format!(
        "\nFalse-alarm rate: {} ({} of {} negative cases). Cases: {} run, {} unreadable.\n",
        pct(s.false_alarm_rate()),
        s.negatives_with_critical,
        s.negatives,
        s.cases,
        s.errors
    ));
    out
}

#[cfg(test)]
mod tests;
