//! Changes read from a git repository with the `git` command: two revisions, or the working tree.

use super::{ChangeSet, ChangedFile, require_dir};
use crate::diff::FileDiff;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Which revisions to compare; None means the defaults (merge-base with the default branch, HEAD).
#[derive(Debug, Clone, Default)]
pub struct GitRange {
    pub base: Option<String>,
    pub head: Option<String>,
}

/// The change between two revisions of the repository at `repo`.
pub fn from_git(repo: &Path, range: &GitRange) -> Result<ChangeSet> {
    check_repo(repo)?;
    let head_rev = range.head.clone().unwrap_or_else(|| "HEAD".to_string());
    let head = resolve(repo, &head_rev)?;
    let mut notes = Vec::new();
    let base = match &range.base {
        Some(b) => resolve(repo, b)?,
        None => default_base(repo, &head, &mut notes)?,
    };
    let diff_text = git(
        repo,
        &[
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            &base,
            &head,
        ],
    )?;
    let diffs = crate::diff::parse(&String::from_utf8_lossy(&diff_text))
        .map_err(|e| anyhow!("git diff output: {e}"))?;
    let mut wanted = Vec::new();
    for d in &diffs {
        wanted.push(d.old_path.as_ref().map(|p| format!("{base}:{p}")));
        wanted.push(d.new_path.as_ref().map(|p| format!("{head}:{p}")));
    }
    let mut blobs = cat_files(repo, &wanted)?.into_iter();
    let files = diffs
        .into_iter()
        .map(|diff| {
            let old_content = blobs.next().flatten();
            let new_content = blobs.next().flatten();
            ChangedFile {
                diff,
                old_content,
                new_content,
            }
        })
        .collect();
    Ok(ChangeSet {
        description: format!("{}..{}", short(&base), short(&head)),
        files,
        notes,
    })
}

/// The uncommitted change: `base` (default HEAD) against the working tree, untracked files included.
pub fn from_worktree(repo: &Path, base: Option<&str>) -> Result<ChangeSet> {
    check_repo(repo)?;
    let base = resolve(repo, base.unwrap_or("HEAD"))?;
    let diff_text = git(
        repo,
        &[
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            &base,
        ],
    )?;
    let mut diffs = crate::diff::parse(&String::from_utf8_lossy(&diff_text))
        .map_err(|e| anyhow!("git diff output: {e}"))?;
    let untracked = git(repo, &["ls-files", "--others", "--exclude-standard", "-z"])?;
    for path in untracked.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        let bytes = std::fs::read(repo.join(&path)).unwrap_or_default();
        let mut d = if bytes.iter().take(8000).any(|&b| b == 0) {
            crate::diff::diff_texts(None, Some(&path), "", "")
        } else {
            crate::diff::diff_texts(None, Some(&path), "", &String::from_utf8_lossy(&bytes))
        };
        d.binary = bytes.iter().take(8000).any(|&b| b == 0);
        diffs.push(d);
    }
    let old_specs: Vec<Option<String>> = diffs
        .iter()
        .map(|d| d.old_path.as_ref().map(|p| format!("{base}:{p}")))
        .collect();
    let mut old_blobs = cat_files(repo, &old_specs)?.into_iter();
    let files = diffs
        .into_iter()
        .map(|diff: FileDiff| {
            let old_content = old_blobs.next().flatten();
            let new_content = diff
                .new_path
                .as_ref()
                .and_then(|p| std::fs::read(repo.join(p)).ok());
            ChangedFile {
                diff,
                old_content,
                new_content,
            }
        })
        .collect();
    Ok(ChangeSet {
        description: format!("{}..working tree", short(&base)),
        files,
        notes: Vec::new(),
    })
}

/// git's empty tree: the base of a repository's first commit.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The staged change (the index) against HEAD; in a repository with no commit yet, against
/// nothing. What `git commit` would record, and what a pre-commit hook sees.
pub fn from_staged(repo: &Path) -> Result<ChangeSet> {
    check_repo(repo)?;
    let (base, base_name) = match resolve(repo, "HEAD") {
        Ok(id) => (id, None),
        Err(_) => (EMPTY_TREE.to_string(), Some("no commit yet")),
    };
    let diff_text = git(
        repo,
        &[
            "diff",
            "--cached",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            &base,
        ],
    )?;
    let diffs = crate::diff::parse(&String::from_utf8_lossy(&diff_text))
        .map_err(|e| anyhow!("git diff output: {e}"))?;
    let mut wanted = Vec::new();
    for d in &diffs {
        // The base side of a first commit is empty; `:path` is the path's blob in the index.
        wanted.push(
            d.old_path
                .as_ref()
                .filter(|_| base_name.is_none())
                .map(|p| format!("{base}:{p}")),
        );
        wanted.push(d.new_path.as_ref().map(|p| format!(":{p}")));
    }
    let mut blobs = cat_files(repo, &wanted)?.into_iter();
    let files = diffs
        .into_iter()
        .map(|diff| {
            let old_content = blobs.next().flatten();
            let new_content = blobs.next().flatten();
            ChangedFile {
                diff,
                old_content,
                new_content,
            }
        })
        .collect();
    Ok(ChangeSet {
        description: format!("{}..index", base_name.unwrap_or(short(&base))),
        files,
        notes: Vec::new(),
    })
}

/// The best common ancestor of two revisions, as a commit id: the base of a pull request's diff
/// (GitHub compares a pull request's head with the merge-base of its base and head).
pub fn merge_base(repo: &Path, a: &str, b: &str) -> Result<String> {
    check_repo(repo)?;
    let (a, b) = (resolve(repo, a)?, resolve(repo, b)?);
    let out = git(repo, &["merge-base", &a, &b])
        .map_err(|_| anyhow!("{} and {} have no common ancestor", short(&a), short(&b)))?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// The bytes of `path` at revision `rev`; None when the path is not a file there.
pub fn file_at(repo: &Path, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
    check_repo(repo)?;
    let rev = resolve(repo, rev)?;
    Ok(cat_files(repo, &[Some(format!("{rev}:{path}"))])?
        .into_iter()
        .next()
        .flatten())
}

/// Whether `rev` names a commit present in the repository.
pub fn has_commit(repo: &Path, rev: &str) -> bool {
    resolve(repo, rev).is_ok()
}

fn check_repo(repo: &Path) -> Result<()> {
    require_dir(repo, "repository")?;
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--git-dir"])
        .stderr(Stdio::null())
        .output()
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        bail!("{} is not a git repository", repo.display());
    }
    Ok(())
}

/// Resolves a revision to a commit id, or fails naming the revision.
fn resolve(repo: &Path, rev: &str) -> Result<String> {
    if rev.starts_with('-') {
        bail!("bad revision `{rev}`");
    }
    let out = git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .map_err(|_| anyhow!("bad revision `{rev}`: not a commit in {}", repo.display()))?;
    let id = String::from_utf8_lossy(&out).trim().to_string();
    if id.is_empty() {
        bail!("bad revision `{rev}`: not a commit in {}", repo.display());
    }
    Ok(id)
}

/// The merge-base of `head` with the default branch; when head is on that branch, its parent.
fn default_base(repo: &Path, head: &str, notes: &mut Vec<String>) -> Result<String> {
    let mut candidates = Vec::new();
    if let Ok(out) = git(
        repo,
        &["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"],
    ) {
        candidates.push(String::from_utf8_lossy(&out).trim().to_string());
    }
    candidates
        .extend(["origin/main", "origin/master", "main", "master", "trunk"].map(String::from));
    for branch in candidates {
        let Ok(tip) = resolve(repo, &branch) else {
            continue;
        };
        let Ok(mb) = git(repo, &["merge-base", head, &tip]) else {
            continue;
        };
        let mb = String::from_utf8_lossy(&mb).trim().to_string();
        if mb != head {
            notes.push(format!("base: merge-base with {branch} ({})", short(&mb)));
            return Ok(mb);
        }
        // Head is on the default branch itself: review its last commit.
        if let Ok(parent) = resolve(repo, &format!("{head}~1")) {
            notes.push(format!(
                "base: HEAD is on {branch}; reviewing its last commit ({}..{})",
                short(&parent),
                short(head)
            ));
            return Ok(parent);
        }
        bail!(
            "HEAD is the only commit on {branch}: pass --base, or use --worktree for uncommitted changes"
        );
    }
    if let Ok(parent) = resolve(repo, &format!("{head}~1")) {
        notes.push("base: no default branch found; reviewing the last commit".into());
        return Ok(parent);
    }
    bail!("cannot choose a base revision (no default branch, no parent commit): pass --base")
}

/// Runs git in `repo` and returns its standard output, or an error with git's own message.
fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git (is it installed?)")?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        bail!(
            "git {}: {}",
            args.first().unwrap_or(&""),
            msg.lines().next().unwrap_or("failed").trim()
        );
    }
    Ok(out.stdout)
}

/// Reads many `rev:path` blobs with one `git cat-file --batch`; None where a spec is None or missing.
fn cat_files(repo: &Path, specs: &[Option<String>]) -> Result<Vec<Option<Vec<u8>>>> {
    let asked: Vec<&String> = specs.iter().flatten().collect();
    let mut results = Vec::with_capacity(specs.len());
    if asked.is_empty() {
        return Ok(specs.iter().map(|_| None).collect());
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run git cat-file")?;
    let mut stdin = child.stdin.take().expect("piped");
    let input: String = asked.iter().map(|s| format!("{s}\n")).collect();
    // Write from a thread so that a large output cannot dead-lock against our input.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = Vec::new();
    child.stdout.take().expect("piped").read_to_end(&mut out)?;
    writer
        .join()
        .map_err(|_| anyhow!("git cat-file writer panicked"))??;
    child.wait()?;
    let mut pos = 0;
    let mut blobs = Vec::new();
    for _ in &asked {
        let nl = out[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|n| pos + n)
            .ok_or_else(|| anyhow!("short git cat-file output"))?;
        let header = String::from_utf8_lossy(&out[pos..nl]).to_string();
        pos = nl + 1;
        if header.ends_with("missing") || header.ends_with("ambiguous") {
            blobs.push(None);
            continue;
        }
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad git cat-file header"))?;
        blobs.push(Some(out[pos..pos + size].to_vec()));
        pos += size + 1;
    }
    let mut blobs = blobs.into_iter();
    for s in specs {
        results.push(if s.is_some() {
            blobs.next().flatten()
        } else {
            None
        });
    }
    Ok(results)
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}
