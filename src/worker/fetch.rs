//! A pull request from GitHub as a `ChangeSet`: its files and patches (paginated), the new text of
//! the files to review at the head commit, and the repository's `.redline.toml` at the base
//! commit (a pull request cannot loosen its own review; when it changes the file, its head version
//! is fetched too, to say what it would change once merged). Over the size budget, the files
//! that matter most are kept and the rest listed as not reviewed.
//!
//! Each file's diff is built from GitHub's structured fields (`filename`, `previous_filename`,
//! `status`) and the hunks of its `patch`: a name is never read back out of text, so every name git
//! allows (a newline, a tab, quotes, non-ASCII) reaches the review as it is.

use super::incremental::{Changed, Scope};
use crate::github::{GitHub, PrFile, PrRef, PullRequest};
use anyhow::{Result, anyhow};
use redline_core::change::{ChangeSet, ChangedFile};
use redline_core::diff::{FileDiff, FileStatus};
use std::collections::{HashMap, HashSet};

/// Files whose text is fetched at once.
const FETCH_CONCURRENCY: usize = 8;

pub struct Fetched {
    pub change: ChangeSet,
    /// `.redline.toml` at the base commit (None: the repository has none): the review's settings.
    pub config_text: Option<String>,
    /// When the pull request adds, changes, renames or deletes `.redline.toml`: its text at the
    /// head (None: deleted there). Not applied; the summary says what it would change.
    pub head_config: Option<Option<String>>,
    /// (path, why) for files left out before the review.
    pub not_reviewed: Vec<(String, String)>,
    /// New-side line ranges of each file's hunks: GitHub takes comments on these lines only.
    hunks: HashMap<String, Vec<(u32, u32)>>,
    /// Renamed files: old path to new path.
    pub renamed: HashMap<String, String>,
    /// With an incremental scope: the pull request's files that changed since the last reviewed
    /// head, those looked at again because the last review could not cover them, and those that
    /// did not change (not fetched, not reviewed: their findings carry forward).
    pub changed_files: Vec<String>,
    pub revisited_files: Vec<String>,
    pub unchanged: HashSet<String>,
}

impl Fetched {
    /// The index of the hunk holding new-side `line` of `path`, if any.
    pub fn hunk_of(&self, path: &str, line: u32) -> Option<usize> {
        self.hunks
            .get(path)?
            .iter()
            .position(|&(start, end)| line >= start && line <= end)
    }

    pub fn new_text(&self, path: &str) -> Option<String> {
        self.change
            .files
            .iter()
            .find(|f| f.diff.path() == path)
            .and_then(|f| f.new_content.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// How much a file matters for review, lower first: source in a supported language, then its
/// tests, then everything else (skipped by the pipeline anyway, with its reason).
fn rank(f: &PrFile) -> u8 {
    let supported = redline_core::lang::detect(&f.filename, None).is_some();
    match (
        supported,
        redline_core::pipeline::is_test_path(&f.filename),
        f.status.as_str(),
    ) {
        (_, _, "removed") => 3,
        (true, false, _) => 0,
        (true, true, _) => 1,
        (false, _, _) => 2,
    }
}

/// One file's diff from GitHub's structured fields and the hunks of its patch.
fn file_diff(f: &PrFile) -> Result<FileDiff, redline_core::diff::DiffError> {
    let hunks = match &f.patch {
        Some(p) => redline_core::diff::parse_hunks(p)?,
        None => Vec::new(),
    };
    let new = f.filename.clone();
    let old = f.previous_filename.clone().unwrap_or_else(|| new.clone());
    let (status, old_path, new_path) = match f.status.as_str() {
        "added" => (FileStatus::Added, None, Some(new)),
        "removed" => (FileStatus::Deleted, Some(old), None),
        "renamed" => (FileStatus::Renamed, Some(old), Some(new)),
        "copied" => (FileStatus::Copied, Some(old), Some(new)),
        // "modified", "changed", "unchanged"
        _ => (FileStatus::Modified, Some(old), Some(new)),
    };
    Ok(FileDiff {
        old_path,
        new_path,
        status,
        binary: false,
        old_mode: None,
        new_mode: None,
        hunks,
    })
}

/// Whether the pull request touches `.redline.toml` at the repository's root.
fn changes_config(files: &[PrFile]) -> bool {
    let name = redline_core::config::FILE_NAME;
    files
        .iter()
        .any(|f| f.filename == name || f.previous_filename.as_deref() == Some(name))
}

/// The pull request's change within `scope`: every file for a full review; for an incremental
/// one, the files that changed since the last reviewed head, each with only the hunks that hold
/// a changed line (GitHub accepts comments on every hunk of the pull request all the same).
pub async fn fetch_change(
    gh: &std::sync::Arc<GitHub>,
    at: &PrRef,
    pr: &PullRequest,
    max_changed_lines: usize,
    scope: &Scope,
) -> Result<Fetched> {
    let (installation, repo) = (at.installation, &at.repo);
    let head = pr.head.sha.clone();
    let all_files = gh.pull_files(at).await?;
    // Comments may go on any hunk of the pull request, reviewed now or not.
    let mut hunks = HashMap::new();
    for f in &all_files {
        if let Ok(d) = file_diff(f) {
            let ranges: Vec<(u32, u32)> = d.hunks.iter().filter_map(|h| h.new_range()).collect();
            hunks.insert(d.path().to_string(), ranges);
        }
    }
    let mut files = Vec::new();
    let mut scoped: HashMap<String, Changed> = HashMap::new();
    let (mut changed_files, mut revisited_files) = (Vec::new(), Vec::new());
    let mut unchanged = HashSet::new();
    for f in &all_files {
        match scope.of_file(f) {
            Some(how) => {
                if let Scope::Since {
                    changed, revisit, ..
                } = scope
                {
                    let moved = f
                        .previous_filename
                        .as_ref()
                        .is_some_and(|p| changed.contains_key(p));
                    if changed.contains_key(&f.filename) || moved {
                        changed_files.push(f.filename.clone());
                    } else if revisit.contains(&f.filename) {
                        revisited_files.push(f.filename.clone());
                    }
                }
                scoped.insert(f.filename.clone(), how);
                files.push(f.clone());
            }
            None => {
                unchanged.insert(f.filename.clone());
            }
        }
    }
    let config_at = |sha| async move {
        let text = gh
            .file_content(installation, repo, redline_core::config::FILE_NAME, sha)
            .await?;
        Ok::<_, crate::github::GitHubError>(text.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    // The settings are the base's: a pull request cannot loosen its own review.
    let config_text = config_at(&pr.base.sha).await?;
    let head_config = if changes_config(&all_files) {
        Some(config_at(&head).await?)
    } else {
        None
    };

    // Most important first; within a rank, larger changes first, each kept only if it fits.
    files.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then((b.additions + b.deletions).cmp(&(a.additions + a.deletions)))
            .then(a.filename.cmp(&b.filename))
    });
    let mut budget = max_changed_lines as u64;
    let mut not_reviewed = Vec::new();
    let mut kept: Vec<PrFile> = Vec::new();
    for f in files {
        let size = f.additions + f.deletions;
        if f.patch.is_none() && size > 0 {
            not_reviewed.push((
                f.filename.clone(),
                "GitHub sent no patch (binary or too large a diff)".to_string(),
            ));
            continue;
        }
        if rank(&f) <= 1 {
            if size > budget {
                not_reviewed.push((
                    f.filename.clone(),
                    format!("over the review size budget of {max_changed_lines} changed lines"),
                ));
                continue;
            }
            budget -= size;
        }
        kept.push(f);
    }

    // The new text of every kept file in a supported language.
    let mut texts: HashMap<String, Vec<u8>> = HashMap::new();
    let wanted: Vec<String> = kept
        .iter()
        .filter(|f| f.status != "removed" && rank(f) <= 1)
        .map(|f| f.filename.clone())
        .collect();
    for chunk in wanted.chunks(FETCH_CONCURRENCY) {
        let mut set = tokio::task::JoinSet::new();
        for path in chunk {
            let gh = gh.clone();
            let (repo, path, head) = (repo.clone(), path.clone(), head.clone());
            set.spawn(async move {
                let r = gh.file_content(installation, &repo, &path, &head).await;
                (path, r)
            });
        }
        while let Some(joined) = set.join_next().await {
            let (path, r) = joined.map_err(|e| anyhow!("fetching a file failed: {e}"))?;
            match r {
                Ok(Some(bytes)) => {
                    texts.insert(path, bytes);
                }
                // Listed as "file content unavailable" by the review.
                Ok(None) => {}
                Err(e) if e.status == Some(413) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    let mut change = ChangeSet {
        description: format!(
            "{repo}#{} at {}",
            pr.number,
            &head.as_str()[..head.as_str().len().min(12)]
        ),
        ..ChangeSet::default()
    };
    let renamed: HashMap<String, String> = kept
        .iter()
        .filter_map(|f| {
            f.previous_filename
                .clone()
                .map(|old| (old, f.filename.clone()))
        })
        .collect();
    for f in kept {
        let diff = match file_diff(&f) {
            Ok(mut d) => {
                if let Some(how) = scoped.get(&f.filename) {
                    let before = d.hunks.len();
                    d.hunks = how.keep(std::mem::take(&mut d.hunks));
                    // Changed since the last review, but none of the pull request's hunks holds
                    // the change (a push that reverted part of it): nothing to review here.
                    if before > 0 && d.hunks.is_empty() {
                        continue;
                    }
                }
                d
            }
            Err(e) => {
                // Listed, not fatal: the rest of the pull request is still reviewed.
                not_reviewed.push((
                    f.filename.clone(),
                    format!("GitHub's patch does not parse: {e}"),
                ));
                continue;
            }
        };
        let new_content = texts.remove(diff.path());
        change.files.push(ChangedFile {
            diff,
            old_content: None,
            new_content,
        });
    }
    change
        .files
        .sort_by(|a, b| a.diff.path().cmp(b.diff.path()));
    Ok(Fetched {
        change,
        config_text,
        head_config,
        not_reviewed,
        hunks,
        renamed,
        changed_files,
        revisited_files,
        unchanged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, status: &str, patch: Option<&str>) -> PrFile {
        PrFile {
            filename: name.into(),
            status: status.into(),
            additions: 1,
            deletions: 0,
            patch: patch.map(str::to_string),
            previous_filename: None,
        }
    }

    #[test]
    fn github_patches_parse_with_their_status() {
        let added = file_diff(&file(
            "app/a.py",
            "added",
            Some("@@ -0,0 +1,2 @@\n+import os\n+x = 1"),
        ))
        .unwrap();
        assert_eq!(added.path(), "app/a.py");
        assert_eq!(added.status, FileStatus::Added);
        assert_eq!(
            added.added_lines().into_iter().collect::<Vec<_>>(),
            vec![1, 2]
        );
        let mut renamed = file("b.go", "renamed", None);
        renamed.previous_filename = Some("a.go".into());
        let r = file_diff(&renamed).unwrap();
        assert_eq!(r.old_path.as_deref(), Some("a.go"));
        assert_eq!(r.new_path.as_deref(), Some("b.go"));
        let removed = file_diff(&file("gone.py", "removed", Some("@@ -1 +0,0 @@\n-x"))).unwrap();
        assert_eq!(
            (removed.path(), removed.status),
            ("gone.py", FileStatus::Deleted)
        );
    }

    #[test]
    fn any_name_git_allows_keeps_its_path() {
        for name in [
            "app/new\nline.py",
            "app/tab\there.py",
            "app/\"quoted\" b/x.py",
            "app/caf\u{e9} \u{1F600}.py",
            "app/..hidden/a..b.py",
            "diff --git a/x b/y.py",
            "app/ spaced name .py",
        ] {
            let d = file_diff(&file(name, "modified", Some("@@ -1 +1 @@\n-a\n+b"))).unwrap();
            assert_eq!(d.path(), name);
            assert_eq!(d.old_path.as_deref(), Some(name));
            assert_eq!(d.added_lines().into_iter().collect::<Vec<_>>(), vec![1]);
        }
    }

    #[test]
    fn source_files_rank_before_tests_and_others() {
        assert!(
            rank(&file("app/pay.py", "modified", None))
                < rank(&file("tests/test_pay.py", "modified", None))
        );
        assert!(
            rank(&file("tests/test_pay.py", "modified", None))
                < rank(&file("README.md", "modified", None))
        );
    }
}
