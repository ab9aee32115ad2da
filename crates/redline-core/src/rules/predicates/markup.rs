//! Strings built by hand from values, for a language that will parse them again:
//! - markup: a string expression whose literal text holds an HTML tag and one of whose dynamic
//!   parts is data that nothing escaped. Real XSS fixes are mostly this (a file name, a label, a
//!   document field put into `'<td>' + x + '</td>'`), whether or not the value can be traced to a
//!   request: it comes from a database, an upload or another user;
//! - generated code: JavaScript source with a value pasted between quotes (`"f('" + x + "')"`),
//!   where a quote in the value ends the string and the rest runs as code.

use super::injection::sanitized;
use super::*;

/// An HTML tag (`<td`, `<a href=`, `</em>`; not `a < b`, nor XML's `<X509Data>`), or an attribute
/// being opened (`data-name="`, `href='`).
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r#"(?i)</?(a|abbr|article|aside|b|blockquote|body|br|button|caption|center|cite|code|dd|del|details|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|form|h[1-6]|head|header|hr|html|i|iframe|img|input|ins|kbd|label|legend|li|link|main|mark|meta|nav|noscript|object|ol|optgroup|option|p|pre|q|rb|rp|rt|ruby|s|script|section|select|small|source|span|strong|style|sub|summary|sup|svg|table|tbody|td|textarea|tfoot|th|thead|title|tr|u|ul|video)(\s|>|/|$)|(^|[\s"'])(href|src|title|alt|placeholder|action|data-[a-z-]+|aria-[a-z-]+)=["']"#)
        .unwrap()
});

/// Names that hold numbers, markup classes or layout rather than text a user wrote.
static NOT_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)^(i|j|k|n|x|y|z|w|h|idx|index|count|total|size|len|length|width|height|top|left|right|bottom|offset|px|id|pct|percent|level|depth|indent|color|colour|class|classes|cls|style|css|icon|theme|nonce|version|port|status|code|num|nr|year|month|day|hour|minute|second|ms|delay|timeout|[a-z_]*(count|size|width|height|index|idx|length|num|total|_id|Id|ids|Ids|px|pct|percent|level|depth|class|classname|classes|color|style|css|icon|nonce|url_for|prefix|suffix|sep|separator))$")
        .unwrap()
});

/// Holds when `n` is markup built from a value that is not escaped; the finding is placed on
/// that value's line.
pub(super) fn markup_from_values<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let text = a.text(n);
    if !text.contains('<') && !text.contains('=') {
        return false;
    }
    // The outermost `+` of a chain speaks for the chain.
    if is_concat(a, n) && n.parent().is_some_and(|p| is_concat(a, p)) {
        return false;
    }
    let mut literal = String::new();
    let mut parts = Vec::new();
    if !split(a, n, &mut literal, &mut parts) || !TAG.is_match(&literal) {
        return false;
    }
    match parts.into_iter().find(|p| is_data(a, *p, 0)) {
        Some(p) => {
            a.focus.set(Some(p.start_byte()));
            true
        }
        None => false,
    }
}

fn is_concat(a: &Analysis<'_>, n: Node<'_>) -> bool {
    matches!(n.kind(), "binary_expression" | "binary_operator")
        && n.child_by_field_name("operator")
            .is_some_and(|o| a.text(o) == "+")
}

fn is_string(n: Node<'_>) -> bool {
    matches!(
        n.kind(),
        "string" | "template_string" | "interpreted_string_literal" | "raw_string_literal"
    )
}

/// Splits a markup expression into its literal text and its dynamic parts; false when `n` is
/// not one of the shapes that build strings.
fn split<'t>(
    a: &Analysis<'t>,
    n: Node<'t>,
    literal: &mut String,
    parts: &mut Vec<Node<'t>>,
) -> bool {
    match n.kind() {
        _ if is_string(n) || is_concat(a, n) => {
            let mut segments = Vec::new();
            if !in_order(a, n, &mut segments) {
                return false;
            }
            for s in segments {
                match s {
                    Segment::Literal(t) => literal.push_str(&t),
                    Segment::Value(v) => parts.push(v),
                }
            }
            true
        }
        // Python's `"<b>%s</b>" % name` and `"<b>%s</b>" % (a, b)`.
        "binary_operator" => {
            let (Some(l), Some(r)) = (
                n.child_by_field_name("left"),
                n.child_by_field_name("right"),
            ) else {
                return false;
            };
            if !is_string(l)
                || n.child_by_field_name("operator")
                    .is_none_or(|o| a.text(o) != "%")
            {
                return false;
            }
            literal.push_str(a.text(l));
            let values: Vec<Node> = if r.kind() == "tuple" {
                let mut c = r.walk();
                r.named_children(&mut c).collect()
            } else {
                vec![r]
            };
            parts.extend(textual(a.text(l), values));
            true
        }
        // `"<b>{}</b>".format(name)`, Go's `fmt.Sprintf("<b>%s</b>", name)`: the arguments
        // after the format string.
        "call" | "call_expression" => {
            let (Some(f), Some(args)) = (
                n.child_by_field_name("function"),
                n.child_by_field_name("arguments"),
            ) else {
                return false;
            };
            let mut c = args.walk();
            let args: Vec<Node> = args.named_children(&mut c).collect();
            let format = match f.kind() {
                "attribute" => {
                    let object = f.child_by_field_name("object");
                    if f.child_by_field_name("attribute")
                        .is_none_or(|m| a.text(m) != "format")
                        || object.is_none_or(|o| !is_string(o))
                    {
                        return false;
                    }
                    object
                }
                "selector_expression" => {
                    if !matches!(a.text(f), "fmt.Sprintf" | "fmt.Fprintf") {
                        return false;
                    }
                    args.iter().copied().find(|x| is_string(*x))
                }
                _ => None,
            };
            let Some(format) = format else {
                return false;
            };
            literal.push_str(a.text(format));
            // `name=value` keyword arguments: the value.
            let values = args
                .into_iter()
                .filter(|x| x.start_byte() > format.start_byte())
                .map(|x| x.child_by_field_name("value").unwrap_or(x));
            if f.kind() == "selector_expression" {
                parts.extend(textual(a.text(format), values.collect()));
            } else {
                parts.extend(values);
            }
            true
        }
        _ => false,
    }
}

/// The values of a printf-style format that go in as text: `%d`, `%x`, `%f` print numbers. When
/// the conversions cannot be paired with the values (a `*` width, a mapping key), all of them.
fn textual<'t>(format: &str, values: Vec<Node<'t>>) -> Vec<Node<'t>> {
    let conversions: Vec<char> = cached_regex!(r"%[-#0 +]*\d*(\.\d+)?[hlL]?([a-zA-Z%])")
        .captures_iter(format)
        .filter_map(|c| c[2].chars().next())
        .filter(|c| *c != '%')
        .collect();
    if conversions.len() != values.len() || format.contains("%(") || format.contains('*') {
        return values;
    }
    values
        .into_iter()
        .zip(conversions)
        .filter(|(_, c)| {
            !matches!(
                c,
                'd' | 'i' | 'o' | 'u' | 'x' | 'X' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 'c' | 't'
            )
        })
        .map(|(v, _)| v)
        .collect()
}

/// A dynamic part that is text someone else wrote: a name, a field, an element of a list, a
/// parameter; not a constant, an escaped value, a number or class name, nor markup that a call
/// or another template built (those are checked where they are built).
fn is_data<'t>(a: &Analysis<'t>, n: Node<'t>, depth: usize) -> bool {
    if depth > 4 || a.is_constant(n) || sanitized(a, n, 0, false) {
        return false;
    }
    let last_name = |n: Node<'t>| {
        let t = a.text(n);
        t.rsplit(['.', '>']).next().unwrap_or(t).trim().to_string()
    };
    match n.kind() {
        "identifier" => {
            if NOT_TEXT.is_match(a.text(n)) {
                return false;
            }
            let values = a.bound_value_nodes(n);
            // A parameter, or a value read from data; not markup composed by a call or template.
            values.is_empty() || values.into_iter().any(|v| is_data(a, v, depth + 1))
        }
        "member_expression" | "attribute" | "selector_expression" => {
            let name = last_name(n);
            !NOT_TEXT.is_match(&name) && !matches!(name.as_str(), "length" | "size")
        }
        "subscript_expression" | "subscript" | "index_expression" => true,
        "parenthesized_expression" | "await_expression" => {
            n.named_child(0).is_some_and(|e| is_data(a, e, depth + 1))
        }
        // `label || 'value'`, `name ?? ''`, `name or ''`.
        "binary_expression" | "boolean_operator" => {
            let op = n.child_by_field_name("operator").map(|o| a.text(o));
            matches!(op, Some("||" | "??" | "or"))
                && [
                    n.child_by_field_name("left"),
                    n.child_by_field_name("right"),
                ]
                .into_iter()
                .flatten()
                .any(|s| is_data(a, s, depth + 1))
        }
        _ => false,
    }
}

/// Holds when `n` builds source code with a value pasted inside a quoted argument
/// (`"push('" + pp + "');"`, `` `parse('${tz}')` ``) and the file compiles or runs generated code.
/// The finding is placed on that value's line.
pub(super) fn code_from_values<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    let text = a.text(n);
    if !text.contains("('") && !text.contains("(\"") && !text.contains("(\\'") {
        return false;
    }
    if is_concat(a, n) && n.parent().is_some_and(|p| is_concat(a, p)) {
        return false;
    }
    let mut segments = Vec::new();
    if !in_order(a, n, &mut segments) {
        return false;
    }
    let literal: String = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Literal(t) => Some(t.as_str()),
            Segment::Value(_) => None,
        })
        .collect();
    if TAG.is_match(&literal) || super::injection::SQL_KEYWORDS.is_match(&literal) {
        return false;
    }
    // Once per file (memoized), not per string.
    if !super::file_matches(a, Some(RUNS_GENERATED_CODE)) {
        return false;
    }
    let opens = cached_regex!(r"[\w$\])]\(\s*\\?['\x22]$");
    let closes = cached_regex!(r"^\\?['\x22]\s*[,)]");
    for (i, s) in segments.iter().enumerate() {
        let Segment::Value(v) = s else { continue };
        let before = match i.checked_sub(1).map(|j| &segments[j]) {
            Some(Segment::Literal(t)) => t.as_str(),
            _ => continue,
        };
        let after = match segments.get(i + 1) {
            Some(Segment::Literal(t)) => t.as_str(),
            _ => continue,
        };
        if opens.is_match(before) && closes.is_match(after) && pasted_value(a, *v) {
            a.focus.set(Some(v.start_byte()));
            return true;
        }
    }
    false
}

/// A file that compiles or runs source it generates.
const RUNS_GENERATED_CODE: &str = r"new Function\(|\beval\(|\bvm\.|runInContext|runInNewContext|new Script\(|genFunc|generate-function|\.buf\.push\(|execFileSync\(|\[['\x22]-e['\x22]";

enum Segment<'t> {
    Literal(String),
    Value(Node<'t>),
}

/// A string (a template, an f-string) or a `+` chain of them as its literal texts and values, in
/// order.
fn in_order<'t>(a: &Analysis<'t>, n: Node<'t>, out: &mut Vec<Segment<'t>>) -> bool {
    if is_string(n) {
        let mut c = n.walk();
        for ch in n.named_children(&mut c) {
            match ch.kind() {
                "interpolation" | "template_substitution" => {
                    out.extend(ch.named_child(0).map(Segment::Value))
                }
                _ => out.push(Segment::Literal(a.text(ch).to_string())),
            }
        }
        if n.named_child_count() == 0 {
            out.push(Segment::Literal(a.text(n).to_string()));
        }
        return true;
    }
    if is_concat(a, n) {
        for side in ["left", "right"] {
            let Some(s) = n.child_by_field_name(side) else {
                return false;
            };
            if is_string(s) || is_concat(a, s) {
                in_order(a, s, out);
            } else {
                out.push(Segment::Value(s));
            }
        }
        return true;
    }
    false
}

/// A value that reaches generated code as typed: not a constant, not escaped or serialized
/// (`JSON.stringify`), not a number. Calls that compute it (`Array(n).join(pp)`) count: what they
/// return is still the caller's text.
fn pasted_value<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
    if a.is_constant(n) || sanitized(a, n, 0, false) {
        return false;
    }
    let t = a.text(n);
    if cached_regex!(r"JSON\.stringify|stringify\(|\bquote|\bescape|\.length\b|\bNumber\(|parseInt|parseFloat|toFixed|\bString\(\s*\d")
        .is_match(t)
    {
        return false;
    }
    let last = t.rsplit('.').next().unwrap_or(t);
    !NOT_TEXT.is_match(last)
}
