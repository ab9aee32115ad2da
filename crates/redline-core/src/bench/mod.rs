//! `redline bench`: runs annotated cases (../shared/bench-format.md) through the review pipeline
//! and scores the findings exactly as that page says.

pub mod retrieval;
pub mod score;

use crate::change::ChangeSet;
use crate::model::{Finding, FindingSource, Review};

/// Reviews a case's change with `review` and returns its findings (the usual bench engine).
pub fn with_reviewer(
    mut review: impl FnMut(&ChangeSet) -> Result<Review>,
) -> impl FnMut(&Case, &ChangeSet) -> Result<Vec<Finding>> {
    move |_, change| Ok(review(change)?.findings)
}

/// Reads each case's findings from `dir/<case-id>.json` (any tool's output in the findings format),
/// so that other reviewers can be scored exactly like redline.
pub fn from_predictions(dir: PathBuf) -> impl FnMut(&Case, &ChangeSet) -> Result<Vec<Finding>> {
    move |case, _| {
        let path = dir.join(format!("{}.json", sanitize_id(&case.meta.id)));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("no predictions at {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        let items = v["findings"]
            .as_array()
            .ok_or_else(|| anyhow!("{}: no `findings` array", path.display()))?;
        items
            .iter()
            .map(|f| {
                let line = f["line"]
                    .as_u64()
                    .ok_or_else(|| anyhow!("{}: a finding without a line", path.display()))?
                    as u32;
                Ok(Finding {
                    path: f["path"].as_str().unwrap_or("").to_string(),
                    line,
                    end_line: f["end_line"].as_u64().map(|e| e as u32).unwrap_or(line),
                    severity: crate::model::Severity::parse(f["severity"].as_str().unwrap_or(""))
                        .unwrap_or(crate::model::Severity::Warning),
                    category: f["category"].as_str().unwrap_or("").to_string(),
                    message: f["message"].as_str().unwrap_or("").to_string(),
                    confidence: f["confidence"].as_f64().unwrap_or(1.0),
                    rule_id: f["rule_id"].as_str().map(str::to_string),
                    source: FindingSource::parse(f["source"].as_str().unwrap_or("external")),
                    cwe: None,
                    guidance: Vec::new(),
                    suggestion: None,
                })
            })
            .collect()
    }
}
use anyhow::{Context, Result, anyhow, bail};
use score::{Expected, Reported};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// case.json
#[derive(Debug, Clone, Deserialize)]
pub struct CaseMeta {
    pub id: String,
    pub language: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub source: String,
    pub kind: String,
}

#[derive(Debug, Deserialize)]
struct ExpectedFile {
    findings: Vec<Expected>,
}

/// A case ready to run.
pub struct Case {
    pub dir: PathBuf,
    pub meta: CaseMeta,
    pub expected: Vec<Expected>,
}

/// Every folder under `root` that holds a case.json, sorted by path.
pub fn find_cases(root: &Path) -> Result<Vec<PathBuf>> {
    if !root.is_dir() {
        bail!("{} is not a folder", root.display());
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("case.json").is_file() {
            out.push(dir);
            continue;
        }
        for e in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads case.json and expected.json of one case folder.
pub fn load_case(dir: &Path) -> Result<Case> {
    let meta_text =
        std::fs::read_to_string(dir.join("case.json")).context("cannot read case.json")?;
    let meta: CaseMeta = serde_json::from_str(&meta_text).map_err(|e| anyhow!("case.json: {e}"))?;
    if !matches!(meta.kind.as_str(), "positive" | "negative") {
        bail!(
            "case.json: kind must be positive or negative, not `{}`",
            meta.kind
        );
    }
    let exp_text =
        std::fs::read_to_string(dir.join("expected.json")).context("cannot read expected.json")?;
    let exp: ExpectedFile =
        serde_json::from_str(&exp_text).map_err(|e| anyhow!("expected.json: {e}"))?;
    if !dir.join("head").is_dir() {
        bail!("no head/ folder");
    }
    Ok(Case {
        dir: dir.to_path_buf(),
        meta,
        expected: exp.findings,
    })
}

/// The outcome of one case.
pub struct CaseRun {
    pub id: String,
    pub language: String,
    pub kind: String,
    pub expected: Vec<Expected>,
    pub reported: Vec<Reported>,
    pub findings: Vec<Finding>,
    pub millis: f64,
}

/// A case that could not be run.
pub struct CaseError {
    pub id: String,
    pub error: String,
}

/// Runs every case under `root`; `progress` is told each case as it starts.
pub fn run(
    root: &Path,
    mut review: impl FnMut(&Case, &ChangeSet) -> Result<Vec<Finding>>,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<(Vec<CaseRun>, Vec<CaseError>)> {
    let dirs = find_cases(root)?;
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let fallback_id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        progress(i + 1, dirs.len(), &fallback_id);
        let case = match load_case(dir) {
            Ok(c) => c,
            Err(e) => {
                errors.push(CaseError {
                    id: fallback_id,
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        let start = Instant::now();
        let change = match crate::change::from_case_dir(dir) {
            Ok(c) => c,
            Err(e) => {
                errors.push(CaseError {
                    id: case.meta.id.clone(),
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        let findings = match review(&case, &change) {
            Ok(r) => r,
            Err(e) => {
                errors.push(CaseError {
                    id: case.meta.id.clone(),
                    error: format!("{e:#}"),
                });
                continue;
            }
        };
        let millis = start.elapsed().as_secs_f64() * 1000.0;
        let reported = findings.iter().map(Reported::from).collect();
        runs.push(CaseRun {
            id: case.meta.id.clone(),
            language: case.meta.language.clone(),
            kind: case.meta.kind.clone(),
            expected: case.expected,
            reported,
            findings,
            millis,
        });
    }
    Ok((runs, errors))
}

/// Writes `OUT_DIR/<case-id>.json` for each case, in the findings format.
pub fn write_predictions(dir: &Path, runs: &[CaseRun]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for r in runs {
        let path = dir.join(format!("{}.json", sanitize_id(&r.id)));
        let body = serde_json::to_string_pretty(&serde_json::json!({"findings": r.findings}))?;
        std::fs::write(&path, body + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn sanitize_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
