//! A loaded set of rules: parsed, their predicates resolved, and per grammar compiled into one
//! query on first use. `run` walks a file once per grammar and narrows each match by the rule's
//! predicates.

use super::analysis::Analysis;
use super::predicates::{self, Predicate};
use super::prefilter::split_patterns;
use super::region::Region;
use super::select::LangRules;
use super::{Expect, Rule, RuleHit, edits, parse_rules, profile};
use crate::lang::Language;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::path::Path;
use tree_sitter::{Query, QueryCursor, StreamingIterator, Tree};

/// A predicate call parsed from a `when` entry.
#[derive(Debug, Clone)]
pub(super) struct Condition {
    negate: bool,
    predicate: Predicate,
    /// `@capture` target, or None for the reported node.
    capture: Option<String>,
    /// Free argument after `:` that is not a capture (e.g. a regex).
    arg: Option<String>,
}

/// Where a match reports, once its rule's conditions held (see `RuleSet::place`).
struct Placed<'t> {
    report: tree_sitter::Node<'t>,
    line: u32,
    end_line: u32,
    /// Held under `candidate_when` only.
    candidate: bool,
}

/// A review's changed code lines and the edits they make (see `edits`).
type ChangedLines<'a> = (&'a std::collections::BTreeSet<u32>, &'a [(u32, u32)]);

/// A hit as found, with its rule and the function that holds it.
struct Found<'t> {
    rule: usize,
    function: tree_sitter::Node<'t>,
    /// The edit of the change the hit reports on (see `edits`), when it touches one.
    edit: Option<usize>,
    hit: RuleHit,
}

impl Condition {
    /// Whether the condition holds for a match: its predicate on the target capture (or the
    /// reported node), negated when written `!name`. A missing capture makes a negated condition
    /// hold and any other fail.
    pub(super) fn holds<'t>(
        &self,
        analysis: &Analysis<'t>,
        report: tree_sitter::Node<'t>,
        captured: &[(&str, tree_sitter::Node<'t>)],
    ) -> bool {
        let target = match &self.capture {
            Some(cap) => match captured.iter().find(|(n, _)| n == cap) {
                Some((_, n)) => *n,
                None => return self.negate,
            },
            None => report,
        };
        predicates::eval(
            analysis,
            self.predicate,
            self.arg.as_deref(),
            target,
            captured,
        ) != self.negate
    }
}

pub(super) struct Compiled {
    pub(super) rule: Rule,
    /// The grammars this rule runs on.
    pub(super) langs: Vec<Language>,
    pub(super) conditions: Vec<Condition>,
    /// `conditions` with the rule's `candidate_when` replacements, when it has any.
    pub(super) candidate_conditions: Option<Vec<Condition>>,
    /// A removed-check rule's regex on deleted lines, and its sink regex on head lines.
    pub(super) removed: Option<LazyRegex>,
    pub(super) removed_unless: Option<LazyRegex>,
    pub(super) sink: Option<LazyRegex>,
    pub(super) sink_unless: Option<LazyRegex>,
}

impl Compiled {
    /// Whether one of the rule's predicates may move its finding off the reported node's first
    /// lines (see `Predicate::moves_finding`).
    pub(super) fn moves_finding(&self) -> bool {
        self.conditions
            .iter()
            .chain(self.candidate_conditions.iter().flatten())
            .any(|c| c.predicate.moves_finding())
    }

    /// Whether one of the rule's predicates may move its finding above the reported node (see
    /// `Predicate::moves_finding_above`).
    pub(super) fn moves_finding_above(&self) -> bool {
        self.conditions
            .iter()
            .chain(self.candidate_conditions.iter().flatten())
            .any(|c| c.predicate.moves_finding_above())
    }
}

/// A regex compiled on first use: compiling every rule's regexes up front cost a one-line review
/// more than its own work. `compile_rule` checks them (at load for a team's rules, in `redline
/// knowledge check` for the built-in ones).
pub(super) struct LazyRegex {
    pattern: String,
    compiled: std::sync::OnceLock<regex::Regex>,
}

impl LazyRegex {
    /// Nothing is checked here: `compile_rule` compiles every regex of a rule, at load for a
    /// team's rules and in `redline knowledge check` (CI) for the built-in ones.
    pub(super) fn new(pattern: &str) -> LazyRegex {
        LazyRegex {
            pattern: pattern.to_string(),
            compiled: std::sync::OnceLock::new(),
        }
    }
}

impl std::ops::Deref for LazyRegex {
    type Target = regex::Regex;

    fn deref(&self) -> &regex::Regex {
        self.compiled.get_or_init(|| {
            // Checked by `compile_rule` (at load or by `knowledge check`): this does not fail.
            crate::text::ascii_regex(&self.pattern)
                .unwrap_or_else(|_| regex::Regex::new("$^").unwrap())
        })
    }
}

/// A grammar's rules in one query, so that a file is walked once rather than once per rule.
pub(super) struct Combined {
    pub(super) query: Query,
    /// For each pattern of the query, the indices of the rules it came from: rules that share a
    /// pattern (the same text) compile it once, and each weighs its matches.
    pub(super) pattern_rules: Vec<Vec<usize>>,
}

type CombinedByLanguage = HashMap<Language, std::sync::OnceLock<Option<Combined>>>;

/// Query texts (each with the index of its rule) compiled into one query.
pub(super) fn compile_together<'q>(
    lang: Language,
    parts: impl Iterator<Item = (usize, &'q str)>,
) -> Option<Combined> {
    let mut text = String::new();
    let mut spans: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    // Compiling costs per pattern, so a text that another rule already brought is compiled once.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (rule, part) in parts {
        if let Some(&at) = seen.get(part) {
            spans[at].2.push(rule);
            continue;
        }
        seen.insert(part, spans.len());
        let start = text.len();
        text.push_str(&super::cheaper::cheaper(lang, part));
        spans.push((start, text.len(), vec![rule]));
        text.push('\n');
    }
    // Rules are compiled one by one when loaded or checked; a failure here is a bug.
    let query = match Query::new(&lang.grammar(), &text) {
        Ok(q) => q,
        Err(e) => {
            eprintln!(
                "warning: the {lang:?} rules do not compile together ({e}); run `redline knowledge check`"
            );
            return None;
        }
    };
    let pattern_rules = (0..query.pattern_count())
        .map(|p| {
            let at = query.start_byte_for_pattern(p);
            spans
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&at))
                .map(|x| x.2.clone())
                .unwrap_or_default()
        })
        .collect();
    Some(Combined {
        query,
        pattern_rules,
    })
}

/// Which of a language's rule patterns one or more files need (see `RuleSet::needs`).
#[derive(Clone)]
pub struct PatternNeeds(Vec<bool>);

impl PatternNeeds {
    /// Adds what another file of the same language needs.
    pub fn add(&mut self, other: &PatternNeeds) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine |= *theirs;
        }
    }

    /// How many patterns are needed.
    pub fn count(&self) -> usize {
        self.0.iter().filter(|n| **n).count()
    }
}

/// Every rule, and per grammar all of them compiled into one query on first use: compiling
/// queries is the slowest part of start-up, and most reviews touch one or two languages.
/// Removed-check rules' sink queries are combined apart: they run only on changes that delete.
pub struct RuleSet {
    pub(super) compiled: Vec<Compiled>,
    /// Built on a grammar's first file: a review of one Python file never reads the Go rules.
    by_lang: HashMap<Language, std::sync::OnceLock<LangRules>>,
    combined_removed: CombinedByLanguage,
}

impl RuleSet {
    /// The built-in rules (knowledge/**/*.rules.toml, compiled into the binary), as a review runs
    /// them: without their examples.
    pub fn builtin() -> Result<RuleSet> {
        RuleSet::load(&[], &[])
    }

    /// The built-in rules plus the `.rules.toml` files under `dirs`, less the `disabled` ids.
    /// Rules from `dirs` are compiled at once so that a broken team rule is reported by name;
    /// built-in rules are checked by `redline knowledge check` (and CI). The built-in rules come
    /// without their examples (see `with_examples`).
    pub fn load(extra_dirs: &[std::path::PathBuf], disabled: &[String]) -> Result<RuleSet> {
        let mut rules = Vec::new();
        for (path, json) in crate::builtin::rules_for_review() {
            rules.extend(super::parse_rules_for_review(
                &format!("builtin:{path}"),
                json,
            )?);
        }
        RuleSet::with_extra(rules, extra_dirs, disabled)
    }

    /// The built-in rules with their examples, read from the TOML itself, plus the rules under
    /// `dirs`: what `redline knowledge check` and the examples tests run.
    pub fn with_examples(extra_dirs: &[std::path::PathBuf]) -> Result<RuleSet> {
        let mut rules = Vec::new();
        for (path, text) in crate::builtin::files()
            .iter()
            .filter(|(p, _)| p.ends_with(".rules.toml"))
        {
            rules.extend(parse_rules(&format!("builtin:{path}"), text)?);
        }
        RuleSet::with_extra(rules, extra_dirs, &[])
    }

    fn with_extra(
        mut rules: Vec<Rule>,
        extra_dirs: &[std::path::PathBuf],
        disabled: &[String],
    ) -> Result<RuleSet> {
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

    pub(super) fn new(rules: Vec<Rule>) -> Result<RuleSet> {
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
            let candidate_conditions = candidate_conditions(&rule)?;
            let lazy = |v: &Option<String>| v.as_deref().map(LazyRegex::new);
            let removed = lazy(&rule.removed);
            let sink = lazy(&rule.sink);
            let removed_unless = lazy(&rule.removed_unless);
            let sink_unless = lazy(&rule.sink_unless);
            compiled.push(Compiled {
                rule,
                langs,
                conditions,
                candidate_conditions,
                removed,
                removed_unless,
                sink,
                sink_unless,
            });
        }
        fn slots<T>() -> HashMap<Language, std::sync::OnceLock<T>> {
            Language::ALL
                .into_iter()
                .map(|l| (l, std::sync::OnceLock::new()))
                .collect()
        }
        Ok(RuleSet {
            compiled,
            by_lang: slots(),
            combined_removed: slots(),
        })
    }

    /// Compiles every rule on its own for every grammar it names; one line per problem.
    pub fn compile_each(&self) -> Vec<String> {
        self.compiled
            .iter()
            .filter_map(|c| compile_rule(&c.rule).err().map(|e| format!("{e:#}")))
            .collect()
    }

    /// The combined sink queries of the removed-check rules of a grammar.
    pub(super) fn combined_removed(&self, lang: Language) -> Option<&Combined> {
        self.combine(&self.combined_removed, lang, true)
    }

    fn combine<'s>(
        &'s self,
        slots: &'s CombinedByLanguage,
        lang: Language,
        removed: bool,
    ) -> Option<&'s Combined> {
        slots[&lang]
            .get_or_init(|| {
                let mut text = String::new();
                let mut spans: Vec<(usize, usize, usize)> = Vec::new();
                for (i, c) in self.compiled.iter().enumerate() {
                    if c.langs.contains(&lang)
                        && c.removed.is_some() == removed
                        && !c.rule.query.trim().is_empty()
                    {
                        let start = text.len();
                        text.push_str(&super::cheaper::cheaper(lang, &c.rule.query));
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
                let pattern_rules = (0..query.pattern_count())
                    .map(|p| {
                        let at = query.start_byte_for_pattern(p);
                        spans.iter().find(|(s, e, _)| (*s..*e).contains(&at)).map(|x| vec![x.2]).unwrap_or_default()
                    })
                    .collect();
                Some(Combined { query, pattern_rules })
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
        self.run_except(lang, src, tree, &[])
    }

    /// `run` without the rules whose ids are in `disabled` (a repository's `[rules] disable`), so
    /// that one loaded rule set serves every repository.
    pub fn run_except(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
    ) -> Vec<RuleHit> {
        self.run_selected(lang, src, tree, disabled, None, None)
    }

    /// `run_except` for a review that keeps only the hits touching `lines` (the added lines).
    /// Only the patterns that can match there are compiled (their root kinds on the lines, their
    /// words inside those nodes: see `select::Region`), so that a one-line change does not pay
    /// for every rule that could match its whole file. A once-per-function rule's turn in a function is taken by its first hit on
    /// the lines, not by one in code the change left alone.
    pub fn run_on_lines(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
        lines: &std::collections::BTreeSet<u32>,
    ) -> Vec<RuleHit> {
        let needs = self.needs(lang, src, tree, lines);
        self.run_needed(lang, src, tree, disabled, lines, &needs)
    }

    /// `run_on_lines` with the patterns worked out beforehand (`needs` of the same file and
    /// lines).
    pub fn run_needed(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
        lines: &std::collections::BTreeSet<u32>,
        needs: &PatternNeeds,
    ) -> Vec<RuleHit> {
        self.run_selected(
            lang,
            src,
            tree,
            disabled,
            Some(needs.0.clone()),
            Some(lines),
        )
    }

    /// The patterns a review of `lines` in this file needs (those `run_on_lines` would compile),
    /// so that the files of a change can have theirs compiled at once (`compile_needs`).
    pub fn needs(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        lines: &std::collections::BTreeSet<u32>,
    ) -> PatternNeeds {
        let region = Region::of(lang, src, tree, lines);
        PatternNeeds(self.lang_rules(lang).selection(src, Some(&region)))
    }

    /// Compiles as one query the patterns that files of `lang` need (see `needs` and
    /// `PatternNeeds::add`), before they run: each file then reuses it, and a change pays one
    /// compilation per language rather than one per file.
    pub fn compile_needs(&self, lang: Language, needs: &PatternNeeds) {
        self.lang_rules(lang).compile_needs(lang, needs.0.clone());
    }

    fn lang_rules(&self, lang: Language) -> &LangRules {
        self.by_lang[&lang].get_or_init(|| LangRules::new(&self.compiled, lang))
    }

    /// Runs the rules `region` selects (all without one); with `focus`, once-per-function rules
    /// count only hits touching those lines against their one turn per function.
    pub(super) fn run_selected(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
        needs: Option<Vec<bool>>,
        focus: Option<&std::collections::BTreeSet<u32>>,
    ) -> Vec<RuleHit> {
        let rules = self.lang_rules(lang);
        let needs = needs.unwrap_or_else(|| rules.selection(src, None));
        let Some(combined) = rules.query_for(lang, needs) else {
            return Vec::new();
        };
        let analysis = Analysis::new(lang, src, tree);
        let changed = focus.map(|lines| (lines, edits::Lines::new(src, tree).edits(lines)));
        let changed = changed.as_ref().map(|(l, e)| (*l, e.as_slice()));
        let mut found = self.matches(&combined, &analysis, tree, disabled, changed);
        let mut keep = self.helper_repeats(&analysis, &found);
        self.covered_fallbacks(&found, &mut keep);
        let mut it = keep.into_iter();
        found.retain(|_| it.next().unwrap_or(true));
        let mut hits: Vec<RuleHit> = found.into_iter().map(|f| f.hit).collect();
        hits.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule_id.cmp(&b.rule_id)));
        hits
    }

    /// Every match of the combined query whose rule's predicates hold, once per rule and line
    /// (and once per function for `one_per_function` rules, counting only hits touching the
    /// `changed` lines when given), in the order found.
    fn matches<'t>(
        &self,
        combined: &Combined,
        analysis: &Analysis<'t>,
        tree: &'t Tree,
        disabled: &[String],
        changed: Option<ChangedLines<'_>>,
    ) -> Vec<Found<'t>> {
        let Combined {
            query,
            pattern_rules,
        } = combined;
        let mut found: Vec<Found<'t>> = Vec::new();
        let mut functions_hit: std::collections::HashSet<(usize, usize, bool)> =
            std::collections::HashSet::new();
        let profile = std::env::var_os("REDLINE_RULE_TIMES").is_some();
        let names = query.capture_names();
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(query, tree.root_node(), analysis.src.as_bytes());
        while let Some(m) = matches.next() {
            for &rule_index in &pattern_rules[m.pattern_index] {
                let c = &self.compiled[rule_index];
                if !disabled.is_empty() && disabled.contains(&c.rule.id) {
                    continue;
                }
                let Some(Placed {
                    report,
                    line,
                    end_line,
                    candidate,
                }) = self.place(c, query, m.captures(), names, analysis, profile)
                else {
                    continue;
                };
                // One hit per rule and line; a finding takes a candidate's place.
                if let Some(i) = found
                    .iter()
                    .position(|f| f.hit.rule_id == c.rule.id && f.hit.line == line)
                {
                    if candidate || !found[i].hit.candidate {
                        continue;
                    }
                    found.remove(i);
                }
                let function = analysis.enclosing_function(report);
                // Candidates count apart, so that one never takes a finding's place in a function;
                // a hit in code the change left alone does not take the turn of one on its lines.
                let on_change =
                    changed.is_none_or(|(l, _)| l.range(line..=end_line).next().is_some());
                let edit = changed.and_then(|(l, e)| edits::edit_of(e, l, line, end_line));
                if c.rule.one_per_function
                    && on_change
                    && !functions_hit.insert((rule_index, function.id(), candidate))
                {
                    continue;
                }
                found.push(Found {
                    rule: rule_index,
                    function,
                    edit,
                    hit: RuleHit {
                        rule_id: c.rule.id.clone(),
                        line,
                        end_line,
                        severity: c.rule.severity,
                        category: c.rule.category.clone(),
                        cwe: c.rule.cwe.clone(),
                        message: c.rule.message.clone(),
                        guidance: c.rule.guidance.clone(),
                        confidence: c.rule.confidence,
                        candidate,
                    },
                });
            }
        }
        found
    }

    /// Where a match puts its rule's hit, when the rule's conditions hold (or, failing them,
    /// its `candidate_when`): the reported node and lines. Long nodes (a whole call spread over
    /// lines) are reported on their first lines only, or on the line a predicate pointed at.
    fn place<'t>(
        &self,
        c: &Compiled,
        query: &Query,
        captures: &[tree_sitter::QueryCapture<'t>],
        names: &[&str],
        analysis: &Analysis<'t>,
        profile: bool,
    ) -> Option<Placed<'t>> {
        let started = profile.then(std::time::Instant::now);
        let (report, captured) = self.report_of(c, query, captures, names)?;
        analysis.focus.set(None);
        analysis.reach.set(None);
        let holds = |conds: &[Condition]| {
            conds
                .iter()
                .all(|cond| cond.holds(analysis, report, &captured))
        };
        let ok = holds(&c.conditions);
        let candidate = !ok
            && c.candidate_conditions.as_deref().is_some_and(|conds| {
                analysis.focus.set(None);
                analysis.reach.set(None);
                holds(conds)
            });
        let focus = analysis.focus.take();
        let reach = analysis.reach.take();
        debug_assert!(
            (focus.is_none() && reach.is_none()) || c.moves_finding(),
            "{}: a predicate moved the finding but does not say so in `moves_finding`",
            c.rule.id
        );
        if let Some(t) = started {
            profile::record(&c.rule.id, t.elapsed());
        }
        if !ok && !candidate {
            return None;
        }
        let line = report.start_position().row as u32 + 1;
        let (line, end_line) = match focus {
            Some(b) if b >= report.start_byte() && b < report.end_byte() => {
                let l = line_of_byte(analysis.src, b);
                (l, l)
            }
            // Before the node: the first line of what it was put together from (a regex built
            // from fragments bound to names). The finding runs from there to the node and lands
            // on the first of those lines the change touched.
            Some(b) if b < report.start_byte() => (line_of_byte(analysis.src, b), line),
            _ => {
                let end = (report.end_position().row as u32 + 1).min(line + 4);
                // A predicate that knows where the unsafe part of a long node ends lets the
                // finding sit on any changed line up to there.
                let end = match reach {
                    Some(b) if b >= report.start_byte() && b < report.end_byte() => {
                        end.max(line_of_byte(analysis.src, b))
                    }
                    _ => end,
                };
                (line, end)
            }
        };
        Some(Placed {
            report,
            line,
            end_line,
            candidate,
        })
    }

    /// The node a match reports (its `report` capture, or its first) and its named captures.
    pub(super) fn report_of<'t, 'q>(
        &self,
        c: &Compiled,
        query: &Query,
        captures: &[tree_sitter::QueryCapture<'t>],
        names: &[&'q str],
    ) -> Option<(tree_sitter::Node<'t>, Vec<(&'q str, tree_sitter::Node<'t>)>)> {
        let report_idx = c
            .rule
            .report
            .as_deref()
            .and_then(|r| query.capture_index_for_name(r));
        let report = match report_idx {
            Some(i) => captures.iter().find(|c| c.index == i).map(|c| c.node),
            None => captures.first().map(|c| c.node),
        }?;
        let captured = captures
            .iter()
            .map(|c| (names[c.index as usize], c.node))
            .collect();
        Some((report, captured))
    }

    /// A tainted value passed to a helper in the same file is one bug, reported where the input
    /// enters (in the caller), not once more inside the helper: false for such helper hits.
    fn helper_repeats<'t>(&self, analysis: &Analysis<'t>, found: &[Found<'t>]) -> Vec<bool> {
        found
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = analysis.function_name_of(f.function);
                if name.is_empty() || !self.compiled[f.rule].rule.one_per_function {
                    return true;
                }
                let called = format!("{name}(");
                let own = f.function.byte_range();
                // A call is outside the helper itself: its own definition (`name(args) {`) and
                // recursion are no caller, even in a function that encloses it.
                let calls_it = |g: tree_sitter::Node<'_>| {
                    analysis
                        .text(g)
                        .match_indices(&called)
                        .any(|(at, _)| !own.contains(&(g.start_byte() + at)))
                };
                // A candidate in the caller does not make the helper's finding a repeat.
                !found.iter().enumerate().any(|(j, g)| {
                    j != i
                        && g.rule == f.rule
                        && (!g.hit.candidate || f.hit.candidate)
                        && calls_it(g.function)
                })
            })
            .collect()
    }

    /// A once-per-function rule is a fallback for its category: when another rule already
    /// reported that category in the same function (an SQL fragment and the query it ends up
    /// in), the two are one bug; of two fallbacks in one function, the earlier one speaks.
    /// A candidate is covered by any finding of its category in its function, and never covers
    /// a finding.
    fn covered_fallbacks(&self, found: &[Found<'_>], keep: &mut [bool]) {
        let fallback = |f: &Found<'_>| self.compiled[f.rule].rule.one_per_function;
        for i in 0..found.len() {
            let candidate = found[i].hit.candidate;
            if !keep[i] || !(fallback(&found[i]) || candidate) {
                continue;
            }
            // Covered by a precise rule of the category in the same function, or by another
            // fallback of the category that reported earlier in it (the join of an archive
            // entry name and the file it opens are one bug).
            let covered = (0..found.len()).any(|j| {
                let (a, b) = (&found[i].hit, &found[j].hit);
                // Two hits on different edits of the change are two places to fix.
                let other_edit =
                    matches!((found[i].edit, found[j].edit), (Some(x), Some(y)) if x != y);
                let same_place = j != i
                    && keep[j]
                    && b.category == a.category
                    && found[j].function.id() == found[i].function.id()
                    && !other_edit;
                same_place
                    && match (candidate, b.candidate) {
                        (true, false) => true,
                        (false, true) => false,
                        _ => {
                            fallback(&found[i])
                                && b.rule_id != a.rule_id
                                && (!fallback(&found[j]) || b.line < a.line)
                        }
                    }
            });
            if covered {
                keep[i] = false;
            }
        }
    }

    /// Runs every rule's examples; returns one line per failure.
    pub fn check_examples(&self) -> Vec<String> {
        let mut failures = self.compile_each();
        for c in &self.compiled {
            if c.rule.examples.is_empty() {
                failures.push(format!("{}: has no examples", c.rule.id));
            }
            if c.candidate_conditions.is_some()
                && !c
                    .rule
                    .examples
                    .iter()
                    .any(|e| e.expect == Expect::Candidate)
            {
                failures.push(format!(
                    "{}: a rule with `candidate_when` needs an example with expect = \"candidate\"",
                    c.rule.id
                ));
            }
            if c.removed.is_some() && c.rule.changes.is_empty() {
                failures.push(format!(
                    "{}: a removed-check rule needs `changes`",
                    c.rule.id
                ));
            }
            let plain = c.rule.examples.iter().map(|e| (e, false));
            let changes = c.rule.changes.iter().map(|e| (e, true));
            for (i, (ex, is_change)) in plain.chain(changes).enumerate() {
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
                let hits = match (is_change, &ex.base) {
                    (true, Some(base)) => {
                        let diff = crate::diff::diff_texts(Some("a"), Some("a"), base, &ex.code);
                        let removals = super::removed::removals(&diff);
                        self.run_removed(lang, &ex.code, &tree, base, &removals, &[])
                    }
                    (false, None) => self.run(lang, &ex.code, &tree),
                    _ => {
                        failures.push(format!(
                            "{} example {}: `base` goes with `changes`, and only there",
                            c.rule.id,
                            i + 1
                        ));
                        continue;
                    }
                };
                let mine = hits.iter().filter(|h| h.rule_id == c.rule.id);
                let got = match mine.map(|h| h.candidate).min() {
                    None => Expect::Clean,
                    Some(false) => Expect::Hit,
                    Some(true) => Expect::Candidate,
                };
                if got != ex.expect {
                    let wanted = match ex.expect {
                        Expect::Hit => "hit",
                        Expect::Clean => "clean",
                        Expect::Candidate => "candidate",
                    };
                    let found = match got {
                        Expect::Hit => "a hit",
                        Expect::Clean => "no hit",
                        Expect::Candidate => "a candidate only",
                    };
                    failures.push(format!(
                        "{} example {} ({}): expected {wanted}, got {found}",
                        c.rule.id,
                        i + 1,
                        lang.name(),
                    ));
                }
            }
        }
        failures
    }
}

/// The 1-based line of a byte of `src`.
fn line_of_byte(src: &str, byte: usize) -> u32 {
    src.as_bytes()[..byte.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u32
        + 1
}

/// Compiles a rule's regexes, its query for each of its grammars, and checks its report capture.
fn compile_rule(rule: &Rule) -> Result<()> {
    let fields = [
        ("removed", &rule.removed),
        ("sink", &rule.sink),
        ("removed_unless", &rule.removed_unless),
        ("sink_unless", &rule.sink_unless),
    ];
    for (name, pattern) in fields {
        if let Some(p) = pattern {
            crate::text::ascii_regex(p)
                .map_err(|e| anyhow!("rule {}: bad `{name}` regex: {e}", rule.id))?;
        }
    }
    for w in &rule.when {
        let c = parse_condition(&rule.id, w)?;
        if let Some(a) = c.arg.as_deref().filter(|_| c.predicate.takes_regex()) {
            crate::text::ascii_regex(a)
                .map_err(|e| anyhow!("rule {}: bad regex in `{w}`: {e}", rule.id))?;
        }
    }
    if rule.query.trim().is_empty() {
        if rule.removed.is_none() {
            bail!("rule {}: has no query", rule.id);
        }
        return Ok(());
    }
    // tree-sitter reads a predicate outside every pattern's parentheses as a pattern of its
    // own that constrains nothing: the pattern before it would match without its condition.
    if let Some(p) = split_patterns(&rule.query)
        .into_iter()
        .find(|p| p.starts_with("(#"))
    {
        bail!(
            "rule {}: predicate `{p}` stands outside every pattern and would constrain nothing; \
             put it inside the pattern's parentheses: `((call) @c (#eq? @c \"x\"))`",
            rule.id
        );
    }
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

/// A rule's conditions under its `candidate_when` replacements; each replaced entry must be one
/// of its `when` entries, written the same way.
fn candidate_conditions(rule: &Rule) -> Result<Option<Vec<Condition>>> {
    if rule.candidate_when.is_empty() {
        return Ok(None);
    }
    if let Some(k) = rule.candidate_when.keys().find(|k| !rule.when.contains(k)) {
        bail!(
            "rule {}: candidate_when replaces `{k}`, which is not one of its `when` entries",
            rule.id
        );
    }
    rule.when
        .iter()
        .map(|w| parse_condition(&rule.id, rule.candidate_when.get(w).unwrap_or(w)))
        .collect::<Result<Vec<_>>>()
        .map(Some)
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
    let Some(predicate) = Predicate::parse(&name) else {
        bail!(
            "rule {rule}: unknown predicate `{name}` (known: {})",
            Predicate::NAMES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let (capture, arg) = match rest {
        Some(r) if r.starts_with('@') => (Some(r[1..].to_string()), None),
        other => (None, other),
    };
    Ok(Condition {
        negate,
        predicate,
        capture,
        arg,
    })
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
