//! Injection and tainted output: strings built from input (SQL, HTML), sanitizers, and
//! prototype pollution in merge and path-setting helpers.

use super::*;

pub(super) static SQL_KEYWORDS: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)\b(select\s.+\sfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|where\s|order\s+by|group\s+by|values\s*\(|drop\s+table|create\s+table|alter\s+table|limit\s|join\s)").unwrap()
});

pub(super) static HTML_TAG: LazyLock<Regex> =
    LazyLock::new(|| ascii_regex(r"<[a-zA-Z!/][^>]*>?").unwrap());

pub(super) fn dynamic_string<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    a.string_parts(n).is_some_and(|(_, dynamic)| dynamic)
}

/// A sanitizing call, or a string whose every dynamic part is one.
/// With `untainted_ok`, parts that do not come from request input count as safe too (for HTML
/// built from input); without it, every dynamic part must be escaped (for values marked as HTML).
pub(super) fn sanitized<'t>(
    a: &Analysis<'t>,
    n: Node<'t>,
    depth: usize,
    untainted_ok: bool,
) -> bool {
    if depth > 6 {
        return false;
    }
    match n.kind() {
        // Another element's markup (`el.innerHTML = other.outerHTML`) is already in the page.
        "member_expression"
            if n.child_by_field_name("property")
                .is_some_and(|p| matches!(a.text(p), "outerHTML" | "innerHTML")) =>
        {
            true
        }
        "call" | "call_expression" => n.child_by_field_name("function").is_some_and(|f| {
            let t = a.text(f);
            let last = t.rsplit('.').next().unwrap_or(t);
            // `escapeHtml`, `renderSanitized`, `DOMPurify.sanitize`; not `unescape`.
            !last.to_ascii_lowercase().starts_with("un")
                && cached_regex!(r"(?i)^(\w*escape\w*|\w*saniti[sz]e\w*|purify|clean|encode\w*|quote|markdown|render_to_string|format_html|bleach\w*|textContent|htmlEscape|xss|filterXSS)$").is_match(last)
        }),
        "template_string" | "string" => {
            let mut c = n.walk();
            let subs: Vec<Node> = n.named_children(&mut c).filter(|ch| matches!(ch.kind(), "template_substitution" | "interpolation")).collect();
            subs.into_iter().all(|s| s.named_child(0).is_some_and(|e| a.is_constant(e) || sanitized(a, e, depth + 1, untainted_ok)))
        }
        "parenthesized_expression" | "await_expression" => n.named_child(0).is_some_and(|e| sanitized(a, e, depth + 1, untainted_ok)),
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

/// For a template spread over lines, points the finding's reach at its last substitution that is
/// neither constant nor escaped: a change to that line is a change to what the sink writes.
pub(super) fn reach_of_unsanitized_part<'t>(a: &Analysis<'t>, n: Node<'t>) {
    if !matches!(n.kind(), "template_string" | "string")
        || n.start_position().row == n.end_position().row
    {
        return;
    }
    let mut c = n.walk();
    let last = n
        .named_children(&mut c)
        .filter(|ch| matches!(ch.kind(), "template_substitution" | "interpolation"))
        .filter(|s| {
            s.named_child(0)
                .is_some_and(|e| !a.is_constant(e) && !sanitized(a, e, 1, false))
        })
        .last();
    if let Some(s) = last {
        a.reach.set(Some(s.start_byte()));
    }
}

/// HTML built from request input: a string with a tag in its literal text and a tainted part.
pub(super) fn html_tainted<'t>(a: &Analysis<'t>, n: Node<'t>, at_value: bool) -> bool {
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
            args.named_children(&mut c)
                .filter_map(|x| a.string_parts(x))
                .map(|(l, _)| l)
                .collect::<Vec<_>>()
                .join(" ")
        }
        _ => match a.string_parts(n) {
            Some((l, _)) => l,
            None => return false,
        },
    };
    if !HTML_TAG.is_match(&lit) {
        return false;
    }
    match n.kind() {
        "call" | "call_expression" => {
            // With `at_value`, the finding goes on the value's line: after a long format string
            // (a whole page in a raw string) that is where the escape belongs.
            for_args(n.child_by_field_name("arguments").unwrap_or(n), |x| {
                let hit = a.is_tainted(x, Trust::Remote) && !sanitized(a, x, 0, true);
                if hit && at_value {
                    a.focus.set(Some(x.start_byte()));
                }
                hit
            })
        }
        _ => a.is_tainted(n, Trust::Remote) && !sanitized(a, n, 0, true),
    }
}

/// `target[key] = value` in a recursive merge or a path setter, where key comes from the input's
/// own keys and nothing rules out `__proto__`, `constructor` or `prototype`.
pub(super) fn prototype_pollution<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
        && regex_of(Some(&format!(
            r"(?:^|[^.\w]|this\.){0}\s*\(\s*{1}\s*\[",
            regex::escape(name),
            target
        )))
        .is_match(body);
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
