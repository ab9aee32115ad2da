//! Predicates that narrow a rule's query matches where a query cannot say it. Each takes the
//! analysis of the file, an optional argument (a regex for the `*-matches` family), the target
//! node and the match's captures.

use super::analysis::{Analysis, Trust};
use crate::lang::Language;
use regex::Regex;
use std::sync::LazyLock;
use tree_sitter::Node;

/// A regex compiled once per call site.
macro_rules! cached_regex {
    ($re:expr) => {{
        static RE: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($re).expect("a valid built-in regex"));
        &*RE
    }};
}

/// Every predicate name a rule may use in `when`.
pub const NAMES: &[&str] = &[
    "call-matches",
    "promisified-exec",
    "mutated-param",
    "tainted",
    "tainted-local",
    "dynamic-string",
    "dynamic-or-tainted",
    "dynamic-sql",
    "not-constant",
    "unsanitized",
    "html-tainted",
    "password-context",
    "token-context",
    "secret-compare",
    "secret-literal",
    "known-secret-shape",
    "inside-loop",
    "bare-except",
    "prototype-pollution",
    "floating-promise",
    "async-callback",
    "go-err-unchecked",
    "go-blank-error",
    "go-close-after-return",
    "js-return-keeps-client",
    "logged-and-continued",
    "skips-ownership-check",
    "floor-count",
    "go-unlocked-guarded-write",
    "lost-update",
    "loose-equality",
    "text-matches",
    "statement-matches",
    "function-matches",
    "file-matches",
    "in-function",
];

/// Whether the predicate's argument is a regex (checked when rules load).
pub fn takes_regex(name: &str) -> bool {
    name.ends_with("-matches")
}

static SQL_KEYWORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(select\s.+\sfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|where\s|order\s+by|group\s+by|values\s*\(|drop\s+table|create\s+table|alter\s+table|limit\s|join\s)").unwrap()
});
static HTML_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[a-zA-Z!/][^>]*>?").unwrap());
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)passw(or)?d|passwd|passphrase|\bpwd\b|_pwd|pwd_|Pwd\b|\bpw\b").unwrap()
});
static TOKEN_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)token|secret|passw|pwd|reset|otp|nonce|salt|session|csrf|api_?key|apikey|invite|verif|signature|coupon|voucher|activation|magic_?link|one_?time|recovery|credential|auth_?code").unwrap()
});
static SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)pass(word|wd|phrase)?$|passw(or)?d|pwd|secret|token|api_?key|apikey|access_?key|private_?key|client_?secret|auth_?key|credential|signing_?key|encryption_?key|jwt_?key|bearer|dsn|conn(ection)?_?str").unwrap()
});
static NOT_SECRET_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(_|\b|[a-z])(url|uri|endpoint|path|file|dir|name|field|label|message|msg|text|header|param|prefix|suffix|length|len|type|kind|env|var|key_?name|template|route|regex|pattern|format|placeholder|hint|error|id|count|ttl|expiry|expires|timeout|mode|policy|query|column|table|key_?id|cookie_?name)s?$").unwrap()
});
static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(changeme|change_?me|password|passw0rd|secret|example|dummy|test|testing|none|null|redacted|placeholder|todo|fixme|xxx+|\*+|\.+|-+)$|^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$|^%\(.*\)s$|your[_-]|example|placeholder|xxxx|dummy|fake|sample|<|>|\$\{|\{\{").unwrap()
});
static KEY_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}", // AWS access key ids
        r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}", // GitHub tokens
        r"|sk_live_[A-Za-z0-9]{16,}|rk_live_[A-Za-z0-9]{16,}", // Stripe
        r"|sk-[A-Za-z0-9_-]{20,}",            // OpenAI-style keys
        r"|xox[abposr]-[A-Za-z0-9-]{10,}",    // Slack
        r"|AIza[0-9A-Za-z_-]{35}",            // Google API keys
        r"|-----BEGIN (RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY-----\s*[A-Za-z0-9+/=\s\\n]{40,}",
        r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@$<{]{3,}@" // credentials in a connection URL
    ))
    .unwrap()
});
static GO_IMPORTANT_ERR: LazyLock<Regex> = LazyLock::new(|| {
    // Number parsing with `_` is the usual way to default an optional value to zero: not listed.
    Regex::new(r"^(Unmarshal|Decode|Exec|ExecContext|Commit|Scan|Remove|RemoveAll|WriteFile|MkdirAll|Mkdir|Rename|Setenv|Sync|ParseForm|ParseMultipartForm|Chmod|Chdir|Symlink|ReadFile|ReadAll|Open|OpenFile|Create|Marshal|Query|QueryRow|QueryContext|Do|NewRequest|NewRequestWithContext|Copy|Get|Post|Dial|Listen|Stat|Seek)$").unwrap()
});

/// Evaluates predicate `name` on `n`.
pub fn eval<'t>(
    a: &Analysis<'t>,
    name: &str,
    arg: Option<&str>,
    n: Node<'t>,
    captures: &[(&str, Node<'t>)],
) -> bool {
    match name {
        "tainted" => a.is_tainted(n, Trust::Remote),
        "tainted-local" => a.is_tainted(n, Trust::Local),
        "dynamic-string" => for_args(n, |x| dynamic_string(a, x)),
        "dynamic-or-tainted" => for_args(n, |x| {
            dynamic_string(a, x) || (a.is_tainted(x, Trust::Local) && !a.is_constant(x))
        }),
        "dynamic-sql" => for_args(n, |x| {
            a.string_parts(x)
                .is_some_and(|(lit, dynamic)| dynamic && SQL_KEYWORDS.is_match(&lit))
        }),
        "not-constant" => !a.is_constant(n),
        "unsanitized" => !a.is_constant(n) && !sanitized(a, n, 0, false),
        "html-tainted" => html_tainted(a, n),
        "password-context" => password_context(a, n),
        "token-context" => token_context(a, n),
        "secret-compare" => secret_compare(a, n),
        "secret-literal" => secret_literal(a, n, captures),
        "known-secret-shape" => known_secret_shape(a.text(n)) && !is_docstring(n),
        "call-matches" => enclosing_call(n).is_some_and(|c| {
            c.child_by_field_name("function")
                .is_some_and(|f| regex_of(arg).is_match(a.text(f)))
        }),
        "mutated-param" => mutated_param(a, n),
        "promisified-exec" => {
            a.src.contains("promisify")
                && n.kind() == "identifier"
                && a.bound_values(n).iter().any(|v| {
                    cached_regex!(r"promisify\(\s*([\w.]+\.)?exec(Sync)?\s*\)").is_match(v)
                })
        }
        "inside-loop" => inside_loop(a, n),
        "bare-except" => bare_except(a, n),
        "prototype-pollution" => prototype_pollution(a, n),
        "floating-promise" => floating_promise(a, n),
        "async-callback" => a.text(n).trim_start().starts_with("async"),
        "go-err-unchecked" => go_err_unchecked(a, n),
        "go-blank-error" => go_blank_error(a, n),
        "go-close-after-return" => go_close_after_return(a, n),
        "js-return-keeps-client" => js_return_keeps_client(a, n),
        "logged-and-continued" => logged_and_continued(a, n),
        "skips-ownership-check" => skips_ownership_check(a, n),
        "floor-count" => floor_count(a, n),
        "go-unlocked-guarded-write" => go_unlocked_guarded_write(a, n),
        "lost-update" => lost_update(a, n),
        "loose-equality" => loose_equality(a, n),
        "text-matches" => regex_of(arg).is_match(a.text(n)),
        "statement-matches" => regex_of(arg).is_match(a.text(a.statement(n))),
        "function-matches" => regex_of(arg).is_match(a.text(a.enclosing_function(n))),
        "file-matches" => file_matches(a, arg),
        "in-function" => a.enclosing_function(n).id() != a.root.id(),
        _ => false,
    }
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

fn regex_of(arg: Option<&str>) -> Regex {
    // Rules are checked at load time, so a bad regex never reaches here; cache per pattern.
    thread_local! {
        static CACHE: std::cell::RefCell<std::collections::HashMap<String, Regex>> = Default::default();
    }
    let pat = arg.unwrap_or("$^");
    CACHE.with(|c| {
        if let Some(r) = c.borrow().get(pat) {
            return r.clone();
        }
        let r = Regex::new(pat).unwrap_or_else(|_| Regex::new("$^").unwrap());
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

fn dynamic_string<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    a.string_parts(n).is_some_and(|(_, dynamic)| dynamic)
}

/// A sanitizing call, or a string whose every dynamic part is one.
/// With `untainted_ok`, parts that do not come from request input count as safe too (for HTML
/// built from input); without it, every dynamic part must be escaped (for values marked as HTML).
fn sanitized<'t>(a: &Analysis<'t>, n: Node<'t>, depth: usize, untainted_ok: bool) -> bool {
    if depth > 6 {
        return false;
    }
    match n.kind() {
        "call" | "call_expression" => n.child_by_field_name("function").is_some_and(|f| {
            let t = a.text(f);
            let last = t.rsplit('.').next().unwrap_or(t);
            cached_regex!(r"(?i)^(escape\w*|\w*escape|sanitize\w*|purify|clean|encode\w*|quote|markdown|render_to_string|format_html|bleach\w*|textContent|htmlEscape|xss|filterXSS)$").is_match(last)
        }),
        "template_string" | "string" => {
            let mut c = n.walk();
            let subs: Vec<Node> = n.named_children(&mut c).filter(|ch| matches!(ch.kind(), "template_substitution" | "interpolation")).collect();
            subs.into_iter().all(|s| s.named_child(0).is_some_and(|e| a.is_constant(e) || sanitized(a, e, depth + 1, untainted_ok)))
        }
        "parenthesized_expression" => n.named_child(0).is_some_and(|e| sanitized(a, e, depth + 1, untainted_ok)),
        // `body := "<a href=\"" + htmlEscape(url) + "\">"`: every dynamic part escaped.
        "binary_expression" | "binary_operator" => {
            let parts = [n.child_by_field_name("left"), n.child_by_field_name("right")];
            parts.into_iter().flatten().all(|p| a.is_constant(p) || sanitized(a, p, depth + 1, untainted_ok) || (untainted_ok && !a.is_tainted(p, Trust::Remote)))
        }
        "identifier" => {
            let values = a.bound_value_nodes(n);
            !values.is_empty() && values.into_iter().all(|v| a.is_constant(v) || sanitized(a, v, depth + 1, untainted_ok))
        }
        _ => false,
    }
}

/// HTML built from request input: a string with a tag in its literal text and a tainted part.
fn html_tainted<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    // Cheap first: HTML needs a `<` somewhere in the function.
    if !a.text(a.enclosing_function(n)).contains('<') {
        return false;
    }
    let lit = match n.kind() {
        "call" | "call_expression" => {
            let Some(args) = n.child_by_field_name("arguments") else {
                return false;
            };
            let mut c = args.walk();
            let found = args
                .named_children(&mut c)
                .filter_map(|x| a.string_parts(x))
                .map(|(l, _)| l)
                .collect::<Vec<_>>()
                .join(" ");
            found
        }
        _ => match a.string_parts(n) {
            Some((l, _)) => l,
            None => return false,
        },
    };
    let tainted = match n.kind() {
        "call" | "call_expression" => {
            for_args(n.child_by_field_name("arguments").unwrap_or(n), |x| {
                a.is_tainted(x, Trust::Remote) && !sanitized(a, x, 0, true)
            })
        }
        _ => a.is_tainted(n, Trust::Remote) && !sanitized(a, n, 0, true),
    };
    HTML_TAG.is_match(&lit) && tainted
}

/// A hash call whose input is a password: its arguments (and what the statement feeds it after the
/// call, `.update(pw)`) name a password; or, when they name nothing, the function is about passwords.
/// Hashing a token, a file or a payload is not password storage.
fn password_context<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let stmt = a.statement(n);
    let args = n
        .child_by_field_name("arguments")
        .map(|x| a.text(x))
        .unwrap_or("");
    let after = &a.src[n.end_byte().min(stmt.end_byte())..stmt.end_byte()];
    let input = format!("{args} {after}");
    if PASSWORD.is_match(&input) {
        return true;
    }
    static NOT_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(^|[^a-z])(token|nonce|otp|code|key|secret|content|data|body|file|chunk|payload|url|email|bytes|blob|etag|checksum)").unwrap()
    });
    if NOT_PASSWORD.is_match(&input) {
        return false;
    }
    PASSWORD.is_match(a.text(stmt)) || PASSWORD.is_match(a.function_name(n))
}

/// A random value that must be unguessable: its statement names a token, secret or code, or its
/// function does (and the statement is not about jitter, delays or sampling).
fn token_context<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    static BENIGN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)jitter|delay|backoff|sleep|retry|sample|shuffle|colou?r|weight|timeout|interval|port\b|percent|ratio|chance|probability").unwrap()
    });
    let stmt = a.text(a.statement(n));
    if BENIGN.is_match(stmt) {
        return false;
    }
    TOKEN_WORDS.is_match(stmt) || TOKEN_WORDS.is_match(a.function_name(n))
}

/// The lower-cased words of the identifiers in `text` (`providedSig` -> provided, sig).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .flat_map(crate::knowledge::bm25::split_identifier)
        .collect()
}

/// Words that name a secret compared for authentication.
fn names_secret(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    [
        "signature",
        "sig",
        "digest",
        "hexdigest",
        "hmac",
        "mac",
        "secret",
        "otp",
        "csrf",
        "apikey",
        "passhash",
    ]
    .iter()
    .any(|w| has(w))
        || (has("api") && has("key"))
        || (has("password") && has("hash"))
        || ((has("access")
            || has("auth")
            || has("webhook")
            || has("bearer")
            || has("session")
            || has("reset")
            || has("csrf"))
            && has("token"))
}

/// Words that may name the other side of such a comparison.
fn names_secretish(ws: &[String]) -> bool {
    names_secret(ws)
        || ws.iter().any(|w| {
            matches!(
                w.as_str(),
                "token"
                    | "key"
                    | "hash"
                    | "sign"
                    | "signed"
                    | "provided"
                    | "received"
                    | "given"
                    | "computed"
                    | "expected"
                    | "header"
                    | "supplied"
                    | "incoming"
                    | "stored"
            )
        })
}

/// `==` on a signature, token or key: a comparison that leaks timing.
fn secret_compare<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let (l, r) = match (
        n.child_by_field_name("left"),
        n.child_by_field_name("right"),
    ) {
        (Some(l), Some(r)) => (l, r),
        _ => {
            // Python comparison_operator and Go `bytes.Equal(a, b)` keep operands as plain children.
            let node = if matches!(n.kind(), "call" | "call_expression") {
                n.child_by_field_name("arguments").unwrap_or(n)
            } else {
                n
            };
            let mut c = node.walk();
            let ch: Vec<Node> = node.named_children(&mut c).collect();
            if ch.len() != 2 {
                return false;
            }
            (ch[0], ch[1])
        }
    };
    if n.kind() == "comparison_operator" || n.kind() == "binary_expression" {
        let op = a.text(n)[l.end_byte() - n.start_byte()..r.start_byte() - n.start_byte()].trim();
        if !matches!(op, "==" | "!=" | "===" | "!==") {
            return false;
        }
    }
    static NOT_SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)(type|kind|scheme|alg|algorithm|length|count|status|prefix|version|name|format)\b|(\bid|_id|Id|ID|_ids|Ids)$").unwrap()
    });
    let trivial = |x: Node<'t>| {
        let t = a.text(x);
        a.is_constant(x)
            || t.starts_with("len(")
            || t.ends_with(".length")
            || t.starts_with("typeof")
            || NOT_SECRET_VALUE.is_match(t)
    };
    if trivial(l) || trivial(r) {
        return false;
    }
    // Two results of the same function (`inspect.signature(f) == inspect.signature(g)`) are values of
    // one kind being compared, not a secret checked against input.
    let callee = |x: Node<'t>| x.child_by_field_name("function").map(|f| a.text(f));
    if matches!(l.kind(), "call" | "call_expression") && callee(l) == callee(r) {
        return false;
    }
    let (lw, rw) = (words(a.text(l)), words(a.text(r)));
    if (names_secret(&lw) && names_secretish(&rw)) || (names_secret(&rw) && names_secretish(&lw)) {
        return true;
    }
    // `parts.v1 !== expected` in a function that computes an HMAC or a signature.
    static SIGNING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)hmac|signature|createHmac|\.sign\(").unwrap());
    let expected = |ws: &[String]| ws.iter().any(|w| w == "expected" || w == "computed");
    (expected(&lw) || expected(&rw)) && SIGNING.is_match(a.text(a.enclosing_function(n)))
}

/// A string literal that is a credential: a secret-looking name bound to a secret-looking value,
/// or a value with a known key shape.
fn secret_literal<'t>(a: &Analysis<'t>, n: Node<'t>, captures: &[(&str, Node<'t>)]) -> bool {
    let raw = a.text(n);
    let value = raw.trim_matches(|c| c == '"' || c == '\'' || c == '`');
    let value = value
        .strip_prefix(['b', 'r', 'f'])
        .map(|v| v.trim_matches(|c| c == '"' || c == '\''))
        .unwrap_or(value);
    if n.kind() == "string" && {
        let mut c = n.walk();
        let has = n
            .named_children(&mut c)
            .any(|ch| ch.kind() == "interpolation" || ch.kind() == "template_substitution");
        has
    } {
        return false;
    }
    if known_secret_shape(value) {
        return true;
    }
    let Some(name) = captures
        .iter()
        .find(|(c, _)| *c == "name")
        .map(|(_, n)| a.text(*n))
    else {
        return false;
    };
    let name = name.trim_matches(|c| c == '"' || c == '\'' || c == '`');
    // A dictionary key like "AWS::SecretsManager::Secret" names a thing, not a variable holding a secret.
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '>' | '[' | ']' | '$'))
    {
        return false;
    }
    let last = name.rsplit(['.', '>']).next().unwrap_or(name);
    // `ErrBadPassword = "..."` is an error message.
    if last.starts_with("Err") || last.starts_with("err") || last.starts_with("ERR_") {
        return false;
    }
    if !SECRET_NAME.is_match(last) || NOT_SECRET_NAME.is_match(last) {
        return false;
    }
    if value.len() < 6 || value.contains(char::is_whitespace) || PLACEHOLDER.is_match(value) {
        return false;
    }
    // An identifier-like value (`"password_reset_link_sent"`, an event or error code, a dotted
    // class path) names something; a secret is not a run of words.
    if cached_regex!(r"^[A-Za-z]+([_.:-][A-Za-z]+)+$").is_match(value) {
        return false;
    }
    // An environment variable's name, a path, a URL without credentials, a format string.
    if cached_regex!(r"^[A-Z][A-Z0-9_]+$").is_match(value)
        || value.contains('/')
        || value.contains('%')
        || value.contains("{}")
    {
        return false;
    }
    let is_password = PASSWORD.is_match(last);
    if is_password {
        return value.len() >= 6;
    }
    value.len() >= 12 && entropy(value) >= 3.0 && value.chars().any(|c| c.is_ascii_digit())
        || value.len() >= 24 && entropy(value) >= 3.5
}

/// A value with the shape of a real credential, that is not a documented example or a placeholder.
fn known_secret_shape(value: &str) -> bool {
    static EXAMPLE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)example|dummy|fake|sample|placeholder|xxxx|your[_-]|redacted|changeme")
            .unwrap()
    });
    static URL_CREDENTIALS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"://[^/\s:@]+:([^/\s:@]+)@").unwrap());
    let Some(m) = KEY_SHAPES.find(value) else {
        return false;
    };
    if EXAMPLE.is_match(m.as_str()) {
        return false;
    }
    // Credentials in a URL to a documentation or test host, or percent-encoded ones, are an
    // example of the URL syntax.
    static TEST_HOST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)@(localhost|127\.0\.0\.1|\[::1\]|[\w.-]*(example|dummy|fake|test|invalid|foo|bar)[\w.-]*)").unwrap()
    });
    if m.as_str().contains("://") && (TEST_HOST.is_match(value) || m.as_str().contains('%')) {
        return false;
    }
    if let Some(c) = URL_CREDENTIALS.captures(m.as_str()) {
        let pw = &c[1];
        if PLACEHOLDER.is_match(pw)
            || matches!(
                pw.to_ascii_lowercase().as_str(),
                "pass"
                    | "password"
                    | "pwd"
                    | "secret"
                    | "user"
                    | "postgres"
                    | "root"
                    | "admin"
                    | "guest"
            )
        {
            return false;
        }
    }
    true
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

/// A mutable default that the function changes, returns or stores: the shared object leaks
/// between calls. One only read is harmless.
fn mutated_param<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let Some(param) = n.parent().and_then(|p| p.child_by_field_name("name")) else {
        return false;
    };
    let name = regex::escape(a.text(param));
    let body = a
        .enclosing_function(n)
        .child_by_field_name("body")
        .map(|b| a.text(b))
        .unwrap_or("");
    let pattern = format!(
        concat!(
            r"(?m)\b{n}\s*\.\s*(append|extend|insert|add|update|setdefault|pop|popitem|remove|discard|clear|sort|reverse)\s*\(",
            r"|\b{n}\s*\[[^\]]*\]\s*(=[^=]|\+=|-=)",
            r"|\b{n}\s*(\+=|\|=)",
            r"|\b(return|yield)\s+{n}\s*$",
            r"|=\s*{n}\s*$",
            r"|\bdel\s+{n}\["
        ),
        n = name
    );
    Regex::new(&pattern)
        .map(|r| r.is_match(body))
        .unwrap_or(true)
}

fn entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = s.chars().count() as f64;
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum()
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

/// `defer X.Body.Close()` (or `defer X.Close()`) placed after statements that can return once X
/// is open: those paths leave it open (an HTTP body keeps its connection). The error check right
/// after X's assignment is fine: X is not open when it returns.
fn go_close_after_return<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let Some(caps) = cached_regex!(r"^defer\s+(\w+)(?:\.Body)?\.Close\(\)").captures(a.text(n))
    else {
        return false;
    };
    let var = caps.get(1).map(|m| m.as_str()).unwrap_or("");
    let assigns = cached_regex!(r"^\s*(\w+)\s*(?:,\s*(\w+)\s*)?(?::=|=)");
    let mut between: Vec<Node<'t>> = Vec::new();
    let mut sib = n.prev_named_sibling();
    while let Some(s) = sib {
        if s.kind() == "comment" {
            sib = s.prev_named_sibling();
            continue;
        }
        let assigned = matches!(s.kind(), "short_var_declaration" | "assignment_statement")
            .then(|| assigns.captures(a.text(s)))
            .flatten()
            .filter(|c| c.get(1).is_some_and(|m| m.as_str() == var));
        if let Some(c) = assigned {
            // The call's error variable: `f, e := os.Open(p)` checks `e`.
            let err_name = c.get(2).map(|m| m.as_str()).unwrap_or("err");
            let err_re =
                Regex::new(&format!(r"\b{}\b", regex::escape(err_name))).expect("an escaped name");
            // In source order. The `if`s on the error right after the call are its own error
            // checks (`errors.Is(err, ...)`, `err != nil`): X is not open when they return.
            between.reverse();
            let close = format!("{var}.Body.Close()");
            let close_plain = format!("{var}.Close()");
            let mut leading = true;
            return between.iter().any(|st| {
                let checks_err = st.kind() == "if_statement"
                    && st
                        .child_by_field_name("condition")
                        .is_some_and(|c| err_re.is_match(a.text(c)));
                leading &= checks_err;
                let text = a.text(*st);
                !leading
                    && has_own_return(a, *st)
                    && !text.contains(&close)
                    && !text.contains(&close_plain)
            });
        }
        between.push(s);
        sib = s.prev_named_sibling();
    }
    false
}

/// A `return` after `X = await pool.connect()` (or `getConnection()`) in the same function,
/// with no `X.release()` before it on its path and none in a `finally`: the pooled client is
/// never given back, and the pool runs dry.
fn js_return_keeps_client<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let f = a.enclosing_function(n);
    if f.id() == a.root.id() {
        return false;
    }
    let ftext = a.text(f);
    let Some(caps) = cached_regex!(r"(\w+)\s*=\s*await\s+[\w.]+\.(?:connect|getConnection)\(\s*\)")
        .captures(ftext)
    else {
        return false;
    };
    let var = caps.get(1).map(|m| m.as_str()).unwrap_or("");
    let connect_at = f.start_byte() + caps.get(0).map(|m| m.end()).unwrap_or(0);
    if n.start_byte() < connect_at {
        return false;
    }
    let release = format!("{var}.release(");
    // Only a client this function is responsible for: one it releases on some path (a
    // connection kept by an object, `this.connect()`, is not checked out per call).
    if !ftext.contains(&release) {
        return false;
    }
    if a.text(n).contains(&release) {
        return false;
    }
    // A finally that releases covers every path.
    let finally_releases = {
        let mut stack = vec![f];
        let mut found = false;
        while let Some(x) = stack.pop() {
            if x.kind() == "finally_clause" && a.text(x).contains(&release) {
                found = true;
                break;
            }
            let mut c = x.walk();
            stack.extend(x.named_children(&mut c));
        }
        found
    };
    if finally_releases {
        return false;
    }
    // Walk up to the function: no release before the return on its path, and not in the
    // catch of the try that connects (no client then).
    let mut cur = n;
    while cur.id() != f.id() {
        let mut sib = cur.prev_named_sibling();
        while let Some(s) = sib {
            if a.text(s).contains(&release) {
                return false;
            }
            sib = s.prev_named_sibling();
        }
        let Some(p) = cur.parent() else { break };
        if p.kind() == "catch_clause" {
            let try_body = p.parent().and_then(|t| t.child_by_field_name("body"));
            if try_body.is_some_and(|b| b.start_byte() < connect_at && connect_at <= b.end_byte()) {
                return false;
            }
        }
        if a.is_function(p) && p.id() != f.id() {
            return false;
        }
        cur = p;
    }
    true
}

/// An `except`/`catch` handler that only logs, after a `try` that calls out (HTTP, payments,
/// messaging), followed by code that records or announces success: the failure is written to a
/// log and the caller is told it worked.
fn logged_and_continued<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let body = match n.kind() {
        "except_clause" => {
            let mut c = n.walk();
            n.named_children(&mut c).find(|ch| ch.kind() == "block")
        }
        "catch_clause" => n.child_by_field_name("body"),
        _ => None,
    };
    let Some(body) = body else { return false };
    let mut c = body.walk();
    let stmts: Vec<Node> = body
        .named_children(&mut c)
        .filter(|s| s.kind() != "comment")
        .collect();
    let only_logs = !stmts.is_empty()
        && stmts.iter().all(|s| {
            s.kind() == "expression_statement"
                && cached_regex!(r"^(await\s+)?((self|this)\.)?(_?log(ger)?|_?LOG(GER)?|logging|console|print|warnings|sentry_sdk|Sentry|captureException|report_?[Ee]rror)\b")
                    .is_match(a.text(*s).trim_start())
        });
    if !only_logs {
        return false;
    }
    let Some(try_stmt) = n.parent() else {
        return false;
    };
    let try_body = try_stmt.child_by_field_name("body");
    let calls_out = try_body.is_some_and(|b| {
        cached_regex!(r"(?i)\b(requests|httpx|urllib|urlopen|_?http|session|client|axios|fetch|stripe|paypal|braintree|smtp|mailer|sns|sqs|kafka|producer|publisher)\b[\w.]*\s*\(|\.(post|put|patch|request|send|publish|charge|refunds?\.create|charges\.create|payouts?\.create|transfers?\.create)\s*\(")
            .is_match(a.text(b))
    });
    if !calls_out {
        return false;
    }
    // What follows the try in its block, up to a return that ends the success path.
    let mut after = String::new();
    let mut sib = try_stmt.next_named_sibling();
    while let Some(s) = sib {
        after.push_str(a.text(s));
        after.push('\n');
        sib = s.next_named_sibling();
    }
    cached_regex!(r"(?i)\.(mark_?\w*|update\w*|publish\w*|save|commit|set_?status|complete\w*|confirm\w*|record_?success|succeed\w*)\s*\(|status\s*[:=]\s*['\x22](done|sent|delivered|paid|refunded|completed|success)")
        .is_match(&after)
}

/// Names of helpers that check that the caller may touch a record (ownership, membership).
static OWNERSHIP_HELPER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b\w*(owned|ownership|membership|member_?for|authori[sz]e_?\w*|can_?(edit|access|view|modify|manage|delete)|check_?(access|owner|permission|membership)|ensure_?(owner|access|member)\w*|require_?(owner|member|access)\w*|assert_?(owner|access|member)\w*)\w*\s*\(").unwrap()
});

/// A call that loads or changes a record by an id from the request, in a request handler that
/// skips the ownership check its sibling handlers in the file all make (at least two of them
/// call the same kind of helper): the classic insecure direct object reference.
fn skips_ownership_check<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let callee = n
        .child_by_field_name("function")
        .map(|f| a.text(f))
        .unwrap_or("");
    let last = callee.rsplit('.').next().unwrap_or(callee);
    if !cached_regex!(r"(?i)^(get\w*|find\w*|load\w*|fetch\w*|delete\w*|soft_?delete\w*|remove\w*|update\w*|destroy\w*|void\w*|rename\w*|archive\w*|restore\w*)$").is_match(last) {
        return false;
    }
    let args = n
        .child_by_field_name("arguments")
        .map(|x| a.text(x))
        .unwrap_or("");
    // An id held in a variable (a string like "query_id" is a key, not an id).
    let args = cached_regex!(r#""[^"]*"|'[^']*'|`[^`]*`"#).replace_all(args, "\"\"");
    if !cached_regex!(r"\b(id|\w+_id|\w+Id|\w+ID)\b").is_match(&args) {
        return false;
    }
    // A lookup scoped to the caller's account or organisation is the check.
    if cached_regex!(r"(?i)current_?(user|org|account|tenant|team)|g\.(user|account|org)|req\.user|request\.user|\buser\.id|userId|user_id|account_?id|accountId|org_?id|orgId|tenant_?id|tenantId|owner_?id|ownerId").is_match(&args) {
        return false;
    }
    let f = a.enclosing_function(n);
    if f.id() == a.root.id() {
        return false;
    }
    let ftext = a.text(f);
    // The helper itself, a function that checks, or one whose decorators check, is not a finding.
    let decorated = f
        .parent()
        .filter(|p| p.kind() == "decorated_definition")
        .map(|p| a.text(p))
        .unwrap_or("");
    if OWNERSHIP_HELPER.is_match(ftext)
        || OWNERSHIP_HELPER.is_match(decorated)
        || OWNERSHIP_HELPER.is_match(&format!("{}(", a.function_name_of(f)))
    {
        return false;
    }
    // A request handler: it reads an id from the route.
    if !cached_regex!(r#"req\.params|request\.(args|view_args)|@Param\(|PathValue\(|mux\.Vars|URLParam|\bc\.Param\(|\bctx\.params"#).is_match(ftext)
        && !is_route_function(a, f)
    {
        return false;
    }
    // At least two other functions in the file make the check.
    checking_functions(a)
        .iter()
        .filter(|id| **id != f.id())
        .count()
        >= 2
}

/// The functions of the file that call an ownership helper (and are not helpers themselves),
/// computed once per file: the predicate asks for every candidate call.
fn checking_functions(a: &Analysis<'_>) -> std::rc::Rc<Vec<usize>> {
    if let Some(v) = a.checking_functions.borrow().as_ref() {
        return v.clone();
    }
    let mut found = Vec::new();
    let mut stack = vec![a.root];
    while let Some(x) = stack.pop() {
        if a.is_function(x) {
            let name = a.function_name_of(x);
            let is_helper = OWNERSHIP_HELPER.is_match(&format!("{name}("));
            if !is_helper && OWNERSHIP_HELPER.is_match(a.text(x)) {
                found.push(x.id());
                continue;
            }
        }
        let mut c = x.walk();
        stack.extend(x.named_children(&mut c));
    }
    let found = std::rc::Rc::new(found);
    *a.checking_functions.borrow_mut() = Some(found.clone());
    found
}

/// A count of pages (parts, batches, chunks) computed with a floor division, with no rounding
/// up in the function: the last, partial page is dropped (`57 // 20 == 2`, not 3).
fn floor_count<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let (name, value) = match n.kind() {
        "assignment" => (
            n.child_by_field_name("left"),
            n.child_by_field_name("right"),
        ),
        "variable_declarator" => (
            n.child_by_field_name("name"),
            n.child_by_field_name("value"),
        ),
        "assignment_expression" => (
            n.child_by_field_name("left"),
            n.child_by_field_name("right"),
        ),
        _ => (None, None),
    };
    let (Some(name), Some(value)) = (name, value) else {
        return false;
    };
    let name = a.text(name);
    let name = name.rsplit('.').next().unwrap_or(name);
    if !cached_regex!(r"(?i)^(n_?|num_?|total_?|max_?|last_?)?(pages|page_?count|parts|part_?count|batches|batch_?count|chunks|chunk_?count|buckets|bucket_?count)$").is_match(name) {
        return false;
    }
    // The value is the division itself (`total // size`, `Math.max(1, Math.floor(a / b))`), not
    // an expression that happens to contain one.
    let top_level_floor = match value.kind() {
        "binary_operator" => value
            .child_by_field_name("operator")
            .is_some_and(|o| a.text(o) == "//"),
        _ => a.text(value).trim_start().starts_with("Math."),
    };
    if !top_level_floor {
        return false;
    }
    let v = a.text(value);
    let divisor = if let Some(c) = cached_regex!(r"//\s*([\w.]+)").captures(v) {
        c[1].to_string()
    } else if let Some(c) = cached_regex!(r"Math\.floor\(\s*[^()]*?/\s*([\w.]+)\s*\)").captures(v) {
        c[1].to_string()
    } else {
        return false;
    };
    // Rounded up elsewhere in the function: the remainder, ceil or -(-a // b).
    let f = a.text(a.enclosing_function(n));
    let remainder = Regex::new(&format!(r"%\s*{}\b", regex::escape(&divisor))).expect("escaped");
    !(remainder.is_match(f)
        || cached_regex!(r"(?i)ceil|divmod|-\s*\(\s*-|\+\s*[\w.]+\s*-\s*1\s*\)?\s*//").is_match(f))
}

/// A write to `recv.field` (or `recv.field[k]`) in a method that takes no lock, when other
/// methods of the file lock a mutex around the same field: the field is shared, and this path
/// races with them (for a map, a concurrent write crashes the program).
fn go_unlocked_guarded_write<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let left = match n.kind() {
        "assignment_statement" => n.child_by_field_name("left"),
        "inc_statement" | "dec_statement" => n.named_child(0),
        _ => None,
    };
    let Some(left) = left else { return false };
    let Some(c) = cached_regex!(r"^(\w+)\.(\w+)\s*(\[.*\])?$").captures(a.text(left)) else {
        return false;
    };
    // A read-modify-write or a map write; a plain `recv.field = x` is usually set-up.
    let indexed = c.get(3).is_some();
    let op = n
        .child_by_field_name("operator")
        .map(|o| a.text(o))
        .unwrap_or("");
    if !(indexed || n.kind() != "assignment_statement" || (op != "=" && !op.is_empty())) {
        return false;
    }
    let (recv, field) = (c[1].to_string(), c[2].to_string());
    let f = a.enclosing_function(n);
    if f.kind() != "method_declaration" {
        return false;
    }
    let receiver_name = f
        .child_by_field_name("receiver")
        .map(|r| a.text(r))
        .and_then(|r| {
            cached_regex!(r"\(\s*(\w+)")
                .captures(r)
                .map(|c| c[1].to_string())
        });
    if receiver_name.as_deref() != Some(recv.as_str()) {
        return false;
    }
    let ftext = a.text(f);
    let name = a.function_name_of(f);
    if ftext.contains(".Lock()")
        || ftext.contains(".RLock()")
        || name.to_ascii_lowercase().contains("locked")
        // Set-up runs before the value is shared.
        || cached_regex!(r"(?i)^(new|init|provision|setup|set_?up|configure|build|open|load|start|reset|clone|copy)").is_match(name)
    {
        return false;
    }
    let guarded = Regex::new(&format!(r"\.{}\b", regex::escape(&field))).expect("escaped");
    let call = format!(".{name}(");
    let mut guarded_elsewhere = false;
    let mut stack = vec![a.root];
    while let Some(x) = stack.pop() {
        if matches!(x.kind(), "method_declaration" | "function_declaration") && x.id() != f.id() {
            let t = a.text(x);
            let locks = t.contains(".Lock()") || t.contains(".RLock()");
            // Called only with the lock held: its callers lock.
            if locks && t.contains(&call) {
                return false;
            }
            guarded_elsewhere |= locks && guarded.is_match(t);
            continue;
        }
        let mut c = x.walk();
        stack.extend(x.named_children(&mut c));
    }
    guarded_elsewhere
}

/// A read-modify-write of a stored counter or balance with no row lock, atomic update or
/// transaction in the function: two concurrent requests both read the old value and one write is
/// lost (double spending, overselling).
/// - Python (Django): `obj.field -= n` (or `obj.field = obj.field - n`) then `obj.save(` on an
///   `obj` read with `.objects.get(...)`, without `select_for_update` or `F(`.
/// - JS/TS query builders: `.update({ field: obj.field - n })`.
fn lost_update<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let f = a.enclosing_function(n);
    if f.id() == a.root.id() {
        return false;
    }
    let ftext = a.text(f);
    match n.kind() {
        "augmented_assignment" | "assignment" => {
            let Some(left) = n.child_by_field_name("left") else {
                return false;
            };
            let Some(c) = cached_regex!(r"^(\w+)\.(\w+)$").captures(a.text(left)) else {
                return false;
            };
            let (obj, field) = (&c[1], &c[2]);
            // Cheap tests first: most assignments are not to a saved model.
            if !ftext.contains(&format!("{obj}.save("))
                || !ftext.contains(".objects.") && !ftext.contains("get_object_or_404")
            {
                return false;
            }
            let right = n
                .child_by_field_name("right")
                .map(|r| a.text(r))
                .unwrap_or("");
            let self_relative = if n.kind() == "augmented_assignment" {
                n.child_by_field_name("operator")
                    .is_some_and(|o| matches!(a.text(o), "+=" | "-="))
            } else {
                Regex::new(&format!(
                    r"^\s*{}\.{}\s*[-+]",
                    regex::escape(obj),
                    regex::escape(field)
                ))
                .expect("escaped")
                .is_match(right)
            };
            if !self_relative || !ftext.contains(&format!("{obj}.save(")) {
                return false;
            }
            if ftext.contains("select_for_update") || cached_regex!(r"\bF\(").is_match(ftext) {
                return false;
            }
            // Read from the database in this function, without a row lock.
            Regex::new(&format!(
                r"\b{}\s*=\s*[^\n]*(\.objects\.[^\n]*\.?(get|first|last)\(|get_object_or_404\()",
                regex::escape(obj)
            ))
            .expect("escaped")
            .is_match(ftext)
        }
        "call_expression" => {
            let callee = n
                .child_by_field_name("function")
                .map(|x| a.text(x))
                .unwrap_or("");
            if !callee.ends_with(".update") {
                return false;
            }
            let args = n
                .child_by_field_name("arguments")
                .map(|x| a.text(x))
                .unwrap_or("");
            let relative = cached_regex!(r"(\w+)\s*:\s*(\w+)\.(\w+)\s*[-+]")
                .captures_iter(args)
                .any(|c| c[1] == c[3]);
            relative
                && !cached_regex!(r"(?i)forUpdate|transaction|\btrx\b|for update|\.increment\(|\.decrement\(|\block\(").is_match(ftext)
        }
        _ => false,
    }
}

/// A Python function with a route decorator (`@app.get(...)`, `@bp.route(...)`, ...).
fn is_route_function(a: &Analysis<'_>, f: Node<'_>) -> bool {
    f.parent().is_some_and(|p| {
        p.kind() == "decorated_definition"
            && cached_regex!(r"@\w+\.(route|get|post|put|patch|delete)\(").is_match(a.text(p))
    })
}

/// `except:` with no exception type, whose handler does not re-raise.
fn bare_except<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    if n.child_by_field_name("value").is_some() {
        return false;
    }
    let mut c = n.walk();
    let typed = n
        .named_children(&mut c)
        .any(|ch| !matches!(ch.kind(), "block" | "comment"));
    if typed {
        return false;
    }
    let body = a.text(n);
    !cached_regex!(r"(?m)^\s*raise\s*$|^\s*raise\b")
        .is_match(body.split_once(':').map(|x| x.1).unwrap_or(""))
}

/// `target[key] = value` in a recursive merge or a path setter, where key comes from the input's
/// own keys and nothing rules out `__proto__`, `constructor` or `prototype`.
fn prototype_pollution<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let f = a.enclosing_function(n);
    if f.id() == a.root.id() {
        return false;
    }
    let body = a.text(f);
    if cached_regex!(r"__proto__|['\x22]constructor['\x22]|['\x22]prototype['\x22]|hasOwnProperty|hasOwn\(|Object\.create\(null\)|isSafeKey|isPrototypePolluted|FORBIDDEN|BLOCKED|UNSAFE_KEYS|new Map\(").is_match(body) {
        return false;
    }
    let Some(left) = n.child_by_field_name("left") else {
        return false;
    };
    let Some(index) = left.child_by_field_name("index") else {
        return false;
    };
    if matches!(index.kind(), "string" | "number") {
        return false;
    }
    let name = a.function_name(n);
    // The function descends into the object it writes: `merge(target[key], ...)` with `target`
    // the object assigned into. (Filling a fresh object from a schema's keys is not pollution:
    // `__proto__` on a new object changes only that object.)
    let target = left
        .child_by_field_name("object")
        .map(|o| regex::escape(a.text(o)))
        .unwrap_or_default();
    let recursive = !name.is_empty()
        && !target.is_empty()
        && Regex::new(&format!(
            r"(?:^|[^.\w]|this\.){0}\s*\(\s*{1}\s*\[",
            regex::escape(name),
            target
        ))
        .is_ok_and(|re| re.is_match(body));
    // Walking a path: `cur = cur[part]` / `node = node[k] || {}`.
    let walks = cached_regex!(r"(\w+)\s*=\s*(\w+)\[[^\]]+\]")
        .captures_iter(body)
        .any(|c| c[1] == c[2]);
    // The key is one of the input's own keys: a for-in variable, or from Object.keys/entries or a
    // split path (`segments[i]` counts through its array).
    let key_node = match index.kind() {
        "identifier" => Some(index),
        "subscript_expression" => index
            .child_by_field_name("object")
            .filter(|o| o.kind() == "identifier"),
        _ => None,
    };
    let key_from_input = key_node.is_some_and(|k| {
        a.bound_value_nodes(k).into_iter().any(|v| {
            let for_in = v.parent().is_some_and(|p| {
                p.kind() == "for_in_statement"
                    && p.child_by_field_name("operator")
                        .is_some_and(|o| a.text(o) == "in")
            });
            for_in
                || cached_regex!(r"Object\.(keys|entries|getOwnPropertyNames)\(|\.split\(")
                    .is_match(a.text(v))
                || {
                    // `const [key, value] of Object.entries(src)` binds through the pattern.
                    a.text(v).contains("entries(")
                }
        })
    });
    (recursive || walks) && key_from_input
}

/// A call to an async function of this file whose promise is dropped (no await, return, .then, void).
fn floating_promise<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    if !a.lang.is_js_family() {
        return false;
    }
    let call = if n.kind() == "expression_statement" {
        n.named_child(0)
    } else {
        Some(n)
    };
    let Some(call) = call.filter(|c| c.kind() == "call_expression") else {
        return false;
    };
    let Some(func) = call.child_by_field_name("function") else {
        return false;
    };
    // A plain call, or a method of this object; `other.add(x)` may be any `add`.
    let name = match func.kind() {
        "identifier" => a.text(func),
        "member_expression"
            if func
                .child_by_field_name("object")
                .is_some_and(|o| o.kind() == "this") =>
        {
            func.child_by_field_name("property")
                .map(|p| a.text(p))
                .unwrap_or("")
        }
        _ => return false,
    };
    if a.enclosing_function(call).id() == a.root.id() {
        return false;
    }
    let known_async =
        a.async_function_names().contains(name) || (func.kind() == "identifier" && name == "fetch");
    // A method named like an async one of another object is still a guess; require `this.` or a
    // plain call for names that are common words.
    known_async
        && !matches!(
            name,
            "then"
                | "catch"
                | "finally"
                | "emit"
                | "on"
                | "log"
                | "push"
                | "set"
                | "get"
                | "delete"
        )
}

/// `err` assigned and then never read before it is overwritten or the block ends.
fn go_err_unchecked<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    if a.lang != Language::Go {
        return false;
    }
    let Some(left) = n.child_by_field_name("left") else {
        return false;
    };
    let mut c = left.walk();
    let assigns_err = left.named_children(&mut c).any(|x| a.text(x) == "err");
    if !assigns_err {
        return false;
    }
    let Some(right) = n.child_by_field_name("right") else {
        return false;
    };
    if !a.text(right).contains('(') {
        return false;
    }
    // The statement may sit in an `if x, err := f(); err != nil` header: then it is checked.
    if n.parent()
        .is_some_and(|p| p.kind() == "if_statement" || p.kind() == "for_clause")
    {
        return false;
    }
    let uses_err = cached_regex!(r"\berr\b");
    let f = a.enclosing_function(n);
    // An err captured from an enclosing function (assigned inside a closure) is read out there.
    let declared_here = f
        .child_by_field_name("parameters")
        .is_some_and(|p| uses_err.is_match(a.text(p)))
        || f.child_by_field_name("result")
            .is_some_and(|r| uses_err.is_match(a.text(r)))
        || cached_regex!(r"\berr\s*:=|,\s*err\s*:=|var\s+err\b").is_match(a.text(f));
    if !declared_here {
        return false;
    }
    let named_err_result = f
        .child_by_field_name("result")
        .is_some_and(|r| uses_err.is_match(a.text(r)));
    // Scan what runs next: the rest of this block, then the rest of each enclosing block, up to
    // the function's end. A read of err first means it is checked; a plain reassignment first
    // means this value was lost.
    let mut cur = n;
    loop {
        let mut sib = cur.next_named_sibling();
        while let Some(s) = sib {
            if s.kind() != "comment" {
                let reassigns =
                    matches!(s.kind(), "short_var_declaration" | "assignment_statement")
                        && s.child_by_field_name("left")
                            .is_some_and(|l| uses_err.is_match(a.text(l)))
                        && !s
                            .child_by_field_name("right")
                            .is_some_and(|r| uses_err.is_match(a.text(r)));
                if reassigns {
                    return true;
                }
                if uses_err.is_match(a.text(s)) {
                    return false;
                }
                match s.kind() {
                    // A bare return hands a named err result back; other jumps leave the path.
                    "return_statement" => return !named_err_result,
                    "continue_statement" | "break_statement" | "goto_statement" => return false,
                    _ => {}
                }
            }
            sib = s.next_named_sibling();
        }
        // Up to the statement that holds this block.
        let mut up = cur.parent();
        while let Some(p) = up {
            if p.id() == f.id() {
                // The function's end: a named err result returns it.
                return !named_err_result;
            }
            if matches!(
                p.kind(),
                "block"
                    | "statement_list"
                    | "expression_case"
                    | "default_case"
                    | "type_case"
                    | "communication_case"
            ) {
                up = p.parent();
                continue;
            }
            break;
        }
        let Some(p) = up else { return false };
        // A loop reads err on its next turn when its header or the body before this statement
        // does (`for err == nil`, `if err != nil` at the top of the body).
        if p.kind() == "for_statement" {
            if uses_err.is_match(&a.src[p.start_byte()..n.start_byte()]) {
                return false;
            }
        }
        cur = p;
    }
}

/// `v, _ := strconv.Atoi(s)` / `_ = json.Unmarshal(b, &v)`: an error that matters thrown away.
fn go_blank_error<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let (Some(left), Some(right)) = (
        n.child_by_field_name("left"),
        n.child_by_field_name("right"),
    ) else {
        return false;
    };
    let mut c = left.walk();
    let lefts: Vec<Node> = left.named_children(&mut c).collect();
    if lefts.last().is_none_or(|l| a.text(*l) != "_") {
        return false;
    }
    let Some(call) = right
        .named_child(0)
        .filter(|r| r.kind() == "call_expression")
    else {
        return false;
    };
    let Some(func) = call.child_by_field_name("function") else {
        return false;
    };
    let ftext = a.text(func);
    let last = ftext.rsplit('.').next().unwrap_or(ftext);
    // Closing and writing to a response are commonly and deliberately ignored.
    if matches!(last, "Close" | "Write" | "WriteString") || ftext.starts_with("fmt.") {
        return false;
    }
    GO_IMPORTANT_ERR.is_match(last)
}

/// `x == ''`, `x != 0`, `flag == false`: loose equality against a value that coerces (`== null` is
/// the accepted idiom for null-or-undefined and is not reported).
fn loose_equality<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let Some(op) = n.child_by_field_name("operator") else {
        return false;
    };
    if !matches!(a.text(op), "==" | "!=") {
        return false;
    }
    let (Some(l), Some(r)) = (
        n.child_by_field_name("left"),
        n.child_by_field_name("right"),
    ) else {
        return false;
    };
    let coercing = |x: Node| {
        matches!(
            a.text(x),
            "''" | "\"\"" | "0" | "false" | "true" | "'0'" | "\"0\"" | "[]" | "NaN" | "undefined"
        )
    };
    let null = |x: Node| a.text(x) == "null";
    !(null(l) || null(r)) && (coercing(l) || coercing(r))
}
