//! Changes between two folders, and benchmark case folders (`base/` -> `head/`).

use super::{ChangeSet, ChangedFile, require_dir};
use crate::diff::{FileDiff, FileStatus, diff_texts};
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The change from folder `base` to folder `head` (as `git diff --no-index base head`).
pub fn from_dirs(base: Option<&Path>, head: &Path) -> Result<ChangeSet> {
    let dirs = DirChange::new(base, head)?;
    let mut files = Vec::new();
    for rel in &dirs.paths {
        if let Some(f) = dirs.file(rel)? {
            files.push(f);
        }
    }
    Ok(ChangeSet {
        description: dirs.description.clone(),
        files,
        notes: Vec::new(),
    })
}

/// A change between two folders whose files are read one at a time, so that a review of a
/// whole tree never holds every file at once.
#[derive(Debug, Clone)]
pub struct DirChange {
    base: Option<PathBuf>,
    head: PathBuf,
    /// Every path under either folder, relative, sorted (unchanged ones included).
    pub paths: Vec<String>,
    pub description: String,
}

impl DirChange {
    /// Lists the files of both folders.
    pub fn new(base: Option<&Path>, head: &Path) -> Result<DirChange> {
        if let Some(b) = base {
            require_dir(b, "base folder")?;
        }
        require_dir(head, "head folder")?;
        let mut paths = BTreeSet::new();
        if let Some(b) = base {
            walk(b, b, &mut paths)?;
        }
        walk(head, head, &mut paths)?;
        Ok(DirChange {
            base: base.map(Path::to_path_buf),
            head: head.to_path_buf(),
            paths: paths.into_iter().collect(),
            description: match base {
                Some(b) => format!("{} -> {}", b.display(), head.display()),
                None => format!("(nothing) -> {}", head.display()),
            },
        })
    }

    /// One path's change, read now; None when the two sides are the same.
    pub fn file(&self, rel: &str) -> Result<Option<ChangedFile>> {
        // A symbolic link is not followed (it may point out of the tree): it is listed with git's
        // link mode, and the review skips it with that reason.
        let is_link = |root: &Path| {
            std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.file_type().is_symlink())
        };
        if is_link(&self.head) || self.base.as_deref().is_some_and(is_link) {
            let target = |root: &Path| std::fs::read_link(root.join(rel)).ok();
            if self.base.as_deref().and_then(target) == target(&self.head) {
                return Ok(None);
            }
            let in_head = self.head.join(rel).symlink_metadata().is_ok();
            return Ok(Some(ChangedFile {
                diff: FileDiff {
                    old_path: (!in_head).then(|| rel.to_string()),
                    new_path: in_head.then(|| rel.to_string()),
                    status: if in_head {
                        FileStatus::Modified
                    } else {
                        FileStatus::Deleted
                    },
                    binary: false,
                    old_mode: None,
                    new_mode: Some(SYMLINK_MODE.to_string()),
                    hunks: Vec::new(),
                },
                old_content: None,
                new_content: None,
            }));
        }
        let old = self
            .base
            .as_ref()
            .map(|b| b.join(rel))
            .filter(|p| p.is_file());
        let new = Some(self.head.join(rel)).filter(|p| p.is_file());
        let old_bytes = old
            .as_ref()
            .map(std::fs::read)
            .transpose()
            .with_context(|| format!("cannot read base file {rel}"))?;
        let new_bytes = new
            .as_ref()
            .map(std::fs::read)
            .transpose()
            .with_context(|| format!("cannot read head file {rel}"))?;
        if old_bytes == new_bytes {
            return Ok(None);
        }
        let diff = file_diff(rel, old_bytes.as_deref(), new_bytes.as_deref());
        Ok(Some(ChangedFile {
            diff,
            old_content: old_bytes,
            new_content: new_bytes,
        }))
    }

    /// The head side of a path, read now (for excerpts in the text report).
    pub fn head_text(&self, rel: &str) -> Option<String> {
        std::fs::read(self.head.join(rel))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

/// The change a benchmark case folder describes (see bench-format.md).
pub fn from_case_dir(case: &Path) -> Result<ChangeSet> {
    if !case.join("case.json").is_file() {
        bail!(
            "{} is not a case folder: it has no case.json",
            case.display()
        );
    }
    let base = case.join("base");
    let head = case.join("head");
    if !head.is_dir() {
        bail!("case {} has no head/ folder", case.display());
    }
    let mut set = from_dirs(base.is_dir().then_some(base.as_path()), &head)?;
    set.description = format!("case {}", case.display());
    Ok(set)
}

/// The diff of one file from its two byte contents; binary when either side has a NUL byte.
fn file_diff(path: &str, old: Option<&[u8]>, new: Option<&[u8]>) -> FileDiff {
    let is_binary = |b: Option<&[u8]>| b.is_some_and(|b| b.iter().take(8000).any(|&c| c == 0));
    if is_binary(old) || is_binary(new) {
        return FileDiff {
            old_path: old.map(|_| path.to_string()),
            new_path: new.map(|_| path.to_string()),
            status: match (old, new) {
                (None, _) => FileStatus::Added,
                (_, None) => FileStatus::Deleted,
                _ => FileStatus::Modified,
            },
            binary: true,
            old_mode: None,
            new_mode: None,
            hunks: Vec::new(),
        };
    }
    let old_text = old.map(String::from_utf8_lossy).unwrap_or_default();
    let new_text = new.map(String::from_utf8_lossy).unwrap_or_default();
    diff_texts(old.map(|_| path), new.map(|_| path), &old_text, &new_text)
}

/// Git's file mode for a symbolic link.
pub const SYMLINK_MODE: &str = "120000";

/// Collects the relative paths of regular files and symbolic links under `dir` (links are not
/// followed), skipping `.git`.
fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() {
            if entry.file_name() != ".git" {
                walk(root, &path, out)?;
            }
        } else if ty.is_file() || ty.is_symlink() {
            let rel = path.strip_prefix(root).expect("walked below root");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
