//! The unified diff model: a diff is files, a file is hunks, a hunk is lines with their old-side and
//! new-side line numbers. New-side (RIGHT) lines are the ones GitHub accepts review comments on.
//!
//! `parse` reads git-style and plain unified diffs; it never panics on arbitrary input (see the
//! property test) and reports the first line it cannot make sense of.

mod placed;

use std::collections::BTreeSet;
use std::fmt;

/// What happened to a file in the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Added,
    Deleted,
    Modified,
    Renamed,
    Copied,
}

impl FileStatus {
    /// Lower-case name for output.
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Added => "added",
            FileStatus::Deleted => "deleted",
            FileStatus::Modified => "modified",
            FileStatus::Renamed => "renamed",
            FileStatus::Copied => "copied",
        }
    }
}

/// The kind of one line of a hunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

/// One line of a hunk, with its number on each side it exists on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub old_line: Option<u32>,
    pub new_line: Option<u32>,
    /// The text without the leading marker and without the line end (CR included).
    pub text: String,
}

/// One `@@ -a,b +c,d @@` hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    pub old_start: u32,
    pub old_count: u32,
    pub new_start: u32,
    pub new_count: u32,
    /// The text after the second `@@` (git puts the enclosing function there).
    pub section: String,
    pub lines: Vec<DiffLine>,
}

impl Hunk {
    /// The new-side line range this hunk covers, inclusive; None for a pure deletion.
    pub fn new_range(&self) -> Option<(u32, u32)> {
        (self.new_count > 0).then(|| (self.new_start, self.new_start + self.new_count - 1))
    }

    /// New-side numbers of the added lines.
    pub fn added_lines(&self) -> impl Iterator<Item = u32> + '_ {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Added)
            .filter_map(|l| l.new_line)
    }
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    pub old_path: Option<String>,
    pub new_path: Option<String>,
    pub status: FileStatus,
    /// Git reported a binary change (no hunks).
    pub binary: bool,
    pub old_mode: Option<String>,
    pub new_mode: Option<String>,
    pub hunks: Vec<Hunk>,
}

impl FileDiff {
    /// The repository path of the file: the new path, or the old one for a deletion.
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or("")
    }

    /// True when only the file mode changed.
    pub fn mode_only(&self) -> bool {
        self.hunks.is_empty()
            && !self.binary
            && self.old_mode.is_some()
            && self.old_mode != self.new_mode
    }

    /// New-side numbers of every added line.
    pub fn added_lines(&self) -> BTreeSet<u32> {
        self.hunks.iter().flat_map(|h| h.added_lines()).collect()
    }

    /// Number of added plus removed lines.
    pub fn changed_line_count(&self) -> usize {
        self.hunks
            .iter()
            .flat_map(|h| &h.lines)
            .filter(|l| l.kind != LineKind::Context)
            .count()
    }

    /// The hunk whose new-side range holds `line`.
    pub fn hunk_for_new_line(&self, line: u32) -> Option<&Hunk> {
        self.hunks
            .iter()
            .find(|h| h.new_range().is_some_and(|(a, b)| (a..=b).contains(&line)))
    }

    /// The changed (added) line of the same hunk closest to `line`, for comments that land just
    /// beside the change.
    pub fn nearest_added_line(&self, line: u32) -> Option<u32> {
        let hunk = self.hunk_for_new_line(line)?;
        hunk.added_lines().min_by_key(|l| l.abs_diff(line))
    }
}

/// A diff that could not be read: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffError {
    /// 1-based line of the diff text.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DiffError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "diff line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DiffError {}

/// Parses a unified diff (as `git diff`, `diff -u` or `git format-patch` write it).
///
/// Empty input is an empty diff. Text with no file header at all is an error, so that a wrong file
/// given to `--diff` is reported instead of reviewed as "no changes".
pub fn parse(input: &str) -> Result<Vec<FileDiff>, DiffError> {
    let lines: Vec<&str> = input.split('\n').collect();
    let mut files: Vec<FileDiff> = Vec::new();
    let mut current: Option<FileDiff> = None;
    // Whether `current` came from a `diff --git` line (its ---/+++ lines are then optional).
    let mut git_header = false;
    let mut i = 0;
    let mut saw_anything = false;

    while i < lines.len() {
        let raw = lines[i];
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let lineno = i + 1;

        if let Some(rest) = line.strip_prefix("diff --git ") {
            saw_anything = true;
            if let Some(f) = current.take() {
                files.push(f);
            }
            let (a, b) = split_git_header_paths(rest);
            current = Some(new_file(a, b));
            git_header = true;
            i += 1;
            continue;
        }

        if line.starts_with("--- ") && i + 1 < lines.len() && lines[i + 1].starts_with("+++ ") {
            saw_anything = true;
            let old = header_path(&line[4..]);
            let next = lines[i + 1].strip_suffix('\r').unwrap_or(lines[i + 1]);
            let new = header_path(&next[4..]);
            // A ---/+++ pair continues a `diff --git` file that has no hunks yet; otherwise it
            // starts a new file (plain `diff -u` output).
            let continues = git_header && current.as_ref().is_some_and(|f| f.hunks.is_empty());
            if !continues {
                if let Some(f) = current.take() {
                    files.push(f);
                }
                current = Some(new_file(None, None));
            }
            git_header = false;
            let f = current.as_mut().expect("file set above");
            match old {
                Some(p) => f.old_path = Some(p),
                None => f.status = FileStatus::Added,
            }
            match new {
                Some(p) => f.new_path = Some(p),
                None => f.status = FileStatus::Deleted,
            }
            if f.status == FileStatus::Added {
                f.old_path = None;
            }
            if f.status == FileStatus::Deleted {
                f.new_path = None;
            }
            i += 2;
            continue;
        }

        if line.starts_with("@@") {
            saw_anything = true;
            let Some(f) = current.as_mut() else {
                return Err(err(lineno, "hunk header before any file header"));
            };
            let (hunk, next) = parse_hunk(&lines, i)?;
            f.hunks.push(hunk);
            i = next;
            continue;
        }

        if let Some(f) = current.as_mut()
            && (git_header || f.hunks.is_empty())
        {
            apply_extended_header(f, line);
        }
        i += 1;
    }
    if let Some(f) = current.take() {
        files.push(f);
    }
    if !saw_anything && !input.trim().is_empty() {
        return Err(err(
            1,
            "not a unified diff: no `diff --git`, `---`/`+++` or `@@` line found",
        ));
    }
    for (n, f) in files.iter().enumerate() {
        if f.old_path.is_none() && f.new_path.is_none() {
            return Err(err(1, &format!("file {} of the diff has no path", n + 1)));
        }
    }
    Ok(files)
}

/// Parses the hunks of one file's patch as GitHub's files API gives it (`@@` hunks only, no
/// header). The file's names and status come from elsewhere (the API's structured fields): no
/// path is read out of text here, so any name git allows (a newline, a tab, quotes) is safe.
pub fn parse_hunks(patch: &str) -> Result<Vec<Hunk>, DiffError> {
    let lines: Vec<&str> = patch.split('\n').collect();
    let mut hunks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].strip_suffix('\r').unwrap_or(lines[i]);
        if line.starts_with("@@") {
            let (hunk, next) = parse_hunk(&lines, i)?;
            hunks.push(hunk);
            i = next;
        } else if line.is_empty() || line.starts_with('\\') {
            i += 1;
        } else {
            return Err(err(i + 1, "a line outside any hunk of the patch"));
        }
    }
    Ok(hunks)
}

fn err(line: usize, message: &str) -> DiffError {
    DiffError {
        line,
        message: message.to_string(),
    }
}

fn new_file(old: Option<String>, new: Option<String>) -> FileDiff {
    FileDiff {
        old_path: old,
        new_path: new,
        status: FileStatus::Modified,
        binary: false,
        old_mode: None,
        new_mode: None,
        hunks: Vec::new(),
    }
}

/// Applies one git extended header line (`new file mode`, `rename from`, `Binary files ...`).
fn apply_extended_header(f: &mut FileDiff, line: &str) {
    if let Some(m) = line.strip_prefix("new file mode ") {
        f.status = FileStatus::Added;
        f.new_mode = Some(m.trim().to_string());
        f.old_path = None;
    } else if let Some(m) = line.strip_prefix("deleted file mode ") {
        f.status = FileStatus::Deleted;
        f.old_mode = Some(m.trim().to_string());
        f.new_path = None;
    } else if let Some(m) = line.strip_prefix("old mode ") {
        f.old_mode = Some(m.trim().to_string());
    } else if let Some(m) = line.strip_prefix("new mode ") {
        f.new_mode = Some(m.trim().to_string());
    } else if let Some(p) = line.strip_prefix("rename from ") {
        f.status = FileStatus::Renamed;
        f.old_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("rename to ") {
        f.status = FileStatus::Renamed;
        f.new_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("copy from ") {
        f.status = FileStatus::Copied;
        f.old_path = Some(unquote(p));
    } else if let Some(p) = line.strip_prefix("copy to ") {
        f.status = FileStatus::Copied;
        f.new_path = Some(unquote(p));
    } else if line.starts_with("Binary files ") || line.starts_with("GIT binary patch") {
        f.binary = true;
    }
}

/// Reads the hunk starting at `lines[start]`; returns it and the index after it.
fn parse_hunk(lines: &[&str], start: usize) -> Result<(Hunk, usize), DiffError> {
    let header = lines[start].strip_suffix('\r').unwrap_or(lines[start]);
    let lineno = start + 1;
    let bad = || {
        err(
            lineno,
            &format!(
                "malformed hunk header `{}`",
                crate::text::truncate(header, 60)
            ),
        )
    };
    let inner = header.strip_prefix("@@ ").ok_or_else(bad)?;
    let (ranges, section) = inner.split_once(" @@").ok_or_else(bad)?;
    let mut parts = ranges.split_whitespace();
    let old = parts
        .next()
        .and_then(|p| p.strip_prefix('-'))
        .ok_or_else(bad)?;
    let new = parts
        .next()
        .and_then(|p| p.strip_prefix('+'))
        .ok_or_else(bad)?;
    if parts.next().is_some() {
        return Err(err(lineno, "combined (merge) diffs are not supported"));
    }
    let (old_start, old_count) = parse_range(old).ok_or_else(bad)?;
    let (new_start, new_count) = parse_range(new).ok_or_else(bad)?;
    let mut hunk = Hunk {
        old_start,
        old_count,
        new_start,
        new_count,
        section: section.trim().to_string(),
        lines: Vec::new(),
    };
    let (mut old_left, mut new_left) = (old_count, new_count);
    let (mut old_no, mut new_no) = (old_start, new_start);
    let mut i = start + 1;
    while old_left > 0 || new_left > 0 {
        let Some(raw) = lines.get(i) else {
            return Err(err(
                i,
                &format!(
                    "hunk at line {lineno} ends early: {old_left} old and {new_left} new lines missing"
                ),
            ));
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let (kind, text) = match line.as_bytes().first() {
            Some(b' ') => (LineKind::Context, &line[1..]),
            Some(b'+') => (LineKind::Added, &line[1..]),
            Some(b'-') => (LineKind::Removed, &line[1..]),
            Some(b'\\') => {
                i += 1;
                continue;
            }
            // Some tools strip the single space of an empty context line.
            None if i + 1 < lines.len() => (LineKind::Context, ""),
            _ => {
                return Err(err(
                    i + 1,
                    &format!(
                        "hunk at line {lineno} ends early: {old_left} old and {new_left} new lines missing"
                    ),
                ));
            }
        };
        let (o, n) = match kind {
            LineKind::Context => (true, true),
            LineKind::Added => (false, true),
            LineKind::Removed => (true, false),
        };
        if (o && old_left == 0) || (n && new_left == 0) {
            return Err(err(
                i + 1,
                &format!("hunk at line {lineno} has more lines than its header says"),
            ));
        }
        hunk.lines.push(DiffLine {
            kind,
            old_line: o.then_some(old_no),
            new_line: n.then_some(new_no),
            text: text.to_string(),
        });
        if o {
            old_left -= 1;
            old_no = old_no.saturating_add(1);
        }
        if n {
            new_left -= 1;
            new_no = new_no.saturating_add(1);
        }
        i += 1;
    }
    // A trailing "\ No newline at end of file" belongs to this hunk.
    while lines.get(i).is_some_and(|l| l.starts_with('\\')) {
        i += 1;
    }
    Ok((hunk, i))
}

fn parse_range(s: &str) -> Option<(u32, u32)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

/// Path from a `---`/`+++` line: drops a timestamp after a tab and the `a/`/`b/` prefix; None for
/// /dev/null.
fn header_path(s: &str) -> Option<String> {
    let s = s.split('\t').next().unwrap_or(s).trim_end();
    let s = unquote(s);
    if s == "/dev/null" {
        return None;
    }
    Some(strip_prefix(&s).to_string())
}

fn strip_prefix(p: &str) -> &str {
    p.strip_prefix("a/")
        .or_else(|| p.strip_prefix("b/"))
        .unwrap_or(p)
}

/// Splits `a/x b/y` from a `diff --git` line. Paths with spaces are ambiguous there; the
/// ---/+++ or rename lines that follow override these guesses.
fn split_git_header_paths(rest: &str) -> (Option<String>, Option<String>) {
    let rest = rest.trim();
    if let Some(quoted) = rest.strip_prefix('"')
        && let Some(end) = quoted.find("\" ")
    {
        let a = unquote(&rest[..end + 2]);
        let b = unquote(rest[end + 3..].trim());
        return (
            Some(strip_prefix(&a).to_string()),
            Some(strip_prefix(&b).to_string()),
        );
    }
    // Both sides are equal in the common case: split in the middle at " b/".
    if let Some(pos) = rest.find(" b/") {
        let a = &rest[..pos];
        let b = &rest[pos + 1..];
        return (
            Some(strip_prefix(a).to_string()),
            Some(strip_prefix(&unquote(b)).to_string()),
        );
    }
    match rest.split_once(' ') {
        Some((a, b)) => (
            Some(strip_prefix(a).to_string()),
            Some(strip_prefix(b).to_string()),
        ),
        None => (Some(rest.to_string()), Some(rest.to_string())),
    }
}

/// Undoes git's C-style quoting of unusual paths (`"a/caf\303\251.py"`).
fn unquote(s: &str) -> String {
    let s = s.trim();
    let Some(inner) = s.strip_prefix('"').and_then(|x| x.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out: Vec<u8> = Vec::new();
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            let c = bytes[i + 1];
            if c.is_ascii_digit() && i + 3 < bytes.len() + 1 {
                let oct = inner
                    .get(i + 1..i + 4)
                    .and_then(|o| u8::from_str_radix(o, 8).ok());
                if let Some(v) = oct {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(match c {
                b'n' => b'\n',
                b't' => b'\t',
                other => other,
            });
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Builds the diff of one file from its two texts (3 lines of context, as git does).
pub fn diff_texts(
    path_old: Option<&str>,
    path_new: Option<&str>,
    old: &str,
    new: &str,
) -> FileDiff {
    let hunks = placed::hunks(old, new);
    let status = match (path_old, path_new) {
        (None, Some(_)) => FileStatus::Added,
        (Some(_), None) => FileStatus::Deleted,
        (Some(a), Some(b)) if a != b => FileStatus::Renamed,
        _ => FileStatus::Modified,
    };
    FileDiff {
        old_path: path_old.map(str::to_string),
        new_path: path_new.map(str::to_string),
        status,
        binary: false,
        old_mode: None,
        new_mode: None,
        hunks,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod patch_tests {
    use super::*;

    #[test]
    fn a_github_patch_parses_to_hunks_whatever_the_file_is_called() {
        let hunks = parse_hunks(
            "@@ -1,2 +1,3 @@\n a\n-b\n+c\n+d\n\\ No newline at end of file\n@@ -9 +10,0 @@\n-z",
        )
        .unwrap();
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[0].new_range(), Some((1, 3)));
        assert_eq!(hunks[0].added_lines().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(hunks[1].new_range(), None);
        assert!(parse_hunks("").unwrap().is_empty());
        assert!(parse_hunks("diff --git a/x b/x\n@@ -1 +1 @@\n-a\n+b").is_err());
        assert!(
            parse_hunks("@@ -1,2 +1,2 @@\n a").is_err(),
            "a hunk cut short"
        );
    }
}
