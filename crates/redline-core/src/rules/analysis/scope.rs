//! Scopes and bindings: the names a function binds, from parameters, assignments, loops,
//! appends and out-parameters, and which of its parameters are input by themselves.

use super::*;
use crate::text::ascii_regex;

/// Go parameter types that carry a request: net/http's and those of the common web frameworks
/// (gin, echo, fiber, macaron, iris, fasthttp, buffalo, hertz, goframe).
const GO_REQUEST_TYPES: &[&str] = &[
    "http.Request",
    "gin.Context",
    "echo.Context",
    "fiber.Ctx",
    "macaron.Context",
    "iris.Context",
    "fasthttp.RequestCtx",
    "buffalo.Context",
    "app.RequestContext",
    "ghttp.Request",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BindKind {
    Assign,
    Augment,
    Iterate,
    Param,
    /// `xs.append(v)` / `xs.push(v)` / `xs = append(xs, v)`: v joins the collection.
    Append,
    /// Go `Decode(&v)` / `Unmarshal(data, &v)`: v is filled from the call's input.
    OutParam,
}

#[derive(Debug, Clone)]
pub(super) struct Binding<'t> {
    pub(super) name: String,
    pub(super) value: Option<Node<'t>>,
    pub(super) kind: BindKind,
    pub(super) pos: usize,
}

pub(super) struct Scope<'t> {
    pub(super) node: Node<'t>,
    pub(super) bindings: Vec<Binding<'t>>,
    /// Parameter names that hold a request object whose fields are input (Go `r *http.Request`).
    pub(super) request_objects: Vec<String>,
    /// Parameters that are input by themselves (route parameters, NestJS `@Query()`).
    pub(super) input_params: Vec<String>,
    /// Tainted names, computed on first need (most functions never reach a sink).
    pub(super) taint: std::cell::OnceCell<Taint>,
}

pub(super) static NOT_INPUT_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"Session|User|Request|Response|Connection|Cursor|Settings|Config|Logger|BackgroundTasks|Engine|Client|Repository|Service|Depends").unwrap()
});

pub(super) static NEST_INPUT_DECORATOR: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"@(Query|Param|Body|Headers|Req)\b").unwrap());

pub(super) static PY_HANDLER_DECORATOR: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\.(route|get|post|put|patch|delete|api_route|websocket)\(|@api_view|@\w*\.?(command|argument|option)\b").unwrap()
});

pub(super) static HANDLER_BASE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\w*(?:RequestHandler|Handler|View|APIView|Resource)\b").unwrap()
});

static EXTRACT_CALL: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"^(?i)(extract|unzip|untar|unarchive|decompress)\w*$").unwrap());

pub(super) static PARAM_NOT_INPUT: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"^(self|cls|request|req|db|session|current_user|user|background_tasks|response|res|ctx|context|conn|cursor|settings|config|logger)$").unwrap()
});

impl<'t> Analysis<'t> {
    pub(super) fn scope(&self, n: Node<'t>) -> Rc<Scope<'t>> {
        let f = if self.is_function(n) {
            n
        } else {
            self.enclosing_function(n)
        };
        if let Some(s) = self.scopes.borrow().get(&f.id()) {
            return s.clone();
        }
        if !self.building.borrow_mut().insert(f.id()) {
            // Recursion through call sites: this function is being analysed further up.
            return Rc::new(Scope {
                node: f,
                bindings: Vec::new(),
                request_objects: Vec::new(),
                input_params: Vec::new(),
                taint: std::cell::OnceCell::new(),
            });
        }
        let s = Rc::new(self.build_scope(f));
        self.building.borrow_mut().remove(&f.id());
        self.scopes.borrow_mut().insert(f.id(), s.clone());
        s
    }

    pub(super) fn outer_scope(&self, s: &Scope<'t>) -> Option<Rc<Scope<'t>>> {
        if s.node.id() == self.root.id() {
            None
        } else {
            Some(self.scope(self.enclosing_function(s.node)))
        }
    }

    pub(super) fn build_scope(&self, f: Node<'t>) -> Scope<'t> {
        let mut bindings = Vec::new();
        let mut request_objects = Vec::new();
        let mut input_params = Vec::new();
        if f.id() != self.root.id() {
            self.collect_params(f, &mut bindings, &mut request_objects, &mut input_params);
        }
        let body = f.child_by_field_name("body").unwrap_or(f);
        self.collect_bindings(body, &mut bindings);
        bindings.sort_by_key(|b| b.pos);
        let mut scope = Scope {
            node: f,
            bindings,
            request_objects,
            input_params,
            taint: std::cell::OnceCell::new(),
        };
        if let Some(outer) = self.outer_scope(&scope) {
            scope
                .request_objects
                .extend(outer.request_objects.iter().cloned());
        }
        scope
    }

    /// Parameters; those that carry request input (route parameters, NestJS `@Query()`) are tainted.
    pub(super) fn collect_params(
        &self,
        f: Node<'t>,
        out: &mut Vec<Binding<'t>>,
        request_objects: &mut Vec<String>,
        input: &mut Vec<String>,
    ) {
        let Some(params) = f
            .child_by_field_name("parameters")
            .or_else(|| f.child_by_field_name("parameter"))
        else {
            return;
        };
        let decorators = match f.parent() {
            Some(p) if p.kind() == "decorated_definition" => {
                self.text(p).split(":\n").next().unwrap_or("").to_string()
            }
            _ => String::new(),
        };
        let py_handler = self.lang == Language::Python
            && (PY_HANDLER_DECORATOR.is_match(&decorators) || self.is_py_handler_method(f));
        let mut after_request = false;
        let mut cursor = params.walk();
        let list: Vec<Node> = if params.kind() == "identifier" {
            vec![params]
        } else {
            params.named_children(&mut cursor).collect()
        };
        for p in list {
            let ptext = self.text(p);
            let mut names = Vec::new();
            self.pattern_names(p, &mut names);
            if self.lang == Language::Go {
                if let Some(ty) = p.child_by_field_name("type") {
                    let ty = self.text(ty);
                    if GO_REQUEST_TYPES.iter().any(|t| ty.contains(t)) {
                        request_objects.extend(names.iter().cloned());
                    }
                    // An archive entry handed to a helper: its name is input (zip slip).
                    if ty.contains("zip.File") || ty.contains("tar.Header") {
                        input.extend(names.iter().cloned());
                    }
                    // An uploaded file's header handed to a helper: its Filename is the
                    // client's. (Not `url.Values`: clients build outgoing queries with it too.)
                    if ty.contains("multipart.FileHeader") {
                        input.extend(names.iter().cloned());
                    }
                    // The callback an archive extractor calls with each entry's name
                    // (`ExtractZip(r, func(name string, r io.Reader) error {...})`).
                    if ty == "string" && self.is_extract_callback(f) {
                        input.extend(names.iter().cloned());
                    }
                }
            }
            for name in &names {
                out.push(Binding {
                    name: name.clone(),
                    value: None,
                    kind: BindKind::Param,
                    pos: p.start_byte(),
                });
                let nest_input = self.lang.is_js_family() && NEST_INPUT_DECORATOR.is_match(ptext);
                // A typed parameter says what it is (`cursor: str` is input, `db: Session` is not);
                // an untyped one is judged by its name.
                let py_type = p.child_by_field_name("type").map(|t| self.text(t));
                let not_input = match py_type {
                    Some(t) => NOT_INPUT_TYPE.is_match(t),
                    None => PARAM_NOT_INPUT.is_match(name),
                };
                let py_input = self.lang == Language::Python
                    && (py_handler || after_request)
                    && !not_input
                    && !ptext.contains("Depends(");
                if nest_input || py_input {
                    input.push(name.clone());
                }
                if name == "request" || name == "req" {
                    after_request = true;
                }
            }
        }
    }

    /// A Go function literal passed to a call named after archive extraction.
    fn is_extract_callback(&self, f: Node<'t>) -> bool {
        if f.kind() != "func_literal" {
            return false;
        }
        let Some(call) = f
            .parent()
            .filter(|p| p.kind() == "argument_list")
            .and_then(|p| p.parent())
            .filter(|c| c.kind() == "call_expression")
        else {
            return false;
        };
        call.child_by_field_name("function").is_some_and(|fun| {
            let name = self.text(fun).rsplit('.').next().unwrap_or("");
            EXTRACT_CALL.is_match(name)
        })
    }

    /// A method named after an HTTP verb in a class that derives from a request handler
    /// (Tornado's `RequestHandler`, Django's class-based `View`): its parameters after `self`
    /// are captured from the URL.
    fn is_py_handler_method(&self, f: Node<'t>) -> bool {
        let name = self.function_name_of(f);
        if !matches!(
            name,
            "get" | "post" | "put" | "patch" | "delete" | "head" | "options"
        ) {
            return false;
        }
        let mut cur = f.parent();
        while let Some(p) = cur {
            if p.kind() == "class_definition" {
                return p
                    .child_by_field_name("superclasses")
                    .is_some_and(|b| HANDLER_BASE.is_match(self.text(b)));
            }
            cur = p.parent();
        }
        false
    }

    /// The identifiers a binding pattern introduces (`a`, `a, b`, `{ a, b: c }`, `[x, ...rest]`, `p: T = 1`).
    pub(super) fn pattern_names(&self, n: Node<'t>, out: &mut Vec<String>) {
        match n.kind() {
            "identifier" | "shorthand_property_identifier_pattern" | "field_identifier" => {
                out.push(self.text(n).to_string())
            }
            "type" | "type_annotation" | "decorator" | "predefined_type" | "type_identifier"
            | "pointer_type" | "qualified_type" => {}
            "default_parameter"
            | "typed_default_parameter"
            | "assignment_pattern"
            | "keyword_argument" => {
                if let Some(name) = n
                    .child_by_field_name("name")
                    .or_else(|| n.child_by_field_name("left"))
                {
                    self.pattern_names(name, out);
                }
            }
            "pair_pattern" => {
                if let Some(v) = n.child_by_field_name("value") {
                    self.pattern_names(v, out);
                }
            }
            "required_parameter" | "optional_parameter" => {
                if let Some(p) = n.child_by_field_name("pattern") {
                    self.pattern_names(p, out);
                }
            }
            "parameter_declaration" | "variadic_parameter_declaration" => {
                let mut c = n.walk();
                for ch in n.children_by_field_name("name", &mut c) {
                    out.push(self.text(ch).to_string());
                }
            }
            _ => {
                let mut c = n.walk();
                for ch in n.named_children(&mut c) {
                    self.pattern_names(ch, out);
                }
            }
        }
    }

    /// Walks a function body (not nested functions) and records every binding.
    pub(super) fn collect_bindings(&self, n: Node<'t>, out: &mut Vec<Binding<'t>>) {
        let mut stack = vec![n];
        while let Some(node) = stack.pop() {
            if node.id() != n.id() && self.is_function(node) {
                // A nested function's name is bound here; its body is its own scope.
                continue;
            }
            self.bindings_at(node, out);
            let mut c = node.walk();
            for ch in node.named_children(&mut c) {
                stack.push(ch);
            }
        }
    }

    pub(super) fn bind_pattern(
        &self,
        left: Node<'t>,
        value: Option<Node<'t>>,
        kind: BindKind,
        out: &mut Vec<Binding<'t>>,
    ) {
        // `a.b = v` / `a[i] = v` taints the base object `a` too.
        let base = match left.kind() {
            "attribute"
            | "member_expression"
            | "subscript"
            | "subscript_expression"
            | "selector_expression"
            | "index_expression" => {
                let mut cur = left;
                while let Some(o) = cur
                    .child_by_field_name("object")
                    .or_else(|| cur.child_by_field_name("value"))
                    .or_else(|| cur.child_by_field_name("operand"))
                {
                    cur = o;
                }
                Some(cur)
            }
            _ => None,
        };
        let mut names = Vec::new();
        match base {
            Some(b) if b.kind() == "identifier" => names.push(self.text(b).to_string()),
            Some(_) => {}
            None => self.pattern_names(left, &mut names),
        }
        let kind = if base.is_some() && kind == BindKind::Assign {
            BindKind::Append
        } else {
            kind
        };
        for name in names {
            out.push(Binding {
                name,
                value,
                kind,
                pos: left.start_byte(),
            });
        }
    }

    pub(super) fn bindings_at(&self, node: Node<'t>, out: &mut Vec<Binding<'t>>) {
        let field = |f: &str| node.child_by_field_name(f);
        match node.kind() {
            // Python
            "assignment" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Assign, out);
                }
            }
            "augmented_assignment" | "augmented_assignment_expression" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Augment, out);
                }
            }
            "for_statement" | "for_in_clause" if self.lang == Language::Python => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Iterate, out);
                }
            }
            "with_item" | "as_pattern" => {
                if node.kind() == "as_pattern" {
                    if let (Some(alias), Some(v)) = (field("alias"), node.named_child(0)) {
                        self.bind_pattern(alias, Some(v), BindKind::Assign, out);
                    }
                }
            }
            "named_expression" => {
                if let (Some(l), Some(r)) = (field("name"), field("value")) {
                    self.bind_pattern(l, Some(r), BindKind::Assign, out);
                }
            }
            // JavaScript / TypeScript
            "variable_declarator" => {
                if let (Some(l), Some(r)) = (field("name"), field("value")) {
                    self.bind_pattern(l, Some(r), BindKind::Assign, out);
                }
            }
            "assignment_expression" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Assign, out);
                }
            }
            "for_in_statement" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Iterate, out);
                }
            }
            // Go
            "short_var_declaration" | "assignment_statement" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    let mut c = l.walk();
                    let lefts: Vec<Node> = l.named_children(&mut c).collect();
                    let mut c2 = r.walk();
                    let rights: Vec<Node> = r.named_children(&mut c2).collect();
                    let augment = node.kind() == "assignment_statement"
                        && field("operator").is_some_and(|o| self.text(o) == "+=");
                    for (i, left) in lefts.iter().enumerate() {
                        let value = if lefts.len() == rights.len() {
                            rights.get(i).copied()
                        } else {
                            rights.first().copied()
                        };
                        // `xs = append(xs, v)` adds v to xs.
                        let kind = if augment {
                            BindKind::Augment
                        } else if value.is_some_and(|v| {
                            v.kind() == "call_expression"
                                && v.child_by_field_name("function")
                                    .is_some_and(|f| self.text(f) == "append")
                        }) {
                            BindKind::Append
                        } else {
                            BindKind::Assign
                        };
                        self.bind_pattern(*left, value, kind, out);
                    }
                }
            }
            "var_spec" | "const_spec" => {
                if let Some(v) = field("value") {
                    // `var a, b = x, y`: each name takes its own value from the list.
                    let mut c = v.walk();
                    let values: Vec<Node> = if v.kind() == "expression_list" {
                        v.named_children(&mut c).collect()
                    } else {
                        vec![v]
                    };
                    let mut c = node.walk();
                    let names: Vec<Node> = node.children_by_field_name("name", &mut c).collect();
                    for (i, name) in names.into_iter().enumerate() {
                        let value = if values.len() > 1 {
                            values.get(i)
                        } else {
                            values.first()
                        };
                        out.push(Binding {
                            name: self.text(name).to_string(),
                            value: value.copied().or(Some(v)),
                            kind: BindKind::Assign,
                            pos: name.start_byte(),
                        });
                    }
                }
            }
            "range_clause" => {
                if let (Some(l), Some(r)) = (field("left"), field("right")) {
                    self.bind_pattern(l, Some(r), BindKind::Iterate, out);
                }
            }
            // Calls that fill or grow a named value.
            "call" | "call_expression" => {
                let Some(func) = field("function") else {
                    return;
                };
                let Some(args) = field("arguments") else {
                    return;
                };
                let ftext = self.text(func);
                let mut c = args.walk();
                let arg_nodes: Vec<Node> = args.named_children(&mut c).collect();
                if let Some(obj) = ftext
                    .strip_suffix(".append")
                    .or_else(|| ftext.strip_suffix(".push"))
                    .or_else(|| ftext.strip_suffix(".add"))
                    .or_else(|| ftext.strip_suffix(".extend"))
                {
                    if is_simple_name(obj) {
                        for a in &arg_nodes {
                            out.push(Binding {
                                name: obj.to_string(),
                                value: Some(*a),
                                kind: BindKind::Append,
                                pos: node.start_byte(),
                            });
                        }
                    }
                }
                if self.lang == Language::Go {
                    // json.NewDecoder(r.Body).Decode(&v), json.Unmarshal(body, &v)
                    for a in &arg_nodes {
                        if a.kind() == "unary_expression" && self.text(*a).starts_with('&') {
                            if let Some(target) = a
                                .child_by_field_name("operand")
                                .filter(|o| o.kind() == "identifier")
                            {
                                out.push(Binding {
                                    name: self.text(target).to_string(),
                                    value: Some(node),
                                    kind: BindKind::OutParam,
                                    pos: node.start_byte(),
                                });
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The values bound to `name` before byte `pos` in `n`'s function (or an enclosing one).
    pub(super) fn bindings_before(&self, n: Node<'t>, name: &str) -> Vec<Binding<'t>> {
        let pos = n.start_byte();
        let mut scope = Some(self.scope(n));
        while let Some(s) = scope {
            let found: Vec<Binding> = s
                .bindings
                .iter()
                .filter(|b| b.name == name && (b.pos < pos || b.kind == BindKind::Param))
                .cloned()
                .collect();
            if !found.is_empty() {
                return found;
            }
            scope = self.outer_scope(&s);
        }
        Vec::new()
    }

    /// The source texts of the values bound to the identifier `n` before it (in its function or
    /// an enclosing one).
    pub fn bound_values(&self, n: Node<'t>) -> Vec<&'t str> {
        self.bindings_before(n, self.text(n))
            .into_iter()
            .filter_map(|b| b.value.map(|v| self.text(v)))
            .collect()
    }

    /// The value nodes bound to the identifier `n` before it.
    pub fn bound_value_nodes(&self, n: Node<'t>) -> Vec<Node<'t>> {
        self.bindings_before(n, self.text(n))
            .into_iter()
            .filter_map(|b| b.value)
            .collect()
    }
}
