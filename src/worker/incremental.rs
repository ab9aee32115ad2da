//! Reviewing only what a push changed. A `synchronize` job compares the last reviewed head with
//! the new one (GitHub's compare API); the files that differ, and within them the pull request's
//! hunks that hold a changed line, are reviewed; the rest carries forward (its open findings stay
//! open, nothing is posted again). Files the last review could not cover (over the size budget,
//! the LLM unavailable) are looked at again. A force-push that dropped or replaced the old head
//! (compare answers 404, `diverged` or `behind`) is a full review, and the summary says so; so is
//! `/redline review`, and every review when `REDLINE_INCREMENTAL_REVIEW=false`.

use super::Context;
use crate::github::{MAX_COMPARE_FILES, PrFile, PrRef};
use crate::ids::CommitSha;
use crate::store::{Job, JobCause};
use anyhow::Result;
use redline_core::diff::{Hunk, LineKind};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What a review covers.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The whole pull request; `why` says why a push was not reviewed incrementally.
    Full { why: Option<String> },
    /// What changed since `since`.
    Since {
        since: CommitSha,
        /// Paths that differ between the two heads, with their changed new-side lines.
        changed: HashMap<String, Changed>,
        /// Paths the last review could not cover, looked at again in whole.
        revisit: HashSet<String>,
    },
}

/// How a file changed since the last reviewed head.
#[derive(Debug, Clone)]
pub enum Changed {
    /// Every hunk of it is looked at (added, removed, renamed, or no patch to tell).
    Whole,
    /// New-side lines that changed: the pull request's hunks holding one are looked at.
    Lines(BTreeSet<u32>),
}

impl Scope {
    /// Whether a pull request file is reviewed, and which of its hunks.
    pub fn of_file(&self, f: &PrFile) -> Option<Changed> {
        match self {
            Scope::Full { .. } => Some(Changed::Whole),
            Scope::Since {
                changed, revisit, ..
            } => {
                if revisit.contains(&f.filename) {
                    return Some(Changed::Whole);
                }
                changed.get(&f.filename).cloned().or_else(|| {
                    f.previous_filename
                        .as_ref()
                        .and_then(|p| changed.get(p))
                        .map(|_| Changed::Whole)
                })
            }
        }
    }
}

impl Changed {
    /// The hunks of a pull request file that hold a changed line (all of them for `Whole`).
    pub fn keep(&self, hunks: Vec<Hunk>) -> Vec<Hunk> {
        match self {
            Changed::Whole => hunks,
            Changed::Lines(lines) => hunks
                .into_iter()
                .filter(|h| {
                    let (a, b) = h
                        .new_range()
                        .unwrap_or((h.new_start, h.new_start.saturating_add(1)));
                    lines.range(a..=b).next().is_some()
                })
                .collect(),
        }
    }
}

/// The new-side lines a compare patch changed: each added line, and beside each removal the
/// lines around the gap it left.
fn changed_lines(hunks: &[Hunk]) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for h in hunks {
        let mut last_new = h.new_start.saturating_sub(1);
        for l in &h.lines {
            match l.kind {
                LineKind::Added => {
                    if let Some(n) = l.new_line {
                        out.insert(n);
                        last_new = n;
                    }
                }
                LineKind::Removed => {
                    out.insert(last_new.max(1));
                    out.insert(last_new + 1);
                }
                LineKind::Context => {
                    if let Some(n) = l.new_line {
                        last_new = n;
                    }
                }
            }
        }
    }
    out
}

/// What job `job` covers at `head`.
pub async fn scope_of(ctx: &Context, job: &Job, at: &PrRef, head: &CommitSha) -> Result<Scope> {
    if job.cause != JobCause::Synchronize || !ctx.settings.incremental_review {
        return Ok(Scope::Full { why: None });
    }
    let Some(last) = ctx
        .store
        .last_review(at.repo.as_str(), at.number.to_db())
        .await?
    else {
        return Ok(Scope::Full {
            why: Some("No earlier review of this pull request is recorded".into()),
        });
    };
    let since = CommitSha::new(last.head_sha.clone());
    if since.is_empty() {
        return Ok(Scope::Full { why: None });
    }
    let short = since.short().to_string();
    let Some(cmp) = ctx
        .github
        .compare(at.installation, &at.repo, &since, head)
        .await?
    else {
        return Ok(Scope::Full {
            why: Some(format!(
                "The last reviewed head {short} is no longer in the repository (a force-push dropped it)"
            )),
        });
    };
    if cmp.status == "diverged" || cmp.status == "behind" {
        return Ok(Scope::Full {
            why: Some(format!(
                "A force-push replaced the last reviewed head {short} (GitHub compares it as {})",
                cmp.status
            )),
        });
    }
    if cmp.files.len() >= MAX_COMPARE_FILES {
        return Ok(Scope::Full {
            why: Some(format!(
                "{} files or more changed since the last review of {short}, more than GitHub compares",
                MAX_COMPARE_FILES
            )),
        });
    }
    let mut changed = HashMap::new();
    for f in &cmp.files {
        let how = match (&f.patch, f.status.as_str()) {
            (Some(p), "modified" | "changed") => match redline_core::diff::parse_hunks(p) {
                Ok(h) => Changed::Lines(changed_lines(&h)),
                Err(_) => Changed::Whole,
            },
            _ => Changed::Whole,
        };
        changed.insert(f.filename.clone(), how);
        if let Some(old) = &f.previous_filename {
            changed.insert(old.clone(), Changed::Whole);
        }
    }
    Ok(Scope::Since {
        since,
        changed,
        revisit: last.not_reviewed().into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_request_hunk_is_kept_when_it_holds_a_line_the_push_changed() {
        let compare = redline_core::diff::parse_hunks(
            "@@ -10,7 +10,7 @@ def f():\n a\n b\n c\n-d\n+D\n e\n f\n g",
        )
        .unwrap();
        let lines = changed_lines(&compare);
        assert!(lines.contains(&13), "{lines:?}");
        assert!(!lines.contains(&10), "context is not a change: {lines:?}");
        let pr = redline_core::diff::parse_hunks(
            "@@ -1,3 +1,4 @@\n x\n+y\n z\n w\n@@ -11,4 +12,4 @@\n b\n-c\n+C\n D\n e",
        )
        .unwrap();
        let kept = Changed::Lines(lines).keep(pr);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].new_start, 12);
        let deletion = redline_core::diff::parse_hunks("@@ -5,3 +5,2 @@\n a\n-b\n c").unwrap();
        let lines = changed_lines(&deletion);
        assert!(lines.contains(&5) && lines.contains(&6), "{lines:?}");
    }
}
