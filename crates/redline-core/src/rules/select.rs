//! Which of a grammar's rule patterns a file needs, and the queries compiled from them.
//!
//! Compiling tree-sitter queries is most of a small review's cost, so a file compiles only the
//! patterns that can match it: each top-level pattern of a rule's query needs some words (read
//! from the pattern by `prefilter`), and, for a review that keeps only hits on its added lines,
//! a root node kind among the nodes overlapping those lines (`Region`). Each distinct selection
//! is compiled once per process and reused.

use super::prefilter;
use super::set::{Combined, Compiled, compile_together};
use crate::lang::Language;
use std::collections::HashMap;
use std::sync::Arc;
use tree_sitter::Tree;

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
pub(super) struct LangRules {
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
    pub(super) fn new(compiled: &[Compiled], lang: Language) -> LangRules {
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
            .flat_map(|p| p.needs.iter().flat_map(|n| n.words.iter()).cloned())
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
            let mut present = Present::default();
            if let Some(f) = &self.finder {
                let bytes = text.as_bytes();
                let ident = |i: usize| {
                    bytes
                        .get(i)
                        .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$'))
                };
                for m in f.find_overlapping_iter(text) {
                    let word = self.words[m.pattern().as_usize()].as_str();
                    present.anywhere.insert(word);
                    let joined_before = m.start() > 0 && ident(m.start() - 1);
                    if !joined_before && !ident(m.end()) {
                        present.whole.insert(word);
                    }
                }
            }
            present
        };
        let in_file = words_in(src);
        let in_region = region.map(|r| words_in(&r.text));
        // The words inside the outermost nodes of each root kind, found once per kind.
        let mut in_kind: HashMap<&str, Present> = HashMap::new();
        let mut selection: Vec<bool> = Vec::with_capacity(self.patterns.len());
        for p in &self.patterns {
            let selected = match (&in_region, region) {
                (Some(words), Some(r)) if !p.file_wide => match &p.roots {
                    // A match starts at a node of the region, so at one of the kinds found
                    // there, and its words lie inside the outermost nodes of that kind.
                    Some(roots) => roots
                        .iter()
                        .filter(|k| r.kinds.contains(k.as_str()))
                        .any(|k| {
                            let present = in_kind
                                .entry(k.as_str())
                                .or_insert_with(|| words_in(r.by_kind.get(k).map_or("", |t| t)));
                            needs_met(&p.needs, present)
                        }),
                    None => needs_met(&p.needs, words),
                },
                _ => needs_met(&p.needs, &in_file),
            };
            selection.push(selected);
        }
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
                    selection[i] = needs_met(&self.patterns[i].needs, &in_file);
                }
            }
        }
        selection
    }

    /// The query for `src`: its patterns compiled together, only those it can match (in
    /// `region`, when given: see `selection`).
    pub(super) fn query_for(
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

/// The needed words found in a text: anywhere, and as whole identifiers.
#[derive(Default)]
struct Present<'w> {
    anywhere: std::collections::HashSet<&'w str>,
    whole: std::collections::HashSet<&'w str>,
}

/// Whether every need of a pattern has one of its words in the text (as a whole identifier when
/// the need says so).
fn needs_met(needs: &prefilter::Needs, present: &Present) -> bool {
    needs.iter().all(|need| {
        let found = if need.whole {
            &present.whole
        } else {
            &present.anywhere
        };
        need.words.iter().any(|w| found.contains(w.as_str()))
    })
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
pub(super) struct Region {
    /// The text of the top-level statements that touch the lines: a match's words are in it.
    text: String,
    /// The kinds of the nodes that overlap a line: a match starts at one of them.
    kinds: std::collections::HashSet<String>,
    /// For each of those kinds, the text of the outermost nodes of that kind that overlap a
    /// line: a match that starts at such a node lies inside one of them, and so do its words.
    /// (Often much less than `text`: the call around a line rather than the whole function.)
    by_kind: HashMap<String, String>,
}

impl Region {
    pub(super) fn of(
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
            by_kind: HashMap::new(),
        };
        // Per kind, the byte ranges of the outermost nodes of that kind seen so far (a parent is
        // always seen before its children).
        let mut outermost: HashMap<u16, Vec<std::ops::Range<usize>>> = HashMap::new();
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
                let ranges = outermost.entry(node.kind_id()).or_default();
                let r = node.byte_range();
                if !ranges.iter().any(|o| o.start <= r.start && r.end <= o.end) {
                    ranges.push(r);
                }
                let mut c = node.walk();
                stack.extend(node.children(&mut c));
            }
        }
        let grammar = lang.grammar();
        region.kinds = ids
            .into_iter()
            .filter_map(|id| grammar.node_kind_for_id(id).map(str::to_string))
            .collect();
        for (id, ranges) in outermost {
            let Some(kind) = grammar.node_kind_for_id(id) else {
                continue;
            };
            let text = region.by_kind.entry(kind.to_string()).or_default();
            for r in ranges {
                text.push_str(&src[r]);
                text.push('\n');
            }
        }
        region
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleHit, RuleSet};

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
            let n = src.lines().count() as u32;
            for start in (1..=n).step_by(5) {
                let lines: std::collections::BTreeSet<u32> = (start..=(start + 2).min(n)).collect();
                let touching = |hits: Vec<RuleHit>| -> Vec<(String, u32)> {
                    hits.into_iter()
                        .filter(|h| (h.line..=h.end_line).any(|l| lines.contains(&l)))
                        .map(|h| (h.rule_id, h.line))
                        .collect()
                };
                // Every rule compiled, the same lines in focus.
                let all = rules.run_selected(lang, &src, &tree, &[], None, Some(&lines));
                let expected = touching(all);
                let got = touching(rules.run_on_lines(lang, &src, &tree, &[], &lines));
                assert_eq!(got, expected, "{} lines {lines:?}", path.display());
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} line sets checked");
    }
}
