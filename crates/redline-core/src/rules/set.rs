//! A loaded set of rules: parsed, their predicates resolved, and per grammar compiled into one
//! query on first use. `run` walks a file once per grammar and narrows each match by the rule's
//! predicates.

use super::analysis::Analysis;
use super::predicates::{self, Predicate};
use super::prefilter;
use super::{Expect, Rule, RuleHit, parse_rules, profile};
use crate::lang::Language;
use anyhow::{Context, Result, anyhow, bail};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
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

/// A hit as found, with its rule and the function that holds it.
struct Found<'t> {
    rule: usize,
    function: tree_sitter::Node<'t>,
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
    /// A removed-check rule's regex on deleted lines, and its sink regex on head lines.
    pub(super) removed: Option<LazyRegex>,
    pub(super) removed_unless: Option<LazyRegex>,
    pub(super) sink: Option<LazyRegex>,
}

/// A regex whose syntax is checked when the rules load and that is compiled on first use:
/// compiling every rule's regexes up front cost a one-line review more than its own work.
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
            regex::Regex::new(&self.pattern).unwrap_or_else(|_| regex::Regex::new("$^").unwrap())
        })
    }
}

/// A grammar's rules in one query, so that a file is walked once rather than once per rule.
pub(super) struct Combined {
    pub(super) query: Query,
    /// For each pattern of the query, the index of the rule it came from.
    pub(super) pattern_rule: Vec<usize>,
}

type CombinedByLanguage = HashMap<Language, std::sync::OnceLock<Option<Combined>>>;

/// One top-level pattern of a rule's query, with the words it cannot match without.
struct Pattern {
    rule: usize,
    text: String,
    needs: prefilter::Needs,
    /// The pattern can match the whole file (its root node), so its words are looked for in all
    /// of it even when only a region of the file is reviewed.
    file_wide: bool,
    /// The node kinds its matches start at, when the pattern says (None: any kind).
    roots: Option<Vec<String>>,
}

/// A grammar's patterns, the words they need, and the queries compiled from them: the whole set
/// (for files that need most of it) and the subsets files asked for, each compiled once.
struct LangRules {
    /// Each rule's whole query (rule index, text): the whole set compiles from these, as written.
    queries: Vec<(usize, String)>,
    patterns: Vec<Pattern>,
    /// Every needed word, and a matcher that finds them all in one pass over a file.
    words: Vec<String>,
    finder: Option<aho_corasick::AhoCorasick>,
    /// Patterns selected together: for each category that has once-per-function fallbacks, the
    /// patterns of all its rules, whose hits are weighed against each other across the file
    /// (`helper_repeats`, `covered_fallbacks`).
    groups: Vec<Vec<usize>>,
    /// The once-per-function rules (indices into the rule set).
    fallbacks: std::collections::HashSet<usize>,
    full: std::sync::OnceLock<Option<Arc<Combined>>>,
    subsets: std::sync::Mutex<HashMap<Vec<bool>, Arc<Combined>>>,
}

/// Distinct pattern subsets kept compiled per grammar; past that, files use the whole set.
const MAX_SUBSETS: usize = 24;

impl LangRules {
    fn new(compiled: &[Compiled], lang: Language) -> LangRules {
        let mut patterns = Vec::new();
        let mut queries = Vec::new();
        let runs = |c: &Compiled| {
            c.langs.contains(&lang) && c.removed.is_none() && !c.rule.query.trim().is_empty()
        };
        // Categories with a once-per-function fallback: their patterns go together.
        let mut fallback_categories: Vec<&str> = compiled
            .iter()
            .filter(|c| runs(c) && c.rule.one_per_function)
            .map(|c| c.rule.category.as_str())
            .collect();
        fallback_categories.sort();
        fallback_categories.dedup();
        let mut groups = vec![Vec::new(); fallback_categories.len()];
        let grammar = lang.grammar();
        let supertypes: Vec<&str> = grammar
            .supertypes()
            .iter()
            .filter_map(|id| grammar.node_kind_for_id(*id))
            .collect();
        for (i, c) in compiled.iter().enumerate() {
            if !runs(c) {
                continue;
            }
            queries.push((i, c.rule.query.clone()));
            let group = fallback_categories
                .binary_search(&c.rule.category.as_str())
                .ok();
            for text in prefilter::split_patterns(&c.rule.query) {
                let needs = prefilter::needs(&text);
                if let Some(g) = group {
                    groups[g].push(patterns.len());
                }
                patterns.push(Pattern {
                    rule: i,
                    file_wide: is_file_wide(&text),
                    roots: root_kinds(&text, &supertypes),
                    text,
                    needs,
                });
            }
        }
        let fallbacks = compiled
            .iter()
            .enumerate()
            .filter(|(_, c)| runs(c) && c.rule.one_per_function)
            .map(|(i, _)| i)
            .collect();
        let mut words: Vec<String> = patterns
            .iter()
            .flat_map(|p| p.needs.iter().flatten().cloned())
            .collect();
        words.sort();
        words.dedup();
        let finder = (!words.is_empty())
            // A contiguous NFA: a DFA searches a little faster but costs more to build than a
            // one-file review spends searching.
            .then(|| {
                aho_corasick::AhoCorasick::builder()
                    .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
                    .build(&words)
                    .ok()
            })
            .flatten();
        LangRules {
            queries,
            patterns,
            words,
            finder,
            groups,
            fallbacks,
            full: std::sync::OnceLock::new(),
            subsets: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Which patterns can match in `src`: those whose every need has a word in it. With a
    /// `region` (the part of `src` whose hits are kept), a pattern's words are looked for there,
    /// since a match that reports in the region lies in it, except for patterns that can match
    /// the whole file; and a pattern of a group brings in the rest of its group.
    fn selection(&self, src: &str, region: Option<&Region>) -> Vec<bool> {
        // For checking that the prefilter changes no finding: REDLINE_NO_PREFILTER=1 selects every
        // pattern, so the whole set runs as the rules are written.
        if std::env::var_os("REDLINE_NO_PREFILTER").is_some() {
            return vec![true; self.patterns.len()];
        }
        let words_in = |text: &str| {
            let mut present: std::collections::HashSet<&str> = std::collections::HashSet::new();
            if let Some(f) = &self.finder {
                for m in f.find_overlapping_iter(text) {
                    present.insert(self.words[m.pattern().as_usize()].as_str());
                }
            }
            present
        };
        let in_file = words_in(src);
        let in_region = region.map(|r| words_in(&r.text));
        let mut selection: Vec<bool> = self
            .patterns
            .iter()
            .map(|p| {
                let (present, kinds) = match (&in_region, region) {
                    (Some(words), Some(r)) if !p.file_wide => (words, Some(&r.kinds)),
                    _ => (&in_file, None),
                };
                // A match starts at a node of the region, so at one of the kinds found there.
                let kind_present = match (kinds, &p.roots) {
                    (Some(kinds), Some(roots)) => roots.iter().any(|k| kinds.contains(k.as_str())),
                    _ => true,
                };
                kind_present
                    && p.needs
                        .iter()
                        .all(|any| any.iter().any(|w| present.contains(w.as_str())))
            })
            .collect();
        if region.is_some() {
            let fallback_selected = |g: usize| {
                self.groups[g]
                    .iter()
                    .any(|&i| selection[i] && self.fallbacks.contains(&self.patterns[i].rule))
            };
            let groups: Vec<usize> = (0..self.groups.len())
                .filter(|&g| fallback_selected(g))
                .collect();
            for g in groups {
                for &i in &self.groups[g] {
                    // Still only patterns whose words are in the file: the others match nowhere.
                    selection[i] = self.patterns[i]
                        .needs
                        .iter()
                        .all(|any| any.iter().any(|w| in_file.contains(w.as_str())));
                }
            }
        }
        selection
    }

    /// The query for `src`: its patterns compiled together, only those it can match (in
    /// `region`, when given: see `selection`).
    fn query_for(
        &self,
        lang: Language,
        src: &str,
        region: Option<&Region>,
    ) -> Option<Arc<Combined>> {
        let selection = self.selection(src, region);
        let chosen = selection.iter().filter(|s| **s).count();
        if chosen == 0 {
            return None;
        }
        let full = || {
            self.full
                .get_or_init(|| {
                    compile_together(lang, self.queries.iter().map(|(r, q)| (*r, q.as_str())))
                        .map(Arc::new)
                })
                .clone()
        };
        // Most of the set: compile it whole, once, for this file and every later one (the files
        // of one change each need a different most-of-it).
        if chosen * 2 > self.patterns.len() {
            return full();
        }
        let mut subsets = self.subsets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = subsets.get(&selection) {
            return Some(q.clone());
        }
        // A compiled subset that holds this one finds the same hits on the lines: the patterns
        // it adds could only report elsewhere (see `selection`).
        let holds = |s: &Vec<bool>| s.iter().zip(&selection).all(|(has, need)| *has || !*need);
        if let Some((_, q)) = subsets
            .iter()
            .filter(|(s, _)| holds(s))
            .min_by_key(|(s, _)| s.iter().filter(|b| **b).count())
        {
            return Some(q.clone());
        }
        if subsets.len() >= MAX_SUBSETS {
            drop(subsets);
            return full();
        }
        let q = Arc::new(self.compile(lang, &selection)?);
        subsets.insert(selection, q.clone());
        Some(q)
    }

    fn compile(&self, lang: Language, selection: &[bool]) -> Option<Combined> {
        compile_together(
            lang,
            self.patterns
                .iter()
                .zip(selection)
                .filter(|(_, s)| **s)
                .map(|(p, _)| (p.rule, p.text.as_str())),
        )
    }
}

/// Whether a query pattern can match a file's root node (or any node), whose text is the whole
/// file: its words are then looked for in the whole file.
fn is_file_wide(pattern: &str) -> bool {
    let p = pattern.trim_start();
    p.starts_with('_')
        || p.starts_with("(_")
        || ["(module", "(program", "(source_file"]
            .iter()
            .any(|root| pattern.contains(root))
}

/// The kinds a pattern's matches start at: `(call ...)` starts at a `call`, `[(a) (b)]` at an `a`
/// or a `b`. None when the pattern does not say (a wildcard, a string, a nested group) or names
/// a supertype, which no node has as its kind.
fn root_kinds(pattern: &str, supertypes: &[&str]) -> Option<Vec<String>> {
    let kind_after_paren = |s: &str| -> Option<String> {
        let rest = s.strip_prefix('(')?;
        let kind: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        (!kind.is_empty() && kind != "_" && !supertypes.contains(&kind.as_str())).then_some(kind)
    };
    let p = pattern.trim_start();
    if p.starts_with('(') {
        return kind_after_paren(p).map(|k| vec![k]);
    }
    let inner = p.strip_prefix('[')?;
    // The alternatives at depth one of the brackets, each of which must name its kind.
    let mut kinds = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut prev = ' ';
    for (i, c) in inner.char_indices() {
        if in_string {
            if c == '"' && prev != '\\' {
                in_string = false;
            }
        } else {
            match c {
                '"' if depth == 0 => return None,
                '"' => in_string = true,
                '(' | '[' => {
                    if depth == 0 {
                        kinds.push(kind_after_paren(&inner[i..])?);
                    }
                    depth += 1;
                }
                ')' => depth -= 1,
                ']' if depth == 0 => return (!kinds.is_empty()).then_some(kinds),
                ']' => depth -= 1,
                c if depth == 0 && !c.is_whitespace() => return None,
                _ => {}
            }
        }
        prev = c;
    }
    None
}

/// What of a file a review keeps hits in. A match that reports on one of the added lines starts
/// at a node that overlaps that line (the node holds the reported one), and lies within one of
/// the top-level statements that touch the lines, unless it is the root.
struct Region {
    /// The text of the top-level statements that touch the lines: a match's words are in it.
    text: String,
    /// The kinds of the nodes that overlap a line: a match starts at one of them.
    kinds: std::collections::HashSet<String>,
}

impl Region {
    fn of(
        lang: Language,
        src: &str,
        tree: &Tree,
        lines: &std::collections::BTreeSet<u32>,
    ) -> Region {
        let root = tree.root_node();
        let mut cursor = root.walk();
        let mut ids = std::collections::HashSet::new();
        let mut region = Region {
            text: String::new(),
            kinds: std::collections::HashSet::new(),
        };
        for child in root.children(&mut cursor) {
            let (start, end) = (
                child.start_position().row as u32 + 1,
                child.end_position().row as u32 + 1,
            );
            if lines.range(start..=end).next().is_none() {
                continue;
            }
            region.text.push_str(&src[child.byte_range()]);
            region.text.push('\n');
            // The nodes of the statement that overlap a line (a node ending at the start of the
            // next line counts too: more kinds only select more patterns).
            let mut stack = vec![child];
            while let Some(node) = stack.pop() {
                let (start, end) = (
                    node.start_position().row as u32 + 1,
                    node.end_position().row as u32 + 1,
                );
                if lines.range(start..=end).next().is_none() {
                    continue;
                }
                ids.insert(node.kind_id());
                let mut c = node.walk();
                stack.extend(node.children(&mut c));
            }
        }
        let grammar = lang.grammar();
        region.kinds = ids
            .into_iter()
            .filter_map(|id| grammar.node_kind_for_id(id).map(str::to_string))
            .collect();
        region
    }
}

/// Query texts (each with the index of its rule) compiled into one query.
fn compile_together<'q>(
    lang: Language,
    parts: impl Iterator<Item = (usize, &'q str)>,
) -> Option<Combined> {
    let mut text = String::new();
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    for (rule, part) in parts {
        let start = text.len();
        text.push_str(part);
        spans.push((start, text.len(), rule));
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
    let pattern_rule = (0..query.pattern_count())
        .map(|p| {
            let at = query.start_byte_for_pattern(p);
            spans
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&at))
                .map(|x| x.2)
                .unwrap_or(0)
        })
        .collect();
    Some(Combined {
        query,
        pattern_rule,
    })
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
    /// The built-in rules (knowledge/**/*.rules.toml, compiled into the binary).
    pub fn builtin() -> Result<RuleSet> {
        RuleSet::load(&[], &[])
    }

    /// The built-in rules plus the `.rules.toml` files under `dirs`, less the `disabled` ids.
    /// Rules from `dirs` are compiled at once so that a broken team rule is reported by name;
    /// built-in rules are checked by `redline knowledge check` (and CI).
    pub fn load(extra_dirs: &[std::path::PathBuf], disabled: &[String]) -> Result<RuleSet> {
        let mut rules = Vec::new();
        for (path, text) in crate::builtin::files()
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
            let lazy = |v: &Option<String>| v.as_deref().map(LazyRegex::new);
            let removed = lazy(&rule.removed);
            let sink = lazy(&rule.sink);
            let removed_unless = lazy(&rule.removed_unless);
            compiled.push(Compiled {
                rule,
                langs,
                conditions,
                removed,
                removed_unless,
                sink,
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
        self.run_selected(lang, src, tree, disabled, None)
    }

    /// `run_except` for a review that keeps only the hits touching `lines` (the added lines):
    /// those are exactly as `run_except` finds them; hits elsewhere may be missing. Only the
    /// patterns whose words appear in the top-level statements around `lines` are compiled, so
    /// that a one-line change does not pay for every rule that could match its whole file.
    pub fn run_on_lines(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
        lines: &std::collections::BTreeSet<u32>,
    ) -> Vec<RuleHit> {
        let region = Region::of(lang, src, tree, lines);
        self.run_selected(lang, src, tree, disabled, Some(&region))
    }

    fn run_selected(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        disabled: &[String],
        region: Option<&Region>,
    ) -> Vec<RuleHit> {
        let Some(combined) = self.by_lang[&lang]
            .get_or_init(|| LangRules::new(&self.compiled, lang))
            .query_for(lang, src, region)
        else {
            return Vec::new();
        };
        let analysis = Analysis::new(lang, src, tree);
        let mut found = self.matches(&combined, &analysis, tree, disabled);
        let mut keep = self.helper_repeats(&analysis, &found);
        self.covered_fallbacks(&found, &mut keep);
        let mut it = keep.into_iter();
        found.retain(|_| it.next().unwrap_or(true));
        let mut hits: Vec<RuleHit> = found.into_iter().map(|f| f.hit).collect();
        hits.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule_id.cmp(&b.rule_id)));
        hits
    }

    /// Every match of the combined query whose rule's predicates hold, once per rule and line
    /// (and once per function for `one_per_function` rules), in the order found.
    fn matches<'t>(
        &self,
        combined: &Combined,
        analysis: &Analysis<'t>,
        tree: &'t Tree,
        disabled: &[String],
    ) -> Vec<Found<'t>> {
        let Combined {
            query,
            pattern_rule,
        } = combined;
        let mut found: Vec<Found<'t>> = Vec::new();
        let mut functions_hit: std::collections::HashSet<(usize, usize)> =
            std::collections::HashSet::new();
        let profile = std::env::var_os("REDLINE_RULE_TIMES").is_some();
        let names = query.capture_names();
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(query, tree.root_node(), analysis.src.as_bytes());
        while let Some(m) = matches.next() {
            let rule_index = pattern_rule[m.pattern_index];
            let c = &self.compiled[rule_index];
            if !disabled.is_empty() && disabled.contains(&c.rule.id) {
                continue;
            }
            let started = profile.then(std::time::Instant::now);
            let Some((report, captured)) = self.report_of(c, query, m.captures(), names) else {
                continue;
            };
            analysis.focus.set(None);
            let ok = c
                .conditions
                .iter()
                .all(|cond| cond.holds(analysis, report, &captured));
            let focus = analysis.focus.take();
            if let Some(t) = started {
                profile::record(&c.rule.id, t.elapsed());
            }
            if !ok {
                continue;
            }
            let line = report.start_position().row as u32 + 1;
            // Long nodes (a whole call spread over lines) are reported on their first lines only,
            // or on the line a predicate pointed at.
            let (line, end_line) = match focus {
                Some(b) if b >= report.start_byte() && b < report.end_byte() => {
                    let l = line_of_byte(analysis.src, b);
                    (l, l)
                }
                _ => (line, (report.end_position().row as u32 + 1).min(line + 4)),
            };
            if found
                .iter()
                .any(|f| f.hit.rule_id == c.rule.id && f.hit.line == line)
            {
                continue;
            }
            let function = analysis.enclosing_function(report);
            if c.rule.one_per_function && !functions_hit.insert((rule_index, function.id())) {
                continue;
            }
            found.push(Found {
                rule: rule_index,
                function,
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
                },
            });
        }
        found
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
        let funcs: Vec<(usize, &str)> = found
            .iter()
            .map(|f| (f.rule, analysis.text(f.function)))
            .collect();
        found
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = analysis.function_name_of(f.function);
                if name.is_empty() || !self.compiled[f.rule].rule.one_per_function {
                    return true;
                }
                let called = format!("{name}(");
                !funcs.iter().enumerate().any(|(j, (rule_j, text))| {
                    j != i && *rule_j == f.rule && text.contains(&called)
                })
            })
            .collect()
    }

    /// A once-per-function rule is a fallback for its category: when another rule already
    /// reported that category in the same function (an SQL fragment and the query it ends up
    /// in), the two are one bug; of two fallbacks in one function, the earlier one speaks.
    fn covered_fallbacks(&self, found: &[Found<'_>], keep: &mut [bool]) {
        let fallback = |f: &Found<'_>| self.compiled[f.rule].rule.one_per_function;
        for i in 0..found.len() {
            if !keep[i] || !fallback(&found[i]) {
                continue;
            }
            // Covered by a precise rule of the category in the same function, or by another
            // fallback of the category that reported earlier in it (the join of an archive
            // entry name and the file it opens are one bug).
            let covered = (0..found.len()).any(|j| {
                j != i
                    && keep[j]
                    && found[j].hit.category == found[i].hit.category
                    && found[j].hit.rule_id != found[i].hit.rule_id
                    && found[j].function.id() == found[i].function.id()
                    && (!fallback(&found[j]) || found[j].hit.line < found[i].hit.line)
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
                let hit = hits.iter().any(|h| h.rule_id == c.rule.id);
                let want = ex.expect == Expect::Hit;
                if hit != want {
                    failures.push(format!(
                        "{} example {} ({}): expected {}, got {}",
                        c.rule.id,
                        i + 1,
                        lang.name(),
                        if want { "hit" } else { "clean" },
                        if hit { "a hit" } else { "no hit" }
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
    ];
    for (name, pattern) in fields {
        if let Some(p) = pattern {
            regex::Regex::new(p)
                .map_err(|e| anyhow!("rule {}: bad `{name}` regex: {e}", rule.id))?;
        }
    }
    for w in &rule.when {
        let c = parse_condition(&rule.id, w)?;
        if let Some(a) = c.arg.as_deref().filter(|_| c.predicate.takes_regex()) {
            regex::Regex::new(a)
                .map_err(|e| anyhow!("rule {}: bad regex in `{w}`: {e}", rule.id))?;
        }
    }
    if rule.query.trim().is_empty() {
        if rule.removed.is_none() {
            bail!("rule {}: has no query", rule.id);
        }
        return Ok(());
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

#[cfg(test)]
mod region_tests {
    use super::*;

    #[test]
    fn root_kinds_are_read_from_the_pattern_head() {
        let st = ["expression", "primary_expression"];
        let kinds = |p: &str| root_kinds(p, &st);
        assert_eq!(
            kinds("(call function: (_) @f) @sink"),
            Some(vec!["call".into()])
        );
        assert_eq!(
            kinds("[(assignment) (augmented_assignment \"+=\")] @sink"),
            Some(vec!["assignment".into(), "augmented_assignment".into()])
        );
        assert_eq!(kinds("(_ (call)) @x"), None);
        assert_eq!(kinds("((call) @c (#eq? @c \"x\"))"), None);
        assert_eq!(kinds("[\"if\" (call)] @x"), None);
        assert_eq!(
            kinds("(expression) @x"),
            None,
            "a supertype is no node's kind"
        );
        assert_eq!(kinds("[(call) (primary_expression)] @x"), None);
    }

    /// On every head file of the shipped cases and a spread of line sets, the hits that touch
    /// the lines are the same whether the rules run on the whole file or on the region.
    #[test]
    fn hits_on_the_lines_are_the_same_with_the_region_prefilter() {
        let rules = RuleSet::builtin().unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cases");
        let mut files = Vec::new();
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.to_string_lossy().contains("/head/") {
                    files.push(p);
                }
            }
        }
        let mut checked = 0;
        for path in files {
            let Some(lang) = crate::lang::detect(&path.to_string_lossy(), None) else {
                continue;
            };
            let src = std::fs::read_to_string(&path).unwrap();
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&lang.grammar()).unwrap();
            let tree = parser.parse(&src, None).unwrap();
            let all = rules.run_except(lang, &src, &tree, &[]);
            let n = src.lines().count() as u32;
            for start in (1..=n).step_by(5) {
                let lines: std::collections::BTreeSet<u32> = (start..=(start + 2).min(n)).collect();
                let touching = |hits: Vec<RuleHit>| -> Vec<(String, u32)> {
                    hits.into_iter()
                        .filter(|h| (h.line..=h.end_line).any(|l| lines.contains(&l)))
                        .map(|h| (h.rule_id, h.line))
                        .collect()
                };
                let expected = touching(all.clone());
                let got = touching(rules.run_on_lines(lang, &src, &tree, &[], &lines));
                assert_eq!(got, expected, "{} lines {lines:?}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} line sets checked");
    }
}
