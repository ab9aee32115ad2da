//! Rewrites a rule query so that tree-sitter compiles it faster while it matches the same nodes.
//!
//! Compiling a query (`Query::new`) analyses every pattern step that has children against the
//! grammar's whole parse table, once per such step: a `call_expression` or `member_expression`
//! parent costs some 25-30 million instructions in the TypeScript grammar, more than the rest of a
//! one-line review. A wildcard parent (`(_ ...)`) is not analysed. So a parent that is not a
//! pattern's root becomes `_` when nothing else could stand there: among the kinds its own parent
//! allows in that position (its field's types, or for a child without a field any child's type),
//! it is the only one that has every field the pattern gives it. `(call_expression function:
//! (member_expression object: (_) property: (property_identifier)))` becomes `(call_expression
//! function: (_ object: (_) property: (property_identifier)))`: in the `function` field only a
//! `member_expression` has both an `object` and a `property`. Roots keep their kind: a wildcard
//! root is tried at every node of the tree.
//!
//! The grammar's node types (its `node-types.json`) are read once per grammar, on the first
//! compilation. Rules are checked and prefiltered as written; only the combined queries that run
//! are compiled from the rewritten text.

use crate::lang::Language;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

/// What `node-types.json` says about the named, concrete node kinds.
#[derive(Default)]
struct Grammar {
    /// The fields each kind has.
    fields: HashMap<String, HashSet<String>>,
    /// The kinds that may stand in a kind's field, or anywhere among its children (`None` key).
    allowed: HashMap<(String, Option<String>), HashSet<String>>,
}

/// One entry of `node-types.json`, borrowed from the embedded text (names of unnamed tokens such
/// as `"\""` hold escapes, so they are copied).
#[derive(serde::Deserialize)]
struct NodeType<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    named: bool,
    #[serde(default, borrow)]
    fields: HashMap<&'a str, Children<'a>>,
    #[serde(default, borrow)]
    children: Option<Children<'a>>,
    #[serde(default, borrow)]
    subtypes: Option<Vec<Kind<'a>>>,
}

#[derive(serde::Deserialize)]
struct Children<'a> {
    #[serde(borrow)]
    types: Vec<Kind<'a>>,
}

#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    named: bool,
}

impl Grammar {
    fn parse(node_types: &str) -> Grammar {
        let Ok(types) = serde_json::from_str::<Vec<NodeType>>(node_types) else {
            return Grammar::default();
        };
        let subtypes: HashMap<&str, Vec<&str>> = types
            .iter()
            .filter_map(|t| {
                let subs = t.subtypes.as_ref()?;
                Some((
                    t.kind.as_ref(),
                    subs.iter()
                        .filter(|s| s.named)
                        .map(|s| s.kind.as_ref())
                        .collect(),
                ))
            })
            .collect();
        // A supertype (`expression`) stands for its subtypes, recursively.
        fn expand<'b>(
            kinds: &'b [Kind<'_>],
            subtypes: &HashMap<&'b str, Vec<&'b str>>,
            seen: &mut HashSet<&'b str>,
            out: &mut HashSet<String>,
        ) {
            let mut stack: Vec<&str> = kinds
                .iter()
                .filter(|k| k.named)
                .map(|k| k.kind.as_ref())
                .collect();
            while let Some(k) = stack.pop() {
                match subtypes.get(k) {
                    Some(subs) if seen.insert(k) => stack.extend(subs.iter().copied()),
                    Some(_) => {}
                    None => {
                        out.insert(k.to_string());
                    }
                }
            }
        }
        let kinds_of = |c: &Children| {
            let mut out = HashSet::new();
            expand(&c.types, &subtypes, &mut HashSet::new(), &mut out);
            out
        };
        let mut g = Grammar::default();
        for t in types.iter().filter(|t| t.named && t.subtypes.is_none()) {
            let kind = t.kind.to_string();
            g.fields.insert(
                kind.clone(),
                t.fields.keys().map(|f| f.to_string()).collect(),
            );
            // A child pattern without a field matches any named child, those in fields too.
            let mut any_child = t.children.as_ref().map(kinds_of).unwrap_or_default();
            for (field, spec) in &t.fields {
                let kinds = kinds_of(spec);
                any_child.extend(kinds.iter().cloned());
                g.allowed
                    .insert((kind.clone(), Some(field.to_string())), kinds);
            }
            g.allowed.insert((kind, None), any_child);
        }
        g
    }

    fn of(lang: Language) -> &'static Grammar {
        static GRAMMARS: [OnceLock<Grammar>; 5] = [const { OnceLock::new() }; 5];
        let (i, text) = match lang {
            Language::Python => (0, tree_sitter_python::NODE_TYPES),
            Language::JavaScript => (1, tree_sitter_javascript::NODE_TYPES),
            Language::TypeScript => (2, tree_sitter_typescript::TYPESCRIPT_NODE_TYPES),
            Language::Tsx => (3, tree_sitter_typescript::TSX_NODE_TYPES),
            Language::Go => (4, tree_sitter_go::NODE_TYPES),
        };
        GRAMMARS[i].get_or_init(|| Grammar::parse(text))
    }
}

/// One `(kind ...)` or `[...]` open while the query is read.
struct Open {
    /// The node's kind (`_`, a predicate's `#name`), or `[` for an alternation.
    kind: String,
    /// Where the kind is written in the query text.
    at: std::ops::Range<usize>,
    /// The fields its children are given.
    fields: HashSet<String>,
    /// The field this node (or the alternation holding it) stands in.
    field: Option<String>,
    /// Its parent node's kind, when that is a concrete kind (not `_`, not a root alternation).
    parent: Option<String>,
}

/// The query with each replaceable parent's kind written as `_` (see the module comment) and the
/// regexes of its `#match?` predicates in ASCII classes.
pub(super) fn cheaper(lang: Language, query: &str) -> String {
    ascii_match_regexes(&wildcard_parents(lang, query))
}

/// The query with the regexes of its `#match?` family of predicates spelled with ASCII classes
/// (`crate::text::ascii_classes`), as every other regex of the rules is: tree-sitter compiles
/// them with Unicode classes, where `\w` alone is some 700 ranges, and they were a fifth of the
/// time a one-line review spent compiling its query. Identifiers and keywords in code are ASCII.
fn ascii_match_regexes(query: &str) -> String {
    let tokens = tokens(query);
    let mut out = String::with_capacity(query.len());
    let mut last = 0;
    for w in tokens.windows(3) {
        let [(op, _), (capture, _), (literal, at)] = w else {
            continue;
        };
        let is_match_regex = op.starts_with('#')
            && op.ends_with("match?")
            && capture.starts_with('@')
            && literal.starts_with('"')
            && literal.len() >= 2;
        if !is_match_regex {
            continue;
        }
        let regex = unescape(&literal[1..literal.len() - 1]);
        let ascii = crate::text::ascii_classes(&regex);
        if ascii == regex {
            continue;
        }
        out.push_str(&query[last..at.start]);
        out.push('"');
        for c in ascii.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c => out.push(c),
            }
        }
        out.push('"');
        last = at.end;
    }
    out.push_str(&query[last..]);
    out
}

/// A query string literal's contents as tree-sitter reads them (`\n`, `\r`, `\t`, `\0`; any
/// other escaped character is itself).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn wildcard_parents(lang: Language, query: &str) -> String {
    let tokens = tokens(query);
    let mut open: Vec<Open> = Vec::new();
    let mut field: Option<String> = None;
    // Parents below a concrete parent, with fields: the grammar decides which can go.
    let mut candidates: Vec<Open> = Vec::new();
    let concrete_parent = |open: &[Open]| {
        open.iter()
            .rev()
            .find(|o| o.kind != "[")
            .map(|o| o.kind.clone())
            .filter(|k| k != "_" && !k.starts_with(['#', '"']))
    };
    let mut i = 0;
    while i < tokens.len() {
        let (t, range) = (tokens[i].0, tokens[i].1.clone());
        match t {
            "(" | "[" => {
                // A node in an alternation stands in the alternation's field.
                let field = field.take().or_else(|| {
                    open.last()
                        .filter(|o| o.kind == "[")
                        .and_then(|o| o.field.clone())
                });
                let (kind, at) = match (t, tokens.get(i + 1)) {
                    ("(", Some((k, at))) => {
                        i += 1;
                        (k.to_string(), at.clone())
                    }
                    _ => ("[".to_string(), range),
                };
                let parent = concrete_parent(&open);
                open.push(Open {
                    kind,
                    at,
                    fields: HashSet::new(),
                    field,
                    parent,
                });
            }
            ")" | "]" => {
                field = None;
                let Some(node) = open.pop() else { break };
                if t == ")" && node.parent.is_some() && !node.fields.is_empty() {
                    candidates.push(node);
                }
            }
            _ if t.ends_with(':') && !t.starts_with('"') => {
                let name = t.trim_end_matches(':').to_string();
                if let Some(node) = open.iter_mut().rev().find(|o| o.kind != "[") {
                    node.fields.insert(name.clone());
                }
                field = Some(name);
            }
            _ => {}
        }
        i += 1;
    }
    if candidates.is_empty() {
        // Most small selections: reading the grammar would cost more than it saves.
        return query.to_string();
    }
    let g = Grammar::of(lang);
    let mut wildcards: Vec<std::ops::Range<usize>> = candidates
        .into_iter()
        .filter(|node| replaceable(g, node))
        .map(|node| node.at)
        .collect();
    // Nodes close innermost first: put the kinds back in the order they are written.
    wildcards.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(query.len());
    let mut last = 0;
    for at in &wildcards {
        out.push_str(&query[last..at.start]);
        out.push('_');
        last = at.end;
    }
    out.push_str(&query[last..]);
    out
}

/// A concrete kind with fields, below a concrete parent, the only kind allowed there that has
/// them all.
fn replaceable(g: &Grammar, node: &Open) -> bool {
    let (Some(parent), false) = (&node.parent, node.fields.is_empty()) else {
        return false;
    };
    if !g.fields.contains_key(&node.kind) || !g.fields.contains_key(parent) {
        return false;
    }
    let Some(allowed) = g.allowed.get(&(parent.clone(), node.field.clone())) else {
        return false;
    };
    let mut having = allowed
        .iter()
        .filter(|k| g.fields.get(*k).is_some_and(|f| node.fields.is_subset(f)));
    having.next() == Some(&node.kind) && having.next().is_none()
}

/// The query's tokens with their places: parentheses, brackets, strings, and the words between.
fn tokens(query: &str) -> Vec<(&str, std::ops::Range<usize>)> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b'(' | b')' | b'[' | b']' => i += 1,
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
            }
            b';' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b if b.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !matches!(bytes[i], b'(' | b')' | b'[' | b']' | b'"' | b';')
                {
                    i += 1;
                }
            }
        }
        out.push((&query[start..i], start..i));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_only_its_fields_can_name_becomes_a_wildcard() {
        let q = "(call_expression function: (member_expression object: (identifier) @o property: (property_identifier) @p) arguments: (arguments . (_) @a))";
        assert_eq!(
            cheaper(Language::JavaScript, q),
            "(call_expression function: (_ object: (identifier) @o property: (property_identifier) @p) arguments: (arguments . (_) @a))"
        );
        // In Python a call's function may be an attribute: the only kind with `object` there.
        let q = "(call function: (attribute object: (identifier) @m attribute: (identifier) @f) (#eq? @m \"re\"))";
        assert_eq!(
            cheaper(Language::Python, q),
            "(call function: (_ object: (identifier) @m attribute: (identifier) @f) (#eq? @m \"re\"))"
        );
    }

    #[test]
    fn roots_fieldless_parents_and_ambiguous_ones_keep_their_kind() {
        for (lang, q) in [
            // A root.
            (Language::Go, "(call_expression function: (identifier) @f)"),
            // Children without fields.
            (
                Language::JavaScript,
                "(call_expression arguments: (arguments (string) @s))",
            ),
            // `object` alone: a subscript has one too.
            (
                Language::JavaScript,
                "(assignment_expression left: (member_expression object: (identifier) @o))",
            ),
            // Under a wildcard parent nothing is known of the position.
            (
                Language::Python,
                "(_ function: (attribute object: (identifier) @o))",
            ),
            // Strings and comments are not read as nodes.
            (
                Language::Python,
                "; (call function: (attribute object: (x)))\n((string) @s (#match? @s \"(call function: (attribute object:\"))",
            ),
        ] {
            assert_eq!(cheaper(lang, q), q, "{q}");
        }
    }

    #[test]
    fn match_regexes_are_spelled_with_ascii_classes() {
        let q = r#"((identifier) @n (#match? @n "(?i)\\bdir\\w*$") (#not-match? @n "^\\d+\"x"))"#;
        assert_eq!(
            ascii_match_regexes(q),
            r#"((identifier) @n (#match? @n "(?i)(?-u:\\b)dir[0-9A-Za-z_]*$") (#not-match? @n "^[0-9]+\"x"))"#
        );
        // Other strings, and regexes without Perl classes, stay as written.
        let q = r#"((identifier) @n (#eq? @n "\\w") (#match? @n "^(a|b)$"))"#;
        assert_eq!(ascii_match_regexes(q), q);
    }

    #[test]
    fn every_builtin_query_compiles_rewritten_with_the_same_patterns_and_captures() {
        let rules = super::super::RuleSet::builtin().unwrap();
        let mut rewritten = 0;
        for c in &rules.compiled {
            if c.rule.query.trim().is_empty() {
                continue;
            }
            for &lang in &c.langs {
                let written = tree_sitter::Query::new(&lang.grammar(), &c.rule.query).unwrap();
                let text = cheaper(lang, &c.rule.query);
                rewritten += usize::from(text != c.rule.query);
                let cheap = tree_sitter::Query::new(&lang.grammar(), &text)
                    .unwrap_or_else(|e| panic!("{} ({lang:?}): {e}\n{text}", c.rule.id));
                assert_eq!(
                    written.pattern_count(),
                    cheap.pattern_count(),
                    "{}",
                    c.rule.id
                );
                assert_eq!(
                    written.capture_names(),
                    cheap.capture_names(),
                    "{}",
                    c.rule.id
                );
            }
        }
        assert!(rewritten > 50, "only {rewritten} queries rewritten");
    }
}
