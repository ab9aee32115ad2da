//! Correctness: mutated default arguments, page counts by floor division, dropped promises
//! and loose equality.

use super::*;

/// A mutable default that the function changes, returns or stores: the shared object leaks
/// between calls. One only read is harmless.
pub(super) fn mutated_param<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
    regex_of(Some(&pattern)).is_match(body)
}

/// A count of pages (parts, batches, chunks) computed with a floor division, with no rounding
/// up in the function: the last, partial page is dropped (`57 // 20 == 2`, not 3).
pub(super) fn floor_count<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
    let remainder = regex_of(Some(&format!(r"%\s*{}\b", regex::escape(&divisor))));
    !(remainder.is_match(f)
        || cached_regex!(r"(?i)ceil|divmod|-\s*\(\s*-|\+\s*[\w.]+\s*-\s*1\s*\)?\s*//").is_match(f))
}

/// A call to an async function of this file whose promise is dropped (no await, return, .then, void).
pub(super) fn floating_promise<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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

/// `x == ''`, `x != 0`, `flag == false`: loose equality against a value that coerces (`== null` is
/// the accepted idiom for null-or-undefined and is not reported).
pub(super) fn loose_equality<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
