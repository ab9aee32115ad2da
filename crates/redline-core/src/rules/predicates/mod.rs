//! Predicates that narrow a rule's query matches where a query cannot say it. Each takes the
//! analysis of the file, an optional argument (a regex for the `*-matches` family), the target
//! node and the match's captures. Rules name them in `when`; a name that is not a `Predicate` is
//! an error when the rules load, never a check that silently does not run.
//!
//! The families live in their own files: injection, secrets, errors, resources, concurrency,
//! authorization, correctness and redos (regex shapes); the helpers they share are here.

use super::analysis::{Analysis, Trust};
use crate::lang::Language;
use crate::text::ascii_regex;
use regex::Regex;
use std::sync::LazyLock;
use tree_sitter::Node;

/// A regex compiled once per call site (with ASCII classes, as every rule regex: see
/// `text::ascii_regex`).
macro_rules! cached_regex {
    ($re:expr) => {{
        static RE: LazyLock<Regex> =
            LazyLock::new(|| ascii_regex($re).expect("a valid built-in regex"));
        &*RE
    }};
}

mod authorization;
mod concurrency;
mod correctness;
mod errors;
mod injection;
mod markup;
mod redos;
mod regex_shape;
mod resources;
mod secrets;

/// Every predicate a rule may use in `when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predicate {
    CallMatches,
    PromisifiedExec,
    MutatedParam,
    Tainted,
    TaintedLocal,
    ParamTainted,
    DynamicString,
    DynamicOrTainted,
    DynamicSql,
    NotConstant,
    Unsanitized,
    HtmlTainted,
    /// `html-tainted`, with the finding on the line of the request value.
    HtmlTaintedValue,
    MarkupFromValues,
    CodeFromValues,
    PasswordContext,
    TokenContext,
    SecretCompare,
    SecretLiteral,
    KnownSecretShape,
    InsideLoop,
    BareExcept,
    PrototypePollution,
    FloatingPromise,
    AsyncCallback,
    GoErrUnchecked,
    GoBlankError,
    GoCloseAfterReturn,
    JsReturnKeepsClient,
    LoggedAndContinued,
    SkipsOwnershipCheck,
    FloorCount,
    GoUnlockedGuardedWrite,
    LostUpdate,
    LooseEquality,
    TextMatches,
    StatementMatches,
    FunctionMatches,
    FunctionOrHelpersMatch,
    FileMatches,
    InFunction,
    NamedBy,
    PrefixChecked,
    BacktrackingRegex,
    LeadingRunRegex,
}

impl Predicate {
    /// Names as rules write them.
    pub const NAMES: &[(&str, Predicate)] = &[
        ("call-matches", Predicate::CallMatches),
        ("promisified-exec", Predicate::PromisifiedExec),
        ("mutated-param", Predicate::MutatedParam),
        ("tainted", Predicate::Tainted),
        ("tainted-local", Predicate::TaintedLocal),
        ("param-tainted", Predicate::ParamTainted),
        ("dynamic-string", Predicate::DynamicString),
        ("dynamic-or-tainted", Predicate::DynamicOrTainted),
        ("dynamic-sql", Predicate::DynamicSql),
        ("not-constant", Predicate::NotConstant),
        ("unsanitized", Predicate::Unsanitized),
        ("html-tainted", Predicate::HtmlTainted),
        ("html-tainted-value", Predicate::HtmlTaintedValue),
        ("markup-from-values", Predicate::MarkupFromValues),
        ("code-from-values", Predicate::CodeFromValues),
        ("password-context", Predicate::PasswordContext),
        ("token-context", Predicate::TokenContext),
        ("secret-compare", Predicate::SecretCompare),
        ("secret-literal", Predicate::SecretLiteral),
        ("known-secret-shape", Predicate::KnownSecretShape),
        ("inside-loop", Predicate::InsideLoop),
        ("bare-except", Predicate::BareExcept),
        ("prototype-pollution", Predicate::PrototypePollution),
        ("floating-promise", Predicate::FloatingPromise),
        ("async-callback", Predicate::AsyncCallback),
        ("go-err-unchecked", Predicate::GoErrUnchecked),
        ("go-blank-error", Predicate::GoBlankError),
        ("go-close-after-return", Predicate::GoCloseAfterReturn),
        ("js-return-keeps-client", Predicate::JsReturnKeepsClient),
        ("logged-and-continued", Predicate::LoggedAndContinued),
        ("skips-ownership-check", Predicate::SkipsOwnershipCheck),
        ("floor-count", Predicate::FloorCount),
        (
            "go-unlocked-guarded-write",
            Predicate::GoUnlockedGuardedWrite,
        ),
        ("lost-update", Predicate::LostUpdate),
        ("loose-equality", Predicate::LooseEquality),
        ("text-matches", Predicate::TextMatches),
        ("statement-matches", Predicate::StatementMatches),
        ("function-matches", Predicate::FunctionMatches),
        (
            "function-or-helpers-match",
            Predicate::FunctionOrHelpersMatch,
        ),
        ("file-matches", Predicate::FileMatches),
        ("in-function", Predicate::InFunction),
        ("named-by", Predicate::NamedBy),
        ("prefix-checked", Predicate::PrefixChecked),
        ("backtracking-regex", Predicate::BacktrackingRegex),
        ("leading-run-regex", Predicate::LeadingRunRegex),
    ];

    /// The predicate a rule names, if there is one.
    pub fn parse(name: &str) -> Option<Predicate> {
        Predicate::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    }

    /// Whether the predicate may move a finding off its node's first lines (it sets the
    /// analysis's `focus` or `reach`): the pattern prefilter must then look further up.
    pub fn moves_finding(self) -> bool {
        matches!(
            self,
            Predicate::Unsanitized
                | Predicate::HtmlTaintedValue
                | Predicate::MarkupFromValues
                | Predicate::CodeFromValues
                | Predicate::BacktrackingRegex
        )
    }

    /// Whether the predicate may move a finding above its node, onto the lines the node was put
    /// together from (a regex built from fragments bound to names a few lines up): the pattern
    /// prefilter must then look at the whole statement around the change, not at the nodes on it.
    pub fn moves_finding_above(self) -> bool {
        matches!(self, Predicate::BacktrackingRegex)
    }

    /// Whether the predicate's argument is a regex (checked when rules load).
    pub fn takes_regex(self) -> bool {
        matches!(
            self,
            Predicate::CallMatches
                | Predicate::TextMatches
                | Predicate::StatementMatches
                | Predicate::FunctionMatches
                | Predicate::FunctionOrHelpersMatch
                | Predicate::FileMatches
                | Predicate::NamedBy
        )
    }
}

/// Evaluates `predicate` on `n`.
pub fn eval<'t>(
    a: &Analysis<'t>,
    predicate: Predicate,
    arg: Option<&str>,
    n: Node<'t>,
    captures: &[(&str, Node<'t>)],
) -> bool {
    match predicate {
        Predicate::Tainted => a.is_tainted(n, Trust::Remote),
        Predicate::TaintedLocal => a.is_tainted(n, Trust::Local),
        Predicate::ParamTainted => a.is_param_tainted(n),
        Predicate::DynamicString => for_args(n, |x| injection::dynamic_string(a, x)),
        Predicate::DynamicOrTainted => for_args(n, |x| {
            injection::dynamic_string(a, x) || (a.is_tainted(x, Trust::Local) && !a.is_constant(x))
        }),
        Predicate::DynamicSql => for_args(n, |x| {
            a.string_parts(x)
                .is_some_and(|(lit, dynamic)| dynamic && injection::SQL_KEYWORDS.is_match(&lit))
        }),
        Predicate::NotConstant => !a.is_constant(n),
        Predicate::Unsanitized => {
            let ok = !a.is_constant(n) && !injection::sanitized(a, n, 0, false);
            if ok {
                injection::reach_of_unsanitized_part(a, n);
            }
            ok
        }
        Predicate::HtmlTainted => injection::html_tainted(a, n, false),
        Predicate::HtmlTaintedValue => injection::html_tainted(a, n, true),
        Predicate::MarkupFromValues => markup::markup_from_values(a, n),
        Predicate::CodeFromValues => markup::code_from_values(a, n),
        Predicate::PasswordContext => secrets::password_context(a, n),
        Predicate::TokenContext => secrets::token_context(a, n),
        Predicate::SecretCompare => secrets::secret_compare(a, n),
        Predicate::SecretLiteral => secrets::secret_literal(a, n, captures),
        Predicate::KnownSecretShape => secrets::known_secret_shape(a.text(n)) && !is_docstring(n),
        Predicate::CallMatches => enclosing_call(n).is_some_and(|c| {
            c.child_by_field_name("function")
                .is_some_and(|f| regex_of(arg).is_match(a.text(f)))
        }),
        Predicate::MutatedParam => correctness::mutated_param(a, n),
        Predicate::PromisifiedExec => {
            n.kind() == "identifier"
                && file_contains(a, "promisify")
                && a.bound_values(n).iter().any(|v| {
                    cached_regex!(r"promisify\(\s*([\w.]+\.)?exec(Sync)?\s*\)").is_match(v)
                })
        }
        Predicate::InsideLoop => inside_loop(a, n),
        Predicate::BareExcept => errors::bare_except(a, n),
        Predicate::PrototypePollution => injection::prototype_pollution(a, n),
        Predicate::FloatingPromise => correctness::floating_promise(a, n),
        Predicate::AsyncCallback => a.text(n).trim_start().starts_with("async"),
        Predicate::GoErrUnchecked => errors::go_err_unchecked(a, n),
        Predicate::GoBlankError => errors::go_blank_error(a, n),
        Predicate::GoCloseAfterReturn => resources::go_close_after_return(a, n),
        Predicate::JsReturnKeepsClient => resources::js_return_keeps_client(a, n),
        Predicate::LoggedAndContinued => errors::logged_and_continued(a, n),
        Predicate::SkipsOwnershipCheck => authorization::skips_ownership_check(a, n),
        Predicate::FloorCount => correctness::floor_count(a, n),
        Predicate::GoUnlockedGuardedWrite => concurrency::go_unlocked_guarded_write(a, n),
        Predicate::LostUpdate => concurrency::lost_update(a, n),
        Predicate::LooseEquality => correctness::loose_equality(a, n),
        Predicate::TextMatches => regex_of(arg).is_match(a.text(n)),
        Predicate::StatementMatches => regex_of(arg).is_match(a.text(a.statement(n))),
        Predicate::FunctionMatches => regex_of(arg).is_match(a.text(a.enclosing_function(n))),
        Predicate::FunctionOrHelpersMatch => function_or_helpers_match(a, n, &regex_of(arg)),
        Predicate::FileMatches => file_matches(a, arg),
        Predicate::InFunction => a.enclosing_function(n).id() != a.root.id(),
        Predicate::NamedBy => named_by(a, n, &regex_of(arg)),
        Predicate::PrefixChecked => prefix_checked(a, n),
        Predicate::BacktrackingRegex => redos::backtracking_regex(a, n),
        Predicate::LeadingRunRegex => redos::leading_run_regex(a, n),
    }
}

/// `function-or-helpers-match:<regex>`: the enclosing function matches, or a function of this
/// file that it calls does (one call deep): a containment check kept in a helper
/// (`ensureBasePath(root, link)`) guards its caller as much as one written inline.
fn function_or_helpers_match<'t>(a: &Analysis<'t>, n: Node<'t>, re: &Regex) -> bool {
    let f = a.enclosing_function(n);
    if re.is_match(a.text(f)) {
        return true;
    }
    if f.id() == a.root.id() {
        return false;
    }
    let functions = a.functions_by_name();
    let mut stack = vec![f];
    while let Some(x) = stack.pop() {
        if matches!(x.kind(), "call" | "call_expression")
            && let Some(callee) = x.child_by_field_name("function")
        {
            let t = a.text(callee);
            let name = t.rsplit('.').next().unwrap_or(t);
            if let Some(helper) = functions.get(name)
                && helper.id() != f.id()
                && re.is_match(a.text(*helper))
            {
                return true;
            }
        }
        let mut c = x.walk();
        stack.extend(x.named_children(&mut c));
    }
    false
}

/// `named-by:<regex>`: a key, assignment target, declared name or method name around `n` (at any
/// depth) matches: the value is (inside) what a library calls by that name, such as a chart's
/// `tooltip: { content: (...) => ... }` or `options.yaxis.tickFormatter = ...`.
fn named_by(a: &Analysis<'_>, n: Node<'_>, re: &Regex) -> bool {
    let mut cur = n.parent();
    while let Some(p) = cur {
        let name = match p.kind() {
            "pair" => p.child_by_field_name("key"),
            "assignment_expression" | "augmented_assignment_expression" => p
                .child_by_field_name("left")
                .filter(|l| l.kind() == "member_expression"),
            "variable_declarator"
            | "method_definition"
            | "public_field_definition"
            | "function_declaration" => p
                .child_by_field_name("name")
                .or_else(|| p.child_by_field_name("property")),
            _ => None,
        };
        if name.is_some_and(|k| re.is_match(a.text(k))) {
            return true;
        }
        cur = p.parent();
    }
    false
}

/// `prefix-checked`: the name assigned at `n` (`x = ...`, `x := ...`) is tested later in its
/// function with a prefix check (`x.startswith(`, `str(x).startswith(`, `x.startsWith(`,
/// `strings.HasPrefix(x,`): the value is what a containment check relies on.
fn prefix_checked<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let left = n
        .child_by_field_name("left")
        .or_else(|| n.child_by_field_name("name"))
        .filter(|l| l.kind() == "identifier" || l.kind() == "expression_list");
    let Some(name) = left.map(|l| a.text(l).trim()) else {
        return false;
    };
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return false;
    }
    let f = a.enclosing_function(n);
    if f.end_byte() <= n.end_byte() {
        return false;
    }
    let after = &a.src[n.end_byte()..f.end_byte()];
    let name = regex::escape(name);
    regex_of(Some(&format!(
        r"\b{name}\)?\.(?:startswith|startsWith)\(|HasPrefix\(\s*{name}\b"
    )))
    .is_match(after)
}

/// Whether the file's text holds `needle`, once per file (predicates ask it for every match).
fn file_contains(a: &Analysis<'_>, needle: &str) -> bool {
    let key = format!("file-contains:{needle}");
    if let Some(v) = a.memo.borrow().get(&key) {
        return *v;
    }
    let v = a.src.contains(needle);
    a.memo.borrow_mut().insert(key, v);
    v
}

/// `file-matches`, once per file and pattern: a rule asks it for every match of its query, and
/// scanning a large file each time made big files quadratic.
fn file_matches(a: &Analysis<'_>, arg: Option<&str>) -> bool {
    let pat = arg.unwrap_or("$^");
    let key = format!("file-matches:{pat}");
    if let Some(v) = a.memo.borrow().get(&key) {
        return *v;
    }
    let v = regex_of(arg).is_match(a.src);
    a.memo.borrow_mut().insert(key, v);
    v
}

/// `arg` compiled once per thread: the rules' regex arguments, and the patterns predicates build
/// from a name they found (`\b{err}\b`), which repeat across a file and across files. Shared
/// through an `Rc`: a cloned `Regex` gets a new pool of search caches, and building one cache per
/// call cost more than the searches.
fn regex_of(arg: Option<&str>) -> std::rc::Rc<Regex> {
    // Rules are checked at load time, and built patterns escape their names, so a bad regex
    // never reaches here; cache per pattern.
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<Regex>>> = Default::default();
    }
    let pat = arg.unwrap_or("$^");
    CACHE.with(|c| {
        if let Some(r) = c.borrow().get(pat) {
            return r.clone();
        }
        let r = std::rc::Rc::new(ascii_regex(pat).unwrap_or_else(|_| Regex::new("$^").unwrap()));
        c.borrow_mut().insert(pat.to_string(), r.clone());
        r
    })
}

/// Applies `f` to each argument when `n` is an argument list, else to `n` itself.
fn for_args<'t>(n: Node<'t>, f: impl Fn(Node<'t>) -> bool) -> bool {
    if matches!(n.kind(), "argument_list" | "arguments") {
        let mut c = n.walk();
        let args: Vec<Node> = n.named_children(&mut c).collect();
        args.into_iter().any(|x| {
            let x = if x.kind() == "keyword_argument" {
                x.child_by_field_name("value").unwrap_or(x)
            } else {
                x
            };
            f(x)
        })
    } else {
        f(n)
    }
}

/// The lower-cased words of the identifiers in `text` (`providedSig` -> provided, sig).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .flat_map(crate::text::split_identifier)
        .collect()
}

/// A string that is a function's or module's documentation.
fn is_docstring(n: Node<'_>) -> bool {
    n.parent()
        .is_some_and(|p| p.kind() == "expression_statement" && p.named_child_count() == 1)
}

/// The call whose argument list holds `n` (a keyword argument, an object literal field).
fn enclosing_call(n: Node<'_>) -> Option<Node<'_>> {
    let mut cur = n.parent();
    let mut hops = 0;
    while let Some(p) = cur {
        if matches!(p.kind(), "call" | "call_expression" | "new_expression") {
            return Some(p);
        }
        hops += 1;
        if hops > 4 {
            return None;
        }
        cur = p.parent();
    }
    None
}

fn inside_loop<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let mut cur = n.parent();
    while let Some(p) = cur {
        if a.is_function(p) {
            return false;
        }
        if matches!(
            p.kind(),
            "for_statement" | "while_statement" | "for_in_statement" | "do_statement"
        ) {
            return true;
        }
        cur = p.parent();
    }
    false
}

/// Whether `n` holds a `return` of its own function (not of a nested function literal).
fn has_own_return(a: &Analysis<'_>, n: Node<'_>) -> bool {
    if n.kind() == "return_statement" {
        return true;
    }
    if a.is_function(n) {
        return false;
    }
    let mut c = n.walk();
    let children: Vec<Node> = n.named_children(&mut c).collect();
    children.into_iter().any(|ch| has_own_return(a, ch))
}

/// A Python function with a route decorator (`@app.get(...)`, `@bp.route(...)`, ...).
fn is_route_function(a: &Analysis<'_>, f: Node<'_>) -> bool {
    f.parent().is_some_and(|p| {
        p.kind() == "decorated_definition"
            && cached_regex!(r"@\w+\.(route|get|post|put|patch|delete)\(").is_match(a.text(p))
    })
}
