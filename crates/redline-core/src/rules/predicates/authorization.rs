//! Authorization: a handler that skips the ownership check its sibling handlers make.

use super::*;

/// Names of helpers that check that the caller may touch a record (ownership, membership).
pub(super) static OWNERSHIP_HELPER: LazyLock<Regex> = LazyLock::new(|| {
    ascii_regex(r"(?i)\b\w*(owned|ownership|membership|member_?for|authori[sz]e_?\w*|can_?(edit|access|view|modify|manage|delete)|check_?(access|owner|permission|membership)|ensure_?(owner|access|member)\w*|require_?(owner|member|access)\w*|assert_?(owner|access|member)\w*)\w*\s*\(").unwrap()
});

/// A call that loads or changes a record by an id from the request, in a request handler that
/// skips the ownership check its sibling handlers in the file all make (at least two of them
/// call the same kind of helper): the classic insecure direct object reference.
pub(super) fn skips_ownership_check<'t>(a: &Analysis<'t>, n: Node<'t>) -> bool {
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
pub(super) fn checking_functions(a: &Analysis<'_>) -> std::rc::Rc<Vec<usize>> {
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
