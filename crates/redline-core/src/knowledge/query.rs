//! Builds the retrieval query for a changed file: its language, the identifiers and API calls in
//! its hunks, and the categories of the rules that fired on it.

use std::collections::BTreeMap;

/// Keywords that say nothing about what the code does.
const NOISE: &[&str] = &[
    "if",
    "else",
    "elif",
    "for",
    "while",
    "return",
    "import",
    "from",
    "as",
    "def",
    "class",
    "func",
    "function",
    "const",
    "let",
    "var",
    "new",
    "try",
    "except",
    "catch",
    "finally",
    "throw",
    "raise",
    "await",
    "async",
    "package",
    "type",
    "struct",
    "nil",
    "null",
    "None",
    "True",
    "False",
    "true",
    "false",
    "self",
    "this",
    "in",
    "of",
    "and",
    "or",
    "not",
    "is",
    "with",
    "pass",
    "break",
    "continue",
    "interface",
    "export",
    "default",
    "string",
    "int",
    "err",
    "ctx",
    "fmt",
    "go",
    "defer",
    "range",
    "map",
    "make",
    "len",
    "print",
    "println",
    "console",
    "log",
    "res",
    "public",
    "private",
    "static",
    "void",
    "number",
];

/// The query for one file: rule categories first (they are the strongest signal), then the most
/// frequent identifiers and called names from the added lines.
pub fn for_hunks(language: &str, added_code: &str, rule_categories: &[String]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let bytes = added_code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &added_code[start..i];
            if word.len() > 2 && !NOISE.contains(&word) {
                // Called names (followed by `(`) and attributes say the most: count them double.
                let called = bytes.get(i) == Some(&b'(');
                let attr = start > 0 && bytes[start - 1] == b'.';
                *counts.entry(word.to_string()).or_default() +=
                    1 + usize::from(called) + usize::from(attr);
            }
        } else if bytes[i] == b'"' || bytes[i] == b'\'' || bytes[i] == b'`' {
            // Skip string contents beyond their words: they are data, not API names; but keep
            // short string words such as 'md5' and 'sha1' which name algorithms.
            i += 1;
        } else {
            i += 1;
        }
    }
    let mut words: Vec<(String, usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut q = String::new();
    for c in rule_categories {
        q.push_str(&c.replace('-', " "));
        q.push(' ');
    }
    q.push_str(language);
    for (w, _) in words.into_iter().take(40) {
        q.push(' ');
        q.push_str(&w);
    }
    q
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_calls_and_categories() {
        let q = super::for_hunks(
            "python",
            "    rows = cur.execute(f\"SELECT * FROM t WHERE id={uid}\")\n",
            &["sql-injection".into()],
        );
        assert!(q.starts_with("sql injection python"), "{q}");
        assert!(q.contains("execute"));
        assert!(!q.contains(" for "));
    }
}
