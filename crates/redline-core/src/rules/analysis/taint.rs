//! Taint: which values come from untrusted input. A value is tainted when its expression reads
//! a known source (a request, argv, the environment, an archive entry name) or a name bound to a
//! tainted value; a sanitizing call cleans it. Within a file, taint also flows through the return
//! values of local helpers and into a helper's parameters from its call sites.

use super::*;
use crate::text::ascii_regex;

/// The names of a function that hold untrusted values.
#[derive(Default)]
pub(super) struct Taint {
    pub(super) remote: HashSet<String>,
    pub(super) local: HashSet<String>,
}

impl Taint {
    pub(super) fn set(&self, trust: Trust) -> &HashSet<String> {
        if trust == Trust::Remote {
            &self.remote
        } else {
            &self.local
        }
    }
}

pub(super) static PY_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\b(request|req)\.(args|form|values|json|data|files|cookies|headers|GET|POST|FILES|COOKIES|META|body|query_params|path_params|get_json|get_data|stream|view_args|url|path|full_path|query_string|host|match_info|query|rel_url|post|content|text|multipart|raw_path|path_qs)\b|\bself\.(get_argument|get_arguments|get_query_argument|get_query_arguments|get_body_argument|get_body_arguments|get_cookie|get_secure_cookie)\(|\bself\.request\.(body|arguments|query_arguments|body_arguments|files|uri|path|query|headers|host)\b|\.(namelist|infolist|getmembers|getnames|recv|recvfrom)\(").unwrap()
});

pub(super) static PY_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(
        r"\bsys\.argv\b|\bos\.environ\b|\bos\.getenv\(|\binput\(|\bsys\.stdin\b|\.parse_args\(",
    )
    .unwrap()
});

pub(super) static JS_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\b(req|request)\.(query|body|params|headers|cookies|signedCookies|url|originalUrl|path|hostname|get|header|nextUrl|json|formData|text|raw)\b|\b(c|ctx|context)\.req\.(query|queries|param|params|json|parseBody|formData|text|header|url|path|body|headers)\b|\bctx\.(path|url|href|originalUrl|get|host|hostname|search)\b|\b(req|request)\.files?\b[\w.\[\]'\x22]*\.(originalname|name)\b|\bctx\.(query|params|request|querystring|headers|cookies)\b|\b(location|window\.location|document\.location)\.(search|hash|href|pathname)\b|\bdocument\.(cookie|URL|referrer|documentURI)\b|\.searchParams\b|\b(event|message|msg)\.data\b|\.getEntries\(|\bentry\.(fileName|entryName|path)\b").unwrap()
});

pub(super) static JS_LOCAL: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"\bprocess\.(argv|env|stdin)\b").unwrap());

pub(super) static GO_REMOTE: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\.(URL\.Query\(\)|URL\.RawQuery|URL\.Path|FormValue\(|PostFormValue\(|PathValue\(|Header\.Get\(|Referer\(\)|FormFile\(|MultipartForm\b|PostForm\b)|\b\w+\.(Query|DefaultQuery|Param|Params|PostForm|DefaultPostForm|GetHeader|QueryParam|QueryParams|FormParams|GetQuery|GetPostForm|QueryArray|PostFormArray)\(|\bmux\.Vars\(|\bchi\.URLParam\(|\bchi\.URLParamFromCtx\(").unwrap()
});

pub(super) static GO_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"\bos\.(Args|Getenv|LookupEnv|Stdin)\b|\bflag\.(Arg|Args)\(").unwrap()
});

/// Calls whose result is safe to use in any sink that takes text (numbers, escaped text, base names).
pub(super) static SANITIZER: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"^(int|float|bool|len|abs|round|secure_filename|basename|quote|escape|escape_\w*|\w*_escape|clean|sanitize\w*|urlencode|url_for|UUID|uuid\w*|parseInt|parseFloat|Number|Boolean|encodeURIComponent|encodeURI|escapeHtml|escapeHTML|escapeRegExp|escapeRegex|isValid\w*|validate\w*|Validate\w*|Atoi|ParseInt|ParseUint|ParseFloat|ParseBool|Base|EscapeString|HTMLEscapeString|QueryEscape|PathEscape|QuoteMeta|Itoa|FormatInt|Clean\w*|count|hash\w*|hexdigest|digest|compare_digest|timingSafeEqual|ConstantTimeCompare)$").unwrap()
});

/// Calls that return (a transformation of) their arguments, so taint flows through them.
pub(super) static PASSTHROUGH: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"^(join|Join|resolve|normpath|normalize|abspath|realpath|expanduser|urljoin|Clean|Abs|format|Sprintf|Sprint|Sprintln|replace|Replace|ReplaceAll|strip|lstrip|rstrip|trim|trimStart|trimEnd|TrimSpace|Trim|TrimPrefix|TrimSuffix|TrimLeft|TrimRight|lower|upper|casefold|toLowerCase|toUpperCase|ToLower|ToUpper|concat|decode|unquote|unquote_plus|decodeURIComponent|decodeURI|unescape|b64decode|urlsafe_b64decode|DecodeString|loads|parse|Parse|ParseRequestURI|from|String|str|toString|split|Split|SplitN|slice|substring|substr|Fields|urlparse|urlsplit|URL|Buffer|bytes|bytearray|dict|list|tuple|sorted|reversed|getattr|enumerate|iter|items|values|valueOf|fromEntries|assign|await|Promise|resolve|fsPath|Path|PurePath|filepath|Dir|Ext|NewDecoder|NewReader|NewScanner|ReadAll|LimitReader|MaxBytesReader|TeeReader|NopCloser|MultiReader|Decode|Unmarshal|Bytes|Text|readFileSync|readFile|json|text|body|Query|Values)$").unwrap()
});

impl<'t> Analysis<'t> {
    /// The taint of a scope, computed once; None while it is being computed (recursion).
    pub(super) fn taint_of<'s>(&self, scope: &'s Scope<'t>) -> Option<&'s Taint> {
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

    pub(super) fn compute_taint(&self, scope: &Scope<'t>) -> Taint {
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
    pub(super) fn local_function(&self, callee: Node<'t>) -> Option<Node<'t>> {
        let name = match callee.kind() {
            "identifier" => self.text(callee),
            "attribute" | "member_expression" | "selector_expression" => {
                let obj = callee
                    .child_by_field_name("object")
                    .or_else(|| callee.child_by_field_name("operand"))?;
                let own_receiver = matches!(self.text(obj), "self" | "this" | "cls")
                    || (self.lang == Language::Go && obj.kind() == "identifier");
                if !own_receiver {
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

    /// Whether `f`'s return value is tainted by the sources it reads itself, and whether by its
    /// parameters (computed once per function, with every parameter assumed tainted).
    pub(super) fn return_taint(&self, f: Node<'t>, trust: Trust) -> (bool, bool) {
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
            // What a parameter taints counts for both kinds of input.
            self.spread_through_bindings(&scope, &mut t, trust, true);
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
    pub(super) fn return_values(&self, f: Node<'t>) -> Vec<Node<'t>> {
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
    pub(super) fn taint_params_from_call_sites(&self, f: Node<'t>, taint: &mut Taint) {
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

    /// Whether the value of `n` derives from untrusted input at `trust`.
    pub fn is_tainted(&self, n: Node<'t>, trust: Trust) -> bool {
        let scope = self.scope(n);
        let empty = Taint::default();
        let t = self.taint_of(&scope).unwrap_or(&empty);
        self.expr_tainted(n, &scope, t, trust)
    }

    /// Whether `n` carries a parameter of its function (or any input): a function another file
    /// calls takes its input from callers this file does not show. Much broader than
    /// `is_tainted`, so only candidates (which a model must confirm) use it.
    pub fn is_param_tainted(&self, n: Node<'t>) -> bool {
        let scope = self.scope(n);
        let mut t = Taint::default();
        if let Some(known) = self.taint_of(&scope) {
            t.local.extend(known.local.iter().cloned());
        }
        // Receivers and the request/response/context objects of handlers are not text a caller
        // chose (the request's fields are sources already).
        let receiver = |name: &str| {
            matches!(
                name,
                "self"
                    | "cls"
                    | "this"
                    | "ctx"
                    | "context"
                    | "c"
                    | "e"
                    | "r"
                    | "w"
                    | "req"
                    | "res"
                    | "request"
                    | "response"
            )
        };
        for b in &scope.bindings {
            if b.kind == BindKind::Param && !receiver(&b.name) {
                t.local.insert(b.name.clone());
            }
        }
        self.spread_through_bindings(&scope, &mut t, Trust::Local, false);
        self.expr_tainted(n, &scope, &t, Trust::Local)
    }

    /// Marks the scope's local bindings whose value is tainted under `trust`, twice over so that
    /// a chain of two assignments is followed: in `trust`'s set, or in both sets with `both`.
    fn spread_through_bindings(&self, scope: &Scope<'t>, t: &mut Taint, trust: Trust, both: bool) {
        for _ in 0..2 {
            for b in &scope.bindings {
                let Some(v) = b.value else { continue };
                if b.kind != BindKind::Param
                    && !t.set(trust).contains(&b.name)
                    && self.expr_tainted(v, scope, t, trust)
                {
                    if both || trust == Trust::Remote {
                        t.remote.insert(b.name.clone());
                    }
                    if both || trust == Trust::Local {
                        t.local.insert(b.name.clone());
                    }
                }
            }
        }
    }

    /// Whether `text` reads request input by its spelling alone (`request.GET`, `req.query.id`).
    pub(super) fn is_remote_source_text(&self, text: &str) -> bool {
        match self.lang {
            Language::Python => PY_REMOTE.is_match(text),
            Language::Go => GO_REMOTE.is_match(text),
            _ => JS_REMOTE.is_match(text),
        }
    }

    pub(super) fn source_match(&self, text: &str, scope: &Scope<'t>, trust: Trust) -> bool {
        let local: &Regex = match self.lang {
            Language::Python => &PY_LOCAL,
            Language::Go => &GO_LOCAL,
            _ => &JS_LOCAL,
        };
        if self.is_remote_source_text(text) || (trust == Trust::Local && local.is_match(text)) {
            return true;
        }
        if self.lang == Language::Go {
            // Archive entry names are input: `range zr.File`, `hdr, _ := tr.Next()`.
            if (self.src.contains("\"archive/zip\"") && text.ends_with(".File"))
                || (self.src.contains("\"archive/tar\"")
                    && (text.ends_with(".Next()") || text.ends_with(".Next(")))
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

    pub(super) fn expr_tainted(
        &self,
        n: Node<'t>,
        scope: &Scope<'t>,
        t: &Taint,
        trust: Trust,
    ) -> bool {
        self.expr_tainted_depth(n, scope, t, trust, 0)
    }

    pub(super) fn expr_tainted_depth(
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
                    if SANITIZER.is_match(last) && !keeps_dot_dot(self, ftext, n) {
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
                    let passes_input = PASSTHROUGH.is_match(last)
                        || (f.kind() == "identifier" && kind == "new_expression");
                    if !passes_input {
                        return false;
                    }
                    if let Some(args) = n.child_by_field_name("arguments") {
                        return self.expr_tainted_depth(args, scope, t, trust, depth + 1);
                    }
                    return false;
                }
            }
            // `a or b` yields one of its operands (`request.args.get("next") or "/"`), unlike a
            // comparison or `not`. Only network input is followed through it: the fallback chains
            // of configuration (`os.environ.get("MANPAGER") or os.environ.get("PAGER")`) name a
            // command the user chose.
            "comparison_operator" | "not_operator" if self.lang == Language::Python => {
                return false;
            }
            "boolean_operator" if self.lang == Language::Python && trust == Trust::Local => {
                return false;
            }
            "binary_expression" => {
                if let Some(op) = n.child_by_field_name("operator") {
                    let op = self.text(op);
                    // In JavaScript `a || b` and `a && b` yield an operand (`req.query.next ||
                    // '/'`); in Go they yield a bool. As in Python, only network input is
                    // followed through them (`process.env.SHELL || '/bin/sh'` is configuration).
                    let boolean = matches!(op, "&&" | "||")
                        && (self.lang == Language::Go || trust == Trust::Local);
                    if boolean
                        || matches!(
                            op,
                            "==" | "!="
                                | "==="
                                | "!=="
                                | "<"
                                | ">"
                                | "<="
                                | ">="
                                | "instanceof"
                                | "in"
                        )
                    {
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
}

/// Go's `filepath.Clean`/`path.Clean` of a relative path keeps its leading `..` (`../../etc`
/// stays as it is): it sanitizes only a path rooted first (`"/" + name`, `filepath.Join("/", name)`).
fn keeps_dot_dot(a: &Analysis<'_>, ftext: &str, call: Node<'_>) -> bool {
    if a.lang != Language::Go || !matches!(ftext, "filepath.Clean" | "path.Clean") {
        return false;
    }
    let arg = call
        .child_by_field_name("arguments")
        .and_then(|args| args.named_child(0))
        .map(|x| a.text(x).trim_start())
        .unwrap_or("");
    // What a rooted argument starts with: a slash, or a join onto one.
    const ROOTED: &[&str] = &[
        "\"/\"",
        "`/`",
        "string(filepath.Separator)",
        "string(os.PathSeparator)",
        "filepath.Join(\"/\"",
        "path.Join(\"/\"",
        "filepath.Join(string(os.PathSeparator)",
    ];
    !ROOTED.iter().any(|p| arg.starts_with(p))
}
