//! What a review covered, once it ran: the summary's line about a push's review, the record
//! kept with the review, and the job's outcome. `incremental` decides the scope before fetching;
//! this reads the scope and what was fetched.

use super::fetch::Fetched;
use super::incremental::Scope;
use crate::github::MAX_COMPARE_FILES;
use crate::store::OpenFinding;
use redline_core::model::Review;
use std::collections::{HashMap, HashSet};

/// The line the summary gives about what the review covered and the pull request's open
/// findings, when it was a push's review. `open`: the open findings in the store, after settling.
pub fn summary_line(
    scope: &Scope,
    fetched: &Fetched,
    review: &Review,
    open: &[OpenFinding],
) -> Option<String> {
    match scope {
        Scope::Full { why: None } => None,
        Scope::Full { why: Some(w) } => Some(format!(
            "{w}, so this review covered every file of the pull request."
        )),
        Scope::Since { since, .. } => {
            let short = since.short();
            // The pull request's open findings: those of earlier reviews still open, and this
            // review's, once each.
            let mut seen: HashSet<&str> = HashSet::new();
            let mut counts: HashMap<&str, usize> = HashMap::new();
            let mut untouched = 0;
            for o in open {
                if seen.insert(&o.fingerprint) {
                    *counts.entry(o.severity.as_str()).or_default() += 1;
                    if fetched.unchanged.contains(&o.path) {
                        untouched += 1;
                    }
                }
            }
            let fps: Vec<String> = review
                .findings
                .iter()
                .map(|f| crate::github::post::fingerprint(f, fetched.new_text(&f.path).as_deref()))
                .collect();
            for (f, fp) in review.findings.iter().zip(&fps) {
                if seen.insert(fp) {
                    *counts.entry(f.severity.as_str()).or_default() += 1;
                }
            }
            let total: usize = counts.values().sum();
            let n = fetched.changed_files.len();
            let revisited = fetched.revisited_files.len();
            // The issue's wording, so that people and tests can find it: "3 files changed
            // since the last review of abc1234".
            let mut line = format!("{} changed since the last review of {short}", n_files(n));
            if revisited > 0 {
                line.push_str(&format!(
                    ", and {} the last review could not cover",
                    n_files(revisited)
                ));
            }
            line.push_str(&format!(
                ": this review covered only those; the other {} did not change and {} not reviewed again. Open across the pull request: {total} finding(s) ({} critical, {} warning, {} suggestion), {untouched} of them on code this push did not touch.",
                n_files(fetched.unchanged.len()),
                if fetched.unchanged.len() == 1 { "was" } else { "were" },
                counts.get("critical").copied().unwrap_or(0),
                counts.get("warning").copied().unwrap_or(0),
                counts.get("suggestion").copied().unwrap_or(0),
            ));
            Some(line)
        }
    }
}

/// "1 file", "3 files".
fn n_files(n: usize) -> String {
    format!("{n} file{}", if n == 1 { "" } else { "s" })
}

/// What the review covered, as the store keeps it (the next push reads `not_reviewed`).
pub fn record(scope: &Scope, fetched: &Fetched, review: &Review) -> serde_json::Value {
    let mut not_reviewed: Vec<String> = fetched
        .not_reviewed
        .iter()
        .map(|(p, _)| p.clone())
        .collect();
    // Files the LLM could not cover for a passing reason (an outage, the budget), not for a
    // standing one (the repository's never_send).
    if let Some(a) = &review.agent {
        for f in &a.files {
            let standing = f
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("never_send"));
            if f.coverage != redline_core::model::Coverage::Agent && !standing {
                not_reviewed.push(f.path.clone());
            }
        }
    }
    not_reviewed.sort();
    not_reviewed.dedup();
    let mut files: Vec<&String> = fetched.changed_files.iter().collect();
    files.sort();
    files.truncate(MAX_COMPARE_FILES);
    match scope {
        Scope::Full { why } => serde_json::json!({
            "kind": "full",
            "why": why,
            "not_reviewed": not_reviewed,
        }),
        Scope::Since { since, .. } => serde_json::json!({
            "kind": "incremental",
            "since": since,
            "files": files,
            "revisited": fetched.revisited_files,
            "unchanged": fetched.unchanged.len(),
            "not_reviewed": not_reviewed,
        }),
    }
}

/// The job outcome's words about the scope.
pub fn outcome(scope: &Scope, fetched: &Fetched) -> Option<String> {
    match scope {
        Scope::Full { why: None } => None,
        Scope::Full { why: Some(w) } => Some(format!("full review: {w}")),
        Scope::Since { since, .. } => Some(format!(
            "incremental since {}: {} of {} file(s)",
            since.short(),
            fetched.changed_files.len() + fetched.revisited_files.len(),
            fetched.changed_files.len() + fetched.revisited_files.len() + fetched.unchanged.len()
        )),
    }
}
