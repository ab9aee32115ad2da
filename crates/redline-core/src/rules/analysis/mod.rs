//! Facts the predicates need about one file: which names a function binds and to what, which
//! values come from untrusted input (taint), which are constants, and how a string was built.
//!
//! Computed lazily per function and cached for the file. Taint is intra-procedural with two
//! steps across functions of the same file: a local helper's return value is tainted when its
//! body returns input (or returns a tainted parameter at a tainted call site), and a helper's
//! parameters are tainted when a call site in the file passes input. Precision over recall.
//!
//! - `scope`: bindings and parameters; `taint`: sources, sanitizers and propagation;
//! - `values`: constants and string building.

mod scope;
mod taint;
mod values;

#[cfg(test)]
mod tests;

use crate::lang::Language;
use regex::Regex;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::LazyLock;
use tree_sitter::{Node, Tree};

use scope::{BindKind, Scope};
use taint::Taint;

/// How far untrusted a source is: remote (a request, an uploaded archive) or also local (argv, env, stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only input from the network counts (SSRF, path traversal, open redirect, XSS).
    Remote,
    /// Input from the command line, environment and stdin counts too (command and code injection).
    Local,
}

/// Per-file analysis, computed lazily per function.
/// Every call in a file, by the last segment of its callee's name.
type CallsByName<'t> = HashMap<String, Vec<Node<'t>>>;

pub struct Analysis<'t> {
    pub lang: Language,
    pub src: &'t str,
    pub root: Node<'t>,
    scopes: RefCell<HashMap<usize, Rc<Scope<'t>>>>,
    /// Functions whose taint is being computed (call-site taint can loop through recursion).
    computing: RefCell<HashSet<usize>>,
    /// Per function and trust: whether its return value is tainted by sources alone, and whether
    /// by its parameters.
    returns: RefCell<HashMap<(usize, bool), (bool, bool)>>,
    /// Per function: what the strings it returns are made of (see `string_parts`).
    returned_strings: RefCell<HashMap<usize, Option<(String, bool)>>>,
    /// Named functions of the file, by name (one definition per name).
    functions: RefCell<Option<Rc<HashMap<String, Node<'t>>>>>,
    /// Functions whose scope is being built (call-site taint can loop through recursion).
    building: RefCell<HashSet<usize>>,
    /// Every call in the file, by the last segment of its callee's name.
    calls: RefCell<Option<Rc<CallsByName<'t>>>>,
    async_names: RefCell<Option<Rc<HashSet<String>>>>,
    /// Per-file answers that predicates would otherwise recompute for every match: `file-matches`
    /// by pattern, and the like (keyed by the predicate's own name).
    pub memo: RefCell<HashMap<String, bool>>,
    /// The functions that call an ownership helper (see the `skips-ownership-check` predicate).
    pub checking_functions: RefCell<Option<Rc<Vec<usize>>>>,
    /// A byte a predicate points the finding at (the culprit inside a long node, such as the
    /// group of a multi-line regex), or, before the node, the first of the lines the node was put
    /// together from (a regex's fragments bound to names); taken by the engine after each match.
    pub focus: std::cell::Cell<Option<usize>>,
    /// A byte a predicate says the finding reaches to (the last unescaped substitution of a
    /// multi-line template): the finding may be placed on any changed line up to it.
    pub reach: std::cell::Cell<Option<usize>>,
}

const LITERAL_KINDS: &[&str] = &[
    "integer",
    "float",
    "number",
    "true",
    "false",
    "none",
    "null",
    "undefined",
    "nil",
    "int_literal",
    "float_literal",
    "rune_literal",
    "imaginary_literal",
    "iota",
];

impl<'t> Analysis<'t> {
    /// Prepares the analysis of one parsed file.
    pub fn new(lang: Language, src: &'t str, tree: &'t Tree) -> Analysis<'t> {
        Analysis {
            lang,
            src,
            root: tree.root_node(),
            scopes: RefCell::new(HashMap::new()),
            computing: RefCell::new(HashSet::new()),
            returns: RefCell::new(HashMap::new()),
            returned_strings: RefCell::new(HashMap::new()),
            functions: RefCell::new(None),
            building: RefCell::new(HashSet::new()),
            calls: RefCell::new(None),
            async_names: RefCell::new(None),
            memo: RefCell::new(HashMap::new()),
            checking_functions: RefCell::new(None),
            focus: std::cell::Cell::new(None),
            reach: std::cell::Cell::new(None),
        }
    }

    /// The source text of a node.
    pub fn text(&self, n: Node<'_>) -> &'t str {
        &self.src[n.byte_range()]
    }

    /// Whether `n` is a function-like node (a scope of its own).
    pub fn is_function(&self, n: Node<'_>) -> bool {
        matches!(
            n.kind(),
            "function_definition"
                | "lambda"
                | "function_declaration"
                | "function_expression"
                | "function"
                | "generator_function_declaration"
                | "arrow_function"
                | "method_definition"
                | "method_declaration"
                | "func_literal"
        )
    }

    /// The function that holds `n`, or the file.
    pub fn enclosing_function(&self, n: Node<'t>) -> Node<'t> {
        let mut cur = n.parent();
        while let Some(p) = cur {
            if self.is_function(p) {
                return p;
            }
            cur = p.parent();
        }
        self.root
    }

    /// The name of the function holding `n` (empty at module level).
    pub fn function_name(&self, n: Node<'t>) -> &'t str {
        let f = self.enclosing_function(n);
        if f.id() == self.root.id() {
            return "";
        }
        if let Some(name) = f.child_by_field_name("name") {
            return self.text(name);
        }
        match f.parent() {
            Some(p) if p.kind() == "variable_declarator" || p.kind() == "pair" => p
                .child_by_field_name("name")
                .or_else(|| p.child_by_field_name("key"))
                .map(|n| self.text(n))
                .unwrap_or(""),
            _ => "",
        }
    }

    /// The statement holding `n` (the smallest ancestor that is a statement, a declaration, or an
    /// object entry), without leaving its block.
    pub fn statement(&self, n: Node<'t>) -> Node<'t> {
        let mut cur = n;
        loop {
            let k = cur.kind();
            if k.ends_with("statement")
                || k.ends_with("declaration")
                || matches!(k, "decorated_definition" | "keyed_element" | "pair")
            {
                return cur;
            }
            match cur.parent() {
                Some(p)
                    if !self.is_function(p)
                        && !matches!(
                            p.kind(),
                            "block"
                                | "statement_block"
                                | "statement_list"
                                | "module"
                                | "program"
                                | "source_file"
                        ) =>
                {
                    cur = p
                }
                _ => return cur,
            }
        }
    }

    pub(super) fn functions_by_name(&self) -> Rc<HashMap<String, Node<'t>>> {
        if let Some(m) = self.functions.borrow().as_ref() {
            return m.clone();
        }
        let mut map = HashMap::new();
        let mut stack = vec![self.root];
        while let Some(n) = stack.pop() {
            if self.is_function(n) && n.kind() != "lambda" {
                let name = self.function_name_of(n);
                if !name.is_empty() {
                    map.entry(name.to_string()).or_insert(n);
                }
            }
            let mut c = n.walk();
            stack.extend(n.named_children(&mut c));
        }
        let rc = Rc::new(map);
        *self.functions.borrow_mut() = Some(rc.clone());
        rc
    }

    pub(super) fn calls_by_name(&self) -> Rc<HashMap<String, Vec<Node<'t>>>> {
        if let Some(c) = self.calls.borrow().as_ref() {
            return c.clone();
        }
        let mut map: HashMap<String, Vec<Node<'t>>> = HashMap::new();
        let mut stack = vec![self.root];
        while let Some(n) = stack.pop() {
            if matches!(n.kind(), "call" | "call_expression") {
                if let Some(f) = n.child_by_field_name("function") {
                    let t = self.text(f);
                    let last = t.rsplit('.').next().unwrap_or(t);
                    map.entry(last.to_string()).or_default().push(n);
                }
            }
            let mut c = n.walk();
            for ch in n.named_children(&mut c) {
                stack.push(ch);
            }
        }
        let rc = Rc::new(map);
        *self.calls.borrow_mut() = Some(rc.clone());
        rc
    }

    /// Names of async functions and methods declared in this file (JavaScript and TypeScript).
    pub fn async_function_names(&self) -> Rc<HashSet<String>> {
        if let Some(s) = self.async_names.borrow().as_ref() {
            return s.clone();
        }
        let mut names = HashSet::new();
        let mut stack = vec![self.root];
        while let Some(n) = stack.pop() {
            if self.is_function(n) && self.text(n).starts_with("async")
                || (n.kind() == "method_definition" && has_async_keyword(n))
            {
                let name = self.function_name_of(n);
                if !name.is_empty() {
                    names.insert(name.to_string());
                }
            }
            let mut c = n.walk();
            for ch in n.named_children(&mut c) {
                stack.push(ch);
            }
        }
        let rc = Rc::new(names);
        *self.async_names.borrow_mut() = Some(rc.clone());
        rc
    }

    /// The name a function is declared (or assigned) under; empty when anonymous.
    pub fn function_name_of(&self, f: Node<'t>) -> &'t str {
        if let Some(name) = f.child_by_field_name("name") {
            return self.text(name);
        }
        match f.parent() {
            Some(p) if p.kind() == "variable_declarator" => p
                .child_by_field_name("name")
                .map(|n| self.text(n))
                .unwrap_or(""),
            Some(p) if p.kind() == "pair" => p
                .child_by_field_name("key")
                .map(|n| self.text(n))
                .unwrap_or(""),
            Some(p) if p.kind() == "public_field_definition" || p.kind() == "field_definition" => p
                .child_by_field_name("name")
                .or_else(|| p.child_by_field_name("property"))
                .map(|n| self.text(n))
                .unwrap_or(""),
            _ => "",
        }
    }
}

fn has_async_keyword(n: Node<'_>) -> bool {
    let mut c = n.walk();
    n.children(&mut c).any(|ch| ch.kind() == "async")
}

fn is_simple_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn is_all_caps(s: &str) -> bool {
    s.len() > 1
        && s.chars().any(|c| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
