//! Constant values and how strings are built: whether an expression can only be a constant, and
//! a string's literal text with whether it has dynamic parts.

use super::*;
use crate::text::ascii_regex;

impl<'t> Analysis<'t> {
    /// Whether `n` is a constant, or built only from constants (literals, ALL_CAPS names, names bound
    /// only to constants, placeholder lists such as `", ".join(["%s"] * n)`, numbers).
    pub fn is_constant(&self, n: Node<'t>) -> bool {
        self.is_constant_depth(n, 0)
    }

    pub(super) fn is_constant_depth(&self, n: Node<'t>, depth: usize) -> bool {
        if depth > 12 {
            return false;
        }
        let kind = n.kind();
        if LITERAL_KINDS.contains(&kind) {
            return true;
        }
        let text = self.text(n);
        match kind {
            "string"
            | "interpreted_string_literal"
            | "raw_string_literal"
            | "template_string"
            | "concatenated_string"
            | "string_fragment" => {
                let mut c = n.walk();
                let parts: Vec<Node> = n
                    .named_children(&mut c)
                    .filter(|ch| matches!(ch.kind(), "interpolation" | "template_substitution"))
                    .collect();
                parts.iter().all(|p| {
                    p.named_child(0)
                        .is_some_and(|e| self.is_constant_depth(e, depth + 1))
                }) && (kind != "concatenated_string" || {
                    let mut c = n.walk();
                    n.named_children(&mut c)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .all(|s| self.is_constant_depth(s, depth + 1))
                })
            }
            "identifier" => {
                if is_all_caps(text) {
                    return true;
                }
                let bs = self.bindings_before(n, text);
                !bs.is_empty()
                    && bs.iter().all(|b| match (b.kind, b.value) {
                        (BindKind::Param | BindKind::OutParam, _) => false,
                        (BindKind::Iterate, Some(v)) => self.is_constant_depth(v, depth + 1),
                        (_, Some(v)) => self.is_constant_depth(v, depth + 1),
                        _ => false,
                    })
            }
            "subscript" | "subscript_expression" | "index_expression" => {
                // A lookup in a constant table (an allow-list of columns) yields a constant, whatever the key.
                let obj = n
                    .child_by_field_name("value")
                    .or_else(|| n.child_by_field_name("object"))
                    .or_else(|| n.child_by_field_name("operand"));
                obj.is_some_and(|o| self.is_constant_depth(o, depth + 1))
            }
            "keyed_element"
            | "literal_element"
            | "pair"
            | "dictionary"
            | "object"
            | "expression_statement" => {
                let mut c = n.walk();
                let ch: Vec<Node> = n.named_children(&mut c).collect();
                ch.into_iter()
                    .all(|x| x.kind() == "comment" || self.is_constant_depth(x, depth + 1))
            }
            "property_identifier" | "field_identifier" | "shorthand_property_identifier" => true,
            "attribute" | "member_expression" | "selector_expression" => {
                // Request input is never a constant, whatever its spelling: `request.GET` and
                // `self.request.POST` would otherwise pass for an ALL_CAPS name or a `self` field.
                if self.is_remote_source_text(text) {
                    return false;
                }
                // self.table, this.tableName, cls.__tablename__, settings.TABLE: not input.
                let root = text.split('.').next().unwrap_or("");
                let last = text.rsplit('.').next().unwrap_or("");
                matches!(root, "self" | "cls" | "this") || is_all_caps(last) || is_all_caps(root)
            }
            "composite_literal" => n
                .child_by_field_name("body")
                .is_none_or(|b| self.is_constant_depth(b, depth + 1)),
            "parenthesized_expression"
            | "expression_list"
            | "list"
            | "tuple"
            | "array"
            | "set"
            | "literal_value"
            | "list_splat" => {
                let mut c = n.walk();
                let ch: Vec<Node> = n.named_children(&mut c).collect();
                ch.into_iter().all(|x| self.is_constant_depth(x, depth + 1))
            }
            "binary_operator" | "binary_expression" => {
                let l = n.child_by_field_name("left");
                let r = n.child_by_field_name("right");
                l.is_some_and(|l| self.is_constant_depth(l, depth + 1))
                    && r.is_some_and(|r| self.is_constant_depth(r, depth + 1))
            }
            "conditional_expression" | "ternary_expression" => {
                let mut c = n.walk();
                let ch: Vec<Node> = n.named_children(&mut c).collect();
                // The condition may be anything; both branches must be constant.
                ch.iter()
                    .skip(if kind == "ternary_expression" { 1 } else { 0 })
                    .enumerate()
                    .all(|(i, x)| {
                        (kind == "conditional_expression" && i == 1)
                            || self.is_constant_depth(*x, depth + 1)
                    })
            }
            "call" | "call_expression" => {
                let Some(f) = n.child_by_field_name("function") else {
                    return false;
                };
                let ftext = self.text(f);
                let last = ftext.rsplit('.').next().unwrap_or(ftext);
                if matches!(last, "str" | "String" | "repeat" | "Repeat")
                    && self.args_constant_or_numeric(n, depth)
                {
                    return true;
                }
                if matches!(
                    last,
                    "len" | "int" | "float" | "Itoa" | "FormatInt" | "parseInt" | "Number" | "Atoi"
                ) {
                    return true;
                }
                if is_placeholder_builder(text) {
                    return true;
                }
                // `tableName(TableUsers)`, `s.quoteIdent("orders")`: an identifier helper called
                // with constants only names a table or column the code chose, not input.
                if cached_identifier_helper(last)
                    && self.has_args(n)
                    && self.args_constant_or_numeric(n, depth)
                {
                    return true;
                }
                // Go `xs = append(xs, item)`: what matters is the appended items.
                if ftext == "append" {
                    let Some(args) = n.child_by_field_name("arguments") else {
                        return false;
                    };
                    let mut c = args.walk();
                    let items: Vec<Node> = args.named_children(&mut c).skip(1).collect();
                    return items
                        .into_iter()
                        .all(|x| self.is_constant_depth(x, depth + 1));
                }
                // `COLUMNS.get(user_choice, "name")`: an allow-list lookup.
                if matches!(last, "get" | "Get") {
                    if let Some(o) = f
                        .child_by_field_name("object")
                        .or_else(|| f.child_by_field_name("operand"))
                    {
                        if self.is_constant_depth(o, depth + 1) {
                            let Some(args) = n.child_by_field_name("arguments") else {
                                return true;
                            };
                            let mut c = args.walk();
                            let rest: Vec<Node> = args.named_children(&mut c).skip(1).collect();
                            return rest
                                .into_iter()
                                .all(|x| self.is_constant_depth(x, depth + 1));
                        }
                    }
                }
                if matches!(
                    last,
                    "join" | "Join" | "map" | "format" | "Sprintf" | "concat"
                ) {
                    // ", ".join(cols) where cols holds only constants; strings.Join(parts, " AND ").
                    let object_ok = match f
                        .child_by_field_name("object")
                        .or_else(|| f.child_by_field_name("operand"))
                    {
                        Some(o) if !matches!(self.text(o), "strings" | "fmt") => {
                            self.is_constant_depth(o, depth + 1)
                        }
                        _ => true,
                    };
                    return object_ok && self.args_constant_or_numeric(n, depth);
                }
                false
            }
            "list_comprehension" | "generator_expression" => is_placeholder_builder(text),
            "unary_expression" | "unary_operator" => n
                .named_child(0)
                .is_some_and(|c| self.is_constant_depth(c, depth + 1)),
            _ => false,
        }
    }

    fn has_args(&self, call: Node<'t>) -> bool {
        call.child_by_field_name("arguments")
            .is_some_and(|a| a.named_child_count() > 0)
    }

    pub(super) fn args_constant_or_numeric(&self, call: Node<'t>, depth: usize) -> bool {
        let Some(args) = call.child_by_field_name("arguments") else {
            return true;
        };
        let mut c = args.walk();
        let ch: Vec<Node> = args.named_children(&mut c).collect();
        ch.into_iter().all(|a| self.is_constant_depth(a, depth + 1))
    }

    /// If `n` is a string expression, its literal text and whether any part of it is not constant.
    /// Names are followed to what they were bound to earlier in the function.
    pub fn string_parts(&self, n: Node<'t>) -> Option<(String, bool)> {
        self.string_parts_depth(n, 0)
    }

    pub(super) fn string_parts_depth(&self, n: Node<'t>, depth: usize) -> Option<(String, bool)> {
        if depth > 12 {
            return None;
        }
        let kind = n.kind();
        let text = self.text(n);
        match kind {
            "string" | "template_string" | "interpreted_string_literal" | "raw_string_literal" => {
                let mut lit = String::new();
                let mut dynamic = false;
                let mut c = n.walk();
                let children: Vec<Node> = n.named_children(&mut c).collect();
                for ch in &children {
                    match ch.kind() {
                        "interpolation" | "template_substitution" => {
                            if let Some(e) = ch.named_child(0) {
                                if !self.is_constant_depth(e, depth + 1) {
                                    dynamic = true;
                                }
                            }
                        }
                        _ => lit.push_str(self.text(*ch)),
                    }
                }
                if children.is_empty() {
                    lit.push_str(text);
                }
                Some((lit, dynamic))
            }
            "concatenated_string" => {
                let mut lit = String::new();
                let mut dynamic = false;
                let mut c = n.walk();
                for ch in n.named_children(&mut c) {
                    if let Some((l, d)) = self.string_parts_depth(ch, depth + 1) {
                        lit.push_str(&l);
                        dynamic |= d;
                    }
                }
                Some((lit, dynamic))
            }
            "parenthesized_expression" => self.string_parts_depth(n.named_child(0)?, depth + 1),
            "binary_operator" | "binary_expression" => {
                let op = n
                    .child_by_field_name("operator")
                    .map(|o| self.text(o))
                    .unwrap_or("");
                let l = n.child_by_field_name("left")?;
                let r = n.child_by_field_name("right")?;
                match op {
                    "+" => {
                        let lp = self.string_parts_depth(l, depth + 1);
                        let rp = self.string_parts_depth(r, depth + 1);
                        if lp.is_none() && rp.is_none() {
                            return None;
                        }
                        let side = |p: Option<(String, bool)>, node: Node<'t>| {
                            p.unwrap_or_else(|| {
                                (String::new(), !self.is_constant_depth(node, depth + 1))
                            })
                        };
                        let (a, da) = side(lp, l);
                        let (b, db) = side(rp, r);
                        Some((a + &b, da || db))
                    }
                    "%" if self.lang == Language::Python => {
                        let (lit, d) = self.string_parts_depth(l, depth + 1)?;
                        Some((lit, d || !self.is_constant_depth(r, depth + 1)))
                    }
                    _ => None,
                }
            }
            "call" | "call_expression" => {
                let f = n.child_by_field_name("function")?;
                let ftext = self.text(f);
                let args = n.child_by_field_name("arguments")?;
                let mut c = args.walk();
                let arg_nodes: Vec<Node> = args.named_children(&mut c).collect();
                if matches!(ftext, "fmt.Sprintf" | "fmt.Sprint" | "fmt.Sprintln") {
                    let format = *arg_nodes.first()?;
                    let (lit, d) = self.string_parts_depth(format, depth + 1)?;
                    let verbs = (ftext == "fmt.Sprintf")
                        .then(|| go_verbs(self.text(format)))
                        .flatten();
                    let rest_dynamic = arg_nodes.iter().skip(1).enumerate().any(|(i, a)| {
                        match verbs.as_ref().and_then(|v| v.get(i)) {
                            // A number cannot carry text into the string.
                            Some(FormatSlot::Number) => false,
                            // A table name from the program's own state (a field, a constant
                            // helper) is not a value from outside; one from a request still is.
                            Some(FormatSlot::TableName) => self.is_tainted(*a, Trust::Remote),
                            _ => !self.is_constant_depth(*a, depth + 1),
                        }
                    });
                    return Some((lit, d || rest_dynamic));
                }
                // A command or query built by a helper of this file (`createCommand(opts)`):
                // what its returns are made of.
                if let Some(helper) = self.local_function(f) {
                    return self.returned_string_parts(helper, depth + 1);
                }
                let obj = f.child_by_field_name("object")?;
                let method = f
                    .child_by_field_name("attribute")
                    .or_else(|| f.child_by_field_name("property"))
                    .map(|m| self.text(m))?;
                match method {
                    "format" | "concat" | "replace" => {
                        let (lit, d) = self.string_parts_depth(obj, depth + 1)?;
                        let args_dynamic = arg_nodes.iter().any(|a| {
                            let v = if a.kind() == "keyword_argument" {
                                a.child_by_field_name("value").unwrap_or(*a)
                            } else {
                                *a
                            };
                            !self.is_constant_depth(v, depth + 1)
                        });
                        Some((lit, d || args_dynamic))
                    }
                    "join" if matches!(obj.kind(), "string") => Some((
                        self.text(obj).to_string(),
                        !self.is_constant_depth(n, depth + 1),
                    )),
                    "strip" | "lower" | "upper" | "trim" | "rstrip" | "lstrip" => {
                        self.string_parts_depth(obj, depth + 1)
                    }
                    _ => None,
                }
            }
            "identifier" => {
                let bs = self.bindings_before(n, text);
                let mut lit = String::new();
                let mut dynamic = false;
                let mut any = false;
                for b in bs {
                    let Some(v) = b.value else {
                        if b.kind == BindKind::Param {
                            return None;
                        }
                        continue;
                    };
                    match (b.kind, self.string_parts_depth(v, depth + 1)) {
                        (BindKind::Assign | BindKind::Augment, Some((l, d))) => {
                            any = true;
                            lit.push_str(&l);
                            lit.push(' ');
                            dynamic |= d;
                        }
                        (BindKind::Augment, None) => {
                            dynamic |= !self.is_constant_depth(v, depth + 1);
                        }
                        _ => {}
                    }
                }
                any.then_some((lit, dynamic))
            }
            _ => None,
        }
    }

    /// The literal text and dynamism of everything a function of this file returns; `None`
    /// when no return is a string this can follow. Computed once per function: helpers are called
    /// from many places.
    fn returned_string_parts(&self, f: Node<'t>, depth: usize) -> Option<(String, bool)> {
        if let Some(known) = self.returned_strings.borrow().get(&f.id()) {
            return known.clone();
        }
        // Recursion: nothing known until computed.
        self.returned_strings.borrow_mut().insert(f.id(), None);
        let mut lit = String::new();
        let mut dynamic = false;
        let mut any = false;
        for r in self.return_values(f) {
            if let Some((l, d)) = self.string_parts_depth(r, depth) {
                any = true;
                lit.push_str(&l);
                dynamic |= d;
            }
        }
        // A helper that quotes or escapes values as it builds (`pipes.makepipeline`) hands back
        // a string its author made safe for the values it holds.
        static QUOTES: LazyLock<Regex> = LazyLock::new(|| {
            ascii_regex(r"\b\w*(?:[qQ]uote|[eE]scape|[sS]aniti[sz]e)\w*\s*\(").unwrap()
        });
        let dynamic = dynamic && !QUOTES.is_match(self.text(f));
        let parts = any.then_some((lit, dynamic));
        self.returned_strings
            .borrow_mut()
            .insert(f.id(), parts.clone());
        parts
    }
}

/// A helper whose name says it returns a table, column or schema name (or quotes one).
fn cached_identifier_helper(name: &str) -> bool {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)^(?:get_?|quote_?|escape_?)?(?:table|tbl|column|col|schema|ident|identifier|relation)(?:_?name|s)?$|^(?:quote|escape)_?(?:ident|identifier|name)$").unwrap()
    });
    RE.is_match(name)
}

/// `", ".join(["%s"] * len(ids))`, `ids.map(() => "?").join(",")`, `"?" + ",?" * n`: SQL placeholders, not data.
pub(super) fn is_placeholder_builder(text: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| ascii_regex(r#"["'`](\?|%s|\$\d*|\$%d|:\w+|@\w+)["'`]|`\$\$\{"#).unwrap());
    static BUILDER: LazyLock<Regex> =
        LazyLock::new(|| ascii_regex(r"join|Join|repeat|Repeat|map\(|\*|range").unwrap());
    RE.is_match(text)
        && BUILDER.is_match(text)
        && !text.contains("request")
        && !text.contains("req.")
}

/// What a `fmt.Sprintf` verb does with its argument, as far as injection goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FormatSlot {
    /// `%d`, `%x`, `%f`, `%t`...: the argument is printed as a number or a boolean.
    Number,
    /// `%s` where SQL names a table (`FROM %s`, `INSERT INTO %s`, `UPDATE %s`, `JOIN %s`).
    TableName,
    /// Anything else: its text lands in the string as it is.
    Text,
}

/// The slots of a Go format string literal, one per argument in order; `None` when the format
/// is not a plain literal or indexes or stars its arguments (`%[2]s`, `%*d`), whose pairing this
/// does not follow.
fn go_verbs(literal: &str) -> Option<Vec<FormatSlot>> {
    let body = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| literal.strip_prefix('`').and_then(|s| s.strip_suffix('`')))?;
    static TABLE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
        ascii_regex(r"(?i)\b(from|into|update|join|table)\s+\\?[`\x22]?$").unwrap()
    });
    let mut slots = Vec::new();
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        // Flags, width and precision, then the verb.
        let mut verb = None;
        for (_, f) in chars.by_ref() {
            match f {
                '+' | '-' | '#' | ' ' | '0'..='9' | '.' => continue,
                '[' | '*' => return None,
                v => {
                    verb = Some(v);
                    break;
                }
            }
        }
        match verb? {
            '%' => {}
            'd' | 'b' | 'o' | 'O' | 'x' | 'X' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 't' => {
                slots.push(FormatSlot::Number)
            }
            's' | 'v' if TABLE_BEFORE.is_match(&body[..at]) => slots.push(FormatSlot::TableName),
            _ => slots.push(FormatSlot::Text),
        }
    }
    Some(slots)
}
