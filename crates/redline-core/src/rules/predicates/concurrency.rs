//! Concurrency: fields written without the lock other methods take, and read-modify-write of
//! stored values without a row lock, atomic update or transaction.

use super::*;

/// A write to `recv.field` (or `recv.field[k]`) in a method that takes no lock, when other
/// methods of the file lock a mutex around the same field: the field is shared, and this path
/// races with them (for a map, a concurrent write crashes the program).
pub(super) fn go_unlocked_guarded_write<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
    let guarded = regex_of(Some(&format!(r"\.{}\b", regex::escape(&field))));
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
pub(super) fn lost_update<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
                regex_of(Some(&format!(
                    r"^\s*{}\.{}\s*[-+]",
                    regex::escape(obj),
                    regex::escape(field)
                )))
                .is_match(right)
            };
            if !self_relative || !ftext.contains(&format!("{obj}.save(")) {
                return false;
            }
            if ftext.contains("select_for_update") || cached_regex!(r"\bF\(").is_match(ftext) {
                return false;
            }
            // Read from the database in this function, without a row lock.
            regex_of(Some(&format!(
                r"\b{}\s*=\s*[^\n]*(\.objects\.[^\n]*\.?(get|first|last)\(|get_object_or_404\()",
                regex::escape(obj)
            )))
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
