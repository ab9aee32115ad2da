//! Settling what happened to posted findings, each time a pull request is looked at again:
//! fixed when the code a finding pointed at changed or went away, dismissed on a thumbs-down
//! (or, when the pull request merged, with the code unchanged). Resolved threads arrive as
//! webhook events (see the server).

use super::fetch::Fetched;
use crate::github::post::still_present;
use crate::github::{GitHub, PrRef, ReviewComment};
use crate::ids::CommitSha;
use crate::store::Store;
use anyhow::Result;
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Settled {
    pub fixed: usize,
    pub dismissed: usize,
}

/// What settling looks at: the pull request's head, the fetched change when there is one, and
/// the review comments as they are now (their reactions).
pub struct SettleInput<'a> {
    pub pr: &'a PrRef,
    pub head: &'a CommitSha,
    pub fetched: Option<&'a Fetched>,
    pub comments: &'a [ReviewComment],
    /// The pull request merged: findings with unchanged code are dismissed.
    pub merged: bool,
}

/// Settles a pull request's tracked findings against its head.
pub async fn settle(store: &Store, gh: &GitHub, input: SettleInput<'_>) -> Result<Settled> {
    let SettleInput {
        pr,
        head,
        fetched,
        comments,
        merged,
    } = input;
    let tracked = store
        .tracked_findings(pr.repo.as_str(), pr.number.to_db())
        .await?;
    let mut settled = Settled::default();
    if tracked.is_empty() {
        return Ok(settled);
    }
    // Each file's text at the head, once: from the fetched change (following a rename), else
    // from GitHub. Outer None: unknown (too large to fetch), so nothing is decided for it.
    let mut texts: HashMap<String, Option<Option<String>>> = HashMap::new();
    // Files a push did not touch since the last review: their findings stand as they were.
    let unchanged = |path: &str| fetched.is_some_and(|f| f.unchanged.contains(path));
    for t in &tracked {
        if texts.contains_key(&t.path) || unchanged(&t.path) {
            continue;
        }
        let path = fetched
            .and_then(|f| f.renamed.get(&t.path))
            .unwrap_or(&t.path);
        let text = match fetched.and_then(|f| f.new_text(path)) {
            Some(text) => Some(Some(text)),
            None => match gh.file_content(pr.installation, &pr.repo, path, head).await {
                Ok(b) => Some(b.map(|b| String::from_utf8_lossy(&b).into_owned())),
                Err(e) if e.status == Some(413) => None,
                Err(e) => return Err(e.into()),
            },
        };
        texts.insert(t.path.clone(), text);
    }
    let thumbs_down: HashMap<i64, u64> = comments
        .iter()
        .map(|c| {
            (
                c.id as i64,
                c.reactions.as_ref().map(|r| r.thumbs_down).unwrap_or(0),
            )
        })
        .collect();
    let short = head.short();
    for t in tracked {
        let present = match texts.get(&t.path) {
            _ if unchanged(&t.path) => true,
            Some(Some(Some(text))) => {
                still_present(&t.fingerprint, &t.key, &t.path, text, t.code_lines as usize)
            }
            Some(Some(None)) => false,
            // Unknown: decide nothing now.
            _ => continue,
        };
        if !present {
            store
                .set_outcome(t.id, "fixed", &format!("the code changed at {short}"))
                .await?;
            settled.fixed += 1;
        } else if t.outcome == "open" {
            let down = t
                .comment_id
                .and_then(|c| thumbs_down.get(&c))
                .copied()
                .unwrap_or(0);
            if down > 0 {
                store
                    .set_outcome(t.id, "dismissed", "thumbs-down on the comment")
                    .await?;
                settled.dismissed += 1;
            } else if merged {
                store
                    .set_outcome(t.id, "dismissed", "merged with the code unchanged")
                    .await?;
                settled.dismissed += 1;
            }
        }
    }
    Ok(settled)
}
