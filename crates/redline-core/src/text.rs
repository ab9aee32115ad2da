//! Small text helpers shared by the layers: one-line excerpts and identifier splitting.

/// `s` cut to `n` characters, with an ellipsis when cut (for one-line messages and excerpts).
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// `dangerouslySetInnerHTML` -> dangerously set inner html; `read_file` -> read file.
pub fn split_identifier(word: &str) -> Vec<String> {
    let mut parts = Vec::new();
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<char> = piece.chars().collect();
        let mut cur = String::new();
        for i in 0..chars.len() {
            let c = chars[i];
            let boundary = i > 0
                && c.is_uppercase()
                && (chars[i - 1].is_lowercase()
                    || chars[i - 1].is_ascii_digit()
                    || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
            if boundary && !cur.is_empty() {
                parts.push(cur.to_lowercase());
                cur.clear();
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            parts.push(cur.to_lowercase());
        }
    }
    parts
}

/// Compiles `pattern` with ASCII Perl classes: `\w`, `\d`, `\W`, `\D` become their ASCII ranges
/// and `\b`, `\B` ASCII word boundaries. The rules read code, whose names and keywords are
/// ASCII, and the Unicode classes were most of the cost of compiling a rule's regex (`\w` alone
/// is some 700 ranges): about 40 ms for the removed-check rules, more than a small review's own
/// work. Every regex the rules run goes through here, so a rule matches the same everywhere.
pub fn ascii_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&ascii_classes(pattern))
}

pub(crate) fn ascii_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    // Depth of `[...]`: inside a class `\w` is spelled as ranges without brackets.
    let mut class_depth = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match (n, class_depth > 0) {
                    ('w', false) => Some("[0-9A-Za-z_]"),
                    ('w', true) => Some("0-9A-Za-z_"),
                    ('d', false) => Some("[0-9]"),
                    ('d', true) => Some("0-9"),
                    ('W', false) => Some("[^0-9A-Za-z_]"),
                    ('D', false) => Some("[^0-9]"),
                    ('b', false) => Some(r"(?-u:\b)"),
                    ('B', false) => Some(r"(?-u:\B)"),
                    _ => None,
                };
                match ascii {
                    Some(a) => out.push_str(a),
                    None => {
                        out.push('\\');
                        out.push(n);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push(c);
                // `[]...]` and `[^]...]`: a `]` first in a class is itself.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                if class_depth == 1 && chars.peek() == Some(&']') {
                    out.push(']');
                    chars.next();
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_classes_rewrite_perl_classes_outside_and_inside_brackets() {
        assert_eq!(ascii_classes(r"\w+"), "[0-9A-Za-z_]+");
        assert_eq!(ascii_classes(r"[\w.-]"), "[0-9A-Za-z_.-]");
        assert_eq!(ascii_classes(r"\bfoo\b"), r"(?-u:\b)foo(?-u:\b)");
        assert_eq!(ascii_classes(r"\\w"), r"\\w", "an escaped backslash stays");
        assert_eq!(ascii_classes(r"[^]\w]"), "[^]0-9A-Za-z_]");
        assert_eq!(ascii_classes(r"[[:alpha:]]\d"), "[[:alpha:]][0-9]");
        assert_eq!(ascii_classes(r"\s\.\("), r"\s\.\(");
    }

    #[test]
    fn ascii_regexes_match_ascii_code_as_the_unicode_ones_do() {
        let patterns = [
            r"(?i)\b\w*escape\w*\s*\(",
            r"[\w.]+\s*=\s*\d+",
            r"\W\D\B",
            r"^[^\]]*\]",
        ];
        let texts = [
            "x = escapeHtml(name)",
            "a.b = 42",
            "no match here",
            "foo]bar",
            "  _x9 = 7; y",
        ];
        for p in patterns {
            let (u, a) = (regex::Regex::new(p).unwrap(), ascii_regex(p).unwrap());
            for t in texts {
                assert_eq!(
                    u.find(t).map(|m| m.range()),
                    a.find(t).map(|m| m.range()),
                    "{p} on {t}"
                );
            }
        }
    }
}
