//! Where a change comes from: a git repository (two revisions or the working tree), two folders,
//! a benchmark case folder, or a unified diff. Each source yields a `ChangeSet`: the diff of every
//! file plus the full text of both sides where it can be had.

mod dirs;
mod git;

use crate::diff::FileDiff;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

pub use dirs::{DirChange, SYMLINK_MODE, from_case_dir, from_dirs};
pub use git::{GitRange, file_at, from_git, from_staged, from_worktree, has_commit, merge_base};

/// One changed file: its diff and, where available, the bytes of each side.
#[derive(Debug, Clone)]
pub struct ChangedFile {
    pub diff: FileDiff,
    /// The file before the change (None when added or not available).
    pub old_content: Option<Vec<u8>>,
    /// The file after the change (None when deleted or not available).
    pub new_content: Option<Vec<u8>>,
}

/// Everything a review needs to know about a change.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    /// A short description of where the change came from, for the report.
    pub description: String,
    pub files: Vec<ChangedFile>,
    /// Notes for the user about how the change was read (e.g. which base was chosen).
    pub notes: Vec<String>,
}

/// Reads a unified diff (`-` for standard input); full texts come from `repo` when its files match
/// the diff, else from the hunks themselves.
pub fn from_diff(diff_arg: &str, repo: Option<&Path>) -> Result<ChangeSet> {
    let bytes = if diff_arg == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("cannot read the diff from standard input")?;
        buf
    } else {
        std::fs::read(diff_arg).with_context(|| format!("cannot read diff file {diff_arg}"))?
    };
    let text = String::from_utf8_lossy(&bytes);
    let files = crate::diff::parse(&text).map_err(|e| anyhow::anyhow!("{diff_arg}: {e}"))?;
    let root: PathBuf = repo
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for diff in files {
        let mut new_content = None;
        if let Some(path) = diff.new_path.as_deref().filter(|_| !diff.binary) {
            match std::fs::read(root.join(path)) {
                Ok(bytes) if matches_new_side(&diff, &bytes) => new_content = Some(bytes),
                Ok(_) => notes.push(format!("{path}: the file under {} differs from the diff; reviewed from the diff's hunks", root.display())),
                Err(_) => {}
            }
            if new_content.is_none() {
                new_content = Some(reconstruct_from_hunks(&diff).into_bytes());
            }
        }
        out.push(ChangedFile {
            diff,
            old_content: None,
            new_content,
        });
    }
    if repo.is_none() && out.iter().any(|f| f.new_content.is_some()) && !notes.is_empty() {
        notes.push("pass --repo DIR so that full file texts are read from the repository".into());
    }
    Ok(ChangeSet {
        description: format!("diff {diff_arg}"),
        files: out,
        notes,
    })
}

/// True when every new-side line of the diff is what `bytes` holds at that line.
fn matches_new_side(diff: &FileDiff, bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    diff.hunks
        .iter()
        .flat_map(|h| &h.lines)
        .all(|l| match l.new_line {
            Some(n) => lines
                .get(n as usize - 1)
                .is_some_and(|got| got.strip_suffix('\r').unwrap_or(got) == l.text),
            None => true,
        })
}

/// A stand-in for the new file when only the diff is known: the hunks' new-side lines at their own
/// line numbers, blank lines between, so that line numbers stay right.
pub fn reconstruct_from_hunks(diff: &FileDiff) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for l in diff.hunks.iter().flat_map(|h| &h.lines) {
        if let Some(n) = l.new_line {
            let n = n as usize;
            if lines.len() < n {
                lines.resize(n, "");
            }
            lines[n - 1] = &l.text;
        }
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// Fails with a clear message when `dir` is not a folder.
fn require_dir(dir: &Path, what: &str) -> Result<()> {
    if !dir.is_dir() {
        bail!("{what} {} is not a folder", dir.display());
    }
    Ok(())
}
