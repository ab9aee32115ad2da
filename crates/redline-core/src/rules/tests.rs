//! Predicates and removed-check rules through small rule sets written here.

use super::removed::{Removal, removals};
use super::{RuleSet, parse_rules};
use crate::lang::Language;

fn set(toml: &str) -> RuleSet {
    RuleSet::new(parse_rules("test", toml).unwrap()).unwrap()
}

fn parse(lang: Language, src: &str) -> tree_sitter::Tree {
    let mut p = tree_sitter::Parser::new();
    p.set_language(&lang.grammar()).unwrap();
    p.parse(src, None).unwrap()
}

fn hits(rules: &RuleSet, lang: Language, src: &str) -> Vec<(String, u32)> {
    let tree = parse(lang, src);
    rules
        .run(lang, src, &tree)
        .into_iter()
        .map(|h| (h.rule_id, h.line))
        .collect()
}

fn removed_hits(rules: &RuleSet, lang: Language, base: &str, head: &str) -> Vec<(String, u32)> {
    let tree = parse(lang, head);
    let diff = crate::diff::diff_texts(Some("f"), Some("f"), base, head);
    rules
        .run_removed(lang, head, &tree, base, &removals(&diff), &[])
        .into_iter()
        .map(|h| (h.rule_id, h.line))
        .collect()
}

const INNER_HTML: &str = r#"
[[rule]]
id = "t.inner-html"
languages = ["typescript"]
severity = "critical"
category = "xss"
message = "m"
query = '''(assignment_expression left: (member_expression property: (property_identifier) @_p) right: (_) @sink (#eq? @_p "innerHTML"))'''
report = "sink"
when = ["unsanitized"]
"#;

#[test]
fn unsanitized_leaves_out_constants_escapes_and_other_elements_markup() {
    let rules = set(INNER_HTML);
    let src = "function f(a: HTMLElement, b: HTMLElement, s: string) {\n  a.innerHTML = b.outerHTML;\n  a.innerHTML = \"<b>x</b>\";\n  a.innerHTML = escapeHtml(s);\n  a.innerHTML = s;\n}\n";
    assert_eq!(
        hits(&rules, Language::TypeScript, src),
        vec![("t.inner-html".into(), 5)]
    );
}

#[test]
fn unsanitized_templates_reach_to_their_last_unescaped_substitution() {
    let rules = set(INNER_HTML);
    let src = "function f(a: HTMLElement, base: string, remote: string) {\n  a.innerHTML = `\n    <div>\n      <span>x</span>\n      <span>y</span>\n      <span>z</span>\n      <span>${escapeHtml(base)}</span>\n      <span>${remote}</span>\n      <span>${escapeHtml(base)}</span>\n    </div>`;\n}\n";
    let tree = parse(Language::TypeScript, src);
    let got: Vec<(u32, u32)> = rules
        .run(Language::TypeScript, src, &tree)
        .into_iter()
        .map(|h| (h.line, h.end_line))
        .collect();
    // Starts on the assignment, reaches the `${remote}` line (8), not the escaped one after it.
    assert_eq!(got, vec![(2, 8)]);
}

const REDOS: &str = r#"
[[rule]]
id = "t.redos"
languages = ["javascript"]
severity = "warning"
category = "redos"
message = "m"
query = '''(regex) @re'''
when = ["backtracking-regex"]
"#;

#[test]
fn backtracking_regex_points_at_the_line_of_the_culprit() {
    let rules = set(REDOS);
    let src = "const ok = /^\\w+(?:\\s\\w+)*$/;\nconst bad = /^(\\w+\\s?)*$/;\n";
    assert_eq!(
        hits(&rules, Language::JavaScript, src),
        vec![("t.redos".into(), 2)]
    );
}

const PY_REDOS: &str = r#"
[[rule]]
id = "t.py-redos"
languages = ["python"]
severity = "warning"
category = "redos"
message = "m"
query = '''(call function: (attribute object: (identifier) @_re) arguments: (argument_list (string) @re) (#eq? @_re "re"))'''
report = "re"
when = ["backtracking-regex"]
"#;

#[test]
fn a_regex_put_together_from_named_fragments_spans_them_and_is_found_from_a_change_to_one() {
    let rules = set(PY_REDOS);
    let src = "import re\n\ndef address():\n    name = r'[\\w.+-]+'\n    addr = r'<\\s*(.+)\\s*>'\n    return re.compile(rf'^({name})?{addr}$')\n";
    let tree = parse(Language::Python, src);
    let on = |lines: &[u32]| -> Vec<(u32, u32)> {
        rules
            .run_on_lines(
                Language::Python,
                src,
                &tree,
                &[],
                &lines.iter().copied().collect(),
            )
            .into_iter()
            .map(|h| (h.line, h.end_line))
            .collect()
    };
    // A change to the `addr` fragment alone (line 5) selects the rule although the call is on
    // line 6; the finding runs from the first fragment to the call.
    assert_eq!(on(&[5]), vec![(4, 6)]);
    // A parameter interpolated into the pattern is not known: no finding.
    let unknown = "import re\n\ndef address(addr):\n    return re.compile(rf'^(\\w+)?{addr}$')\n";
    assert!(hits(&rules, Language::Python, unknown).is_empty());
}

const REMOVED: &str = r#"
[[rule]]
id = "t.removed-escape"
languages = ["javascript"]
severity = "critical"
category = "xss"
message = "escape removed"
removed = '''\bescapeHtml\('''
sink = '''<[a-z]'''

[[rule]]
id = "t.removed-origin"
languages = ["javascript"]
severity = "critical"
category = "csrf"
message = "origin check removed"
removed = '''\bcheckOrigin\('''
"#;

#[test]
fn removals_group_deleted_lines_with_their_replacement() {
    let base = "a\nb\nc\nd\n";
    let head = "a\nB\nd\n";
    let diff = crate::diff::diff_texts(Some("f"), Some("f"), base, head);
    let r: Vec<Removal> = removals(&diff);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].line, 2);
    assert_eq!(r[0].text, "b\nc");
    assert_eq!(r[0].added, "B");
    // A pure deletion points at the line that now follows it.
    let diff = crate::diff::diff_texts(Some("f"), Some("f"), "a\nb\nc\n", "a\nc\n");
    assert_eq!(removals(&diff)[0].line, 2);
}

#[test]
fn a_removed_guard_is_reported_when_its_sink_remains() {
    let rules = set(REMOVED);
    let base =
        "function row(f) {\n  const n = escapeHtml(f.name);\n  return '<li>' + n + '</li>';\n}\n";
    let head = "function row(f) {\n  const n = f.name;\n  return '<li>' + n + '</li>';\n}\n";
    assert_eq!(
        removed_hits(&rules, Language::JavaScript, base, head),
        vec![("t.removed-escape".into(), 2)]
    );
}

#[test]
fn a_guard_that_moved_or_lost_its_sink_is_not_reported() {
    let rules = set(REMOVED);
    // Moved within the file: the head holds as many copies as the base.
    let base =
        "function row(f) {\n  const n = escapeHtml(f.name);\n  return '<li>' + n + '</li>';\n}\n";
    let head = "function row(f) {\n  return '<li>' + escapeHtml(f.name) + '</li>';\n}\n";
    assert!(removed_hits(&rules, Language::JavaScript, base, head).is_empty());
    // No markup left after the deletion: not an XSS.
    let base = "function label(f) {\n  const n = escapeHtml(f.name);\n  log(n);\n}\n";
    let head = "function label(f) {\n  const n = f.name;\n  log(n);\n}\n";
    assert!(removed_hits(&rules, Language::JavaScript, base, head).is_empty());
}

#[test]
fn a_removed_guard_without_a_sink_pattern_is_reported_and_definitions_at_file_level_are_not() {
    let rules = set(REMOVED);
    let base = "function onUpgrade(req, socket) {\n  if (!checkOrigin(req)) {\n    return socket.destroy();\n  }\n  accept(req, socket);\n}\n";
    let head = "function onUpgrade(req, socket) {\n  accept(req, socket);\n}\n";
    assert_eq!(
        removed_hits(&rules, Language::JavaScript, base, head),
        vec![("t.removed-origin".into(), 2)]
    );
    // Deleting the helper itself (at file level) is reported through its call sites only.
    let base = "function checkOrigin(req) {\n  return req.headers.origin === ORIGIN;\n}\nfunction f() {}\n";
    let head = "function f() {}\n";
    assert!(removed_hits(&rules, Language::JavaScript, base, head).is_empty());
    // So is a wrapper written as a function expression assigned to a name (hoek's
    // `exports.escapeJavaScript = function (string) {...}`), deleted before another one.
    let deleted = "exports.escapeHtml = function (s) {\n  return Escape.escapeHtml(s);\n};\n";
    let kept = "exports.row = function (s) {\n  return '<li>' + s + '</li>';\n};\n";
    let (base, head) = (format!("{deleted}{kept}"), kept.to_string());
    assert!(removed_hits(&rules, Language::JavaScript, &base, &head).is_empty());
}

#[test]
fn a_guard_named_in_an_edited_comment_is_no_removal_and_no_replacement() {
    let rules = set(REMOVED);
    // lodash's safeGet: the doc comment is edited (it names the guard before and after), and the
    // check itself is deleted below it. The comment neither counts as the removal nor stands in
    // for the deleted check; the finding goes where the check was.
    let base = "/**\n * Origin, unless checkOrigin(req) fails or the host is bad.\n */\nfunction onUpgrade(req, socket) {\n  if (!checkOrigin(req)) {\n    return socket.destroy();\n  }\n  accept(req, socket);\n}\n";
    let head = "/**\n * Origin, unless checkOrigin(req) fails.\n */\nfunction onUpgrade(req, socket) {\n  accept(req, socket);\n}\n";
    assert_eq!(
        removed_hits(&rules, Language::JavaScript, base, head),
        vec![("t.removed-origin".into(), 5)]
    );
    // A comment deleted with the code it described still names that code's guard.
    let base = "function onUpgrade(req, socket) {\n  // reject unless checkOrigin( passes\n  if (!allowed(req)) {\n    return socket.destroy();\n  }\n  accept(req, socket);\n}\n";
    let head = "function onUpgrade(req, socket) {\n  accept(req, socket);\n}\n";
    assert_eq!(
        removed_hits(&rules, Language::JavaScript, base, head),
        vec![("t.removed-origin".into(), 2)]
    );
}

#[test]
fn a_guard_inside_a_function_deleted_whole_is_not_reported_at_its_place() {
    let rules = set(REMOVED);
    // nezha: a helper holding the check is deleted together with the end of the function above
    // it; the head no longer names the helper, so the check counts where it was called.
    let base = "function handle(req, socket) {\n  accept(req, socket);\n  log(req);\n}\n\nfunction originAllowed(req) {\n  if (!checkOrigin(req)) {\n    return false;\n  }\n  return true;\n}\n";
    let head = "function handle(req, socket) {\n  accept(req, socket);\n}\n";
    assert!(removed_hits(&rules, Language::JavaScript, base, head).is_empty());
}

#[test]
fn a_helper_that_returned_the_guarded_value_is_its_own_sink() {
    let rules = set(REMOVED);
    let base = "function label(f) {\n  return escapeHtml(f.name);\n}\n";
    let head = "function label(f) {\n  return f.name;\n}\n";
    assert_eq!(
        removed_hits(&rules, Language::JavaScript, base, head),
        vec![("t.removed-escape".into(), 2)]
    );
}

const SYSTEM_CALL: &str = r#"
[[rule]]
id = "t.os-system"
languages = ["python"]
severity = "critical"
category = "command-injection"
message = "m"
query = '''(call function: (attribute object: (identifier) @_o attribute: (identifier) @_m) arguments: (argument_list . (_) @sink) (#eq? @_o "os") (#eq? @_m "system"))'''
report = "sink"
one_per_function = true
when = ["dynamic-string"]
[[rule.examples]]
expect = "hit"
code = "os.system('rm %s' % x)"
"#;

#[test]
fn a_once_per_function_rule_reports_the_changed_line_not_only_the_first_in_the_function() {
    let rules = set(SYSTEM_CALL);
    let src = "import os\n\ndef backup(name, other):\n    os.system(\"tar czf /b/%s.tgz /data\" % name)\n    os.system(\"rm -rf /tmp/%s\" % other)\n";
    let tree = parse(Language::Python, src);
    let on = |lines: &[u32]| -> Vec<u32> {
        rules
            .run_on_lines(
                Language::Python,
                src,
                &tree,
                &[],
                &lines.iter().copied().collect(),
            )
            .into_iter()
            .map(|h| h.line)
            .filter(|l| lines.contains(l))
            .collect()
    };
    // The whole file: once per function, the first.
    assert_eq!(
        hits(&rules, Language::Python, src),
        vec![("t.os-system".to_string(), 4)]
    );
    // A change to line 5 alone: line 4, unchanged, does not take its turn; and the function's
    // own `def backup(` does not make the two hits repeats of each other.
    assert_eq!(on(&[5]), vec![5]);
    assert_eq!(on(&[4]), vec![4]);
}

#[test]
fn the_review_form_of_the_builtin_rules_is_the_toml_less_its_examples() {
    let review = RuleSet::builtin().unwrap();
    let full = RuleSet::with_examples(&[]).unwrap();
    assert_eq!(review.len(), full.len());
    assert!(review.len() > 100);
    for (a, b) in review.rules().zip(full.rules()) {
        assert!(a.examples.is_empty() && a.changes.is_empty(), "{}", a.id);
        let mut a = a.clone();
        a.removed_prefixes = None;
        let mut b = b.clone();
        b.examples.clear();
        b.changes.clear();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

#[test]
fn every_match_of_a_removed_check_regex_starts_with_one_of_its_listed_prefixes() {
    let review = RuleSet::builtin().unwrap();
    let full = RuleSet::with_examples(&[]).unwrap();
    let mut checked = 0;
    for (a, b) in review.rules().zip(full.rules()) {
        let Some(prefixes) = &a.removed_prefixes else {
            continue;
        };
        let re = crate::text::ascii_regex(a.removed.as_deref().unwrap()).unwrap();
        let texts = b
            .examples
            .iter()
            .chain(&b.changes)
            .flat_map(|e| [e.code.as_str(), e.base.as_deref().unwrap_or("")]);
        for text in texts {
            for m in re.find_iter(text) {
                checked += 1;
                assert!(
                    prefixes.iter().any(|p| m.as_str().starts_with(p.as_str())),
                    "{}: `{}` starts with none of {prefixes:?}",
                    a.id,
                    m.as_str()
                );
            }
        }
    }
    assert!(checked > 10, "only {checked} matches checked");
}

#[test]
fn a_predicate_outside_every_pattern_is_refused() {
    // tree-sitter would read `(#eq? ...)` as a pattern of its own, leaving the call unconstrained.
    let toml = r#"
[[rule]]
id = "t.top-level-predicate"
languages = ["go"]
severity = "warning"
category = "test"
message = "m"
query = '''
(call_expression function: (selector_expression field: (field_identifier) @_f)) @c
  (#eq? @_f "Sprintf")
'''
"#;
    // Checked where rules are compiled: for user rule folders at load, for ours by `knowledge check`.
    let problems = set(toml).compile_each();
    assert!(
        problems.len() == 1 && problems[0].contains("outside every pattern"),
        "{problems:?}"
    );
    let wrapped = toml
        .replace("(call_expression", "((call_expression")
        .replace("(#eq? @_f \"Sprintf\")", "(#eq? @_f \"Sprintf\"))");
    let rules = set(&wrapped);
    assert!(rules.compile_each().is_empty());
    let src = "package p\nfunc f() {\n\tfmt.Sprintf(\"%s\", a)\n\tldap.Dial(\"tcp\", a)\n}\n";
    assert_eq!(
        hits(&rules, Language::Go, src),
        vec![("t.top-level-predicate".to_string(), 3)]
    );
}

#[test]
fn a_guard_now_made_by_a_helper_is_not_a_removal() {
    // The built-in prototype-key rule: a null-prototype object is a guard against `__proto__`.
    let rules = RuleSet::builtin().unwrap();
    let base = "function index(rows) {\n  const byKey: Record<string, Row> = Object.create(null);\n  for (const r of rows) byKey[r.key] = r;\n  return byKey;\n}\n";
    let dropped = "function index(rows) {\n  const byKey: Record<string, Row> = {};\n  for (const r of rows) byKey[r.key] = r;\n  return byKey;\n}\n";
    let helper = "function index(rows) {\n  const byKey = pojo<Record<string, Row>>();\n  for (const r of rows) byKey[r.key] = r;\n  return byKey;\n}\n";
    let inline = "function index(rows, options) {\n  const byKey = options.map ?? pojo();\n  for (const r of rows) byKey[r.key] = r;\n  return byKey;\n}\n";
    let inline_base = "function index(rows, options) {\n  const byKey = options.map ?? Object.create(null);\n  for (const r of rows) byKey[r.key] = r;\n  return byKey;\n}\n";
    let proto = |base: &str, head: &str| {
        removed_hits(&rules, Language::TypeScript, base, head)
            .into_iter()
            .filter(|(id, _)| id == "removed.prototype-key-guard")
            .count()
    };
    assert_eq!(proto(base, dropped), 1);
    assert_eq!(proto(base, helper), 0);
    assert_eq!(proto(inline_base, inline), 0);
}

#[test]
fn a_deleted_list_of_forbidden_keys_written_one_per_line_counts_where_it_was_used() {
    let rules = RuleSet::builtin().unwrap();
    // ts-dot-prop: the list and the test that used it are deleted together; the finding belongs
    // to the parser that no longer drops the keys, not to the list's own lines.
    let base = "const disallowed: string[] = [\n  '__proto__',\n  'prototype',\n  'constructor'\n];\n\nexport function set(obj: any, path: string, value: any) {\n  const parts = getParts(path);\n  let cur = obj;\n  for (const key of parts.slice(0, -1)) {\n    cur = cur[key] = cur[key] || {};\n  }\n  cur[parts[parts.length - 1]] = value;\n}\n\nfunction getParts(path: string): string[] {\n  const parts = path.split('.');\n  if (parts.some(x => disallowed.indexOf(x) !== -1)) {\n    return [];\n  }\n  return parts;\n}\n";
    let head = "export function set(obj: any, path: string, value: any) {\n  const parts = getParts(path);\n  let cur = obj;\n  for (const key of parts.slice(0, -1)) {\n    cur = cur[key] = cur[key] || {};\n  }\n  cur[parts[parts.length - 1]] = value;\n}\n\nfunction getParts(path: string): string[] {\n  return path.split('.');\n}\n";
    let found: Vec<u32> = removed_hits(&rules, Language::TypeScript, base, head)
        .into_iter()
        .filter(|(id, _)| id == "removed.prototype-key-guard")
        .map(|(_, line)| line)
        .collect();
    assert_eq!(found, vec![11]);
}
