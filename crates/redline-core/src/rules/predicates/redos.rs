//! `backtracking-regex`: regex literals and pattern strings whose shape backtracks exponentially
//! in a backtracking engine (Python's `re`, JavaScript's `RegExp`; Go's RE2 does not backtrack).
//! This file reads the pattern out of the source (decoding string escapes, following implicit
//! concatenation, noticing verbose mode); `regex_shape` judges it.

use super::regex_shape::{backtracking_shape, leading_run_shape};
use super::*;

/// The pattern text of a regex node (a JavaScript literal, or a string whose value is a
/// pattern), the source byte of each of its characters, and whether it is in verbose mode.
pub(super) fn pattern_of(a: &Analysis<'_>, n: Node<'_>) -> Option<(String, Vec<usize>, bool)> {
    let literal = |p: Node<'_>| {
        let text = a.text(p);
        let bytes = text
            .char_indices()
            .map(|(i, _)| p.start_byte() + i)
            .collect();
        (text.to_string(), bytes)
    };
    match n.kind() {
        "regex" => {
            let (t, b) = literal(n.child_by_field_name("pattern")?);
            Some((t, b, false))
        }
        "regex_pattern" => {
            let (t, b) = literal(n);
            Some((t, b, false))
        }
        "string" | "concatenated_string" | "template_string" => {
            let mut out = Vec::new();
            string_value(a, n, &mut out)?;
            let verbose = a.lang == Language::Python
                && enclosing_call(n)
                    .is_some_and(|c| cached_regex!(r"\bre\.(?:X|VERBOSE)\b").is_match(a.text(c)));
            let text = out.iter().map(|(c, _)| *c).collect();
            let bytes = out.iter().map(|(_, b)| *b).collect();
            Some((text, bytes, verbose))
        }
        _ => None,
    }
}

/// The value of a string literal (or implicitly concatenated literals) with the escapes a regex
/// cares about decoded, each character with its source byte; None when it has interpolations.
fn string_value(a: &Analysis<'_>, n: Node<'_>, out: &mut Vec<(char, usize)>) -> Option<()> {
    if n.kind() == "concatenated_string" {
        let mut c = n.walk();
        for ch in n.named_children(&mut c) {
            if ch.kind() == "string" {
                string_value(a, ch, out)?;
            }
        }
        return Some(());
    }
    let text = a.text(n);
    let mut c = n.walk();
    if n.named_children(&mut c)
        .any(|ch| matches!(ch.kind(), "interpolation" | "template_substitution"))
    {
        return None;
    }
    let prefix_len = text.find(['"', '\'', '`'])?;
    let prefix = text[..prefix_len].to_ascii_lowercase();
    let body = &text[prefix_len..];
    let quote = if body.starts_with("\"\"\"") || body.starts_with("\'\'\'") {
        3
    } else {
        1
    };
    if body.len() < 2 * quote {
        return None;
    }
    let base = n.start_byte() + prefix_len + quote;
    let inner = &body[quote..body.len() - quote];
    let raw = prefix.contains('r');
    let mut chars = inner.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        let at = base + i;
        if ch != '\\' || raw {
            out.push((ch, at));
            continue;
        }
        // Decode `\\` to `\` (what the regex engine sees); keep other escapes for the parser.
        match chars.peek().map(|(_, c)| *c) {
            Some('\\') => {
                chars.next();
                out.push(('\\', at));
            }
            Some('n') => {
                chars.next();
                out.push(('\n', at));
            }
            Some('t') => {
                chars.next();
                out.push(('\t', at));
            }
            Some(q @ ('/' | '"' | '\'' | '`')) => {
                chars.next();
                out.push((q, at));
            }
            _ => out.push(('\\', at)),
        }
    }
    Some(())
}

/// `backtracking-regex`: the node is a regex literal (or a pattern string) with an
/// exponentially backtracking shape. The finding moves to the line of the culprit.
pub(super) fn backtracking_regex(a: &Analysis<'_>, n: Node<'_>) -> bool {
    let Some((pattern, bytes, verbose)) = pattern_of(a, n) else {
        return false;
    };
    match backtracking_shape(&pattern, verbose) {
        Some((_, at)) => {
            if let Some(b) = bytes.get(at) {
                a.focus.set(Some(*b));
            }
            true
        }
        None => false,
    }
}

/// `leading-run-regex`: the node is a regex literal (or a pattern string) that opens with an
/// unbounded run of whitespace before a part that can fail, unanchored: quadratic on a long run
/// of spaces (the shape of the header-parsing advisories). The finding stays on the regex: a
/// literal is one line, so pointing inside it would not move it (and keeps the rule out of
/// `moves_finding`, whose rules the prefilter must select from further up).
pub(super) fn leading_run_regex(a: &Analysis<'_>, n: Node<'_>) -> bool {
    pattern_of(a, n).is_some_and(|(pattern, _, verbose)| leading_run_shape(&pattern, verbose))
}
