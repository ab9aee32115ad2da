//! The words a query pattern cannot match without, read from its own text predicates, so that a
//! file lacking them never compiles or runs that pattern (the prefilter of ripgrep and semgrep).
//!
//! A pattern is one top-level S-expression of a rule's query. `(#eq? @f "eval")` needs `eval`;
//! `(#match? @m "^(write|writeln)$")` needs one of `write`, `writeln`; `(#any-of? @x "a" "b")` one of
//! `a`, `b`. Such a need counts only when its capture is bound on every way the pattern can match
//! (not only in one branch of an alternation, nor under `?` or `*`): tree-sitter leaves a text
//! predicate on an unbound capture unchecked, so the word is not needed then.

use std::collections::HashSet;

/// Words of which a pattern needs one. `whole`: the words are a capture's entire text and the
/// capture is an identifier (`(#eq? @f "eval")` on `(identifier) @f`), so only an occurrence
/// that is a whole identifier counts (`end` in `send` or `ctx.endpoint` does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub words: Vec<String>,
    pub whole: bool,
}

/// A pattern needs every `Need` (at least one word of each).
pub type Needs = Vec<Need>;

/// Past a query comment (`;` to the end of the line) or string (`"..."`, with escapes), whose
/// opening character `open` was just read from `chars`.
pub(super) fn skip_comment_or_string(open: char, chars: &mut impl Iterator<Item = char>) {
    let mut escaped = false;
    for c in chars {
        match open {
            ';' if c == '\n' => break,
            '"' if escaped => escaped = false,
            '"' if c == '\\' => escaped = true,
            '"' if c == '"' => break,
            _ => {}
        }
    }
}

/// The top-level patterns of a query, each as its own source text (comments dropped).
pub fn split_patterns(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut depth = 0i32;
    let mut start: Option<usize> = None;
    let mut chars = query.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ';' | '"' => skip_comment_or_string(c, &mut chars.by_ref().map(|(_, c)| c)),
            '(' | '[' => {
                if depth == 0 {
                    start = Some(i);
                }
                depth += 1;
            }
            ')' | ']' => {
                depth -= 1;
                if depth == 0 {
                    // A quantifier or capture right after the outer group belongs to it
                    // (`(call ...) @sink`, `(a)?`), whitespace between them included.
                    let end = group_suffix_end(query, i + c.len_utf8());
                    while chars.peek().is_some_and(|&(j, _)| j < end) {
                        chars.next();
                    }
                    // A top-level predicate (`(#match? @x "...")`) comes out as a pattern of
                    // its own: tree-sitter applies it to no pattern, and rules refuse it.
                    if let Some(s) = start.take() {
                        out.push(query[s..end].to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Where the quantifiers and captures that follow a top-level group (from byte `from`) end.
fn group_suffix_end(query: &str, from: usize) -> usize {
    let bytes = query.as_bytes();
    let mut end = from;
    let mut i = from;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        match bytes.get(i) {
            Some(b'?' | b'*' | b'+') => {
                i += 1;
                end = i;
            }
            Some(b'@') => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'.'))
                {
                    i += 1;
                }
                end = i;
            }
            _ => return end,
        }
    }
}

/// A pattern parsed enough to know which captures every match binds.
#[derive(Debug)]
enum Node {
    /// `( ... )`: all children match; `optional` when quantified by `?` or `*`.
    Group {
        children: Vec<Node>,
        optional: bool,
    },
    /// `[ ... ]`: one branch matches.
    Alt {
        branches: Vec<Node>,
        optional: bool,
    },
    Capture(String),
    /// `(#eq? @x "a")` and friends.
    Predicate {
        name: String,
        args: Vec<String>,
    },
    /// Anything else (node names, fields, strings, anchors), quantified or not.
    Other {
        atom: String,
        optional: bool,
    },
}

impl Node {
    fn optional(&self) -> bool {
        match self {
            Node::Group { optional, .. }
            | Node::Alt { optional, .. }
            | Node::Other { optional, .. } => *optional,
            Node::Capture(_) | Node::Predicate { .. } => false,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b' ' | b'\t' | b'\n' | b'\r' => self.i += 1,
                b';' => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn string(&mut self) -> String {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' && self.i + 1 < self.s.len() {
                self.i += 1;
            }
            out.push(self.s[self.i]);
            self.i += 1;
        }
        self.i += 1;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn atom(&mut self) -> String {
        let start = self.i;
        while self.i < self.s.len()
            && !matches!(
                self.s[self.i],
                b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'[' | b']' | b'"'
            )
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn quantified(&mut self) -> bool {
        if self.i < self.s.len() && matches!(self.s[self.i], b'?' | b'*') {
            self.i += 1;
            true
        } else {
            if self.i < self.s.len() && self.s[self.i] == b'+' {
                self.i += 1;
            }
            false
        }
    }

    fn node(&mut self) -> Option<Node> {
        self.skip_ws();
        let c = *self.s.get(self.i)?;
        match c {
            b'(' => {
                self.i += 1;
                self.skip_ws();
                if self.s.get(self.i) == Some(&b'#') {
                    let name = self.atom();
                    let mut args = Vec::new();
                    loop {
                        self.skip_ws();
                        match self.s.get(self.i) {
                            None => break,
                            Some(b')') => {
                                self.i += 1;
                                break;
                            }
                            Some(b'"') => args.push(self.string()),
                            Some(_) => args.push(self.atom()),
                        }
                    }
                    return Some(Node::Predicate { name, args });
                }
                let mut children = Vec::new();
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        None => break,
                        Some(b')') => {
                            self.i += 1;
                            break;
                        }
                        _ => match self.node() {
                            Some(n) => children.push(n),
                            None => break,
                        },
                    }
                }
                let optional = self.quantified();
                Some(Node::Group { children, optional })
            }
            b'[' => {
                self.i += 1;
                let mut branches: Vec<Node> = Vec::new();
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        None => break,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        _ => match self.node() {
                            // A capture names the branch written just before it.
                            Some(Node::Capture(c)) => match branches.pop() {
                                Some(prev) => {
                                    let optional = prev.optional();
                                    branches.push(Node::Group {
                                        children: vec![prev, Node::Capture(c)],
                                        optional: false,
                                    });
                                    if optional {
                                        // Keep the quantifier's meaning: the capture may be unbound.
                                        if let Some(Node::Group { children, .. }) =
                                            branches.last_mut()
                                        {
                                            children.truncate(1);
                                        }
                                    }
                                }
                                None => branches.push(Node::Capture(c)),
                            },
                            Some(n) => branches.push(n),
                            None => break,
                        },
                    }
                }
                let optional = self.quantified();
                Some(Node::Alt { branches, optional })
            }
            b'"' => {
                self.string();
                let optional = self.quantified();
                Some(Node::Other {
                    atom: String::new(),
                    optional,
                })
            }
            b'@' => {
                let name = self.atom();
                Some(Node::Capture(name.trim_start_matches('@').to_string()))
            }
            b')' | b']' => None,
            _ => {
                let atom = self.atom();
                if atom.is_empty() {
                    self.i += 1;
                }
                let optional = self.quantified();
                Some(Node::Other { atom, optional })
            }
        }
    }
}

/// Captures bound on every way `n` matches.
fn always_bound(n: &Node) -> HashSet<String> {
    match n {
        Node::Capture(c) => HashSet::from([c.clone()]),
        Node::Group { children, optional } => {
            if *optional {
                return HashSet::new();
            }
            // A capture names the child written just before it: it is bound only when that
            // child always matches.
            let mut out = HashSet::new();
            for (i, c) in children.iter().enumerate() {
                match c {
                    Node::Capture(name) => {
                        if i == 0 || !children[i - 1].optional() {
                            out.insert(name.clone());
                        }
                    }
                    other => out.extend(always_bound(other)),
                }
            }
            out
        }
        Node::Alt { branches, optional } => {
            if *optional || branches.is_empty() {
                return HashSet::new();
            }
            let mut sets = branches.iter().map(always_bound);
            let first = sets.next().unwrap_or_default();
            sets.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
        }
        Node::Predicate { .. } | Node::Other { .. } => HashSet::new(),
    }
}

/// Captures written after an identifier node (`(identifier) @f`, `(property_identifier) @m`), and
/// captures written after anything else, wherever they appear.
fn identifier_captures(
    n: &Node,
    on_identifier: &mut HashSet<String>,
    elsewhere: &mut HashSet<String>,
) {
    let children = match n {
        Node::Group { children, .. } => children,
        Node::Alt { branches, .. } => branches,
        _ => return,
    };
    for (i, c) in children.iter().enumerate() {
        match c {
            Node::Capture(name) => {
                let identifier = i > 0
                    && matches!(&children[i - 1], Node::Group { children: inner, .. }
                        if inner.len() == 1
                            && matches!(&inner[0], Node::Other { atom, .. } if atom.ends_with("identifier")));
                if identifier {
                    on_identifier.insert(name.clone());
                } else {
                    elsewhere.insert(name.clone());
                }
            }
            other => identifier_captures(other, on_identifier, elsewhere),
        }
    }
}

fn predicates<'n>(n: &'n Node, out: &mut Vec<(&'n str, &'n [String])>) {
    match n {
        Node::Predicate { name, args } => out.push((name, args)),
        Node::Group { children, .. } => children.iter().for_each(|c| predicates(c, out)),
        Node::Alt { branches, .. } => branches.iter().for_each(|c| predicates(c, out)),
        _ => {}
    }
}

/// The literal words a `#match?` regex accepts, when it is a plain word or an anchored
/// alternation of plain words (`^(write|writeln)$`); None for anything richer.
fn regex_words(re: &str) -> Option<Vec<String>> {
    let inner = re.strip_prefix('^').unwrap_or(re);
    let inner = inner.strip_suffix('$').unwrap_or(inner);
    let inner = inner
        .strip_prefix("(?:")
        .or_else(|| inner.strip_prefix('('))
        .and_then(|x| x.strip_suffix(')'))
        .unwrap_or(inner);
    let words: Vec<String> = inner.split('|').map(str::to_string).collect();
    let plain =
        |w: &String| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    words.iter().all(plain).then_some(words)
}

/// What a pattern needs of a file's text; empty when it needs nothing certain.
pub fn needs(pattern: &str) -> Needs {
    let mut p = Parser {
        s: pattern.as_bytes(),
        i: 0,
    };
    let Some(root) = p.node() else {
        return Vec::new();
    };
    let bound = always_bound(&root);
    let (mut on_identifier, mut elsewhere) = (HashSet::new(), HashSet::new());
    identifier_captures(&root, &mut on_identifier, &mut elsewhere);
    let mut preds = Vec::new();
    predicates(&root, &mut preds);
    let mut out: Needs = Vec::new();
    for (name, args) in preds {
        let Some(cap) = args.first().and_then(|a| a.strip_prefix('@')) else {
            continue;
        };
        if !bound.contains(cap) {
            continue;
        }
        let (words, entire): (Option<Vec<String>>, bool) = match name {
            "#eq?" => (
                args.get(1)
                    .filter(|a| !a.starts_with('@'))
                    .map(|a| vec![a.clone()]),
                true,
            ),
            "#any-of?" => (Some(args[1..].to_vec()).filter(|v| !v.is_empty()), true),
            "#match?" => (
                args.get(1).and_then(|r| regex_words(r)),
                args.get(1)
                    .is_some_and(|r| r.starts_with('^') && r.ends_with('$')),
            ),
            _ => (None, false),
        };
        if let Some(words) = words {
            let whole = entire && on_identifier.contains(cap) && !elsewhere.contains(cap);
            out.push(Need { words, whole });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_split_at_the_top_level() {
        let q = "; a comment (with parens)\n(call function: (identifier) @f (#eq? @f \"a)b\"))\n[(x) (y)] @z\n(a)?";
        let p = split_patterns(q);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].ends_with("\"a)b\"))"));
        // The capture after a top-level group is part of the pattern: rules report it.
        assert_eq!(p[1], "[(x) (y)] @z");
        assert_eq!(p[2], "(a)?");
        // A capture on the next line, a quantifier then a capture, and a top-level predicate
        // (which tree-sitter attaches to no pattern).
        let p =
            split_patterns("(call (x) @a)\n  @sink\n(b)* @c\n(identifier) @i (#match? @i \"^x$\")");
        assert_eq!(
            p,
            vec![
                "(call (x) @a)\n  @sink",
                "(b)* @c",
                "(identifier) @i",
                "(#match? @i \"^x$\")"
            ]
        );
    }

    #[test]
    fn needs_come_from_predicates_on_captures_every_match_binds() {
        let n = needs(
            "(call_expression function: (member_expression object: (identifier) @_o property: (property_identifier) @_m) (#eq? @_o \"document\") (#match? @_m \"^(write|writeln)$\"))",
        );
        let need = |w: &[&str], whole| Need {
            words: w.iter().map(|s| s.to_string()).collect(),
            whole,
        };
        assert_eq!(
            n,
            vec![need(&["document"], true), need(&["write", "writeln"], true)]
        );
        // An unanchored regex, or a capture that is not an identifier: any occurrence counts.
        let n =
            needs("(call_expression function: (identifier) @_f (#match? @_f \"(exec|spawn)\"))");
        assert_eq!(n, vec![need(&["exec", "spawn"], false)]);
        let n = needs("(call_expression arguments: (arguments (string) @_s) (#eq? @_s \"sh\"))");
        assert_eq!(n, vec![need(&["sh"], false)]);
        // Bound in both branches: still needed.
        let n = needs(
            "(call_expression function: [(identifier) @_f (member_expression property: (property_identifier) @_f)] (#eq? @_f \"unserialize\"))",
        );
        assert_eq!(n, vec![need(&["unserialize"], true)]);
        // Bound in one branch only, or under `?`: not needed.
        assert!(needs("(call [(identifier) @f (string)] (#eq? @f \"eval\"))").is_empty());
        assert!(needs("(call (identifier)? @f (#eq? @f \"eval\"))").is_empty());
        // A richer regex gives no words.
        assert!(needs("(identifier) @x (#match? @x \"^get.*\")").is_empty());
    }
}
