//! Language detection: by file extension, and by shebang for extension-less scripts.

use std::path::Path;

/// A language redline reviews. TSX is kept apart from TypeScript because it needs its own grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    TypeScript,
    Tsx,
    JavaScript,
    Go,
}

impl Language {
    /// Every language, in a stable order.
    pub const ALL: [Language; 5] = [
        Language::Python,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
        Language::Go,
    ];

    /// The name used in rule files, case.json and output (`tsx` reports as `typescript`).
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::TypeScript | Language::Tsx => "typescript",
            Language::JavaScript => "javascript",
            Language::Go => "go",
        }
    }

    /// Parses a language name as written in rule files and on the command line.
    pub fn from_name(name: &str) -> Option<Language> {
        match name.to_ascii_lowercase().as_str() {
            "python" | "py" => Some(Language::Python),
            "typescript" | "ts" => Some(Language::TypeScript),
            "tsx" => Some(Language::Tsx),
            "javascript" | "js" | "jsx" => Some(Language::JavaScript),
            "go" | "golang" => Some(Language::Go),
            _ => None,
        }
    }

    /// The tree-sitter grammar for this language.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            // JSX is part of the JavaScript grammar.
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    /// True for the JavaScript family (rules written for one apply to all three grammars).
    pub fn is_js_family(self) -> bool {
        matches!(
            self,
            Language::TypeScript | Language::Tsx | Language::JavaScript
        )
    }
}

/// Detects the language of `path`, looking at the first line of `text` for extension-less scripts.
pub fn detect(path: &str, text: Option<&str>) -> Option<Language> {
    let p = Path::new(path);
    match p.extension().and_then(|e| e.to_str()) {
        Some(ext) => match ext.to_ascii_lowercase().as_str() {
            "py" | "pyw" | "pyi" => Some(Language::Python),
            "ts" | "mts" | "cts" => Some(Language::TypeScript),
            "tsx" => Some(Language::Tsx),
            "js" | "jsx" | "mjs" | "cjs" => Some(Language::JavaScript),
            "go" => Some(Language::Go),
            _ => None,
        },
        None => text.and_then(detect_shebang),
    }
}

/// Reads `#!/usr/bin/env python3`, `#!/usr/bin/node` and the like.
fn detect_shebang(text: &str) -> Option<Language> {
    let first = text.lines().next()?;
    let rest = first.strip_prefix("#!")?;
    let mut words = rest.split_whitespace();
    let mut prog = words.next()?.rsplit('/').next()?;
    if prog == "env" {
        // `env -S node --flag` or `env python3`
        prog = words.find(|w| !w.starts_with('-'))?;
    }
    if prog.starts_with("python") {
        Some(Language::Python)
    } else if prog == "node" || prog == "nodejs" || prog == "deno" || prog == "bun" {
        Some(Language::JavaScript)
    } else if prog == "ts-node" || prog == "tsx" {
        Some(Language::TypeScript)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_extension() {
        assert_eq!(detect("a/b.py", None), Some(Language::Python));
        assert_eq!(detect("x.tsx", None), Some(Language::Tsx));
        assert_eq!(detect("x.cjs", None), Some(Language::JavaScript));
        assert_eq!(detect("main.go", None), Some(Language::Go));
        assert_eq!(detect("README.md", None), None);
    }

    #[test]
    fn by_shebang() {
        assert_eq!(
            detect("bin/tool", Some("#!/usr/bin/env python3\n")),
            Some(Language::Python)
        );
        assert_eq!(
            detect("bin/tool", Some("#!/usr/bin/env -S node --no-warnings\n")),
            Some(Language::JavaScript)
        );
        assert_eq!(detect("bin/tool", Some("#!/bin/sh\n")), None);
        assert_eq!(detect("bin/tool", Some("plain")), None);
    }
}
