//! A pull request from GitHub as a `ChangeSet`: its files and patches (paginated), the new text of
//! the files to review at the head commit, and the repository's `.redline.toml` there. Over the
//! size budget, the files that matter most are kept and the rest listed as not reviewed.

use crate::github::{GitHub, PrFile, PrRef, PullRequest};
use anyhow::{Result, anyhow};
use redline_core::change::{ChangeSet, ChangedFile};
use std::collections::HashMap;

/// Files whose text is fetched at once.
const FETCH_CONCURRENCY: usize = 8;

pub struct Fetched {
    pub change: ChangeSet,
    pub config_text: Option<String>,
    /// (path, why) for files left out before the review.
    pub not_reviewed: Vec<(String, String)>,
    /// New-side line ranges of each file's hunks: GitHub takes comments on these lines only.
    hunks: HashMap<String, Vec<(u32, u32)>>,
    /// Renamed files: old path to new path.
    pub renamed: HashMap<String, String>,
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

/// A unified diff for one file from GitHub's patch (which has hunks only).
fn diff_text(f: &PrFile) -> String {
    let new = &f.filename;
    let old = f.previous_filename.as_deref().unwrap_or(new);
    let mut d = format!("diff --git a/{old} b/{new}\n");
    match f.status.as_str() {
        "added" => d.push_str(&format!(
            "new file mode 100644\n--- /dev/null\n+++ b/{new}\n"
        )),
        "removed" => d.push_str(&format!(
            "deleted file mode 100644\n--- a/{old}\n+++ /dev/null\n"
        )),
        "renamed" | "copied" => d.push_str(&format!(
            "rename from {old}\nrename to {new}\n--- a/{old}\n+++ b/{new}\n"
        )),
        _ => d.push_str(&format!("--- a/{old}\n+++ b/{new}\n")),
    }
    if let Some(p) = &f.patch {
        d.push_str(p);
        if !p.ends_with('\n') {
            d.push('\n');
        }
    }
    d
}

pub async fn fetch_change(
    gh: &std::sync::Arc<GitHub>,
    at: &PrRef,
    pr: &PullRequest,
    max_changed_lines: usize,
) -> Result<Fetched> {
    let (installation, repo) = (at.installation, &at.repo);
    let head = pr.head.sha.clone();
    let mut files = gh.pull_files(at).await?;
    let config_text = gh
        .file_content(installation, repo, ".redline.toml", &head)
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned());

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
    let mut hunks = HashMap::new();
    let renamed: HashMap<String, String> = kept
        .iter()
        .filter_map(|f| {
            f.previous_filename
                .clone()
                .map(|old| (old, f.filename.clone()))
        })
        .collect();
    for f in kept {
        let parsed = redline_core::diff::parse(&diff_text(&f))
            .map_err(|e| anyhow!("GitHub's patch for {} does not parse: {e}", f.filename))?;
        for diff in parsed {
            let ranges: Vec<(u32, u32)> = diff.hunks.iter().filter_map(|h| h.new_range()).collect();
            hunks.insert(diff.path().to_string(), ranges);
            let new_content = texts.remove(diff.path());
            change.files.push(ChangedFile {
                diff,
                old_content: None,
                new_content,
            });
        }
    }
    change
        .files
        .sort_by(|a, b| a.diff.path().cmp(b.diff.path()));
    Ok(Fetched {
        change,
        config_text,
        not_reviewed,
        hunks,
        renamed,
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
        let added = redline_core::diff::parse(&diff_text(&file(
            "app/a.py",
            "added",
            Some("@@ -0,0 +1,2 @@\n+import os\n+x = 1"),
        )))
        .unwrap();
        assert_eq!(added[0].path(), "app/a.py");
        assert_eq!(
            added[0].added_lines().into_iter().collect::<Vec<_>>(),
            vec![1, 2]
        );
        let mut renamed = file("b.go", "renamed", None);
        renamed.previous_filename = Some("a.go".into());
        let r = redline_core::diff::parse(&diff_text(&renamed)).unwrap();
        assert_eq!(r[0].old_path.as_deref(), Some("a.go"));
        assert_eq!(r[0].new_path.as_deref(), Some("b.go"));
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
