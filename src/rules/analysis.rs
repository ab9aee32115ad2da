//! Intra-procedural facts the predicates need: which names a function binds and to what, which
//! values come from untrusted input (taint), which are constants, and how a string was built.
//!
//! Taint is deliberately simple: a value is tainted when its expression reads a known source (a
//! request, argv, the environment, an archive entry name) or a name that was bound, earlier in the
//! same function, to a tainted value; a sanitizing call (int(), basename, escape, ...) around a value
//! cleans it. There is no inter-procedural flow: precision over recall.

use crate::lang::Language;
use regex::Regex;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::LazyLock;
use tree_sitter::{Node, Tree};

/// How far untrusted a source is: remote (a request, an uploaded archive) or also local (argv, env, stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Only input from the network counts (SSRF, path traversal, open redirect, XSS).
    Remote,
    /// Input from the command line, environment and stdin counts too (command and code injection).
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BindKind {
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
struct Binding<'t> {
    name: String,
    value: Option<Node<'t>>,
    kind: BindKind,
    pos: usize,
}

struct Scope<'t> {
    node: Node<'t>,
    bindings: Vec<Binding<'t>>,
    /// Parameter names that hold a request object whose fields are input (Go `r *http.Request`).
    request_objects: Vec<String>,
    /// Parameters that are input by themselves (route parameters, NestJS `@Query()`).
    input_params: Vec<String>,
    /// Tainted names, computed on first need (most functions never reach a sink).
    taint: std::cell::OnceCell<Taint>,
}

/// The names of a function that hold untrusted values.
#[derive(Default)]
struct Taint {
    remote: HashSet<String>,
    local: HashSet<String>,
}

impl Taint {
    fn set(&self, trust: Trust) -> &HashSet<String> {
        if trust == Trust::Remote {
            &self.remote
        } else {
            &self.local
        }
    }
}

/// Per-file analysis, computed lazily per function.
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
    /// Named functions of the file, by name (one definition per name).
    functions: RefCell<Option<Rc<HashMap<String, Node<'t>>>>>,
    /// Functions whose scope is being built (call-site taint can loop through recursion).
    building: RefCell<HashSet<usize>>,
    /// Every call in the file, by the last segment of its callee's name.
    calls: RefCell<Option<Rc<HashMap<String, Vec<Node<'t>>>>>>,
    async_names: RefCell<Option<Rc<HashSet<String>>>>,
    /// Per-file answers that predicates would otherwise recompute for every match: `file-matches`
    /// by pattern, and the like (keyed by the predicate's own name).
    pub memo: RefCell<HashMap<String, bool>>,
    /// The functions that call an ownership helper (see the `skips-ownership-check` predicate).
    pub checking_functions: RefCell<Option<Rc<Vec<usize>>>>,
}

static PY_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(request|req)\.(args|form|values|json|data|files|cookies|headers|GET|POST|FILES|COOKIES|META|body|query_params|path_params|get_json|get_data|stream|view_args|url|path|full_path|query_string|host)\b|\.(namelist|infolist|getmembers|getnames|recv|recvfrom)\(").unwrap()
});
static PY_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\bsys\.argv\b|\bos\.environ\b|\bos\.getenv\(|\binput\(|\bsys\.stdin\b|\.parse_args\(",
    )
    .unwrap()
});
static JS_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(req|request)\.(query|body|params|headers|cookies|signedCookies|url|originalUrl|path|hostname|get|header)\b|\b(req|request)\.files?\b[\w.\[\]'\x22]*\.(originalname|name)\b|\bctx\.(query|params|request|querystring|headers|cookies)\b|\b(location|window\.location|document\.location)\.(search|hash|href|pathname)\b|\bdocument\.(cookie|URL|referrer|documentURI)\b|\.searchParams\b|\b(event|message|msg)\.data\b|\.getEntries\(|\bentry\.(fileName|entryName|path)\b").unwrap()
});
static JS_LOCAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\bprocess\.(argv|env|stdin)\b").unwrap());
static GO_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.(URL\.Query\(\)|URL\.RawQuery|URL\.Path|FormValue\(|PostFormValue\(|PathValue\(|Header\.Get\(|Referer\(\)|FormFile\(|MultipartForm\b|PostForm\b)|\b\w+\.(Query|DefaultQuery|Param|PostForm|GetHeader|QueryParam)\(|\bmux\.Vars\(|\bchi\.URLParam\(").unwrap()
});
static GO_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bos\.(Args|Getenv|LookupEnv|Stdin)\b|\bflag\.(Arg|Args)\(").unwrap()
});

/// Calls whose result is safe to use in any sink that takes text (numbers, escaped text, base names).
static SANITIZER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(int|float|bool|len|abs|round|secure_filename|basename|quote|escape|escape_\w*|\w*_escape|clean|sanitize\w*|urlencode|url_for|UUID|uuid\w*|parseInt|parseFloat|Number|Boolean|encodeURIComponent|encodeURI|escapeHtml|escapeHTML|escapeRegExp|escapeRegex|isValid\w*|Atoi|ParseInt|ParseUint|ParseFloat|ParseBool|Base|EscapeString|HTMLEscapeString|QueryEscape|PathEscape|QuoteMeta|Itoa|FormatInt|Clean\w*|count|hash\w*|hexdigest|digest|compare_digest|timingSafeEqual|ConstantTimeCompare)$").unwrap()
});
/// Calls that return (a transformation of) their arguments, so taint flows through them.
static PASSTHROUGH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(join|Join|resolve|normpath|normalize|abspath|realpath|expanduser|urljoin|Clean|Abs|format|Sprintf|Sprint|Sprintln|replace|Replace|ReplaceAll|strip|lstrip|rstrip|trim|trimStart|trimEnd|TrimSpace|Trim|TrimPrefix|TrimSuffix|TrimLeft|TrimRight|lower|upper|casefold|toLowerCase|toUpperCase|ToLower|ToUpper|concat|decode|unquote|unquote_plus|decodeURIComponent|decodeURI|unescape|b64decode|urlsafe_b64decode|DecodeString|loads|parse|Parse|ParseRequestURI|from|String|str|toString|split|Split|SplitN|slice|substring|substr|Fields|urlparse|urlsplit|URL|Buffer|bytes|bytearray|dict|list|tuple|sorted|reversed|getattr|valueOf|fromEntries|assign|await|Promise|resolve|fsPath|Path|PurePath|filepath|Dir|Ext|NewDecoder|NewReader|NewScanner|ReadAll|LimitReader|MaxBytesReader|TeeReader|NopCloser|MultiReader|Decode|Unmarshal|Bytes|Text|readFileSync|readFile|json|text|body|Query|Values)$").unwrap()
});
static NOT_INPUT_TYPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Session|User|Request|Response|Connection|Cursor|Settings|Config|Logger|BackgroundTasks|Engine|Client|Repository|Service|Depends").unwrap()
});
static NEST_INPUT_DECORATOR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"@(Query|Param|Body|Headers|Req)\b").unwrap());
static PY_HANDLER_DECORATOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.(route|get|post|put|patch|delete|api_route|websocket)\(|@api_view|@\w*\.?(command|argument|option)\b").unwrap()
});
static PARAM_NOT_INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(self|cls|request|req|db|session|current_user|user|background_tasks|response|res|ctx|context|conn|cursor|settings|config|logger)$").unwrap()
});

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
            functions: RefCell::new(None),
            building: RefCell::new(HashSet::new()),
            calls: RefCell::new(None),
            async_names: RefCell::new(None),
            memo: RefCell::new(HashMap::new()),
            checking_functions: RefCell::new(None),
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

    fn scope(&self, n: Node<'t>) -> Rc<Scope<'t>> {
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

    fn outer_scope(&self, s: &Scope<'t>) -> Option<Rc<Scope<'t>>> {
        if s.node.id() == self.root.id() {
            None
        } else {
            Some(self.scope(self.enclosing_function(s.node)))
        }
    }

    fn build_scope(&self, f: Node<'t>) -> Scope<'t> {
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

    /// The taint of a scope, computed once; None while it is being computed (recursion).
    fn taint_of<'s>(&self, scope: &'s Scope<'t>) -> Option<&'s Taint> {
        if let Some(t) = scope.taint.get() {
            return Some(t);
        }
        if !self.computing.borrow_mut().insert(scope.node.id()) {
            return None;
        }
        let t = self.compute_taint(scope);
        self.computing.borrow_mut().remove(&scope.node.id());
        let _ = scope.taint.set(t);
        scope.taint.get()
    }

    fn compute_taint(&self, scope: &Scope<'t>) -> Taint {
        let mut t = Taint::default();
        for p in &scope.input_params {
            t.remote.insert(p.clone());
            t.local.insert(p.clone());
        }
        // Names inherit taint from the enclosing function (closures, nested handlers).
        if let Some(outer) = self.outer_scope(scope) {
            if let Some(ot) = self.taint_of(&outer) {
                t.remote.extend(ot.remote.iter().cloned());
                t.local.extend(ot.local.iter().cloned());
            }
        }
        if scope.node.id() != self.root.id() {
            self.taint_params_from_call_sites(scope.node, &mut t);
        }
        // Two passes, so that a value tainted late in a loop reaches uses earlier in it.
        for _ in 0..2 {
            for b in &scope.bindings {
                let Some(v) = b.value else { continue };
                if b.kind == BindKind::Param {
                    continue;
                }
                if !t.remote.contains(&b.name) && self.expr_tainted(v, scope, &t, Trust::Remote) {
                    t.remote.insert(b.name.clone());
                }
                if !t.local.contains(&b.name) && self.expr_tainted(v, scope, &t, Trust::Local) {
                    t.local.insert(b.name.clone());
                }
            }
        }
        t
    }

    /// The function of this file a callee names: `helper(...)`, or `self.helper(...)` /
    /// `this.helper(...)`.
    fn local_function(&self, callee: Node<'t>) -> Option<Node<'t>> {
        let name = match callee.kind() {
            "identifier" => self.text(callee),
            "attribute" | "member_expression" | "selector_expression" => {
                let obj = callee
                    .child_by_field_name("object")
                    .or_else(|| callee.child_by_field_name("operand"))?;
                if !matches!(self.text(obj), "self" | "this" | "cls")
                    && !(self.lang == Language::Go && obj.kind() == "identifier")
                {
                    return None;
                }
                let prop = callee
                    .child_by_field_name("attribute")
                    .or_else(|| callee.child_by_field_name("property"))
                    .or_else(|| callee.child_by_field_name("field"))?;
                self.text(prop)
            }
            _ => return None,
        };
        if name.len() < 3 {
            return None;
        }
        self.functions_by_name().get(name).copied()
    }

    fn functions_by_name(&self) -> Rc<HashMap<String, Node<'t>>> {
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

    /// Whether `f`'s return value is tainted by the sources it reads itself, and whether by its
    /// parameters (computed once per function, with every parameter assumed tainted).
    fn return_taint(&self, f: Node<'t>, trust: Trust) -> (bool, bool) {
        let key = (f.id(), trust == Trust::Remote);
        if let Some(r) = self.returns.borrow().get(&key) {
            return *r;
        }
        // Recursion: assume clean until known.
        self.returns.borrow_mut().insert(key, (false, false));
        let scope = self.scope(f);
        let mut result = (false, false);
        for with_params in [false, true] {
            let mut t = Taint::default();
            for p in &scope.input_params {
                t.remote.insert(p.clone());
                t.local.insert(p.clone());
            }
            if with_params {
                for b in scope.bindings.iter().filter(|b| b.kind == BindKind::Param) {
                    t.remote.insert(b.name.clone());
                    t.local.insert(b.name.clone());
                }
            }
            for _ in 0..2 {
                for b in &scope.bindings {
                    let Some(v) = b.value else { continue };
                    if b.kind != BindKind::Param
                        && !t.set(trust).contains(&b.name)
                        && self.expr_tainted(v, &scope, &t, trust)
                    {
                        t.remote.insert(b.name.clone());
                        t.local.insert(b.name.clone());
                    }
                }
            }
            let tainted = self
                .return_values(f)
                .into_iter()
                .any(|r| self.expr_tainted(r, &scope, &t, trust));
            if with_params {
                result.1 = tainted;
            } else {
                result.0 = tainted;
            }
        }
        self.returns.borrow_mut().insert(key, result);
        result
    }

    /// The expressions a function returns (not those of nested functions).
    fn return_values(&self, f: Node<'t>) -> Vec<Node<'t>> {
        let Some(body) = f.child_by_field_name("body") else {
            return Vec::new();
        };
        if f.kind() == "arrow_function" && body.kind() != "statement_block" {
            return vec![body];
        }
        let mut out = Vec::new();
        let mut stack = vec![body];
        while let Some(n) = stack.pop() {
            if n.id() != body.id() && self.is_function(n) {
                continue;
            }
            if n.kind() == "return_statement" {
                let mut c = n.walk();
                out.extend(n.named_children(&mut c).filter(|x| x.kind() != "comment"));
                continue;
            }
            let mut c = n.walk();
            stack.extend(n.named_children(&mut c));
        }
        out
    }

    /// A helper in the same file called with tainted arguments has tainted parameters: request
    /// handlers often pass input to a small function that does the dangerous call.
    fn taint_params_from_call_sites(&self, f: Node<'t>, taint: &mut Taint) {
        let name = self.function_name_of(f);
        if name.len() < 3
            || matches!(
                name,
                "get"
                    | "set"
                    | "run"
                    | "main"
                    | "init"
                    | "handle"
                    | "update"
                    | "process"
                    | "render"
                    | "call"
            )
        {
            return;
        }
        let Some(params) = f.child_by_field_name("parameters") else {
            return;
        };
        let mut c = params.walk();
        let mut names: Vec<Vec<String>> = Vec::new();
        for p in params.named_children(&mut c) {
            if matches!(
                p.kind(),
                "comment" | "keyword_separator" | "positional_separator"
            ) {
                continue;
            }
            let mut n = Vec::new();
            self.pattern_names(p, &mut n);
            names.push(n);
        }
        let is_method = matches!(f.kind(), "method_definition" | "method_declaration")
            || (self.lang == Language::Python
                && names
                    .first()
                    .is_some_and(|n| n.first().is_some_and(|x| x == "self" || x == "cls")));
        let offset = usize::from(self.lang == Language::Python && is_method);
        let calls = self.calls_by_name();
        let Some(sites) = calls.get(name) else { return };
        for call in sites.iter().take(20) {
            let Some(callee) = call.child_by_field_name("function") else {
                continue;
            };
            let member = callee.kind() != "identifier";
            if member {
                // obj.method(...): only when obj is this object (self, this, a Go receiver).
                let obj = callee
                    .child_by_field_name("object")
                    .or_else(|| callee.child_by_field_name("operand"));
                let ok = is_method
                    && obj.is_some_and(|o| {
                        o.kind() == "identifier"
                            || o.kind() == "this"
                            || matches!(self.text(o), "self" | "cls" | "this")
                    });
                if !ok {
                    continue;
                }
            } else if is_method && self.lang != Language::Python {
                continue;
            }
            let Some(args) = call.child_by_field_name("arguments") else {
                continue;
            };
            let mut c = args.walk();
            for (i, arg) in args
                .named_children(&mut c)
                .filter(|a| a.kind() != "comment")
                .enumerate()
            {
                let (targets, value): (Vec<String>, Node) = if arg.kind() == "keyword_argument" {
                    let kw = arg
                        .child_by_field_name("name")
                        .map(|n| self.text(n).to_string())
                        .unwrap_or_default();
                    (vec![kw], arg.child_by_field_name("value").unwrap_or(arg))
                } else {
                    (names.get(i + offset).cloned().unwrap_or_default(), arg)
                };
                if targets.is_empty() {
                    continue;
                }
                let remote = self.is_tainted(value, Trust::Remote);
                let local = remote || self.is_tainted(value, Trust::Local);
                for t in targets {
                    if remote {
                        taint.remote.insert(t.clone());
                    }
                    if local {
                        taint.local.insert(t);
                    }
                }
            }
        }
    }

    fn calls_by_name(&self) -> Rc<HashMap<String, Vec<Node<'t>>>> {
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

    /// Parameters; those that carry request input (route parameters, NestJS `@Query()`) are tainted.
    fn collect_params(
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
        let py_handler =
            self.lang == Language::Python && PY_HANDLER_DECORATOR.is_match(&decorators);
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
                    if ty.contains("http.Request")
                        || ty.contains("gin.Context")
                        || ty.contains("echo.Context")
                        || ty.contains("fiber.Ctx")
                    {
                        request_objects.extend(names.iter().cloned());
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

    /// The identifiers a binding pattern introduces (`a`, `a, b`, `{ a, b: c }`, `[x, ...rest]`, `p: T = 1`).
    fn pattern_names(&self, n: Node<'t>, out: &mut Vec<String>) {
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
    fn collect_bindings(&self, n: Node<'t>, out: &mut Vec<Binding<'t>>) {
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

    fn bind_pattern(
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

    fn bindings_at(&self, node: Node<'t>, out: &mut Vec<Binding<'t>>) {
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
                    let mut c = node.walk();
                    for name in node.children_by_field_name("name", &mut c) {
                        out.push(Binding {
                            name: self.text(name).to_string(),
                            value: Some(v),
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

    /// Whether the value of `n` derives from untrusted input at `trust`.
    pub fn is_tainted(&self, n: Node<'t>, trust: Trust) -> bool {
        let scope = self.scope(n);
        let empty = Taint::default();
        let t = self.taint_of(&scope).unwrap_or(&empty);
        self.expr_tainted(n, &scope, t, trust)
    }

    fn source_match(&self, text: &str, scope: &Scope<'t>, trust: Trust) -> bool {
        let (remote, local): (&Regex, &Regex) = match self.lang {
            Language::Python => (&PY_REMOTE, &PY_LOCAL),
            Language::Go => (&GO_REMOTE, &GO_LOCAL),
            _ => (&JS_REMOTE, &JS_LOCAL),
        };
        if remote.is_match(text) || (trust == Trust::Local && local.is_match(text)) {
            return true;
        }
        if self.lang == Language::Go {
            // Archive entry names are input: `range zr.File`, `hdr, _ := tr.Next()`.
            if (self.src.contains("\"archive/zip\"") && text.ends_with(".File"))
                || (self.src.contains("\"archive/tar\"") && text.ends_with(".Next()"))
            {
                return true;
            }
            for obj in &scope.request_objects {
                if let Some(rest) = text
                    .strip_prefix(obj.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                {
                    if !rest.starts_with("Context")
                        && !rest.starts_with("Method")
                        && !rest.starts_with("WithContext")
                    {
                        return true;
                    }
                }
            }
        }
        false
    }

    fn expr_tainted(&self, n: Node<'t>, scope: &Scope<'t>, t: &Taint, trust: Trust) -> bool {
        self.expr_tainted_depth(n, scope, t, trust, 0)
    }

    fn expr_tainted_depth(
        &self,
        n: Node<'t>,
        scope: &Scope<'t>,
        t: &Taint,
        trust: Trust,
        depth: usize,
    ) -> bool {
        if depth > 40 {
            return false;
        }
        let kind = n.kind();
        if LITERAL_KINDS.contains(&kind) || kind == "comment" {
            return false;
        }
        match kind {
            "identifier" | "shorthand_property_identifier" => {
                let name = self.text(n);
                return t.set(trust).contains(name) || self.source_match(name, scope, trust);
            }
            "call" | "call_expression" | "new_expression" => {
                let func = n
                    .child_by_field_name("function")
                    .or_else(|| n.child_by_field_name("constructor"));
                if let Some(f) = func {
                    let ftext = self.text(f);
                    let last = ftext.rsplit('.').next().unwrap_or(ftext);
                    if SANITIZER.is_match(last) {
                        return false;
                    }
                    if self.source_match(ftext, scope, trust)
                        || self.source_match(&format!("{ftext}("), scope, trust)
                    {
                        return true;
                    }
                    // A method of a tainted value (`name.strip()`, `r.URL.Query().Get("x")`) is tainted.
                    if let Some(obj) = f
                        .child_by_field_name("object")
                        .or_else(|| f.child_by_field_name("operand"))
                    {
                        if self.expr_tainted_depth(obj, scope, t, trust, depth + 1) {
                            return true;
                        }
                    }
                    // A function of this file returns what its body says: input it reads itself,
                    // or (a transformation of) its arguments.
                    if let Some(def) = self.local_function(f) {
                        let (from_sources, from_params) = self.return_taint(def, trust);
                        if from_sources {
                            return true;
                        }
                        return from_params
                            && n.child_by_field_name("arguments").is_some_and(|a| {
                                self.expr_tainted_depth(a, scope, t, trust, depth + 1)
                            });
                    }
                    // Other calls pass taint from their arguments only when they are known to return
                    // (a transformation of) their input; an unknown function (a database lookup by
                    // id, a validator) is not assumed to.
                    if !PASSTHROUGH.is_match(last)
                        && !(f.kind() == "identifier" && kind == "new_expression")
                    {
                        return false;
                    }
                    if let Some(args) = n.child_by_field_name("arguments") {
                        return self.expr_tainted_depth(args, scope, t, trust, depth + 1);
                    }
                    return false;
                }
            }
            "comparison_operator" | "not_operator" | "boolean_operator"
                if self.lang == Language::Python =>
            {
                return false;
            }
            "binary_expression" => {
                if let Some(op) = n.child_by_field_name("operator") {
                    if matches!(
                        self.text(op),
                        "==" | "!="
                            | "==="
                            | "!=="
                            | "<"
                            | ">"
                            | "<="
                            | ">="
                            | "instanceof"
                            | "in"
                            | "&&"
                            | "||"
                    ) {
                        return false;
                    }
                }
            }
            "attribute"
            | "member_expression"
            | "subscript"
            | "subscript_expression"
            | "selector_expression"
            | "index_expression" => {
                if self.source_match(self.text(n), scope, trust) {
                    return true;
                }
                // `plugin.PLUGIN_ID`, `Model.TABLE`: a class constant, whatever the object. (Not in
                // Go, where `in.URL` and `req.ID` are exported fields holding data.)
                let field = n
                    .child_by_field_name("attribute")
                    .or_else(|| n.child_by_field_name("property"))
                    .or_else(|| n.child_by_field_name("field"));
                if self.lang != Language::Go && field.is_some_and(|f| is_all_caps(self.text(f))) {
                    return false;
                }
            }
            "keyword_argument" | "pair" => {
                return n
                    .child_by_field_name("value")
                    .is_some_and(|v| self.expr_tainted_depth(v, scope, t, trust, depth + 1));
            }
            "lambda" | "arrow_function" | "function_expression" | "func_literal" => return false,
            _ => {}
        }
        let mut c = n.walk();
        let children: Vec<Node> = n.named_children(&mut c).collect();
        children
            .into_iter()
            .any(|ch| self.expr_tainted_depth(ch, scope, t, trust, depth + 1))
    }

    /// The values bound to `name` before byte `pos` in `n`'s function (or an enclosing one).
    fn bindings_before(&self, n: Node<'t>, name: &str) -> Vec<Binding<'t>> {
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

    /// Whether `n` is a constant, or built only from constants (literals, ALL_CAPS names, names bound
    /// only to constants, placeholder lists such as `", ".join(["%s"] * n)`, numbers).
    pub fn is_constant(&self, n: Node<'t>) -> bool {
        self.is_constant_depth(n, 0)
    }

    fn is_constant_depth(&self, n: Node<'t>, depth: usize) -> bool {
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

    fn args_constant_or_numeric(&self, call: Node<'t>, depth: usize) -> bool {
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

    fn string_parts_depth(&self, n: Node<'t>, depth: usize) -> Option<(String, bool)> {
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
                    let (lit, d) = self.string_parts_depth(*arg_nodes.first()?, depth + 1)?;
                    let rest_dynamic = arg_nodes
                        .iter()
                        .skip(1)
                        .any(|a| !self.is_constant_depth(*a, depth + 1));
                    return Some((lit, d || rest_dynamic));
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
    let found = n.children(&mut c).any(|ch| ch.kind() == "async");
    found
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

/// `", ".join(["%s"] * len(ids))`, `ids.map(() => "?").join(",")`, `"?" + ",?" * n`: SQL placeholders, not data.
fn is_placeholder_builder(text: &str) -> bool {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"["'`](\?|%s|\$\d*|\$%d|:\w+|@\w+)["'`]|`\$\$\{"#).unwrap());
    static BUILDER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"join|Join|repeat|Repeat|map\(|\*|range").unwrap());
    RE.is_match(text)
        && BUILDER.is_match(text)
        && !text.contains("request")
        && !text.contains("req.")
}
