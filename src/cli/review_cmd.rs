//! `redline review`: where the change comes from, the output format, the exit code.

use crate::review::{ReviewOptions, ReviewService};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use redline_core::change::{self, ChangeSet, GitRange};
use redline_core::config;
use redline_core::model::{Review, Severity};
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// A benchmark case folder (with case.json, base/ and head/) to review.
    #[arg(value_name = "CASE_DIR", conflicts_with_all = ["worktree", "base_dir", "diff", "base", "head"])]
    case_dir: Option<PathBuf>,
    /// The git repository (default: the current folder); with --diff, where full file texts are read.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Base revision (default: the merge-base with the default branch).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Head revision (default: HEAD).
    #[arg(long, value_name = "REV", conflicts_with = "worktree")]
    head: Option<String>,
    /// Review uncommitted changes (working tree and index, untracked files included) against --base (default HEAD).
    #[arg(long)]
    worktree: bool,
    /// Folder holding the files before the change.
    #[arg(long, value_name = "DIR", requires = "head_dir", conflicts_with_all = ["worktree", "diff", "base", "head"])]
    base_dir: Option<PathBuf>,
    /// Folder holding the files after the change.
    #[arg(long, value_name = "DIR", requires = "base_dir")]
    head_dir: Option<PathBuf>,
    /// A unified diff to review (`-` for standard input).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["worktree", "base", "head"])]
    diff: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write the output here instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit with 1 when there are findings at or above this severity.
    #[arg(long, value_enum, default_value = "never")]
    fail_on: FailOn,
    /// Report only findings at or above this severity.
    #[arg(long, value_enum)]
    min_severity: Option<SeverityArg>,
    /// Which engine reviews: the rules, the LLM agent, or the agent when an LLM is configured.
    #[arg(long, value_enum, default_value = "auto")]
    engine: Engine,
    /// A configuration file to use instead of the repository's .redline.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Colour in text output.
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum FailOn {
    Critical,
    Warning,
    Suggestion,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SeverityArg {
    Critical,
    Warning,
    Suggestion,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Engine {
    Rules,
    Agent,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// The engine a run uses: the agent needs an LLM endpoint (`REDLINE_LLM_BASE_URL`, or
/// `OPENAI_BASE_URL` / `OPENAI_API_KEY`); `auto` picks it when one is configured.
pub fn resolve_engine(engine: Engine) -> Result<Option<crate::llm::LlmConfig>> {
    let config = crate::llm::LlmConfig::from_env();
    if config.is_some()
        && engine != Engine::Rules
        && let Ok(v) = std::env::var("REDLINE_PROMPT_VERSION")
    {
        crate::agent::check_prompt_version(v.trim())
            .map_err(|e| anyhow::anyhow!("REDLINE_PROMPT_VERSION: {e}"))?;
    }
    match (engine, config) {
        (Engine::Rules, _) => Ok(None),
        (Engine::Agent, None) => bail!(
            "--engine agent needs an LLM endpoint: set REDLINE_LLM_BASE_URL (with /v1), REDLINE_LLM_API_KEY and REDLINE_LLM_MODEL"
        ),
        (_, config) => Ok(config),
    }
}

/// Reviews a change with the service, and writes the model's exchanges to a transcript when
/// `REDLINE_LLM_RECORD=FILE` is set (for replay in tests; see tests/it/replay.rs).
pub async fn review_change(
    service: &ReviewService,
    change: &ChangeSet,
    loaded: &redline_core::config::Loaded,
    options: ReviewOptions,
) -> Result<Review> {
    let record_to = std::env::var_os("REDLINE_LLM_RECORD").map(PathBuf::from);
    let options = ReviewOptions {
        record: record_to.is_some(),
        ..options
    };
    let reviewed = service.review(change, loaded, &options).await?;
    let review = reviewed.review;
    if let (Some(path), Some(client)) = (record_to, reviewed.llm) {
        let transcript = serde_json::json!({
            "change": change.description,
            "model": review.agent.as_ref().and_then(|a| a.model()),
            "prompt_version": review.agent.as_ref().map(|a| a.prompt_version.clone()),
            // How the agent ran, so that a replay runs it the same way.
            "verify": crate::agent::AgentSettings::from_env().verify,
            "samples": crate::agent::AgentSettings::from_env().samples,
            "exchanges": client.take_recording(),
            "findings": review.findings,
            "quirks": review.agent.as_ref().map(|a| a.quirks.clone()),
        });
        std::fs::write(&path, serde_json::to_string_pretty(&transcript)? + "\n")
            .with_context(|| format!("cannot write the transcript {}", path.display()))?;
    }
    Ok(review)
}

pub async fn run(args: ReviewArgs) -> Result<i32> {
    let llm = resolve_engine(args.engine)?;
    redline_core::context::tokens::warm_up();
    let (change, root): (ChangeSet, PathBuf) = if let Some(case) = &args.case_dir {
        (change::from_case_dir(case)?, case.join("head"))
    } else if let (Some(b), Some(h)) = (&args.base_dir, &args.head_dir) {
        (change::from_dirs(Some(b), h)?, h.clone())
    } else if let Some(d) = &args.diff {
        let repo = args.repo.clone();
        (
            change::from_diff(d, repo.as_deref())?,
            repo.unwrap_or_else(|| PathBuf::from(".")),
        )
    } else {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let change = if args.worktree {
            change::from_worktree(&repo, args.base.as_deref())?
        } else {
            change::from_git(
                &repo,
                &GitRange {
                    base: args.base.clone(),
                    head: args.head.clone(),
                },
            )?
        };
        (change, repo)
    };
    let loaded = config::load(Some(&root), args.config.as_deref())?;
    let min_severity = match args.min_severity {
        Some(SeverityArg::Critical) => Severity::Critical,
        Some(SeverityArg::Warning) => Severity::Warning,
        Some(SeverityArg::Suggestion) | None => Severity::Suggestion,
    };
    let service = ReviewService::new(llm)?;
    let rules = service.rules_for(&loaded)?;
    let options = ReviewOptions {
        min_severity: Some(min_severity),
        ..Default::default()
    };
    let review = review_change(&service, &change, &loaded, options).await?;
    let text = match args.format {
        Format::Json => serde_json::to_string_pretty(&redline_core::report::json(&review))? + "\n",
        Format::Sarif => {
            serde_json::to_string_pretty(&redline_core::report::sarif(&review, &rules))? + "\n"
        }
        Format::Markdown => redline_core::report::markdown(&review),
        Format::Text => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => {
                    args.output.is_none()
                        && std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                }
            };
            let sources = |path: &str| -> Option<String> {
                change
                    .files
                    .iter()
                    .find(|f| f.diff.path() == path)
                    .and_then(|f| f.new_content.as_deref())
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            redline_core::report::text(&review, &sources, color)
        }
    };
    super::emit(args.output.as_deref(), &text)?;
    let threshold = match args.fail_on {
        FailOn::Never => None,
        FailOn::Critical => Some(Severity::Critical),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Suggestion => Some(Severity::Suggestion),
    };
    let failed = threshold.is_some_and(|t| review.findings.iter().any(|f| f.severity <= t));
    Ok(if failed { 1 } else { 0 })
}
