//! How a file's context is written out for a reader (the agent): the outline, the kept spans with
//! new-side line numbers, the change marked in them, and cheaper renderings for changes that
//! rewrite most of their file.

use super::{FileContext, PASS_MARGIN, Span, tokens};
use crate::diff::FileDiff;

/// How much of a change `render_review_as` spells out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Density {
    /// Every removed line, every changed line numbered.
    Full,
    /// Removed lines collapsed to a count.
    NoRemoved,
    /// Also: a run of added lines numbered every fifth line only.
    Sparse,
}

/// The whole file as written, every tenth line numbered, with the changed lines listed once in a
/// header instead of marked: the last resort for a change that rewrites most of its file.
fn plain_view(text: &str, diff: &FileDiff) -> String {
    let mut changed: Vec<u32> = diff.added_lines().into_iter().collect();
    changed.sort_unstable();
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for n in changed {
        match ranges.last_mut() {
            Some((_, b)) if *b + 1 == n => *b = n,
            _ => ranges.push((n, n)),
        }
    }
    let listed: Vec<String> = ranges
        .iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let mut out = format!(
        "# whole file, every tenth line numbered; added or changed lines: {}; removed lines not shown\n",
        listed.join(", ")
    );
    for (i, l) in text.lines().enumerate() {
        let n = i + 1;
        if n == 1 || n % 10 == 0 {
            out.push_str(&format!("{n} {l}\n"));
        } else {
            out.push_str(&format!("{l}\n"));
        }
    }
    out
}

impl FileContext {
    /// The context as the agent reads it: outline, then each span with new-side line numbers.
    pub fn render(&self, text: &str) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = String::new();
        if !self.outline.is_empty() {
            out.push_str("# outline\n");
            for (n, s) in &self.outline {
                out.push_str(&format!("{n:>5}: {s}\n"));
            }
        }
        for s in &self.spans {
            let label = s
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "# {}{} (lines {}-{})\n",
                s.kind, label, s.start, s.end
            ));
            for n in s.start..=s.end {
                if let Some(l) = lines.get(n as usize - 1) {
                    out.push_str(&format!("{n:>5}: {l}\n"));
                }
            }
        }
        out
    }
}

impl FileContext {
    /// The review view: the outline, then the spans that hold the selected hunks (all when
    /// `hunks` is None) with new-side line numbers, `+` on added lines and the removed lines shown
    /// where they were, so the model reads the change and its context once. Selected hunks the
    /// 400-line cap left out are appended as plain diff.
    pub fn render_review(&self, text: &str, diff: &FileDiff, hunks: Option<&[usize]>) -> String {
        self.render_review_as(text, diff, hunks, Density::Full)
    }

    /// `render_review` at a density: with removed lines collapsed to a count, or also with a
    /// run of added lines numbered every fifth line only.
    pub fn render_review_as(
        &self,
        text: &str,
        diff: &FileDiff,
        hunks: Option<&[usize]>,
        density: Density,
    ) -> String {
        use crate::diff::LineKind;
        let lines: Vec<&str> = text.lines().collect();
        let selected: Vec<usize> = match hunks {
            Some(h) => h.to_vec(),
            None => (0..diff.hunks.len()).collect(),
        };
        // Removed lines, keyed by the new-side line they stood before.
        let mut removed: std::collections::HashMap<u32, Vec<&str>> =
            std::collections::HashMap::new();
        let mut added = std::collections::HashSet::new();
        for h in &diff.hunks {
            let mut pending: Vec<&str> = Vec::new();
            for l in &h.lines {
                match l.kind {
                    LineKind::Removed => pending.push(&l.text),
                    _ => {
                        if let Some(n) = l.new_line {
                            if l.kind == LineKind::Added {
                                added.insert(n);
                            }
                            if !pending.is_empty() {
                                removed.entry(n).or_default().append(&mut pending);
                            }
                        }
                    }
                }
            }
            if !pending.is_empty() {
                removed
                    .entry(h.new_start + h.new_count)
                    .or_default()
                    .append(&mut pending);
            }
        }
        let mut out = String::new();
        // The outline, less what the spans show anyway.
        let shown = |n: u32| self.spans.iter().any(|s| s.start <= n && n <= s.end);
        let outline: Vec<&(u32, String)> = self
            .outline
            .iter()
            .filter(|(n, _)| !shown(*n))
            .take(20)
            .collect();
        if !outline.is_empty() {
            out.push_str("# outline\n");
            for (n, s) in outline {
                out.push_str(&format!("{n} {s}\n"));
            }
        }
        let hunk_range = |i: usize| {
            let h = &diff.hunks[i];
            (h.new_start, h.new_start + h.new_count.max(1) - 1)
        };
        let mut covered = vec![false; diff.hunks.len()];
        for s in &self.spans {
            let holds: Vec<usize> = selected
                .iter()
                .copied()
                .filter(|&i| {
                    let (a, b) = hunk_range(i);
                    a <= s.end && b >= s.start
                })
                .collect();
            if holds.is_empty() {
                continue;
            }
            for &i in &holds {
                let (a, b) = hunk_range(i);
                if a >= s.start && b <= s.end {
                    covered[i] = true;
                }
            }
            // For a subset of hunks (a partial pass), only the span's lines near them.
            let (from, to) = match hunks {
                None => (s.start, s.end),
                Some(_) => {
                    let a = holds
                        .iter()
                        .map(|&i| hunk_range(i).0)
                        .min()
                        .unwrap_or(s.start);
                    let b = holds
                        .iter()
                        .map(|&i| hunk_range(i).1)
                        .max()
                        .unwrap_or(s.end);
                    (
                        a.saturating_sub(PASS_MARGIN).max(s.start),
                        (b + PASS_MARGIN).min(s.end),
                    )
                }
            };
            let label = s
                .name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            // In the sparsest view, a span whose every line is new says so once instead of on
            // every line, and numbers every fifth line.
            let all_new = density == Density::Sparse
                && (from..=to).all(|n| added.contains(&n))
                && !(from..=to).any(|n| removed.contains_key(&n));
            if all_new {
                out.push_str(&format!(
                    "# {}{} (lines {}-{}, all added; every fifth line numbered)\n",
                    s.kind, label, from, to
                ));
                for n in from..=to {
                    if let Some(l) = lines.get(n as usize - 1) {
                        if n == from || n % 5 == 0 {
                            out.push_str(&format!("{n} {l}\n"));
                        } else {
                            out.push_str(&format!("{l}\n"));
                        }
                    }
                }
                continue;
            }
            out.push_str(&format!("# {}{} (lines {}-{})\n", s.kind, label, from, to));
            // Compact lines: a changed line carries its number and `+` (comments go on those);
            // an unchanged one only its text, numbered where a run of them starts so that the
            // reader keeps count. Numbers and padding on every line cost more than the code.
            let mut numbered_next = true;
            for n in from..=to {
                let gone = removed.get(&n).map(Vec::len).unwrap_or(0);
                if gone > 0 && density != Density::Full {
                    out.push_str(&format!("-[{gone} line(s) removed]\n"));
                    numbered_next = true;
                } else {
                    for r in removed.get(&n).into_iter().flatten() {
                        out.push_str(&format!("-{r}\n"));
                        numbered_next = true;
                    }
                }
                if let Some(l) = lines.get(n as usize - 1) {
                    if added.contains(&n) {
                        let sparse = density == Density::Sparse
                            && added.contains(&(n.saturating_sub(1)))
                            && n % 5 != 0;
                        if sparse {
                            out.push_str(&format!("+{l}\n"));
                        } else {
                            out.push_str(&format!("{n}+{l}\n"));
                        }
                        numbered_next = true;
                    } else if numbered_next {
                        out.push_str(&format!("{n} {l}\n"));
                        numbered_next = false;
                    } else {
                        out.push_str(&format!("{l}\n"));
                    }
                }
            }
        }
        for &i in &selected {
            if covered[i] {
                continue;
            }
            let h = &diff.hunks[i];
            out.push_str(&format!(
                "# hunk @@ -{},{} +{},{} @@\n",
                h.old_start, h.old_count, h.new_start, h.new_count
            ));
            let mut numbered_next = true;
            for l in &h.lines {
                match l.kind {
                    LineKind::Added => {
                        out.push_str(&format!("{}+{}\n", l.new_line.unwrap_or(0), l.text));
                        numbered_next = true;
                    }
                    LineKind::Removed => {
                        out.push_str(&format!("-{}\n", l.text));
                        numbered_next = true;
                    }
                    LineKind::Context if numbered_next => {
                        out.push_str(&format!("{} {}\n", l.new_line.unwrap_or(0), l.text));
                        numbered_next = false;
                    }
                    LineKind::Context => out.push_str(&format!("{}\n", l.text)),
                }
            }
        }
        out
    }
}

impl FileContext {
    /// Counts the tokens of the context and of the whole file (cl100k): what an LLM would be
    /// sent, against the file.
    pub fn count_tokens(&mut self, text: &str) {
        self.context_tokens = tokens::count(&self.render(text));
        self.file_tokens = tokens::count(text);
    }

    /// What the agent is sent of a changed file: the trimmed view, or the whole file with its
    /// markers when that is smaller (a change that touches most of its file).
    ///
    /// It never costs more tokens than the file itself when it can help it: past that, removed
    /// lines are collapsed to a count, then runs of added lines are numbered every fifth line.
    pub fn review_view(&self, text: &str, diff: &FileDiff) -> String {
        let trimmed = self.render_review(text, diff, None);
        // The whole file can only be smaller when the trimmed view already covers most of it.
        if trimmed.lines().count() * 5 < self.file_lines as usize * 4 {
            return trimmed;
        }
        let file = tokens::count(text);
        let mut best: Option<(usize, String)> = None;
        for density in [Density::Full, Density::NoRemoved, Density::Sparse] {
            for view in [
                self.render_review_as(text, diff, None, density),
                self.whole_file()
                    .render_review_as(text, diff, None, density),
            ] {
                let cost = tokens::count(&view);
                if best.as_ref().is_none_or(|(c, _)| cost < *c) {
                    best = Some((cost, view));
                }
            }
            if best.as_ref().is_some_and(|(c, _)| *c <= file) {
                return best.map(|(_, v)| v).unwrap_or(trimmed);
            }
        }
        let plain = plain_view(text, diff);
        let cost = tokens::count(&plain);
        match best {
            Some((c, v)) if c <= cost => v,
            _ => plain,
        }
    }

    /// The whole file as one span: the review view of a change that touches most of its file is
    /// smaller this way than as trimmed spans plus leftover hunks.
    pub fn whole_file(&self) -> FileContext {
        FileContext {
            spans: vec![Span {
                start: 1,
                end: self.file_lines.max(1),
                kind: "file".into(),
                name: None,
            }],
            outline: Vec::new(),
            context_lines: self.file_lines,
            file_lines: self.file_lines,
            context_tokens: self.file_tokens,
            file_tokens: self.file_tokens,
            capped: false,
        }
    }
}
