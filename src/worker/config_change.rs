//! What a pull request's change to `.redline.toml` would do once merged. The review itself runs
//! with the base commit's settings (a pull request cannot switch off or narrow its own review);
//! this note, in the summary, tells the reviewers what the change would alter, so that loosening
//! the review is a visible decision of whoever merges it.

use redline_core::config::{self, LlmPolicy, RepoConfig};
use redline_core::model::Severity;
use std::collections::BTreeSet;

/// The summary note for a pull request that changes `.redline.toml`: `base` is its text at the
/// base commit (None: none there), `head` at the head (None: deleted). Values from the file are
/// quoted as code spans; the summary escapes the note as prose on top.
pub fn note(base: Option<&str>, head: Option<&str>) -> String {
    let verb = match (base, head) {
        (None, _) => "adds",
        (Some(_), None) => "deletes",
        (Some(_), Some(_)) => "changes",
    };
    let intro = format!(
        "This pull request {verb} `.redline.toml`; it was reviewed with the base branch's settings."
    );
    // A base that does not parse was reviewed with the defaults: compare with those.
    let before = base
        .and_then(|t| config::parse(t).ok())
        .unwrap_or_else(defaults);
    let after = match head.map(config::parse) {
        None => defaults(),
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            return format!(
                "{intro} Once merged, it would not parse: {}",
                redline_core::text::truncate(&e.to_string(), 300)
            );
        }
    };
    let changes = differences(&before, &after);
    if changes.is_empty() {
        format!("{intro} Once merged, it would change no setting.")
    } else {
        format!("{intro} Once merged, it would: {}.", changes.join("; "))
    }
}

/// The settings of a repository without the file.
fn defaults() -> RepoConfig {
    config::parse("").unwrap_or_default()
}

/// `text` quoted as a code span.
fn q(text: &str) -> String {
    crate::github::markdown::code_span(text)
}

/// What going from `a` to `b` changes, one phrase each.
fn differences(a: &RepoConfig, b: &RepoConfig) -> Vec<String> {
    let mut out = Vec::new();
    let (added, removed) = set_change(&a.rules.disable, &b.rules.disable);
    out.extend(added.iter().map(|r| format!("disable rule {}", q(r))));
    out.extend(removed.iter().map(|r| format!("re-enable rule {}", q(r))));
    let (added, removed) = set_change(&a.ignore, &b.ignore);
    out.extend(added.iter().map(|g| format!("ignore {}", q(g))));
    out.extend(removed.iter().map(|g| format!("stop ignoring {}", q(g))));
    if a.default_ignores != b.default_ignores {
        out.push(format!(
            "set default_ignores to {}",
            q(&b.default_ignores.to_string())
        ));
    }
    if a.min_severity != b.min_severity {
        out.push(format!(
            "set min_severity to {} (now {})",
            q(severity(b.min_severity)),
            q(severity(a.min_severity))
        ));
    }
    if a.llm != b.llm {
        out.push(format!(
            "set llm to {} (now {})",
            q(policy(b.llm)),
            q(policy(a.llm))
        ));
    }
    let (added, removed) = set_change(&a.never_send, &b.never_send);
    out.extend(added.iter().map(|g| format!("keep {} from the LLM", q(g))));
    out.extend(
        removed
            .iter()
            .map(|g| format!("let {} go to the LLM", q(g))),
    );
    let paths = |c: &RepoConfig| -> Vec<String> {
        c.knowledge
            .extra
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    };
    let (added, removed) = set_change(&paths(a), &paths(b));
    out.extend(
        added
            .iter()
            .map(|d| format!("add knowledge folder {}", q(d))),
    );
    out.extend(
        removed
            .iter()
            .map(|d| format!("drop knowledge folder {}", q(d))),
    );
    out
}

/// Items of `b` not in `a`, and of `a` not in `b`, each sorted.
fn set_change(a: &[String], b: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
    let a: BTreeSet<String> = a.iter().cloned().collect();
    let b: BTreeSet<String> = b.iter().cloned().collect();
    (
        b.difference(&a).cloned().collect(),
        a.difference(&b).cloned().collect(),
    )
}

fn severity(s: Option<Severity>) -> &'static str {
    s.map(Severity::as_str).unwrap_or("suggestion")
}

fn policy(p: LlmPolicy) -> &'static str {
    match p {
        LlmPolicy::Any => "any",
        LlmPolicy::LocalOnly => "local-only",
        LlmPolicy::Off => "off",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loosening_change_is_spelled_out() {
        let n = note(
            Some("[rules]\ndisable = [\"py.a\"]\n"),
            Some(
                "ignore = [\"**\"]\nllm = \"off\"\nmin_severity = \"critical\"\n[rules]\ndisable = [\"py.sql.dynamic-query\"]\n",
            ),
        );
        assert!(
            n.starts_with("This pull request changes `.redline.toml`"),
            "{n}"
        );
        for part in [
            "disable rule `py.sql.dynamic-query`",
            "re-enable rule `py.a`",
            "ignore `**`",
            "set llm to `off` (now `any`)",
            "set min_severity to `critical` (now `suggestion`)",
        ] {
            assert!(n.contains(part), "{part}: {n}");
        }
        let n = note(None, Some("\"@octocat <img src=x>\" = 1\n"));
        assert!(n.contains("adds") && n.contains("would not parse"), "{n}");
        let n = note(Some("ignore = [\"x/**\"]\n"), None);
        assert!(
            n.contains("deletes") && n.contains("stop ignoring `x/**`"),
            "{n}"
        );
        let n = note(Some("ignore = []\n"), Some("ignore = []\n# comment\n"));
        assert!(n.contains("change no setting"), "{n}");
    }
}
