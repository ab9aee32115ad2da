//! Which of a grammar's rule patterns a file needs, and the queries compiled from them.
//!
//! Compiling tree-sitter queries is most of a small review's cost, so a file compiles only the
//! patterns that can match it: each top-level pattern of a rule's query needs some words (read
//! from the pattern by `prefilter`), and, for a review that keeps only hits on its added lines,
//! a root node kind among the nodes overlapping those lines, with the words inside a node of that
//! kind that a match reporting on the lines can start at (`Region`). Each distinct selection is
//! compiled once per process and reused.

use super::prefilter;
use super::region::{NEAR_DEPTH, Region};
use super::set::{Combined, Compiled, compile_together};
use crate::lang::Language;
use std::collections::HashMap;
use std::sync::Arc;

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
    /// How many levels below its root the pattern's deepest node lies (a child step in a
    /// query is a direct child), so how far above a reported node its match can start.
    depth: usize,
    /// Its rule may report on a line inside the reported node other than its first (see
    /// `Compiled::moves_finding`), so the node may start far above the changed line.
    moves_finding: bool,
    /// Its rule may report above the reported node (see `Compiled::moves_finding_above`), so a
    /// match may start at a node the changed lines do not touch.
    moves_finding_above: bool,
    /// Node kinds its root must have among its children (`(string (interpolation))`).
    child_kinds: Vec<String>,
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
                    depth: nesting_depth(&text),
                    moves_finding: c.moves_finding(),
                    moves_finding_above: c.moves_finding_above(),
                    child_kinds: child_kinds(&text, &supertypes),
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
    pub(super) fn selection(&self, src: &str, region: Option<&Region>) -> Vec<bool> {
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
        // The words inside the outermost nodes of each root kind, found once per kind; and
        // inside the nodes of a kind that stand at most so many levels above a node that may
        // report on the lines, once per kind and depth.
        let mut in_kind: HashMap<&str, Present> = HashMap::new();
        let mut in_near: HashMap<(&str, usize), Option<Present>> = HashMap::new();
        let mut selection: Vec<bool> = Vec::with_capacity(self.patterns.len());
        for p in &self.patterns {
            let selected = match (&in_region, region) {
                // The lines bind a string to a name, which a match below them may read as one of
                // its fragments: the match lies inside a statement that touches the lines, and
                // so do its words.
                (Some(words), Some(r))
                    if !p.file_wide && p.moves_finding_above && r.binds_a_string() =>
                {
                    needs_met(&p.needs, words)
                }
                (Some(words), Some(r)) if !p.file_wide => match (&p.roots, &r.near) {
                    // The pattern's match reports at a node that starts at most four lines
                    // above a changed line and overlaps it, and starts at most `depth` levels
                    // above that node: its words lie inside such a start.
                    (Some(roots), Some(near)) if !p.moves_finding && p.depth <= NEAR_DEPTH => roots
                        .iter()
                        .filter(|k| near.contains_key(k.as_str()))
                        .filter(|k| r.near_has_children(k, p.depth, &p.child_kinds))
                        .any(|k| {
                            let present = in_near
                                .entry((k.as_str(), p.depth))
                                .or_insert_with(|| r.near_text(k, p.depth).map(|t| words_in(&t)));
                            present.as_ref().is_some_and(|w| needs_met(&p.needs, w))
                        }),
                    // A match starts at a node of the region, so at one of the kinds found
                    // there, and its words lie inside the outermost nodes of that kind.
                    (Some(roots), _) => roots
                        .iter()
                        .filter(|k| r.kinds.contains(k.as_str()))
                        .filter(|k| r.has_children(k, &p.child_kinds))
                        .any(|k| {
                            let present = in_kind
                                .entry(k.as_str())
                                .or_insert_with(|| words_in(r.by_kind.get(k).map_or("", |t| t)));
                            needs_met(&p.needs, present)
                        }),
                    (None, _) => needs_met(&p.needs, words),
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

    /// The query for a file's needs (its `selection`): the needed patterns compiled together, or a
    /// compiled query that holds them.
    pub(super) fn query_for(&self, lang: Language, needs: Vec<bool>) -> Option<Arc<Combined>> {
        self.query_for_selection(lang, needs, true)
    }

    /// Compiles the patterns that several files need (their selections together) as one query,
    /// before they run: each file then finds it holds what it needs (see `query_for_selection`),
    /// and the change pays one compilation per grammar instead of one per file.
    pub(super) fn compile_needs(&self, lang: Language, union: Vec<bool>) {
        // Compiled as it is even when it is most of the set: a change's files need nothing else.
        self.query_for_selection(lang, union, false);
    }

    /// The query for a selection: a compiled one that holds it, or a new one. With `whole_when_most`,
    /// a selection of most of the set compiles the whole set instead, for this file and every later
    /// one.
    fn query_for_selection(
        &self,
        lang: Language,
        selection: Vec<bool>,
        whole_when_most: bool,
    ) -> Option<Arc<Combined>> {
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
        // The whole set holds every selection: once compiled, it serves rather than a new subset.
        if let Some(whole) = self.full.get() {
            return whole.clone();
        }
        // Most of the set: compile it whole, once, for this file and every later one (the files
        // of one change each need a different most-of-it).
        if (whole_when_most && chosen * 2 > self.patterns.len()) || subsets.len() >= MAX_SUBSETS {
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

/// How many levels below its root a pattern's deepest node lies: `(call function: (identifier))`
/// is 1, and so is `(call "(")`. Predicates and field names add none; a nested group counts as a
/// level, which only overstates the depth (and selects more).
fn nesting_depth(pattern: &str) -> usize {
    let mut depth = 0;
    // For each open parenthesis: whether it is a node (not a predicate).
    let mut open: Vec<bool> = Vec::new();
    let nodes = |open: &[bool]| open.iter().filter(|n| **n).count();
    let mut chars = pattern.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            ';' => prefilter::skip_comment_or_string(c, &mut chars),
            '"' => {
                prefilter::skip_comment_or_string(c, &mut chars);
                // A literal in a predicate is an argument, elsewhere an anonymous node.
                if open.last() != Some(&false) {
                    depth = depth.max(nodes(&open));
                }
            }
            '(' => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let predicate = chars.peek() == Some(&'#') || open.last() == Some(&false);
                if !predicate {
                    depth = depth.max(nodes(&open));
                }
                open.push(!predicate);
            }
            ')' => {
                open.pop();
            }
            // A bare `_` (not `(_)`, not part of a name) is a wildcard node.
            c if c.is_alphanumeric() || c == '_' || c == '@' || c == '#' => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if !(n.is_alphanumeric() || matches!(n, '_' | '-' | '.' | '?' | '!')) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                if word == "_" && prev != '(' && open.last() != Some(&false) {
                    depth = depth.max(nodes(&open));
                }
            }
            _ => {}
        }
        if !c.is_whitespace() {
            prev = c;
        }
    }
    depth
}

/// The node kinds a pattern's root must have among its children: those written one level below
/// the root, outside any alternation and not made optional (`?`, `*`). Wildcards, supertypes and
/// groups name no kind and are left out, which only selects more.
fn child_kinds(pattern: &str, supertypes: &[&str]) -> Vec<String> {
    // Only a pattern that is one node has a root whose children are known.
    let head = pattern.trim_start().strip_prefix('(').map(str::trim_start);
    if !head.is_some_and(|h| h.starts_with(|c: char| c.is_ascii_alphabetic())) {
        return Vec::new();
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    // For each open parenthesis: whether it is a node or group (not a predicate); and for the
    // nodes one level below the root, their kind.
    let mut open: Vec<bool> = Vec::new();
    let mut pending: Vec<Option<String>> = Vec::new();
    let mut brackets = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            ';' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            '(' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let name: String = chars[j..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                    .collect();
                let node = chars
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_');
                let level = open.iter().filter(|n| **n).count();
                let names_a_kind = node
                    && name != "_"
                    && !name.starts_with(|c: char| c.is_ascii_uppercase())
                    && !supertypes.contains(&name.as_str())
                    && chars.get(j + name.len()) != Some(&'/');
                pending.push((level == 1 && brackets == 0 && names_a_kind).then_some(name));
                open.push(node || chars.get(j) == Some(&'('));
            }
            ')' => {
                open.pop();
                if let Some(kind) = pending.pop().flatten() {
                    // Past its captures, a quantifier makes it optional.
                    let mut j = i + 1;
                    loop {
                        while j < chars.len() && chars[j].is_whitespace() {
                            j += 1;
                        }
                        if chars.get(j) != Some(&'@') {
                            break;
                        }
                        while j < chars.len()
                            && !chars[j].is_whitespace()
                            && !matches!(chars[j], ')' | '(' | '[' | ']' | '?' | '*' | '+')
                        {
                            j += 1;
                        }
                    }
                    if !matches!(chars.get(j), Some('?' | '*')) {
                        out.push(kind);
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.sort();
    out.dedup();
    out
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

    #[test]
    fn child_kinds_are_the_mandatory_kinds_one_level_below_the_root() {
        let st = ["expression"];
        let kinds = |p: &str| child_kinds(p, &st);
        assert_eq!(
            kinds("(string (interpolation)) @sink"),
            vec!["interpolation"]
        );
        assert_eq!(
            kinds("(call function: (attribute object: (string)) arguments: (argument_list) @a)"),
            vec!["argument_list", "attribute"],
            "deeper kinds are left out"
        );
        assert!(kinds("(call (argument_list)? (keyword_argument)* @k)").is_empty());
        assert!(kinds("(call [(string) (integer)])").is_empty());
        assert!(kinds("(call (_) (expression) (ERROR))").is_empty());
        assert!(kinds("((call (argument_list)) @c (#eq? @c \"x\"))").is_empty());
        assert_eq!(
            kinds("(call ; (comment)\n (identifier) @f (#match? @f \"(a)\"))"),
            vec!["identifier"]
        );
    }

    #[test]
    fn nesting_depth_counts_node_levels_below_the_root() {
        assert_eq!(nesting_depth("(identifier) @x"), 0);
        assert_eq!(nesting_depth("(call function: (identifier) @f) @sink"), 1);
        assert_eq!(nesting_depth("(call \"(\" @p)"), 1);
        assert_eq!(nesting_depth("(call (_) @a)"), 1);
        assert_eq!(nesting_depth("(call (arguments _ @a))"), 2);
        assert_eq!(
            nesting_depth(
                "((call_expression function: (member_expression property: (property_identifier) @p)) @c\n (#eq? @p \"exec\") (#match? @c \"(a(b))\"))"
            ),
            3,
            "the outer group counts (an overstatement); predicates and their strings do not"
        );
        assert_eq!(
            nesting_depth(
                "(pair key: (_) ; (a (b (c (d))))\n value: [(string) (template_string (x))])"
            ),
            2,
            "comments do not count, alternatives add no level"
        );
    }

    /// On every head file of the shipped cases and a spread of line sets, the hits that touch
    /// the lines are the same whether the rules run on the whole file, on the region, or on the
    /// region with its patterns compiled together with another file's.
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
        let mut previous: HashMap<
            Language,
            (String, tree_sitter::Tree, std::collections::BTreeSet<u32>),
        > = HashMap::new();
        for path in files {
            let Some(lang) = crate::lang::detect(&path.to_string_lossy(), None) else {
                continue;
            };
            let src = std::fs::read_to_string(&path).unwrap();
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&lang.grammar()).unwrap();
            let tree = parser.parse(&src, None).unwrap();
            let n = src.lines().count() as u32;
            // Three-line windows every five lines, and single lines in between (a one-line
            // change selects the fewest patterns).
            let windows = (1..=n)
                .step_by(5)
                .map(|s| (s, (s + 2).min(n)))
                .chain((4..=n).step_by(10).map(|s| (s, s)));
            for (start, end) in windows {
                let lines: std::collections::BTreeSet<u32> = (start..=end).collect();
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
                // And with the patterns compiled together with another file's needs, as a
                // change of several files has them (`Reviewer::prepare`).
                let own = rules.needs(lang, &src, &tree, &lines);
                let mut together = own.clone();
                if let Some((other_src, other_tree, other_lines)) = previous.get(&lang) {
                    together.add(&rules.needs(lang, other_src.as_str(), other_tree, other_lines));
                }
                rules.compile_needs(lang, &together);
                let got = touching(rules.run_needed(lang, &src, &tree, &[], &lines, &own));
                assert_eq!(
                    got,
                    expected,
                    "{} lines {lines:?}, together",
                    path.display()
                );
                checked += 1;
                previous.insert(lang, (src.clone(), tree.clone(), lines.clone()));
            }
        }
        assert!(checked > 100, "only {checked} line sets checked");
    }

    /// For rule authors (run with `--ignored --nocapture`, release build): each grammar's costliest
    /// patterns to compile, since compiling is most of a small review's cost. With
    /// REDLINE_SELECT_FILE=path and REDLINE_SELECT_LINE=n, also the patterns a change of that
    /// line selects.
    #[test]
    #[ignore]
    fn costliest_patterns_to_compile() {
        let rules = RuleSet::builtin().unwrap();
        for lang in [
            Language::Python,
            Language::JavaScript,
            Language::TypeScript,
            Language::Go,
        ] {
            let set = LangRules::new(&rules.compiled, lang);
            let mut costs: Vec<(f64, usize)> = set
                .patterns
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let start = std::time::Instant::now();
                    let _ = tree_sitter::Query::new(&lang.grammar(), &p.text);
                    (start.elapsed().as_secs_f64() * 1000.0, i)
                })
                .collect();
            costs.sort_by(|a, b| b.0.total_cmp(&a.0));
            let total: f64 = costs.iter().map(|c| c.0).sum();
            let start = std::time::Instant::now();
            let whole = compile_together(lang, set.queries.iter().map(|(r, q)| (*r, q.as_str())));
            let whole_ms = start.elapsed().as_secs_f64() * 1000.0;
            assert!(whole.is_some(), "the {lang:?} rules compile together");
            println!(
                "{lang:?}: {} patterns, {total:.1} ms in all one by one, {whole_ms:.1} ms together",
                costs.len()
            );
            for (ms, i) in costs.iter().take(10) {
                let p = &set.patterns[*i];
                println!("  {ms:>7.2} ms  {}", rules.compiled[p.rule].rule.id);
            }
            let (Ok(file), Ok(line)) = (
                std::env::var("REDLINE_SELECT_FILE"),
                std::env::var("REDLINE_SELECT_LINE"),
            ) else {
                continue;
            };
            if crate::lang::detect(&file, None) != Some(lang) {
                continue;
            }
            let src = std::fs::read_to_string(&file).unwrap();
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&lang.grammar()).unwrap();
            let tree = parser.parse(&src, None).unwrap();
            let lines = [line.parse::<u32>().unwrap()].into_iter().collect();
            let region = Region::of(lang, &src, &tree, &lines);
            let selection = set.selection(&src, Some(&region));
            println!("  selected for {file}:{line}:");

            for (i, p) in set
                .patterns
                .iter()
                .enumerate()
                .filter(|(i, _)| selection[*i])
            {
                let cost = costs.iter().find(|c| c.1 == i).map_or(0.0, |c| c.0);
                let roots = p.roots.as_ref().map(|r| r.join(","));
                println!(
                    "    {cost:>7.2} ms  {} (roots {roots:?}, depth {}{}{})",
                    rules.compiled[p.rule].rule.id,
                    p.depth,
                    if p.moves_finding {
                        ", moves its finding"
                    } else {
                        ""
                    },
                    if set.fallbacks.contains(&p.rule) {
                        ", a fallback (brings its category)"
                    } else {
                        ""
                    },
                );
            }
        }
    }
}
