//! Removed-check rules: a change that deletes a guard (a containment check, an escape, a
//! permission or signature check) while the code it protected stays. The rules engine sees the
//! head file only; these rules also read what the diff deleted.
//!
//! A rule with `removed = "<regex>"` reports when a block of deleted lines matches the regex, the
//! head file holds fewer copies of the matched text than the base file did (a guard moved
//! elsewhere in the file is not a removal), and the rule's sink (its `query`, or its `sink`
//! regex on head lines) still follows in the same function. The finding goes on the head line
//! next to the deletion, where the check has to come back.

use super::RuleHit;
use super::analysis::Analysis;
use super::set::RuleSet;
use crate::diff::{FileDiff, LineKind};
use crate::lang::Language;
use crate::text::ascii_regex;
use tree_sitter::{Node, Point, QueryCursor, StreamingIterator, Tree};

/// One block of deleted lines (with what replaced it, if anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The head line next to the deletion: the first line that replaced it, or the line that now
    /// follows it.
    pub line: u32,
    /// The last head line of the hunk (a sink within the hunk is named in the range).
    pub hunk_end: u32,
    /// The deleted lines, joined with newlines.
    pub text: String,
    /// The lines added in their place, joined with newlines.
    pub added: String,
    /// Some deleted line is code, not only comments or blank lines.
    pub deletes_code: bool,
    /// Every line the file's diff adds (a guard may come back in another hunk).
    pub file_added: std::rc::Rc<str>,
}

/// The blocks of deleted lines of a file's diff, in order.
pub fn removals(diff: &FileDiff) -> Vec<Removal> {
    let mut out = Vec::new();
    let file_added: std::rc::Rc<str> = diff
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind == LineKind::Added)
        .map(|l| l.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
        .into();
    for h in &diff.hunks {
        let hunk_end = h.new_range().map(|(_, e)| e).unwrap_or(h.new_start.max(1));
        let mut i = 0;
        while i < h.lines.len() {
            if h.lines[i].kind != LineKind::Removed {
                i += 1;
                continue;
            }
            let mut text = Vec::new();
            let mut added = Vec::new();
            let mut first_added = None;
            // A block: removed lines, possibly interleaved with the added lines replacing them.
            while i < h.lines.len() && h.lines[i].kind != LineKind::Context {
                let l = &h.lines[i];
                if l.kind == LineKind::Removed {
                    text.push(l.text.as_str());
                } else {
                    added.push(l.text.as_str());
                    first_added = first_added.or(l.new_line);
                }
                i += 1;
            }
            let next_context = h.lines[i..].iter().find_map(|l| l.new_line);
            let prev_context = h.lines[..i].iter().rev().find_map(|l| l.new_line);
            let Some(line) = first_added.or(next_context).or(prev_context) else {
                continue;
            };
            out.push(Removal {
                line,
                hunk_end: hunk_end.max(line),
                deletes_code: text
                    .iter()
                    .any(|l| !l.trim().is_empty() && !is_comment_line(l)),
                text: text.join("\n"),
                added: added.join("\n"),
                file_added: file_added.clone(),
            });
        }
    }
    out
}

/// The arguments of the guard calls `re` finds in `text` (`escape(name)` -> `name`), when every
/// match is a call whose argument is plain to read; empty otherwise (then any guard of the kind
/// added anywhere counts as its replacement).
fn guarded_values(re: &regex::Regex, text: &str) -> Vec<String> {
    let mut values = Vec::new();
    for m in re.find_iter(text) {
        if !m.as_str().ends_with('(') {
            return Vec::new();
        }
        let rest = &text[m.end()..];
        let mut depth = 0usize;
        let Some(end) = rest.char_indices().find_map(|(i, ch)| match ch {
            '(' | '[' | '{' => {
                depth += 1;
                None
            }
            ')' | ']' | '}' if depth == 0 => Some(i),
            ')' | ']' | '}' => {
                depth -= 1;
                None
            }
            // An argument over several lines is not plain to read (`get` below gives none).
            '\n' => Some(usize::MAX),
            _ => None,
        }) else {
            return Vec::new();
        };
        let argument = rest.get(..end).map(str::trim).unwrap_or("");
        if argument.len() < 3 {
            return Vec::new();
        }
        values.push(argument.to_string());
    }
    values
}

/// When the deleted guard line kept its result in a variable (`const safe = escapeHtml(host)`)
/// that the head file no longer names, the head line of the first other deleted block that used
/// the variable and was replaced by lines that take the guard's argument raw
/// (`${safe}` -> `${host}`), or by the same lines without it (a middleware dropped from a route:
/// `app.use(PATH, guard, router)` -> `app.use(PATH, router)`), after the deletion and up to
/// `until` (the end of its function).
fn replaced_use(
    snippet: &str,
    ki: usize,
    removals: &[Removal],
    src: &str,
    until: u32,
) -> Option<u32> {
    static ASSIGNMENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        // A TypeScript annotation may stand before the `=` (`const guard: RequestHandler = ...`).
        ascii_regex(r"^(?:(?:const|let|var)\s+)?([A-Za-z_$][\w$]*)\s*(?::\s*[A-Za-z_$][\w$.<>\[\]|, ]*?\s*)?:?=[^=]")
            .unwrap()
    });
    let name = ASSIGNMENT.captures(snippet)?.get(1)?.as_str();
    if contains_word(src, name) {
        return None;
    }
    // What the guard was given, read from its call on the line (`escapeHtml(host)` -> host):
    // the use must now take it raw. A call whose arguments go on later lines gives nothing.
    let (_, args) = snippet.split_once('(')?;
    let raw: Vec<&str> = words(args.rsplit_once(')')?.0).collect();
    removals
        .iter()
        .enumerate()
        .find(|(i, u)| {
            *i != ki
                && u.line >= removals[ki].line
                && u.line <= until
                && !u.added.is_empty()
                && contains_word(&u.text, name)
                && !contains_word(&u.added, name)
                && (raw.iter().any(|w| contains_word(&u.added, w))
                    || without_word(&u.text, name) == without_whitespace(&u.added))
        })
        .map(|(_, u)| u.line)
}

/// `code` without the word `name` in an argument list (with its comma) and without whitespace:
/// equal to the replacing lines (`without_whitespace`) when they differ only by that argument.
fn without_word(code: &str, name: &str) -> String {
    let escaped = regex::escape(name);
    let pattern = format!(r"(?-u:\b){escaped}(?-u:\b)\s*,|,\s*(?-u:\b){escaped}(?-u:\b)");
    match regex::Regex::new(&pattern) {
        Ok(re) => without_whitespace(&re.replace_all(code, "")),
        Err(_) => without_whitespace(code),
    }
}

fn without_whitespace(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The line of `text` around byte `at`.
fn line_around(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// A function or method definition among deleted lines.
static DEFINITION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    ascii_regex(r"(?m)^\s*(?:export\s+)?(?:async\s+)?(?:def|function|func|class)\b|^\s*[\w$.]+\s*[:=]\s*(?:async\s+)?function\b|=>").unwrap()
});

/// A named function definition on a deleted line: `function isValidKey(`, `def _safe_path(`,
/// `func checkPath(`, `const isSafe = (` or `= function`.
static NAMED_DEFINITION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    ascii_regex(r"(?m)^\s*(?:export\s+)?(?:async\s+)?(?:(?:def|function|func)\s+(?:\([^)]*\)\s*)?(\w+)\s*\(|(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>))").unwrap()
});

/// The functions defined in deleted blocks whose deleted text holds the guard (`re`) and that no
/// longer exist in the head file.
fn deleted_guard_helpers(
    re: &regex::Regex,
    unless: Option<&regex::Regex>,
    removals: &[Removal],
    src: &str,
) -> Vec<String> {
    // A guard as the rule counts one: a match its `removed_unless` does not turn down (a helper
    // around `querystring.unescape` is no HTML escape).
    let holds_guard = |text: &str| {
        re.find_iter(text)
            .any(|m| !unless.is_some_and(|u| u.is_match(m.as_str())))
    };
    let mut names = Vec::new();
    for r in removals {
        if !holds_guard(&r.text) {
            continue;
        }
        let defs: Vec<regex::Captures> = NAMED_DEFINITION.captures_iter(&r.text).collect();
        for (i, cap) in defs.iter().enumerate() {
            let Some(name) = cap.get(1).or_else(|| cap.get(2)) else {
                continue;
            };
            // The guard must be in the helper's body (up to the next definition), not only in
            // its name.
            let body_start = r.text[cap.get(0).map_or(0, |m| m.end())..]
                .find('\n')
                .map_or(r.text.len(), |n| cap.get(0).map_or(0, |m| m.end()) + n);
            let body_end = defs
                .get(i + 1)
                .and_then(|d| d.get(0))
                .map_or(r.text.len(), |m| m.start());
            if body_start >= body_end || !holds_guard(&r.text[body_start..body_end]) {
                continue;
            }
            let name = name.as_str();
            // Too short or too common a name to stand for a guard across the file.
            if name.len() < 4 || src.contains(&format!("{name}(")) {
                continue;
            }
            names.push(name.to_string());
        }
    }
    names
}

/// Whether byte `at` of a deleted block lies in the body of a function the block deletes (its
/// definition comes before `at` in the block, and the head file no longer names it).
fn in_deleted_function(deleted: &str, at: usize, src: &str) -> bool {
    NAMED_DEFINITION
        .captures_iter(&deleted[..at])
        .last()
        .and_then(|cap| cap.get(1).or_else(|| cap.get(2)))
        .is_some_and(|name| !contains_word(src, name.as_str()))
}

/// A module-level list or set defined on a line (`const INVALID_KEYS = ['__proto__']`,
/// `BLOCKED = {"__proto__", ...}`, `var forbidden = new Set([...])`): its name and value.
static CONSTANT_DEFINITION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    ascii_regex(r"^(?:export\s+)?(?:(?:const|let|var)\s+)?([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=\s*((?:\[|\{|\(|new\s+(?:Set|Map)\(|(?:frozen)?set\(|map\[).*)$")
        .unwrap()
});

/// The lists a deleted block defines (see `CONSTANT_DEFINITION`): name, value and the byte range
/// of the definition in `text`. A value whose brackets open on the definition's line and close
/// further down (one forbidden key per line) runs to the line that closes them.
fn constant_definitions(text: &str) -> Vec<(String, String, std::ops::Range<usize>)> {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |at, l| {
            let start = *at;
            *at += l.len();
            Some((start, l.trim_end_matches('\n')))
        })
        .collect();
    let depth = |s: &str| {
        s.chars().fold(0i32, |d, c| match c {
            '[' | '{' | '(' => d + 1,
            ']' | '}' | ')' => d - 1,
            _ => d,
        })
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (start, line) = lines[i];
        i += 1;
        let Some(cap) = CONSTANT_DEFINITION.captures(line) else {
            continue;
        };
        let mut value = cap[2].to_string();
        let mut open = depth(&value);
        // A list longer than this is data, not a guard's key list.
        while open > 0 && i < lines.len() && value.len() < 2000 {
            let next = lines[i].1;
            value.push('\n');
            value.push_str(next);
            open += depth(next);
            i += 1;
        }
        let end = lines.get(i).map_or(text.len(), |(at, _)| *at);
        out.push((cap[1].to_string(), value, start..end));
    }
    out
}

/// The constants that deleted lines define with the guard in their value (a list of forbidden
/// keys) and that the head file no longer names: their deleted uses are the guard.
fn deleted_guard_constants(
    re: &regex::Regex,
    unless: Option<&regex::Regex>,
    removals: &[Removal],
    src: &str,
) -> Vec<String> {
    let mut names = Vec::new();
    for (name, value, _) in removals.iter().flat_map(|r| constant_definitions(&r.text)) {
        let guard = re
            .find_iter(&value)
            .any(|m| !unless.is_some_and(|u| u.is_match(m.as_str())));
        // Too short or too common a name to stand for a guard across the file.
        if guard && name.len() >= 4 && !contains_word(src, &name) {
            names.push(name);
        }
    }
    names
}

/// Whether `line` defines one of `constants`.
fn defines(line: &str, constants: &[String]) -> bool {
    CONSTANT_DEFINITION
        .captures(line)
        .is_some_and(|c| constants.iter().any(|n| n == &c[1]))
}

/// The deleted line of `r` (a small deletion) that uses one of `constants`, other than its
/// definition.
fn constant_use(constants: &[String], r: &Removal) -> Option<String> {
    if r.text.lines().count() > 8 {
        return None;
    }
    r.text
        .lines()
        .find(|l| {
            constants.iter().any(|n| contains_word(l, n))
                && !defines(l, constants)
                && !is_import(l)
                && !is_comment_line(l)
        })
        .map(str::to_string)
}

/// Whether `name` stands in `text` as a whole identifier.
fn contains_word(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    text.match_indices(name).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident)
            && !text[i + name.len()..].chars().next().is_some_and(ident)
    })
}

/// The deleted line of `r` that calls one of `helpers`, when the file calls it less than before.
/// Only a small deletion counts: a rewrite that deletes a whole implementation says nothing about
/// where in the new one a guard is missing.
fn helper_call(helpers: &[String], r: &Removal, old_src: &str, src: &str) -> Option<String> {
    if r.text.lines().count() > 8 {
        return None;
    }
    helpers.iter().find_map(|name| {
        let call = format!("{name}(");
        if old_src.matches(&call).count() <= src.matches(&call).count() {
            return None;
        }
        r.text
            .lines()
            .find(|l| {
                l.contains(&call)
                    && !NAMED_DEFINITION.is_match(l)
                    && !is_import(l)
                    && !is_comment_line(l)
            })
            .map(str::to_string)
    })
}

/// A removal a rule explains: the rule, the removal and the deleted line that shows it.
type Candidate = (usize, usize, String);

/// A sink found for a rule: its line and text.
struct Sink<'t> {
    node: Node<'t>,
    line: u32,
}

impl RuleSet {
    /// Runs the removed-check rules for `lang` over a changed file: `src`/`tree` is the head,
    /// `old_src` the base, `removals` the deleted blocks (see [`removals`]).
    pub fn run_removed(
        &self,
        lang: Language,
        src: &str,
        tree: &Tree,
        old_src: &str,
        removals: &[Removal],
        disabled: &[String],
    ) -> Vec<RuleHit> {
        if removals.is_empty() {
            return Vec::new();
        }
        // Which (rule, removal) pairs delete a guard that the file no longer holds as often.
        let mut candidates: Vec<Candidate> = Vec::new();
        // Candidates found through a deleted guard helper's call rather than the guard's text.
        let mut via_helper = std::collections::HashSet::new();
        // The constants each removal defines, read once for every rule.
        let definitions_by_removal: Vec<_> = removals
            .iter()
            .map(|r| constant_definitions(&r.text))
            .collect();
        for (ri, c) in self.compiled.iter().enumerate() {
            let Some(re) = &c.removed else { continue };
            if !c.langs.contains(&lang) || disabled.contains(&c.rule.id) {
                continue;
            }
            // No deleted line holds a literal a match must start with: nothing to match, and
            // the (lazily compiled) regex is never built.
            if let Some(prefixes) = &c.rule.removed_prefixes
                && !removals
                    .iter()
                    .any(|r| prefixes.iter().any(|p| r.text.contains(p.as_str())))
            {
                continue;
            }
            // Helpers the change deletes whose bodies held the guard: a deleted call to one of
            // them (`if (!isValidKey(key)) return;`) is a deleted guard too.
            let helpers = deleted_guard_helpers(re, c.removed_unless.as_deref(), removals, src);
            let constants = deleted_guard_constants(re, c.removed_unless.as_deref(), removals, src);
            for (ki, r) in removals.iter().enumerate() {
                // A guard replaced by another guard of its kind (one the deleted lines did not
                // hold) is a change of guard, not a removal: in the deletion's place, or elsewhere
                // in the file around a value the deleted guard took.
                let guarded = guarded_values(re, &r.text);
                let swapped = re.find_iter(&r.file_added).any(|m| {
                    let t = m.as_str();
                    let line = line_around(&r.file_added, m.start());
                    !is_comment_line(line)
                        && !r.text.contains(t)
                        && !c.removed_unless.as_ref().is_some_and(|u| u.is_match(t))
                        && (r.added.contains(t)
                            || guarded.is_empty()
                            || guarded.iter().any(|v| line.contains(v.as_str())))
                });
                if swapped {
                    continue;
                }
                let definitions = &definitions_by_removal[ki];
                let line_of = |start: usize| {
                    r.text[..start]
                        .rsplit('\n')
                        .next()
                        .unwrap_or("")
                        .to_string()
                        + r.text[start..].split('\n').next().unwrap_or("")
                };
                let Some(line) = re
                    .find_iter(&r.text)
                    .filter(|m| {
                        let t = m.as_str();
                        !t.trim().is_empty()
                            && !c.removed_unless.as_ref().is_some_and(|u| u.is_match(t))
                            && old_src.matches(t).count() > src.matches(t).count()
                            // The lines that replaced the block still hold it (a `--` moved
                            // within the argument list): the guard went elsewhere, if anywhere.
                            && r.text.matches(t).count() > r.added.matches(t).count()
                    })
                    .filter(|m| !made_by_helper(&r.text, m.range(), &r.added))
                    // Inside a function deleted whole: it counts through the calls to it.
                    .filter(|m| !in_deleted_function(&r.text, m.start(), src))
                    // An element of a deleted list of forbidden keys: the list's uses are the guard.
                    .filter(|m| {
                        !definitions.iter().any(|(name, _, span)| {
                            span.contains(&m.start()) && constants.contains(name)
                        })
                    })
                    .map(|m| line_of(m.start()))
                    // A guard named in a comment counts when the block deletes code with it (the
                    // comment says what that code did); a comment edited alone guarded nothing.
                    .filter(|l| !is_comment_line(l) || r.deletes_code)
                    // A deleted list of forbidden keys is a guard where it was used.
                    .find(|l| !is_import(l) && !is_definition(l) && !defines(l, &constants))
                    .or_else(|| {
                        let call = helper_call(&helpers, r, old_src, src);
                        if call.is_some() {
                            via_helper.insert((ri, ki));
                        }
                        call
                    })
                    .or_else(|| constant_use(&constants, r))
                else {
                    continue;
                };
                candidates.push((ri, ki, line.trim().to_string()));
            }
        }
        if candidates.is_empty() {
            return Vec::new();
        }
        let analysis = Analysis::new(lang, src, tree);
        let sinks = self.removed_sinks(lang, &analysis, tree, &candidates);
        let mut hits: Vec<RuleHit> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut blocks_hit = std::collections::HashSet::new();
        for (ri, ki, snippet) in candidates {
            let c = &self.compiled[ri];
            let r = &removals[ki];
            let at = node_at_line(&analysis, tree, r.line);
            // The function holding the deletion: a function that only starts on the line after
            // it is the next declaration, not the place the guard was, unless the deletion
            // begins with that function's own (edited) definition line.
            let edited_definition = is_definition(r.text.lines().next().unwrap_or(""))
                && is_definition(r.added.lines().next().unwrap_or(""));
            let function = at.map(|n| {
                if edited_definition && analysis.is_function(n) {
                    return n;
                }
                let f = analysis.enclosing_function(n);
                if f.id() != analysis.root.id()
                    && f.start_position().row as u32 + 1 == r.line
                    && !edited_definition
                {
                    analysis.enclosing_function(f)
                } else {
                    f
                }
            });
            // A guard's definition deleted at file level matters through its call sites, which
            // are removals of their own inside functions.
            let Some(function) = function else { continue };
            if function.id() == analysis.root.id() && DEFINITION.is_match(&r.text) {
                continue;
            }
            // A call to a deleted guard helper counts where the function that made it was kept:
            // in a rewritten file the deleted call has no place in the new code.
            if via_helper.contains(&(ri, ki))
                && !Some(analysis.function_name_of(function))
                    .filter(|name| !name.is_empty())
                    .is_some_and(|name| {
                        old_src.contains(&format!("{name}("))
                            || old_src.contains(&format!("{name} ="))
                    })
            {
                continue;
            }
            // One finding per rule and function: several deleted pieces of one guard are one bug.
            if seen.contains(&(ri, function.id())) || blocks_hit.contains(&ki) {
                continue;
            }
            let function_id = function.id();
            let function = Some(function);
            let (from, to) = match function {
                Some(f) if f.id() != analysis.root.id() => (
                    f.start_position().row as u32 + 1,
                    f.end_position().row as u32 + 1,
                ),
                _ => (1, u32::MAX),
            };
            let lo = r.line.saturating_sub(2).max(from);
            let hi = to.min(r.line.saturating_add(80));
            let sink: Option<(u32, String)> = if !c.rule.query.trim().is_empty() {
                sinks
                    .iter()
                    .filter(|(i, _)| *i == ri)
                    .map(|(_, s)| s)
                    .filter(|s| s.line >= lo && s.line <= hi)
                    .filter(|s| {
                        function.is_none_or(|f| {
                            f.id() == analysis.root.id()
                                || s.node.start_byte() >= f.start_byte()
                                    && s.node.end_byte() <= f.end_byte()
                        })
                    })
                    // The first sink after the deletion, else one just before it.
                    .min_by_key(|s| (s.line < r.line, s.line))
                    .map(|s| (s.line, first_line(analysis.text(s.node))))
            } else if let Some(re) = &c.sink {
                let lines: Vec<(u32, &str)> = src
                    .lines()
                    .enumerate()
                    .map(|(i, l)| (i as u32 + 1, l))
                    .skip(lo.saturating_sub(1) as usize)
                    .take_while(|(n, _)| *n <= hi)
                    .filter(|(_, l)| !is_comment_line(l))
                    .collect();
                // A response the function now declares plain text (or JSON) renders no markup.
                let unsinked = c
                    .sink_unless
                    .as_ref()
                    .is_some_and(|u| lines.iter().any(|(_, l)| u.is_match(l)));
                let lines: Vec<(u32, &str)> =
                    lines.into_iter().filter(|(_, l)| re.is_match(l)).collect();
                lines
                    .iter()
                    .find(|(n, _)| *n >= r.line)
                    .or_else(|| lines.first())
                    .map(|(n, l)| (*n, l.trim().to_string()))
                    // A helper that returned the guarded value now returns it without the guard:
                    // its output is the sink.
                    .or_else(|| {
                        returns_unguarded(&r.text, &r.added).map(|l| (r.line, l.trim().to_string()))
                    })
                    .filter(|_| !unsinked)
            } else {
                Some((r.line, String::new()))
            };
            let Some((sink_line, sink_text)) = sink else {
                continue;
            };
            seen.insert((ri, function_id));
            // One finding per deleted block: the first rule (in file order) that explains it.
            blocks_hit.insert(ki);
            let mut message = format!(
                "{}: this change removes `{}`",
                c.rule.message,
                shorten(&snippet, 90)
            );
            if !sink_text.is_empty() {
                message.push_str(&format!(
                    ", and `{}` on line {sink_line} still runs",
                    shorten(&sink_text, 70)
                ));
            }
            // The guarded value was kept in a variable the change deletes: the fix goes where
            // a use of it now takes the raw value.
            let line = replaced_use(&snippet, ki, removals, src, to).unwrap_or(r.line);
            let end_line = if line == r.line && sink_line >= r.line && sink_line <= r.hunk_end {
                sink_line
            } else {
                line
            };
            hits.push(RuleHit {
                rule_id: c.rule.id.clone(),
                line,
                end_line,
                severity: c.rule.severity,
                category: c.rule.category.clone(),
                cwe: c.rule.cwe.clone(),
                message,
                guidance: c.rule.guidance.clone(),
                confidence: c.rule.confidence,
                candidate: false,
            });
        }
        hits.sort_by(|a, b| a.line.cmp(&b.line).then(a.rule_id.cmp(&b.rule_id)));
        self.at_most_per_file(hits)
    }

    /// Keeps the first `max_per_file` findings of each rule that sets it; the last one kept
    /// names the lines of those left out, so that nothing is lost from the review.
    fn at_most_per_file(&self, hits: Vec<RuleHit>) -> Vec<RuleHit> {
        let limit = |id: &str| {
            self.compiled
                .iter()
                .find(|c| c.rule.id == id)
                .and_then(|c| c.rule.max_per_file)
        };
        let mut kept: Vec<RuleHit> = Vec::new();
        let mut left_out: std::collections::HashMap<String, Vec<u32>> = Default::default();
        for hit in hits {
            match limit(&hit.rule_id) {
                Some(n) if kept.iter().filter(|k| k.rule_id == hit.rule_id).count() >= n => {
                    left_out.entry(hit.rule_id).or_default().push(hit.line);
                }
                _ => kept.push(hit),
            }
        }
        for (rule, lines) in left_out {
            if let Some(last) = kept.iter_mut().rev().find(|k| k.rule_id == rule) {
                let lines: Vec<String> = lines.iter().map(u32::to_string).collect();
                last.message.push_str(&format!(
                    " (the change does the same on line{} {} of this file)",
                    if lines.len() == 1 { "" } else { "s" },
                    lines.join(", ")
                ));
            }
        }
        kept
    }

    /// The sinks of the candidate rules that have a query: every match whose predicates hold.
    fn removed_sinks<'t>(
        &self,
        lang: Language,
        analysis: &Analysis<'t>,
        tree: &'t Tree,
        candidates: &[Candidate],
    ) -> Vec<(usize, Sink<'t>)> {
        let Some(combined) = self.combined_removed(lang) else {
            return Vec::new();
        };
        let wanted: std::collections::HashSet<usize> =
            candidates.iter().map(|(ri, ..)| *ri).collect();
        let names = combined.query.capture_names();
        let mut out = Vec::new();
        let mut cursor = QueryCursor::new();
        let mut matches =
            cursor.matches(&combined.query, tree.root_node(), analysis.src.as_bytes());
        while let Some(m) = matches.next() {
            // Removed-check sinks are compiled one rule per pattern.
            let Some(&ri) = combined.pattern_rules[m.pattern_index].first() else {
                continue;
            };
            if !wanted.contains(&ri) {
                continue;
            }
            let c = &self.compiled[ri];
            let Some((report, captured)) = self.report_of(c, &combined.query, m.captures(), names)
            else {
                continue;
            };
            if c.conditions
                .iter()
                .all(|cond| cond.holds(analysis, report, &captured))
            {
                out.push((
                    ri,
                    Sink {
                        node: report,
                        line: report.start_position().row as u32 + 1,
                    },
                ));
            }
        }
        out
    }
}

/// The deepest node that starts at the first non-blank column of a 1-based line; for
/// `export function run(...)`, the exported function rather than the export around it.
fn node_at_line<'t>(a: &Analysis<'t>, tree: &'t Tree, line: u32) -> Option<Node<'t>> {
    let row = line.checked_sub(1)? as usize;
    let text = a.src.lines().nth(row)?;
    let col = text.len() - text.trim_start().len();
    let p = Point { row, column: col };
    let n = tree.root_node().named_descendant_for_point_range(p, p)?;
    match n.child_by_field_name("declaration") {
        Some(d) if n.kind() == "export_statement" && a.is_function(d) => Some(d),
        _ => Some(n),
    }
}

fn is_return(line: &str) -> bool {
    line.trim_start().starts_with("return ")
}

/// The return that now hands back, unguarded, what the deleted return passed through its guard
/// (`return quote(x)` -> `return x`). A deleted `return validate(cfg)` returned the check's
/// verdict, not a value: only a return of what it was given (`return cfg`) replaces it.
fn returns_unguarded<'a>(deleted: &str, added: &'a str) -> Option<&'a str> {
    static VERDICT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        ascii_regex(r"^\s*return\s+(?:[\w$]+\.)*(?:[vV]alidate|[cC]heck|[vV]erify|[eE]nsure|[iI]s[A-Z_])\w*\((.*)\)")
            .unwrap()
    });
    if !deleted.lines().any(is_return) {
        return None;
    }
    let verdict_args: Vec<&str> = deleted
        .lines()
        .filter_map(|l| Some(VERDICT.captures(l)?.get(1)?.as_str()))
        .collect();
    let given: std::collections::HashSet<&str> =
        verdict_args.iter().flat_map(|a| words(a)).collect();
    added.lines().filter(|l| is_return(l)).find(|l| {
        verdict_args.is_empty()
            || words(&l.trim_start()["return ".len()..]).any(|w| given.contains(w))
    })
}

/// The identifiers of a piece of code, without the literals every language returns.
fn words(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| w.chars().next().is_some_and(|c| !c.is_ascii_digit()))
        .filter(|w| {
            !matches!(
                *w,
                "nil" | "null" | "None" | "true" | "false" | "True" | "False" | "undefined" | "err"
            )
        })
}

/// The replacing lines spell the deleted line with the matched text swapped for a call without
/// arguments (`const o = Object.create(null)` -> `const o = pojo()`): the value is made by a
/// helper now, which is a change of how, not a removed guard.
fn made_by_helper(deleted: &str, matched: std::ops::Range<usize>, added: &str) -> bool {
    static ZERO_ARG_CALL: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| ascii_regex(r"^([\w$.]+)(?:<[^()]*>)?\(\s*\)$").unwrap());
    static ASSIGNED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        ascii_regex(r"^\s*(?:(?:const|let|var)\s+)?([\w$.]+)\s*(?::[^=]+)?=[^=]").unwrap()
    });
    static FROM_CALL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        ascii_regex(
            r"^\s*(?:(?:const|let|var)\s+)?([\w$.]+)\s*=\s*([\w$.]+)(?:<.*>)?\(\s*\)\s*;?\s*$",
        )
        .unwrap()
    });
    let line_start = deleted[..matched.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = deleted[matched.end..]
        .find('\n')
        .map_or(deleted.len(), |i| matched.end + i);
    let line = &deleted[line_start..line_end];
    // The helper is another function: the same constructor called without its arguments
    // (`XMLParser(resolve_entities=False)` -> `XMLParser()`) drops the guard.
    let another_callee = |callee: &str| !line.contains(&format!("{callee}("));
    // `const o: T = Object.create(null)` -> `const o = pojo<T>()`: the same name, now from a call.
    if let Some(name) = ASSIGNED.captures(line).and_then(|c| c.get(1))
        && added.lines().any(|l| {
            FROM_CALL.captures(l).is_some_and(|c| {
                c.get(1).is_some_and(|n| n.as_str() == name.as_str())
                    && c.get(2).is_some_and(|f| another_callee(f.as_str()))
            })
        })
    {
        return true;
    }
    // `x = a ? b : Object.create(null)` -> `x = a ? b : pojo()`: the same line around a call.
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    let (before, after) = (
        squash(&deleted[line_start..matched.start]),
        squash(&deleted[matched.end..line_end]),
    );
    added.lines().map(squash).any(|l| {
        l.len() >= before.len() + after.len()
            && l.starts_with(&before)
            && l.ends_with(&after)
            && ZERO_ARG_CALL
                .captures(&l[before.len()..l.len() - after.len()])
                .and_then(|c| c.get(1))
                .is_some_and(|f| another_callee(f.as_str()))
    })
}

/// A line that defines a function, method or class: deleting a guard's definition is not
/// deleting its use (the deleted calls are removals of their own).
fn is_definition(line: &str) -> bool {
    static METHOD_OR_CLASS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        ascii_regex(r"^\s*(?:(?:(?:public|private|protected|static|async|export|default)\s+)*[\w$]+\s*\([^)]*\)\s*(?::\s*[^{=]+)?\{\s*$|(?:export\s+)?(?:abstract\s+)?class\s+\w+)").unwrap()
    });
    let keyword = line
        .trim_start()
        .split(|c: char| !c.is_alphanumeric())
        .next();
    NAMED_DEFINITION.is_match(line)
        || (METHOD_OR_CLASS.is_match(line)
            && !matches!(
                keyword,
                Some("if" | "for" | "while" | "switch" | "catch" | "with" | "return")
            ))
}

/// An import or require line: naming a guard is not running it.
fn is_import(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("import ")
        || (t.starts_with("from ") && t.contains(" import "))
        || t.contains("require(")
        || (t.starts_with('"') && t.trim_end().ends_with('"'))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn is_comment_line(l: &str) -> bool {
    let t = l.trim_start();
    t.starts_with("//") || t.starts_with('#') || t.starts_with("/*") || t.starts_with('*')
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}
