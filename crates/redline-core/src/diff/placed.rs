//! A line diff of two texts whose changes sit where git puts them. A run of added or removed
//! lines can often sit at several places (a deleted `if` block whose last lines repeat the lines
//! above it); git slides each run to line up with the other side's changes, else scores the
//! places by blank lines and indentation (its "indent heuristic", the default since git 2.14).
//! Reviews of two folders (`--base-dir/--head-dir`, the bench) then see the hunks a pull
//! request's diff shows, and a removed check is reported where the pull request shows it gone.
//! Follows `xdl_change_compact` in git's xdiff/xdiffi.c.

use super::{DiffLine, Hunk, LineKind};

/// The hunks (3 lines of context) of the change from `old` to `new`.
pub(super) fn hunks(old: &str, new: &str) -> Vec<Hunk> {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let (mut ca, mut cb) = (vec![false; a.len()], vec![false; b.len()]);
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &a, &b) {
        for i in op.old_range() {
            ca[i] = !matches!(op, similar::DiffOp::Equal { .. });
        }
        for j in op.new_range() {
            cb[j] = !matches!(op, similar::DiffOp::Equal { .. });
        }
    }
    compact(&a, &mut ca, &cb);
    compact(&b, &mut cb, &ca);
    group(&a, &b, &ca, &cb)
}

/// A run of changed lines `[start, end)` of one side.
#[derive(Clone, Copy)]
struct Group {
    start: usize,
    end: usize,
}

/// How many changed lines run from `i` on, and up to `i` (exclusive).
fn run_from(changed: &[bool], i: usize) -> usize {
    changed[i..].iter().take_while(|c| **c).count()
}
fn run_to(changed: &[bool], i: usize) -> usize {
    changed[..i].iter().rev().take_while(|c| **c).count()
}

/// The first run of changed lines (empty when the first line is unchanged).
fn first(changed: &[bool]) -> Group {
    Group {
        start: 0,
        end: run_from(changed, 0),
    }
}

/// Moves to the next run (possibly empty) after `g`; false at the end.
fn next(changed: &[bool], g: &mut Group) -> bool {
    if g.end >= changed.len() {
        return false;
    }
    g.start = g.end + 1;
    g.end = g.start + run_from(changed, g.start);
    true
}

/// Moves to the run before `g`.
fn previous(changed: &[bool], g: &mut Group) {
    if g.start == 0 {
        return;
    }
    g.end = g.start - 1;
    g.start = g.end - run_to(changed, g.end);
}

/// One side's lines and which of them changed.
struct Side<'a, 'c> {
    lines: &'a [&'a str],
    changed: &'c mut [bool],
}

impl Side<'_, '_> {
    fn extend(&self, g: &mut Group) {
        g.end += run_from(self.changed, g.end);
        g.start -= run_to(self.changed, g.start);
    }

    fn slide_down(&mut self, g: &mut Group) -> bool {
        if g.end < self.lines.len() && self.lines[g.start] == self.lines[g.end] {
            self.changed[g.start] = false;
            self.changed[g.end] = true;
            g.start += 1;
            g.end += 1;
            self.extend(g);
            return true;
        }
        false
    }

    fn slide_up(&mut self, g: &mut Group) -> bool {
        if g.start > 0 && self.lines[g.start - 1] == self.lines[g.end - 1] {
            g.start -= 1;
            g.end -= 1;
            self.changed[g.start] = true;
            self.changed[g.end] = false;
            self.extend(g);
            return true;
        }
        false
    }
}

const MAX_SLIDING: usize = 100;

fn compact(lines: &[&str], changed: &mut [bool], other: &[bool]) {
    let (mut g, mut go) = (first(changed), first(other));
    let mut side = Side { lines, changed };
    loop {
        if g.end != g.start {
            let mut earliest_end;
            let mut end_matching_other;
            loop {
                let size = g.end - g.start;
                end_matching_other = None;
                while side.slide_up(&mut g) {
                    previous(other, &mut go);
                }
                earliest_end = g.end;
                if go.end > go.start {
                    end_matching_other = Some(g.end);
                }
                while side.slide_down(&mut g) {
                    next(other, &mut go);
                    if go.end > go.start {
                        end_matching_other = Some(g.end);
                    }
                }
                if size == g.end - g.start {
                    break;
                }
            }
            if g.end == earliest_end {
                // It cannot move.
            } else if end_matching_other.is_some() {
                while go.end == go.start && side.slide_up(&mut g) {
                    previous(other, &mut go);
                }
            } else {
                let size = g.end - g.start;
                let mut shift = earliest_end.max(g.end.saturating_sub(size + 1));
                shift = shift.max(g.end.saturating_sub(MAX_SLIDING));
                let mut best: Option<(usize, Score)> = None;
                while shift <= g.end {
                    let mut score = Score::default();
                    score.add(&measure(lines, shift));
                    score.add(&measure(lines, shift - size));
                    if best.as_ref().is_none_or(|(_, b)| score.cmp(b) <= 0) {
                        best = Some((shift, score));
                    }
                    shift += 1;
                }
                let best = best.map_or(g.end, |(s, _)| s);
                while g.end > best && side.slide_up(&mut g) {
                    previous(other, &mut go);
                }
            }
        }
        if !next(side.changed, &mut g) {
            break;
        }
        next(other, &mut go);
    }
}

/// What surrounds a place between two lines (git's `split_measurement`).
struct Measure {
    end_of_file: bool,
    indent: Option<i32>,
    pre_blank: i32,
    pre_indent: Option<i32>,
    post_blank: i32,
    post_indent: Option<i32>,
}

/// The indentation of a line (tabs to multiples of 8), None for a blank one.
fn indent(line: &str) -> Option<i32> {
    let mut n = 0;
    for c in line.chars() {
        if !c.is_ascii_whitespace() {
            return Some(n);
        }
        if c == ' ' {
            n += 1;
        } else if c == '\t' {
            n += 8 - n % 8;
        }
        if n >= 200 {
            return Some(200);
        }
    }
    None
}

fn measure(lines: &[&str], split: usize) -> Measure {
    let (end_of_file, at) = if split >= lines.len() {
        (true, None)
    } else {
        (false, indent(lines[split]))
    };
    let (pre_blank, pre_indent) = blanks_then_indent(lines[..split.min(lines.len())].iter().rev());
    let (post_blank, post_indent) = blanks_then_indent(lines.iter().skip(split + 1));
    Measure {
        end_of_file,
        indent: at,
        pre_blank,
        pre_indent,
        post_blank,
        post_indent,
    }
}

/// How many blank lines come first, and the indentation of the first other line (0 past 20
/// blanks, None when the lines run out).
fn blanks_then_indent<'a>(lines: impl Iterator<Item = &'a &'a str>) -> (i32, Option<i32>) {
    const MAX_BLANKS: i32 = 20;
    let mut blanks = 0;
    for l in lines {
        if let Some(n) = indent(l) {
            return (blanks, Some(n));
        }
        blanks += 1;
        if blanks == MAX_BLANKS {
            return (blanks, Some(0));
        }
    }
    (blanks, None)
}

#[derive(Default)]
struct Score {
    effective_indent: i32,
    penalty: i32,
}

impl Score {
    fn add(&mut self, m: &Measure) {
        if m.pre_indent.is_none() && m.pre_blank == 0 {
            self.penalty += 1;
        }
        if m.end_of_file {
            self.penalty += 21;
        }
        let post_blank = if m.indent.is_none() {
            1 + m.post_blank
        } else {
            0
        };
        let total_blank = m.pre_blank + post_blank;
        self.penalty += -30 * total_blank + 6 * post_blank;
        let indent = m.indent.or(m.post_indent);
        let any_blanks = total_blank != 0;
        self.effective_indent += indent.unwrap_or(-1);
        let (Some(indent), Some(pre)) = (indent, m.pre_indent) else {
            return;
        };
        if indent > pre {
            self.penalty += if any_blanks { 10 } else { -4 };
        } else if indent < pre {
            // An outdent (the next line indents again) or a dedent; blanks soften both alike.
            let outdent = m.post_indent.is_some_and(|p| p > indent);
            self.penalty += match (any_blanks, outdent) {
                (true, _) => 17,
                (false, true) => 24,
                (false, false) => 23,
            };
        }
    }

    fn cmp(&self, other: &Score) -> i32 {
        let indents = (self.effective_indent > other.effective_indent) as i32
            - (self.effective_indent < other.effective_indent) as i32;
        60 * indents + (self.penalty - other.penalty)
    }
}

/// The changed lines with 3 lines of context around them, in hunks as git writes them.
fn group(a: &[&str], b: &[&str], ca: &[bool], cb: &[bool]) -> Vec<Hunk> {
    // Every line of both sides in order: the removed lines of a run before its added ones.
    let mut rows: Vec<DiffLine> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && ca[i] {
            rows.push(row(LineKind::Removed, Some(i), None, a[i]));
            i += 1;
        } else if j < b.len() && cb[j] {
            rows.push(row(LineKind::Added, None, Some(j), b[j]));
            j += 1;
        } else if i < a.len() && j < b.len() {
            rows.push(row(LineKind::Context, Some(i), Some(j), b[j]));
            i += 1;
            j += 1;
        } else {
            break;
        }
    }
    let changes: Vec<usize> = (0..rows.len())
        .filter(|&k| rows[k].kind != LineKind::Context)
        .collect();
    build(&rows, &changes)
}

/// Cuts the rows into hunks: changes closer than 2×3 context lines share one.
fn build(rows: &[DiffLine], changes: &[usize]) -> Vec<Hunk> {
    const CONTEXT: usize = 3;
    let mut hunks = Vec::new();
    let mut k = 0;
    while k < changes.len() {
        let first = changes[k];
        let mut last = first;
        while k + 1 < changes.len() && changes[k + 1] - last - 1 <= 2 * CONTEXT {
            k += 1;
            last = changes[k];
        }
        k += 1;
        let lo = first.saturating_sub(CONTEXT);
        let hi = (last + CONTEXT).min(rows.len() - 1);
        let lines: Vec<DiffLine> = rows[lo..=hi].to_vec();
        let old_count = lines.iter().filter(|l| l.old_line.is_some()).count() as u32;
        let new_count = lines.iter().filter(|l| l.new_line.is_some()).count() as u32;
        // Unified diff numbering: a side with no line in the hunk names the line before it.
        let before = |side: fn(&DiffLine) -> Option<u32>| {
            rows[..lo].iter().rev().find_map(side).unwrap_or(0)
        };
        let old_start = match lines.iter().find_map(|l| l.old_line) {
            Some(n) if old_count > 0 => n,
            _ => before(|l| l.old_line),
        };
        let new_start = match lines.iter().find_map(|l| l.new_line) {
            Some(n) if new_count > 0 => n,
            _ => before(|l| l.new_line),
        };
        hunks.push(Hunk {
            old_start,
            old_count,
            new_start,
            new_count,
            section: String::new(),
            lines,
        });
    }
    hunks
}

fn row(kind: LineKind, old: Option<usize>, new: Option<usize>, text: &str) -> DiffLine {
    let text = text.strip_suffix('\n').unwrap_or(text);
    DiffLine {
        kind,
        old_line: old.map(|i| i as u32 + 1),
        new_line: new.map(|j| j as u32 + 1),
        text: text.strip_suffix('\r').unwrap_or(text).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(lines: &[&str], changed: &[usize]) -> Vec<usize> {
        let mut flags = vec![false; lines.len()];
        for &i in changed {
            flags[i] = true;
        }
        compact(lines, &mut flags, &[]);
        (0..lines.len()).filter(|&i| flags[i]).collect()
    }

    #[test]
    fn a_deleted_guard_that_repeats_the_one_above_is_placed_where_git_shows_it() {
        // Deleting lines 1-6 or 5-10 leaves the same text; git shows the second guard gone.
        let old = [
            "if !a {\n",
            "\tdeny()\n",
            "\treturn\n",
            "}\n",
            "\n",
            "ok := check(p)\n",
            "if !ok {\n",
            "\tdeny()\n",
            "\treturn\n",
            "}\n",
            "\n",
            "open(p)\n",
        ];
        assert_eq!(placed(&old, &[1, 2, 3, 4, 5, 6]), vec![5, 6, 7, 8, 9, 10]);
        // Already where git puts it: unchanged.
        assert_eq!(placed(&old, &[5, 6, 7, 8, 9, 10]), vec![5, 6, 7, 8, 9, 10]);
    }

    #[test]
    fn an_added_function_keeps_its_blank_line_after_it() {
        let new = [
            "def a():\n",
            "    pass\n",
            "\n",
            "def b():\n",
            "    pass\n",
            "\n",
            "def c():\n",
            "    pass\n",
        ];
        assert_eq!(placed(&new, &[2, 3, 4]), vec![3, 4, 5]);
    }

    #[test]
    fn hunks_number_both_sides_like_a_unified_diff() {
        let h = hunks("a\nb\nc\n", "a\nc\nd\n");
        assert_eq!(h.len(), 1);
        let h = &h[0];
        assert_eq!(
            (h.old_start, h.old_count, h.new_start, h.new_count),
            (1, 3, 1, 3)
        );
        let kinds: Vec<_> = h.lines.iter().map(|l| l.kind).collect();
        use LineKind::*;
        assert_eq!(kinds, vec![Context, Removed, Context, Added]);
        // A pure insertion into an empty file, and two changes far apart: two hunks.
        assert_eq!(hunks("", "x\n")[0].old_start, 0);
        let far: String = (0..20).map(|i| format!("{i}\n")).collect();
        let changed: String = (0..20)
            .map(|i| match i {
                2 => "two\n".to_string(),
                17 => "seventeen\n".to_string(),
                _ => format!("{i}\n"),
            })
            .collect();
        assert_eq!(hunks(&far, &changed).len(), 2);
    }
}
