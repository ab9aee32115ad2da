//! The rules engine: deterministic detectors written as tree-sitter queries, narrowed by small Rust
//! predicates where a query cannot say it (taint, secret shapes, context words). Rules live beside
//! the guidance they enforce in knowledge/<area>/<name>.rules.toml.
//!
//! - `set`: loading, compiling and running a set of rules;
//! - `predicates`: the checks a rule's `when` names, one file per family;
//! - `analysis`: what the predicates ask of a file (bindings, taint, constants, strings).

mod analysis;
mod predicates;
pub mod profile;
mod set;

pub use crate::model::Severity;
pub use analysis::Analysis;
pub use set::RuleSet;

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
    pub query: String,
    /// The capture whose lines are reported (default: the first capture of the match).
    #[serde(default)]
    pub report: Option<String>,
    /// Predicates that must all hold: `name`, `name:@capture`, `name:argument`, `!name`.
    #[serde(default)]
    pub when: Vec<String>,
    /// Report only the first hit in each function: one tainted value reaching several sinks of
    /// the same kind is one bug to fix, not several comments.
    #[serde(default)]
    pub one_per_function: bool,
    /// How sure a hit is, 0..1.
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    #[serde(default)]
    pub examples: Vec<Example>,
    /// Where the rule was loaded from.
    #[serde(skip)]
    pub origin: String,
}

fn default_confidence() -> f64 {
    0.8
}

/// A code sample a rule must hit (or must not).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub code: String,
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
}

/// Parses a rules file.
pub fn parse_rules(origin: &str, text: &str) -> Result<Vec<Rule>> {
    let file: RuleFile = toml::from_str(text).map_err(|e| anyhow!("{origin}: {}", e.message()))?;
    let mut rules = file.rule;
    for r in &mut rules {
        r.origin = origin.to_string();
    }
    Ok(rules)
}
