//! Context trimming with tree-sitter: for each hunk, the enclosing function, method or class; where
//! that is longer, the hunk with at most 50 lines either side; at most 400 lines per file; plus a
//! short outline of the file (imports and top-level signatures). Token counts of the trimmed context
//! and of the whole file are kept so the saving is visible.

mod render;
pub mod tokens;

pub use render::Density;

use crate::diff::FileDiff;
use crate::lang::Language;
use serde::Serialize;
use tree_sitter::{Node, Tree};

/// Lines either side of a hunk when its enclosing unit is too long to include whole.
pub const HUNK_MARGIN: u32 = 50;
/// Lines either side of a hunk in module-level code (no enclosing function or class).
pub const TOP_LEVEL_MARGIN: u32 = 10;
/// Lines either side of the hunks shown in a partial (multi-pass) review view.
pub const PASS_MARGIN: u32 = 15;
/// The most context lines kept for one file.
pub const MAX_FILE_LINES: u32 = 400;
/// Function-like units shorter than this are not taken as the enclosing unit (lambdas, callbacks).
const MIN_UNIT_LINES: u32 = 4;

/// One kept range of the new file (1-based, inclusive), with the unit it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    /// `function`, `class`, `hunk window` or `module`.
    pub kind: String,
    /// The enclosing unit's name where it has one.
    pub name: Option<String>,
}

/// The trimmed context of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileContext {
    pub spans: Vec<Span>,
    /// Imports and top-level signatures, one per line, with their line numbers.
    pub outline: Vec<(u32, String)>,
    /// Lines kept in spans.
    pub context_lines: u32,
    pub file_lines: u32,
    pub context_tokens: usize,
    pub file_tokens: usize,
    /// Whether the 400-line cap cut the context.
    pub capped: bool,
}

/// Builds the trimmed context of a file from its parse tree and its diff.
pub fn trim(lang: Language, text: &str, tree: &Tree, diff: &FileDiff) -> FileContext {
    let file_lines = text.lines().count() as u32;
    let root = tree.root_node();
    let mut spans: Vec<Span> = Vec::new();
    for hunk in &diff.hunks {
        // The changed lines decide the enclosing unit; the diff's own context lines may spill
        // into the neighbouring function.
        let added: Vec<u32> = hunk.added_lines().collect();
        let (h_start, h_end) = match (added.first(), added.last()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => match hunk.new_range() {
                Some(r) => r,
                None => continue,
            },
        };
        let h_end = h_end.min(file_lines.max(1)).max(h_start);
        let unit = enclosing_unit(lang, root, h_start, h_end);
        let span = match unit {
            Some((node, kind)) => {
                let (u_start, u_end) = (
                    node.start_position().row as u32 + 1,
                    node.end_position().row as u32 + 1,
                );
                let name = unit_name(node, text);
                if u_end - u_start <= (h_end - h_start) + 2 * HUNK_MARGIN {
                    Span {
                        start: u_start,
                        end: u_end,
                        kind: kind.to_string(),
                        name,
                    }
                } else {
                    Span {
                        start: h_start.saturating_sub(HUNK_MARGIN).max(u_start),
                        end: (h_end + HUNK_MARGIN).min(u_end),
                        kind: "hunk window".into(),
                        name,
                    }
                }
            }
            None => Span {
                start: h_start.saturating_sub(TOP_LEVEL_MARGIN).max(1),
                end: (h_end + TOP_LEVEL_MARGIN).min(file_lines.max(1)),
                kind: "module".into(),
                name: None,
            },
        };
        spans.push(span);
    }
    spans.sort_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Span> = Vec::new();
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start <= last.end + 1 => {
                if s.end > last.end {
                    last.end = s.end;
                }
            }
            _ => merged.push(s),
        }
    }
    // Cap: keep spans in order until the budget is spent; the last one is cut short.
    let mut capped = false;
    let mut budget = MAX_FILE_LINES;
    let mut kept = Vec::new();
    for mut s in merged {
        if budget == 0 {
            capped = true;
            break;
        }
        let len = s.end - s.start + 1;
        if len > budget {
            s.end = s.start + budget - 1;
            capped = true;
        }
        budget -= s.end - s.start + 1;
        kept.push(s);
    }
    let outline = outline(lang, root, text);
    let context_lines = kept.iter().map(|s| s.end - s.start + 1).sum();
    let ctx = FileContext {
        spans: kept,
        outline,
        context_lines,
        file_lines,
        context_tokens: 0,
        file_tokens: 0,
        capped,
    };
    // Token counts are filled in by `count_tokens`, only when an LLM will read the context:
    // loading the tokenizer costs a rules review more than its own work.
    ctx
}

/// Node kinds that are functions or methods, per language.
fn function_kinds(lang: Language) -> &'static [&'static str] {
    match lang {
        Language::Python => &["function_definition"],
        Language::Go => &["function_declaration", "method_declaration", "func_literal"],
        _ => &[
            "function_declaration",
            "function_expression",
            "function",
            "generator_function_declaration",
            "arrow_function",
            "method_definition",
        ],
    }
}

/// Node kinds that are classes or type declarations, per language.
fn class_kinds(lang: Language) -> &'static [&'static str] {
    match lang {
        Language::Python => &["class_definition"],
        Language::Go => &["type_declaration"],
        _ => &[
            "class_declaration",
            "class",
            "abstract_class_declaration",
            "interface_declaration",
        ],
    }
}

/// The smallest function, method or class that holds lines `start..=end` and is not a tiny lambda.
fn enclosing_unit<'t>(
    lang: Language,
    root: Node<'t>,
    start: u32,
    end: u32,
) -> Option<(Node<'t>, &'static str)> {
    let start_pt = tree_sitter::Point {
        row: start as usize - 1,
        column: 0,
    };
    let end_pt = tree_sitter::Point {
        row: end as usize - 1,
        column: usize::MAX / 2,
    };
    let mut node = root.descendant_for_point_range(start_pt, end_pt)?;
    loop {
        let kind = node.kind();
        let lines = (node.end_position().row - node.start_position().row) as u32 + 1;
        let covers =
            (node.start_position().row as u32) < start && node.end_position().row as u32 + 1 >= end;
        if covers && function_kinds(lang).contains(&kind) && lines >= MIN_UNIT_LINES {
            return Some((with_decorators(node), "function"));
        }
        if covers && class_kinds(lang).contains(&kind) {
            return Some((with_decorators(node), "class"));
        }
        node = node.parent()?;
    }
}

/// Python decorators belong to the function they decorate.
fn with_decorators(node: Node<'_>) -> Node<'_> {
    match node.parent() {
        Some(p) if p.kind() == "decorated_definition" => p,
        _ => node,
    }
}

fn unit_name(node: Node<'_>, text: &str) -> Option<String> {
    let node = if node.kind() == "decorated_definition" {
        node.child_by_field_name("definition")?
    } else {
        node
    };
    let name = node.child_by_field_name("name").or_else(|| {
        // `const handler = async () => {}`: the name is on the declarator.
        let p = node.parent()?;
        (p.kind() == "variable_declarator")
            .then(|| p.child_by_field_name("name"))
            .flatten()
    })?;
    name.utf8_text(text.as_bytes()).ok().map(str::to_string)
}

/// Imports and top-level signatures (the first line of each top-level definition).
fn outline(lang: Language, root: Node<'_>, text: &str) -> Vec<(u32, String)> {
    const MAX_OUTLINE: usize = 40;
    let import_kinds: &[&str] = match lang {
        Language::Python => &["import_statement", "import_from_statement"],
        Language::Go => &["import_declaration", "package_clause"],
        _ => &["import_statement"],
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut cursor = root.walk();
    for child in root.named_children(&mut cursor) {
        let kind = child.kind();
        let row = child.start_position().row;
        let first = lines.get(row).map(|l| l.trim_end()).unwrap_or("");
        let is_def = function_kinds(lang).contains(&kind)
            || class_kinds(lang).contains(&kind)
            || matches!(
                kind,
                "decorated_definition"
                    | "export_statement"
                    | "lexical_declaration"
                    | "type_alias_declaration"
            );
        if import_kinds.contains(&kind) {
            // A multi-line Go import block becomes one line per import.
            for r in child.start_position().row..=child.end_position().row {
                if let Some(l) = lines
                    .get(r)
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty() && *l != ")")
                {
                    out.push((r as u32 + 1, l.to_string()));
                }
            }
        } else if is_def {
            // Decorators: show the def line itself.
            let mut r = row;
            while lines
                .get(r)
                .is_some_and(|l| l.trim_start().starts_with('@'))
                && r < child.end_position().row
            {
                r += 1;
            }
            let l = lines.get(r).map(|l| l.trim_end()).unwrap_or(first);
            out.push((r as u32 + 1, truncate_signature(l)));
        }
        if out.len() >= MAX_OUTLINE {
            break;
        }
    }
    out.truncate(MAX_OUTLINE);
    out
}

fn truncate_signature(l: &str) -> String {
    let l = l.trim_end_matches('{').trim_end();
    if l.chars().count() > 120 {
        format!("{}…", l.chars().take(120).collect::<String>())
    } else {
        l.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(lang: Language, old: &str, new: &str) -> FileContext {
        let diff = crate::diff::diff_texts(Some("f"), Some("f"), old, new);
        let mut p = tree_sitter::Parser::new();
        p.set_language(&lang.grammar()).unwrap();
        let tree = p.parse(new, None).unwrap();
        trim(lang, new, &tree, &diff)
    }

    #[test]
    fn takes_the_enclosing_function_whole_when_short() {
        let mut old = String::from("import os\n\n");
        for i in 0..30 {
            old.push_str(&format!(
                "def f{i}(x):\n    a = x\n    b = a\n    return b\n\n"
            ));
        }
        let new = old.replace("def f10(x):\n    a = x\n", "def f10(x):\n    a = x + 1\n");
        let mut c = ctx(Language::Python, &old, &new);
        assert_eq!(c.spans.len(), 1);
        assert_eq!(c.spans[0].kind, "function");
        assert_eq!(c.spans[0].name.as_deref(), Some("f10"));
        assert_eq!(c.spans[0].end - c.spans[0].start + 1, 4);
        assert!(c.outline.iter().any(|(_, l)| l == "import os"));
        c.count_tokens(&new);
        assert!(c.context_tokens < c.file_tokens);
    }

    #[test]
    fn long_function_gives_a_window_of_50_lines() {
        let mut body = String::from("func Long() {\n");
        for i in 0..300 {
            body.push_str(&format!("\tx{i} := {i}\n\t_ = x{i}\n"));
        }
        body.push_str("}\n");
        let old = format!("package main\n\n{body}");
        let new = old.replace("\tx150 := 150\n", "\tx150 := 151\n");
        let c = ctx(Language::Go, &old, &new);
        let s = &c.spans[0];
        assert_eq!(s.kind, "hunk window");
        assert_eq!(s.name.as_deref(), Some("Long"));
        assert!(s.end - s.start < 1 + 2 * HUNK_MARGIN);
        assert!(c.context_lines <= MAX_FILE_LINES);
    }

    #[test]
    fn file_cap_is_400_lines() {
        let mut old = String::new();
        for i in 0..60 {
            old.push_str(&format!("function f{i}(a) {{\n"));
            for j in 0..40 {
                old.push_str(&format!("  const v{j} = a + {j};\n"));
            }
            old.push_str("  return a;\n}\n");
        }
        let new: String = old
            .lines()
            .map(|l| {
                if l.contains("v20 ") {
                    format!("{l} // changed\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let c = ctx(Language::JavaScript, &old, &new);
        assert!(c.capped);
        assert_eq!(c.context_lines, MAX_FILE_LINES);
    }
}
