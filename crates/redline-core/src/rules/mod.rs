//! The rules engine: deterministic detectors written as tree-sitter queries, narrowed by small Rust
//! predicates where a query cannot say it (taint, secret shapes, context words). Rules live beside
//! the guidance they enforce in knowledge/<area>/<name>.rules.toml.
//!
//! - `set`: loading, compiling and running a set of rules;
//! - `predicates`: the checks a rule's `when` names, one file per family;
//! - `analysis`: what the predicates ask of a file (bindings, taint, constants, strings);
//! - `edits`: which changed lines make one edit;
//! - `select`, `region` and `prefilter`: which patterns a file or a change needs compiled.

mod analysis;
mod cheaper;
pub mod edits;
mod predicates;
mod prefilter;
pub mod profile;
mod region;
pub mod removed;
mod select;
mod set;
pub mod suppress;

#[cfg(test)]
mod tests;

pub use crate::model::Severity;
pub use analysis::Analysis;
pub use set::{PatternNeeds, RuleSet};

use anyhow::{Result, anyhow};
use serde::{Deserialize, Serialize};

/// A rules file: a list of rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<Rule>,
}

/// One rule as written in a `.rules.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub languages: Vec<String>,
    pub severity: Severity,
    pub category: String,
    #[serde(default)]
    pub cwe: Option<String>,
    /// Knowledge entry ids this rule enforces.
    #[serde(default)]
    pub guidance: Vec<String>,
    pub message: String,
    /// The tree-sitter query (for a removed-check rule: the sink that must remain; may be empty).
    #[serde(default)]
    pub query: String,
    /// A removed-check rule: a regex on the lines a change deletes (a guard, an escape, a
    /// containment or permission check). The rule reports the head line next to the deletion
    /// when the file holds fewer of the matched text than before and the sink (`query` or `sink`)
    /// still follows in the same function.
    #[serde(default)]
    pub removed: Option<String>,
    /// For a removed-check rule: deleted text matching `removed` is ignored when it also matches
    /// this (an escape of another kind: a regex or shell escape is not an HTML escape).
    #[serde(default)]
    pub removed_unless: Option<String>,
    /// For a removed-check rule without a query: a regex a head line after the deletion must
    /// match (in the same function) for the rule to report.
    #[serde(default)]
    pub sink: Option<String>,
    /// For a removed-check rule with a `sink`: a head line of the same function matching this
    /// means the sink no longer is one (a response declared `text/plain` renders no markup).
    #[serde(default)]
    pub sink_unless: Option<String>,
    /// The capture whose lines are reported (default: the first capture of the match).
    #[serde(default)]
    pub report: Option<String>,
    /// Predicates that must all hold: `name`, `name:@capture`, `name:argument`, `!name`.
    #[serde(default)]
    pub when: Vec<String>,
    /// A broader reading of the same match, too unsure to post on its own: `when` with some
    /// entries replaced (`candidate_when = { tainted = "param-tainted" }`). A match that fails
    /// `when` but holds under the replacements is a candidate: the rules engine alone never
    /// reports it; with an LLM, a verification call must confirm it before it is posted.
    #[serde(default)]
    pub candidate_when: std::collections::BTreeMap<String, String>,
    /// Report only the first hit in each function: one tainted value reaching several sinks of
    /// the same kind is one bug to fix, not several comments.
    #[serde(default)]
    pub one_per_function: bool,
    /// For a removed-check rule: report at most this many of its findings in one file; the
    /// last one reported lists the lines of the others. A broad rule that fires all over one
    /// file says the same thing each time.
    #[serde(default)]
    pub max_per_file: Option<usize>,
    /// How sure a hit is, 0..1.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    #[serde(default)]
    pub examples: Vec<Example>,
    /// For a removed-check rule: changes (a `base` and the `code` after it) it must report, or
    /// must not. Its plain `examples` are new files, which such a rule never reports.
    #[serde(default)]
    pub changes: Vec<Example>,
    /// Where the rule was loaded from.
    #[serde(skip)]
    pub origin: String,
    /// For a built-in removed-check rule: literals every match of `removed` starts with, listed
    /// by build.rs; deleted lines holding none of them are not matched (nor the regex compiled).
    #[serde(skip)]
    pub removed_prefixes: Option<Vec<String>>,
}

fn default_confidence() -> f64 {
    0.8
}

/// A code sample a rule must hit (or must not).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub code: String,
    /// In a removed-check rule's `changes`: the code before the change (`code` is after it).
    #[serde(default)]
    pub base: Option<String>,
    pub expect: Expect,
    /// The language of the sample when the rule has several (default: the first).
    #[serde(default)]
    pub language: Option<String>,
}

/// What an example expects of its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The rule must report the sample.
    Hit,
    /// The rule must not report it.
    Clean,
    /// The rule must report it as a candidate (under `candidate_when`), not as a finding.
    Candidate,
}

/// A rule hit, before the pipeline filters it to changed lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    pub rule_id: String,
    pub line: u32,
    pub end_line: u32,
    pub severity: Severity,
    pub category: String,
    pub cwe: Option<String>,
    pub message: String,
    pub guidance: Vec<String>,
    pub confidence: f64,
    /// Held under the rule's `candidate_when` only: posted only when a model confirms it.
    pub candidate: bool,
}

/// Parses a rules file.
pub fn parse_rules(origin: &str, text: &str) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| anyhow!("{origin}: {}", e.message()))?;
    Ok(with_origin(file.rule, origin))
}

/// A built-in rules file as build.rs stores it for reviews.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewFile {
    rule: Vec<Rule>,
    /// Rule id -> the literals every match of its `removed` regex starts with.
    #[serde(default)]
    removed_prefixes: std::collections::HashMap<String, Vec<String>>,
}

/// Parses a built-in rules file in the form build.rs stored for reviews (JSON, no examples).
fn parse_rules_for_review(origin: &str, json: &str) -> Result<Vec<Rule>> {
    let mut file: ReviewFile = serde_json::from_str(json).map_err(|e| anyhow!("{origin}: {e}"))?;
    for r in &mut file.rule {
        r.removed_prefixes = file.removed_prefixes.remove(&r.id);
    }
    Ok(with_origin(file.rule, origin))
}

fn with_origin(mut rules: Vec<Rule>, origin: &str) -> Vec<Rule> {
    for r in &mut rules {
        r.origin = origin.to_string();
    }
    rules
}
