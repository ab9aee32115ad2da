//! The model's category mapped onto redline's classes (the categories of the knowledge entries),
//! so that statistics, feedback demotion and the summary group its findings with the rules'. A
//! model writes "SQLi", "regex-injection" for a ReDoS, or "security-issue"; what it means is found
//! from the words of its category, then from the guidance it cites.

use redline_core::knowledge::Store;

/// Words in a category that name a class, most specific first.
const WORDS: &[(&[&str], &str)] = &[
    (&["sql", "sqli", "query-injection"], "sql-injection"),
    (&["nosql", "mongo"], "sql-injection"),
    (&["redos", "backtracking", "catastrophic"], "redos"),
    (&["regex", "regexp"], "regex-injection"),
    (
        &[
            "xss",
            "cross-site-scripting",
            "html-injection",
            "script-injection",
        ],
        "xss",
    ),
    (
        &["ssrf", "server-side-request", "request-forgery-server"],
        "ssrf",
    ),
    (&["csrf", "cross-site-request"], "missing-authorization"),
    (&["redirect"], "open-redirect"),
    (
        &[
            "traversal",
            "zip-slip",
            "zipslip",
            "directory",
            "path-injection",
            "lfi",
            "file-inclusion",
        ],
        "path-traversal",
    ),
    (
        &["command", "shell", "os-injection", "rce", "exec"],
        "command-injection",
    ),
    (
        &[
            "eval",
            "code-injection",
            "code-execution",
            "template-injection",
            "ssti",
        ],
        "code-injection",
    ),
    (
        &["deserializ", "pickle", "yaml-load", "unmarshal"],
        "unsafe-deserialization",
    ),
    (&["xxe", "xml-external", "external-entit"], "xxe"),
    (&["prototype"], "prototype-pollution"),
    (
        &["header-injection", "crlf", "response-splitting"],
        "header-injection",
    ),
    (
        &[
            "idor",
            "authoriz",
            "access-control",
            "permission",
            "privilege",
            "ownership",
            "authentication",
            "auth-bypass",
        ],
        "missing-authorization",
    ),
    (
        &[
            "secret",
            "credential",
            "password-in",
            "hardcoded",
            "hard-coded",
            "api-key",
        ],
        "hardcoded-secret",
    ),
    (&["timing", "constant-time"], "timing-unsafe-comparison"),
    (&["random", "predictable", "entropy"], "insecure-randomness"),
    (
        &["tls", "ssl", "certificate", "verify-false"],
        "tls-verification-disabled",
    ),
    (
        &["hash", "md5", "sha1", "bcrypt", "password-storage"],
        "weak-password-hash",
    ),
    (
        &["race", "toctou", "concurren", "lost-update", "atomic"],
        "race-condition",
    ),
    (
        &["leak", "not-closed", "unclosed", "resource"],
        "resource-leak",
    ),
    (&["off-by-one", "boundary", "fencepost"], "off-by-one"),
    (&["swallow", "ignored-error", "silent"], "swallowed-error"),
    (
        &["unchecked", "error-not-checked", "unhandled-error"],
        "unchecked-error",
    ),
    (&["promise", "await", "async"], "floating-promise"),
    (&["null", "undefined", "loose-equal"], "loose-null-check"),
    (
        &[
            "denial",
            "dos",
            "exhaust",
            "unbounded",
            "resource-consumption",
        ],
        "denial-of-service",
    ),
    (&["mutable-default"], "mutable-default-argument"),
    (&["bare-except"], "bare-except"),
    (&["defer"], "defer-in-loop"),
];

/// The class and CWE of a model finding: its category when it is one of ours, else the class
/// its words name, else the first class of a guidance entry it cites, else `logic-error`.
pub(super) fn resolve(store: &Store, category: &str, cited: &[String]) -> (String, Option<String>) {
    let known = store.categories();
    let class = if known.iter().any(|c| c == category) {
        category.to_string()
    } else if let Some((_, class)) = WORDS
        .iter()
        .find(|(words, _)| words.iter().any(|w| category.contains(w)))
    {
        class.to_string()
    } else if let Some(c) = cited
        .iter()
        .filter_map(|id| store.entry(id))
        .find_map(|e| e.categories.first().cloned())
    {
        c
    } else {
        "logic-error".to_string()
    };
    let cwe = store.cwe_of_category(&class);
    (class, cwe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_words_map_onto_our_classes() {
        let store = Store::builtin().unwrap();
        let class = |c: &str| resolve(&store, c, &[]).0;
        assert_eq!(class("sql-injection"), "sql-injection");
        assert_eq!(class("sqli-vulnerability"), "sql-injection");
        assert_eq!(class("regex-injection"), "regex-injection");
        assert_eq!(class("catastrophic-backtracking"), "redos");
        assert_eq!(class("zip-slip"), "path-traversal");
        assert_eq!(class("broken-access-control"), "missing-authorization");
        assert_eq!(class("something-odd"), "logic-error");
        let (c, cwe) = resolve(
            &store,
            "security-issue",
            &["sec.unsafe-deserialization".into()],
        );
        assert_eq!(c, "unsafe-deserialization");
        assert!(cwe.is_some());
    }
}
