//! `backtracking-regex`: regex literals and pattern strings whose shape backtracks exponentially
//! in a backtracking engine (Python's `re`, JavaScript's `RegExp`; Go's RE2 does not backtrack).
//! This file reads the pattern out of the source (decoding string escapes, following implicit
//! concatenation, noticing verbose mode); `regex_shape` judges it.

use super::regex_shape::{backtracking_shape, leading_run_shape};
use super::*;

/// The pattern text of a regex node (a JavaScript literal, or a string whose value is a
/// pattern), the source byte of each of its characters, and whether it is in verbose mode.
pub(super) fn pattern_of<'t>(a: &Analysis<'t>, n: Node<'t>) -> Option<(String, Vec<usize>, bool)> {
    let literal = |p: Node<'t>| {
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
/// cares about decoded, each character with its source byte. An interpolation of a name bound to
/// a string literal (`rf'<\s*{name}'`, `` `^${part}$` ``) takes that literal's characters, with
/// their own source bytes, so a culprit there is reported where the fragment was written; any
/// other interpolation makes the value unknown (None).
fn string_value<'t>(a: &Analysis<'t>, n: Node<'t>, out: &mut Vec<(char, usize)>) -> Option<()> {
    string_value_depth(a, n, out, 0)
}

fn string_value_depth<'t>(
    a: &Analysis<'t>,
    n: Node<'t>,
    out: &mut Vec<(char, usize)>,
    depth: usize,
) -> Option<()> {
    if depth > 4 {
        return None;
    }
    if n.kind() == "concatenated_string" {
        let mut c = n.walk();
        for ch in n.named_children(&mut c) {
            if ch.kind() == "string" {
                string_value_depth(a, ch, out, depth + 1)?;
            }
        }
        return Some(());
    }
    let text = a.text(n);
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
    let start = prefix_len + quote;
    let end = text.len() - quote;
    let raw = prefix.contains('r');
    let python_format = prefix.contains('f');
    let mut c = n.walk();
    let holes: Vec<Node<'t>> = n
        .named_children(&mut c)
        .filter(|ch| matches!(ch.kind(), "interpolation" | "template_substitution"))
        .collect();
    let base = n.start_byte();
    let mut at = start;
    for hole in holes {
        let hole_start = hole.start_byte() - base;
        decode_string_piece(&text[at..hole_start], base + at, raw, python_format, out);
        interpolated_value(a, hole, out, depth)?;
        at = hole.end_byte() - base;
    }
    decode_string_piece(&text[at.min(end)..end], base + at, raw, python_format, out);
    Some(())
}

/// The characters of `{name}` / `${name}` when `name` is bound once, to a string literal.
fn interpolated_value<'t>(
    a: &Analysis<'t>,
    hole: Node<'t>,
    out: &mut Vec<(char, usize)>,
    depth: usize,
) -> Option<()> {
    // Only a bare name: a conversion (`!r`) or a format spec changes the text.
    let mut c = hole.walk();
    let parts: Vec<Node<'t>> = hole.named_children(&mut c).collect();
    let [name] = parts.as_slice() else {
        return None;
    };
    if name.kind() != "identifier" {
        return None;
    }
    let values = a.bound_value_nodes(*name);
    let [value] = values.as_slice() else {
        return None;
    };
    if !matches!(
        value.kind(),
        "string" | "concatenated_string" | "template_string"
    ) {
        return None;
    }
    string_value_depth(a, *value, out, depth + 1)
}

/// Decodes one literal stretch of a string's body, starting at source byte `base`.
fn decode_string_piece(
    piece: &str,
    base: usize,
    raw: bool,
    python_format: bool,
    out: &mut Vec<(char, usize)>,
) {
    let mut chars = piece.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        let at = base + i;
        // `{{` and `}}` in an f-string are one brace.
        if python_format && matches!(ch, '{' | '}') && chars.peek().map(|(_, c)| *c) == Some(ch) {
            chars.next();
            out.push((ch, at));
            continue;
        }
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
}

/// How far above the pattern its fragments may be written for the finding to span them.
const FRAGMENT_LINES: usize = 20;

/// `backtracking-regex`: the node is a regex literal (or a pattern string) with an
/// exponentially backtracking shape. The finding moves to the line of the culprit.
pub(super) fn backtracking_regex<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let Some((pattern, bytes, verbose)) = pattern_of(a, n) else {
        return false;
    };
    match backtracking_shape(&pattern, verbose) {
        Some((_, at)) => {
            // Put together from fragments written a few lines above: the finding spans them, so
            // it lands on the piece the change touched (the culprit may be in another piece).
            let report_line = n.start_position().row;
            let first_fragment = bytes
                .iter()
                .copied()
                .filter(|b| *b < n.start_byte())
                .min()
                .filter(|b| a.src[..*b].matches('\n').count() + FRAGMENT_LINES > report_line);
            if let Some(b) = first_fragment.or(bytes.get(at).copied()) {
                a.focus.set(Some(b));
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
pub(super) fn leading_run_regex<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    pattern_of(a, n).is_some_and(|(pattern, _, verbose)| leading_run_shape(&pattern, verbose))
}
