//! Inline suppression comments.
//!
//! - `redline: ignore <rule-id or category> <reason>` in a comment (`#`, `//`, `/* */`) on the
//!   finding's line or the line above suppresses that rule's (or category's) finding there.
//! - Other tools' markers are honoured narrowly, because real code uses them to mark lines a person
//!   has reviewed: `#nosec` (gosec) and `nosemgrep` on the line or the line above suppress only
//!   findings of the class they name (a gosec code such as `G201`, a bandit code such as `B608`,
//!   a semgrep rule id such as `...formatted-sql-query`); a bare `#nosec` or `nosemgrep`
//!   suppresses only security findings, never correctness ones (an unchecked error, a floating
//!   promise). Ruff's `# noqa: S608` (bandit's checks under ruff) counts only with `S` codes, and
//!   only for their classes: a bare `noqa` is about style.
//!
//! Suppressed findings are not dropped silently: the pipeline lists them in the review's notes.

use crate::text::ascii_regex;
use regex::Regex;
use std::sync::LazyLock;

/// Which marker a suppression comment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `redline: ignore <target> <reason>`.
    Redline,
    /// `#nosec [G201 ...]`.
    Nosec,
    /// `nosemgrep[: rule-id, ...]`.
    Nosemgrep,
    /// `noqa: S608` (ruff's flake8-bandit codes).
    Noqa,
}

/// One suppression comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    /// 1-based line of the comment.
    pub line: u32,
    pub marker: Marker,
    /// What it names: a rule id or a category (redline), gosec codes, semgrep rule ids. Empty
    /// for a bare `#nosec` / `nosemgrep`.
    pub targets: Vec<String>,
    /// The reason written after the target (redline), or the marker's own text.
    pub reason: String,
}

static REDLINE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?:#|//|/\*)\s*redline:\s*ignore\s+([\w.\-]+)[\s:,\-]*(.*?)\s*(?:\*/\s*)?$")
        .unwrap()
});
static NOSEC: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"(?:#|//|/\*)\s*#?nosec\b([^\n]*)").unwrap());
static NOSEMGREP: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"(?:#|//|/\*)\s*nosemgrep\b\s*:?\s*([^\n]*)").unwrap());
static GOSEC_CODE: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"\b[GB]\d{3}\b").unwrap());
static NOQA_BANDIT: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"#\s*noqa\s*:\s*([A-Z0-9, ]+)").unwrap());
static BANDIT_CODE: LazyLock<Regex> = LazyLock::new(|| ascii_regex(r"\bS\d{3}\b").unwrap());

/// The suppression comments of a file.
pub fn suppressions(text: &str) -> Vec<Suppression> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if !(l.contains("redline:")
            || l.contains("nosec")
            || l.contains("nosemgrep")
            || l.contains("noqa"))
        {
            continue;
        }
        let line = i as u32 + 1;
        if let Some(c) = REDLINE.captures(l) {
            out.push(Suppression {
                line,
                marker: Marker::Redline,
                targets: vec![c[1].to_string()],
                reason: c[2].trim().trim_end_matches("*/").trim().to_string(),
            });
        } else if let Some(c) = NOSEMGREP.captures(l) {
            let targets = c[1]
                .split([',', ' '])
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.contains(['.', '-']))
                .map(str::to_string)
                .collect();
            out.push(Suppression {
                line,
                marker: Marker::Nosemgrep,
                targets,
                reason: "nosemgrep".into(),
            });
        } else if let Some(c) = NOQA_BANDIT.captures(l) {
            // Only bandit codes (S...) say anything about security.
            let targets: Vec<String> = BANDIT_CODE
                .find_iter(&c[1])
                .map(|m| format!("B{}", &m.as_str()[1..]))
                .collect();
            if !targets.is_empty() {
                out.push(Suppression {
                    line,
                    marker: Marker::Noqa,
                    targets,
                    reason: "noqa".into(),
                });
            }
        } else if let Some(c) = NOSEC.captures(l) {
            let targets = GOSEC_CODE
                .find_iter(&c[1])
                .map(|m| m.as_str().to_string())
                .collect();
            out.push(Suppression {
                line,
                marker: Marker::Nosec,
                targets,
                reason: "#nosec".into(),
            });
        }
    }
    out
}

/// Whether `s` suppresses a finding of `rule_id` / `category` reported on `line` (the comment on
/// that line or the line above).
pub fn suppresses(s: &Suppression, rule_id: &str, category: &str, line: u32) -> bool {
    if !(s.line == line || s.line + 1 == line) {
        return false;
    }
    match s.marker {
        Marker::Redline => s.targets.iter().any(|t| t == rule_id || t == category),
        Marker::Nosec | Marker::Noqa => {
            if s.targets.is_empty() {
                is_security_category(category)
            } else {
                s.targets
                    .iter()
                    .any(|code| gosec_categories(code).contains(&category))
            }
        }
        Marker::Nosemgrep => {
            if s.targets.is_empty() {
                is_security_category(category)
            } else {
                s.targets
                    .iter()
                    .any(|id| semgrep_id_matches(&id.to_ascii_lowercase(), category))
            }
        }
    }
}

/// Security classes (what `#nosec` and a bare `nosemgrep` are about, and what test code is
/// spared below critical).
pub fn is_security_category(category: &str) -> bool {
    !matches!(
        category,
        "unchecked-error"
            | "defer-in-loop"
            | "mutable-default-argument"
            | "bare-except"
            | "floating-promise"
            | "off-by-one"
            | "resource-leak"
            | "swallowed-error"
            | "loose-null-check"
            | "logic-error"
            | "race-condition"
    )
}

/// The classes a gosec rule code stands for.
fn gosec_categories(code: &str) -> &'static [&'static str] {
    match code {
        "G101" => &["hardcoded-secret"],
        "G104" => &["unchecked-error"],
        "G106" | "G402" => &["tls-verification-disabled"],
        "G107" => &["ssrf"],
        "G110" | "G112" | "G114" => &["denial-of-service"],
        "G111" | "G304" | "G305" => &["path-traversal"],
        "G201" | "G202" => &["sql-injection"],
        "G203" => &["xss"],
        "G204" => &["command-injection"],
        "G401" | "G501" | "G505" => &["weak-password-hash", "weak-crypto"],
        "G404" => &["insecure-randomness"],
        // bandit (and ruff's S codes, read as B codes)
        "B105" | "B106" | "B107" => &["hardcoded-secret"],
        "B301" | "B302" | "B403" | "B506" => &["unsafe-deserialization"],
        "B303" | "B304" | "B305" | "B324" => &["weak-password-hash", "weak-crypto"],
        "B307" | "B102" => &["code-injection"],
        "B308" | "B703" | "B704" | "B701" | "B702" => &["xss"],
        "B310" => &["ssrf"],
        "B311" => &["insecure-randomness"],
        "B313" | "B314" | "B315" | "B316" | "B317" | "B318" | "B319" | "B320" | "B405" | "B406"
        | "B407" | "B408" | "B409" | "B410" => &["xxe"],
        "B323" | "B501" | "B502" | "B503" | "B504" | "B507" => &["tls-verification-disabled"],
        "B601" | "B602" | "B603" | "B604" | "B605" | "B606" | "B607" | "B609" => {
            &["command-injection"]
        }
        "B608" | "B610" | "B611" => &["sql-injection"],
        _ => &[],
    }
}

/// Whether a semgrep rule id names the finding's class (by the words semgrep's ids use).
fn semgrep_id_matches(id: &str, category: &str) -> bool {
    let words: &[&str] = match category {
        "sql-injection" => &["sql"],
        "command-injection" => &[
            "command",
            "subprocess",
            "os-system",
            "child-process",
            "shell",
            "exec",
            "spawn",
        ],
        "code-injection" => &[
            "eval",
            "code-injection",
            "exec",
            "function-constructor",
            "vm-",
        ],
        "path-traversal" => &[
            "path-traversal",
            "traversal",
            "zip",
            "tar",
            "path-join",
            "file",
        ],
        "ssrf" => &["ssrf", "request", "url", "fetch"],
        "open-redirect" => &["redirect"],
        "xss" => &[
            "xss",
            "html",
            "template",
            "unescaped",
            "innerhtml",
            "mark-safe",
        ],
        "unsafe-deserialization" => &["pickle", "yaml", "deserial", "marshal", "unserialize"],
        "xxe" => &["xxe", "xml"],
        "hardcoded-secret" => &["secret", "password", "credential", "token", "key"],
        "tls-verification-disabled" => &["tls", "ssl", "verify", "cert", "insecure"],
        "insecure-randomness" => &["random"],
        "weak-password-hash" | "weak-crypto" => &["md5", "sha1", "hash", "crypto", "cipher"],
        "redos" | "regex-injection" => &["regex", "redos", "regexp"],
        "prototype-pollution" => &["prototype", "proto"],
        "timing-unsafe-comparison" => &["timing", "compare"],
        _ => &[],
    };
    words.iter().any(|w| id.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_markers() {
        let text = "x = 1  # redline: ignore py.sql.dynamic-query table name from a fixed list\n\
                    q := fmt.Sprintf(s, t) // #nosec G201 -- table from a constant\n\
                    eval(x)  # nosemgrep: python.lang.security.audit.eval-detected\n\
                    y()  // nosemgrep\n";
        let s = suppressions(text);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].marker, Marker::Redline);
        assert_eq!(s[0].targets, vec!["py.sql.dynamic-query".to_string()]);
        assert_eq!(s[0].reason, "table name from a fixed list");
        assert_eq!(s[1].marker, Marker::Nosec);
        assert_eq!(s[1].targets, vec!["G201".to_string()]);
        assert_eq!(s[2].marker, Marker::Nosemgrep);
        assert_eq!(s[3].targets, Vec::<String>::new());
    }

    #[test]
    fn redline_marker_names_a_rule_or_a_category_on_its_line_or_the_next() {
        let s = &suppressions("// redline: ignore go.sql.sprintf-query reviewed\n")[0];
        assert!(suppresses(s, "go.sql.sprintf-query", "sql-injection", 1));
        assert!(suppresses(s, "go.sql.sprintf-query", "sql-injection", 2));
        assert!(!suppresses(s, "go.sql.sprintf-query", "sql-injection", 3));
        assert!(!suppresses(s, "go.cmd.shell-c", "command-injection", 2));
        let c = &suppressions("# redline: ignore xss escaped by the caller\n")[0];
        assert!(suppresses(c, "py.xss.html-response", "xss", 1));
    }

    #[test]
    fn bandit_codes_count_in_nosec_and_in_ruff_noqa_but_a_bare_noqa_does_not() {
        let s = &suppressions("cur.execute(q)  # nosec B608\n")[0];
        assert!(suppresses(s, "py.sql.dynamic-query", "sql-injection", 1));
        let q = &suppressions("html = Markup(doc)  # noqa: S704\n")[0];
        assert_eq!(q.marker, Marker::Noqa);
        assert!(suppresses(q, "py.xss.mark-safe", "xss", 1));
        assert!(!suppresses(q, "py.code.eval", "code-injection", 1));
        assert!(suppressions("x = eval(y)  # noqa: E501\n").is_empty());
        assert!(suppressions("x = eval(y)  # noqa\n").is_empty());
    }

    #[test]
    fn nosec_and_nosemgrep_only_cover_their_class() {
        let s = &suppressions("q := fmt.Sprintf(s, t) // #nosec G201\n")[0];
        assert!(suppresses(s, "go.sql.sprintf-query", "sql-injection", 1));
        assert!(!suppresses(s, "go.cmd.shell-c", "command-injection", 1));
        let bare = &suppressions("f() // #nosec\n")[0];
        assert!(suppresses(bare, "go.cmd.shell-c", "command-injection", 1));
        assert!(!suppresses(
            bare,
            "go.err.call-result-ignored",
            "unchecked-error",
            1
        ));
        let sg =
            &suppressions("eval(x)  # nosemgrep: python.lang.security.audit.eval-detected\n")[0];
        assert!(suppresses(sg, "py.code.eval", "code-injection", 1));
        assert!(!suppresses(sg, "py.sql.dynamic-query", "sql-injection", 1));
    }
}
