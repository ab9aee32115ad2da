//! Error handling: failures only logged before code that records success, bare excepts, and
//! Go errors assigned and never checked or thrown away.

use super::*;

pub(super) static GO_IMPORTANT_ERR: LazyLock<Regex> = LazyLock::new(|| {
    // Number parsing with `_` is the usual way to default an optional value to zero: not listed.
    ascii_regex(r"^(Unmarshal|Decode|Exec|ExecContext|Commit|Scan|Remove|RemoveAll|WriteFile|MkdirAll|Mkdir|Rename|Setenv|Sync|ParseForm|ParseMultipartForm|Chmod|Chdir|Symlink|ReadFile|ReadAll|Open|OpenFile|Create|Marshal|Query|QueryRow|QueryContext|Do|NewRequest|NewRequestWithContext|Copy|Get|Post|Dial|Listen|Stat|Seek)$").unwrap()
});

/// An `except`/`catch` handler that only logs, after a `try` that calls out (HTTP, payments,
/// messaging), followed by code that records or announces success: the failure is written to a
/// log and the caller is told it worked.
pub(super) fn logged_and_continued<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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

/// `except:` with no exception type, whose handler does not re-raise.
pub(super) fn bare_except<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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

/// `err` assigned and then never read before it is overwritten or the block ends.
pub(super) fn go_err_unchecked<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
pub(super) fn go_blank_error<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
