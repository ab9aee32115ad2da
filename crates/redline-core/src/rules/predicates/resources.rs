//! Resources left open: a deferred Close placed after early returns (Go), a pooled client
//! not released on a return path (JavaScript).

use super::*;

/// `defer X.Body.Close()` (or `defer X.Close()`) placed after statements that can return once X
/// is open: those paths leave it open (an HTTP body keeps its connection). The error check right
/// after X's assignment is fine: X is not open when it returns.
pub(super) fn go_close_after_return<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
            let err_re = regex_of(Some(&format!(r"\b{}\b", regex::escape(err_name))));
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
pub(super) fn js_return_keeps_client<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
