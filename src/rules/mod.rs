//! The rules engine: deterministic detectors written as tree-sitter queries, narrowed by small Rust
//! predicates (`predicates.rs`) where a query cannot say it (taint, secret shapes, context words).
//! Rules live beside the guidance they enforce in knowledge/<area>/<name>.rules.toml.

mod analysis;
mod predicates;

/// Time spent per rule, printed at exit when REDLINE_RULE_TIMES is set (for rule authors).
pub mod profile {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    static TIMES: Mutex<Option<HashMap<String, Duration>>> = Mutex::new(None);

    pub(super) fn record(rule: &str, d: Duration) {
        let mut t = TIMES.lock().unwrap_or_else(|e| e.into_inner());
        *t.get_or_insert_with(HashMap::new)
            .entry(rule.to_string())
            .or_default() += d;
    }

    /// Prints the slowest rules to stderr.
    pub fn report() {
        let t = TIMES.lock().unwrap_or_else(|e| e.into_inner());
        let Some(map) = t.as_ref() else { return };
        let mut v: Vec<_> = map.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        for (rule, d) in v.into_iter().take(25) {
            eprintln!("{:>10.1} ms  {rule}", d.as_secs_f64() * 1000.0);
        }
    }
}

pub use analysis::Analysis;

use crate::lang::Language;
use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tree_sitter::{Query, QueryCursor, StreamingIterator, Tree};

/// Severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Suggestion,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        }
    }

    /// One level less severe (a suggestion stays a suggestion).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::Warning,
            _ => Severity::Suggestion,
        }
    }

    /// Parses `critical`, `warning` or `suggestion`.
    pub fn parse(s: &str) -> Option<Severity> {
        match s.to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "warning" => Some(Severity::Warning),
            "suggestion" => Some(Severity::Suggestion),
            _ => None,
        }
    }
}

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
    /// `hit` or `clean`.
    pub expect: String,
    /// The language of the sample when the rule has several (default: the first).
    #[serde(default)]
    pub language: Option<String>,
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

/// A predicate call parsed from a `when` entry.
#[derive(Debug, Clone)]
struct Condition {
    negate: bool,
    name: String,
    /// `@capture` target, or None for the reported node.
    capture: Option<String>,
    /// Free argument after `:` that is not a capture (e.g. a regex).
    arg: Option<String>,
}

struct Compiled {
    rule: Rule,
    /// The grammars this rule runs on.
    langs: Vec<Language>,
    conditions: Vec<Condition>,
}

/// A grammar's rules in one query, so that a file is walked once rather than once per rule.
struct Combined {
    query: Query,
    /// For each pattern of the query, the index of the rule it came from.
    pattern_rule: Vec<usize>,
}

/// Every rule, and per grammar all of them compiled into one query on first use: compiling
/// queries is the slowest part of start-up, and most reviews touch one or two languages.
pub struct RuleSet {
    compiled: Vec<Compiled>,
    combined: HashMap<Language, std::sync::OnceLock<Option<Combined>>>,
}

impl RuleSet {
    /// The built-in rules (knowledge/**/*.rules.toml, compiled into the binary).
    pub fn builtin() -> Result<RuleSet> {
        RuleSet::load(&[], &[])
    }

    /// The built-in rules plus the `.rules.toml` files under `dirs`, less the `disabled` ids.
    /// Rules from `dirs` are compiled at once so that a broken team rule is reported by name;
    /// built-in rules are checked by `redline knowledge check` (and CI).
    pub fn load(extra_dirs: &[std::path::PathBuf], disabled: &[String]) -> Result<RuleSet> {
        let mut rules = Vec::new();
        for (path, text) in crate::knowledge::builtin_files()
            .iter()
            .filter(|(p, _)| p.ends_with(".rules.toml"))
        {
            rules.extend(parse_rules(&format!("builtin:{path}"), text)?);
        }
        let builtin_count = rules.len();
        for dir in extra_dirs {
            let mut files = Vec::new();
            collect_rule_files(dir, &mut files)?;
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                rules.extend(parse_rules(&f.to_string_lossy(), &text)?);
            }
        }
        for r in &rules[builtin_count..] {
            compile_rule(r)?;
        }
        rules.retain(|r| !disabled.contains(&r.id));
        RuleSet::new(rules)
    }

    fn new(rules: Vec<Rule>) -> Result<RuleSet> {
        let mut seen = std::collections::HashSet::new();
        let mut compiled = Vec::new();
        for rule in rules {
            if !seen.insert(rule.id.clone()) {
                bail!("duplicate rule id `{}` ({})", rule.id, rule.origin);
            }
            let langs = rule_languages(&rule)?;
            let conditions = rule
                .when
                .iter()
                .map(|w| parse_condition(&rule.id, w))
                .collect::<Result<Vec<_>>>()?;
            compiled.push(Compiled {
                rule,
                langs,
                conditions,
            });
        }
        let combined = Language::ALL
            .into_iter()
            .map(|l| (l, std::sync::OnceLock::new()))
            .collect();
        Ok(RuleSet { compiled, combined })
    }

    /// Compiles every rule on its own for every grammar it names; one line per problem.
    pub fn compile_each(&self) -> Vec<String> {
        self.compiled
            .iter()
            .filter_map(|c| compile_rule(&c.rule).err().map(|e| format!("{e:#}")))
            .collect()
    }

    /// The combined query of a grammar, compiled on first use (None when no rule applies).
    fn combined(&self, lang: Language) -> Option<&Combined> {
        self.combined[&lang]
            .get_or_init(|| {
                let mut text = String::new();
                let mut spans: Vec<(usize, usize, usize)> = Vec::new();
                for (i, c) in self.compiled.iter().enumerate() {
                    if c.langs.contains(&lang) {
                        let start = text.len();
                        text.push_str(&c.rule.query);
                        spans.push((start, text.len(), i));
                        text.push('\n');
                    }
                }
                if spans.is_empty() {
                    return None;
                }
                // Rules are compiled one by one when loaded or checked; a failure here is a bug.
                let query = match Query::new(&lang.grammar(), &text) {
                    Ok(q) => q,
                    Err(e) => {
                        eprintln!("warning: the {lang:?} rules do not compile together ({e}); run `redline knowledge check`");
                        return None;
                    }
                };
                let pattern_rule = (0..query.pattern_count())
                    .map(|p| {
                        let at = query.start_byte_for_pattern(p);
                        spans.iter().find(|(s, e, _)| (*s..*e).contains(&at)).map(|x| x.2).unwrap_or(0)
                    })
                    .collect();
                Some(Combined { query, pattern_rule })
            })
            .as_ref()
    }

    /// All rules.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.compiled.iter().map(|c| &c.rule)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }

    /// Runs every rule for `lang` over the parsed file. Hits are sorted by line and de-duplicated
    /// per rule and line.
    pub fn run(&self, lang: Language, src: &str, tree: &Tree) -> Vec<RuleHit> {
        let analysis = Analysis::new(lang, src, tree);
        let mut hits: Vec<RuleHit> = Vec::new();
        let mut functions_hit: std::collections::HashSet<(usize, usize)> =
            std::collections::HashSet::new();
        // For each hit, in order: its rule and the function holding it.
        let mut hit_functions: Vec<(usize, tree_sitter::Node)> = Vec::new();
        let mut cursor = QueryCursor::new();
        let profile = std::env::var_os("REDLINE_RULE_TIMES").is_some();
        let Some(Combined {
            query,
            pattern_rule,
        }) = self.combined(lang)
        else {
            return Vec::new();
        };
        let names = query.capture_names();
        let mut matches = cursor.matches(query, tree.root_node(), src.as_bytes());
        {
            while let Some(m) = matches.next() {
                let rule_index = pattern_rule[m.pattern_index];
                let c = &self.compiled[rule_index];
                let started = profile.then(std::time::Instant::now);
                let report_idx = c
                    .rule
                    .report
                    .as_deref()
                    .and_then(|r| query.capture_index_for_name(r));
                let captures = m.captures();
                let Some(report) = (match report_idx {
                    Some(i) => captures.iter().find(|c| c.index == i).map(|c| c.node),
                    None => captures.first().map(|c| c.node),
                }) else {
                    continue;
                };
                let named = |name: &str| {
                    captures
                        .iter()
                        .find(|c| names[c.index as usize] == name)
                        .map(|c| c.node)
                };
                let ok = c.conditions.iter().all(|cond| {
                    let target = match &cond.capture {
                        Some(cap) => match named(cap) {
                            Some(n) => n,
                            None => return cond.negate,
                        },
                        None => report,
                    };
                    let captured: Vec<(&str, tree_sitter::Node)> = captures
                        .iter()
                        .map(|c| (names[c.index as usize], c.node))
                        .collect();
                    predicates::eval(
                        &analysis,
                        &cond.name,
                        cond.arg.as_deref(),
                        target,
                        &captured,
                    ) != cond.negate
                });
                if let Some(t) = started {
                    profile::record(&c.rule.id, t.elapsed());
                }
                if !ok {
                    continue;
                }
                let line = report.start_position().row as u32 + 1;
                // Long nodes (a whole call spread over lines) are reported on their first lines only.
                let end_line = (report.end_position().row as u32 + 1).min(line + 4);
                if hits
                    .iter()
                    .any(|h| h.rule_id == c.rule.id && h.line == line)
                {
                    continue;
                }
                if c.rule.one_per_function
                    && !functions_hit.insert((rule_index, analysis.enclosing_function(report).id()))
                {
                    continue;
                }
                hit_functions.push((rule_index, analysis.enclosing_function(report)));
                hits.push(RuleHit {
                    rule_id: c.rule.id.clone(),
                    line,
                    end_line,
                    severity: c.rule.severity,
                    category: c.rule.category.clone(),
                    cwe: c.rule.cwe.clone(),
                    message: c.rule.message.clone(),
                    guidance: c.rule.guidance.clone(),
                    confidence: c.rule.confidence,
                });
            }
        }
        // A tainted value passed to a helper in the same file is one bug, reported where the input
        // enters (in the caller), not once more inside the helper.
        let funcs: Vec<(usize, String)> = hit_functions
            .iter()
            .map(|(rule, f)| (*rule, analysis.text(*f).to_string()))
            .collect();
        let mut keep = vec![true; hits.len()];
        for (i, (rule_i, f_i)) in hit_functions.iter().enumerate() {
            let name = analysis.function_name_of(*f_i);
            if name.is_empty() || !self.compiled[*rule_i].rule.one_per_function {
                continue;
            }
            let called = format!("{name}(");
            if funcs
                .iter()
                .enumerate()
                .any(|(j, (rule_j, text))| j != i && rule_j == rule_i && text.contains(&called))
            {
                keep[i] = false;
            }
        }
        // A once-per-function rule is a fallback for its category: when another rule already
        // reported that category in the same function (an SQL fragment and the query it ends up
        // in), the two are one bug.
        for i in 0..hits.len() {
            if !keep[i] || !self.compiled[hit_functions[i].0].rule.one_per_function {
                continue;
            }
            let covered = (0..hits.len()).any(|j| {
                j != i
                    && keep[j]
                    && hits[j].category == hits[i].category
                    && hits[j].rule_id != hits[i].rule_id
                    && !self.compiled[hit_functions[j].0].rule.one_per_function
                    && hit_functions[j].1.id() == hit_functions[i].1.id()
            });
            if covered {
                keep[i] = false;
            }
        }
        let mut it = keep.into_iter();
        hits.retain(|_| it.next().unwrap_or(true));
        hits.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule_id.cmp(&b.rule_id)));
        hits
    }

    /// Runs every rule's examples; returns one line per failure.
    pub fn check_examples(&self) -> Vec<String> {
        let mut failures = self.compile_each();
        for c in &self.compiled {
            if c.rule.examples.is_empty() {
                failures.push(format!("{}: has no examples", c.rule.id));
            }
            for (i, ex) in c.rule.examples.iter().enumerate() {
                let lang = match ex.language.as_deref().or(c
                    .rule
                    .languages
                    .first()
                    .map(String::as_str))
                {
                    Some(l) => match Language::from_name(l) {
                        Some(l) => l,
                        None => {
                            failures.push(format!(
                                "{} example {}: unknown language `{l}`",
                                c.rule.id,
                                i + 1
                            ));
                            continue;
                        }
                    },
                    None => continue,
                };
                let mut parser = tree_sitter::Parser::new();
                parser.set_language(&lang.grammar()).expect("grammar loads");
                let Some(tree) = parser.parse(&ex.code, None) else {
                    continue;
                };
                let hit = self
                    .run(lang, &ex.code, &tree)
                    .iter()
                    .any(|h| h.rule_id == c.rule.id);
                let want = match ex.expect.as_str() {
                    "hit" => true,
                    "clean" => false,
                    other => {
                        failures.push(format!(
                            "{} example {}: expect must be hit or clean, not `{other}`",
                            c.rule.id,
                            i + 1
                        ));
                        continue;
                    }
                };
                if hit != want {
                    failures.push(format!(
                        "{} example {} ({}): expected {}, got {}",
                        c.rule.id,
                        i + 1,
                        lang.name(),
                        ex.expect,
                        if hit { "a hit" } else { "no hit" }
                    ));
                }
            }
        }
        failures
    }
}

/// Compiles a rule's query for each of its grammars and checks its report capture.
fn compile_rule(rule: &Rule) -> Result<()> {
    for lang in rule_languages(rule)? {
        let q = Query::new(&lang.grammar(), &rule.query).map_err(|e| {
            anyhow!(
                "rule {} ({}): query does not compile for {:?}: {e}",
                rule.id,
                rule.origin,
                lang
            )
        })?;
        if let Some(r) = &rule.report {
            if q.capture_index_for_name(r).is_none() {
                bail!(
                    "rule {}: report capture `@{r}` is not in its query",
                    rule.id
                );
            }
        }
    }
    Ok(())
}

/// The grammars a rule compiles for (`typescript` covers TSX too).
fn rule_languages(rule: &Rule) -> Result<Vec<Language>> {
    let mut out = Vec::new();
    for l in &rule.languages {
        let lang = Language::from_name(l)
            .ok_or_else(|| anyhow!("rule {}: unknown language `{l}`", rule.id))?;
        out.push(lang);
        if lang == Language::TypeScript {
            out.push(Language::Tsx);
        }
    }
    Ok(out)
}

fn parse_condition(rule: &str, s: &str) -> Result<Condition> {
    let (negate, s) = match s.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (name, rest) = match s.split_once(':') {
        Some((n, r)) => (n.to_string(), Some(r.to_string())),
        None => (s.to_string(), None),
    };
    if !predicates::NAMES.contains(&name.as_str()) {
        bail!(
            "rule {rule}: unknown predicate `{name}` (known: {})",
            predicates::NAMES.join(", ")
        );
    }
    let (capture, arg) = match rest {
        Some(r) if r.starts_with('@') => (Some(r[1..].to_string()), None),
        other => (None, other),
    };
    if let Some(a) = &arg {
        if predicates::takes_regex(&name) {
            regex::Regex::new(a).map_err(|e| anyhow!("rule {rule}: bad regex in `{s}`: {e}"))?;
        }
    }
    Ok(Condition {
        negate,
        name,
        capture,
        arg,
    })
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

fn collect_rule_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect_rule_files(&p, out)?;
        } else if p.to_string_lossy().ends_with(".rules.toml") {
            out.push(p);
        }
    }
    Ok(())
}
