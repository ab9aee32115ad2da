//! `redline review`: where the change comes from, the output format, the exit code.

use crate::review::{ReviewOptions, ReviewService};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use redline_core::change::{self, ChangeSet, GitRange};
use redline_core::config;
use redline_core::model::{Review, Severity};
use redline_core::pipeline::Reviewer;
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
    /// Review the staged change (the index against HEAD): what `git commit` would record (for
    /// pre-commit hooks).
    #[arg(long, conflicts_with_all = ["worktree", "base", "head", "diff", "base_dir", "case_dir"])]
    staged: bool,
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
    /// Also write SARIF 2.1.0 to this file (for code scanning), whatever --format is.
    #[arg(long, value_name = "FILE")]
    sarif: Option<PathBuf>,
    /// Post the review: `github` reviews the pull request of the GitHub Actions job it runs in
    /// (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_API_URL) from the checkout at
    /// --repo and posts one review on it. See docs/github-action.md.
    #[arg(long, value_enum, value_name = "WHERE", conflicts_with_all = ["worktree", "staged", "base", "head", "diff", "base_dir", "case_dir"])]
    post: Option<PostTo>,
    /// With --post github: at most this many line comments (the rest go into the summary).
    #[arg(long, value_name = "N", default_value_t = 20, requires = "post")]
    max_comments: usize,
    /// With --post github: also create a `redline` check run (needs `checks: write`).
    #[arg(long, requires = "post")]
    check_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum PostTo {
    Github,
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
    if llm.is_some() {
        // Only an LLM review counts tokens: load the tokenizer meanwhile.
        redline_core::context::tokens::warm_up();
    }
    // In Actions, the pull request's base and head come from the event, and the settings from
    // the base commit (read before anything else can fail half-way).
    let actions = match args.post {
        Some(PostTo::Github) => Some(super::post_github::ActionsEnv::from_env()?),
        None => None,
    };
    let mut base_config = None;
    let (source, root): (Source, PathBuf) = if let Some(env) = &actions {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let (base, head) = env.range(&repo)?;
        if args.config.is_none() {
            base_config = Some(env.config(&repo)?);
        }
        let mut change = change::from_git(
            &repo,
            &GitRange {
                base: Some(base.clone()),
                head: Some(head),
            },
        )?;
        change.description = format!("{}#{}", env.repo, env.number);
        change.notes.push(format!(
            "base: merge-base of the pull request's base and head ({})",
            &base[..base.len().min(10)]
        ));
        (Source::Loaded(change), repo)
    } else if let Some(case) = &args.case_dir {
        (
            Source::Loaded(change::from_case_dir(case)?),
            case.join("head"),
        )
    } else if let (Some(b), Some(h)) = (&args.base_dir, &args.head_dir) {
        let dirs = change::DirChange::new(Some(b), h)?;
        // A rules review of two folders reads one file at a time: a whole tree streams.
        let source = if llm.is_none() {
            Source::Dirs(dirs)
        } else {
            Source::Loaded(change::from_dirs(Some(b), h)?)
        };
        (source, h.clone())
    } else if let Some(d) = &args.diff {
        let repo = args.repo.clone();
        (
            Source::Loaded(change::from_diff(d, repo.as_deref())?),
            repo.unwrap_or_else(|| PathBuf::from(".")),
        )
    } else {
        let repo = args.repo.clone().unwrap_or_else(|| PathBuf::from("."));
        let change = if args.worktree {
            change::from_worktree(&repo, args.base.as_deref())?
        } else if args.staged {
            change::from_staged(&repo)?
        } else {
            change::from_git(
                &repo,
                &GitRange {
                    base: args.base.clone(),
                    head: args.head.clone(),
                },
            )?
        };
        (Source::Loaded(change), repo)
    };
    let loaded = match base_config {
        Some(l) => l,
        None => config::load(Some(&root), args.config.as_deref())?,
    };
    let min_severity = match args.min_severity {
        Some(SeverityArg::Critical) => Severity::Critical,
        Some(SeverityArg::Warning) => Severity::Warning,
        Some(SeverityArg::Suggestion) | None => Severity::Suggestion,
    };
    let service = ReviewService::new(llm)?;
    let rules = service.rules_for(&loaded)?;
    let review = match &source {
        Source::Loaded(change) => {
            let options = ReviewOptions {
                min_severity: Some(min_severity),
                ..Default::default()
            };
            review_change(&service, change, &loaded, options).await?
        }
        Source::Dirs(dirs) => {
            let reviewer = Reviewer {
                rules: &rules,
                config: &loaded,
                min_severity,
                count_tokens: false,
            };
            let progress = ProgressLine::new(dirs.paths.len());
            let review = tokio::task::block_in_place(|| {
                reviewer.review_dirs(dirs, &|p| progress.update(p))
            })?;
            progress.finish();
            review
        }
    };
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
                match &source {
                    Source::Loaded(change) => change
                        .files
                        .iter()
                        .find(|f| f.diff.path() == path)
                        .and_then(|f| f.new_content.as_deref())
                        .map(|b| String::from_utf8_lossy(b).into_owned()),
                    Source::Dirs(dirs) => dirs.head_text(path),
                }
            };
            redline_core::report::text(&review, &sources, color)
        }
    };
    super::emit(args.output.as_deref(), &text)?;
    // How the change was read, suppressions, ...: for the person at the terminal, not the report.
    for n in &review.notes {
        eprintln!("note: {n}");
    }
    let sarif_text = || -> Result<String> {
        Ok(serde_json::to_string_pretty(&redline_core::report::sarif(&review, &rules))? + "\n")
    };
    if let Some(path) = &args.sarif {
        super::emit(Some(path), &sarif_text()?)?;
    }
    let threshold = match args.fail_on {
        FailOn::Never => None,
        FailOn::Critical => Some(Severity::Critical),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Suggestion => Some(Severity::Suggestion),
    };
    let failed = threshold.is_some_and(|t| review.findings.iter().any(|f| f.severity <= t));
    let code = if failed { 1 } else { 0 };
    if let (Some(env), Source::Loaded(change)) = (&actions, &source) {
        let options = super::post_github::PostOptions {
            max_comments: args.max_comments,
            check_run: args.check_run,
        };
        // Where the review also goes when it cannot be posted: SARIF, unless already written.
        let sarif_file = args.sarif.clone().or_else(|| {
            args.output
                .clone()
                .filter(|p| matches!(args.format, Format::Sarif) && p != std::path::Path::new("-"))
        });
        return post_to_github(env, change, &review, &options, code, || {
            if let Some(written) = sarif_file {
                return Ok(written);
            }
            let path = super::post_github::default_sarif_path();
            super::emit(Some(&path), &sarif_text()?)?;
            Ok(path)
        })
        .await;
    }
    Ok(code)
}

/// Posts the review from Actions and writes the job summary; when GitHub refuses (a read-only
/// token) or posting fails, the review goes to the job summary and SARIF (`write_sarif` writes it
/// unless written already, and says where) and stderr says so. Returns the exit code.
async fn post_to_github(
    env: &super::post_github::ActionsEnv,
    change: &ChangeSet,
    review: &Review,
    options: &super::post_github::PostOptions,
    code: i32,
    write_sarif: impl FnOnce() -> Result<PathBuf>,
) -> Result<i32> {
    use super::post_github::{Outcome, append_step_summary, post, step_summary};
    use crate::github::post::Placement;
    let result = post(env, change, review, options).await;
    let status = match &result {
        Ok(Outcome::Posted(p)) if p.already_posted => format!(
            "Already posted on this head commit (review {}): nothing new posted.",
            p.review_id.unwrap_or(0)
        ),
        Ok(Outcome::Posted(p)) => {
            let count = |want: Placement| p.findings.iter().filter(|o| o.placement == want).count();
            format!(
                "Posted as review {} on {}#{}: {} line comment(s); {} finding(s) already on the pull request not repeated.",
                p.review_id.unwrap_or(0),
                env.repo,
                env.number,
                count(Placement::Inline),
                count(Placement::Repeat),
            )
        }
        Ok(Outcome::ReadOnly(e)) => format!(
            "Not posted: GitHub refused the review with 403 ({}); {}.",
            e.message,
            if env.from_fork {
                "this pull request comes from a fork, whose token is read-only"
            } else {
                "the token needs `pull-requests: write`"
            }
        ),
        Err(e) => format!("Not posted: {}", super::one_line(&format!("{e:#}"))),
    };
    // The job summary is a convenience: failing to write it does not hide the review's outcome.
    if let Some(path) = &env.step_summary
        && let Err(e) = append_step_summary(path, &step_summary(review, &status))
    {
        eprintln!("redline: {e:#}");
    }
    if let Ok(Outcome::Posted(_)) = result {
        eprintln!("redline: {status}");
        return Ok(code);
    }
    let sarif = write_sarif()?;
    let kept_in = match &env.step_summary {
        Some(s) => format!("the job summary ({}) and {}", s.display(), sarif.display()),
        None => sarif.display().to_string(),
    };
    match result {
        Err(e) => {
            eprintln!("redline: the review could not be posted; it is in {kept_in}");
            Err(e)
        }
        _ => {
            eprintln!("redline: {status} The review is in {kept_in}.");
            Ok(code)
        }
    }
}

/// Where a review's change is: read whole, or two folders streamed file by file.
enum Source {
    Loaded(ChangeSet),
    Dirs(change::DirChange),
}

/// A progress line on stderr for reviews of many files: rewritten in place on a terminal, a line
/// every tenth of the way otherwise.
struct ProgressLine {
    total: usize,
    tty: bool,
    start: std::time::Instant,
    last: std::sync::Mutex<(std::time::Instant, usize)>,
}

impl ProgressLine {
    /// Below this many files a review is quick and says nothing while it runs.
    const MIN_FILES: usize = 200;

    fn new(total: usize) -> ProgressLine {
        let now = std::time::Instant::now();
        ProgressLine {
            total,
            tty: std::io::stderr().is_terminal(),
            start: now,
            last: std::sync::Mutex::new((now, 0)),
        }
    }

    fn update(&self, p: redline_core::pipeline::Progress) {
        if self.total < Self::MIN_FILES {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let tenth = (p.done * 10 / self.total.max(1)) > (last.1 * 10 / self.total.max(1));
        let due = if self.tty {
            last.0.elapsed() >= std::time::Duration::from_millis(200)
        } else {
            tenth
        };
        if !due && p.done != p.total {
            return;
        }
        *last = (std::time::Instant::now(), p.done);
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        let line = format!(
            "reviewed {}/{} files, {} lines ({:.0} lines/s)",
            p.done,
            p.total,
            p.lines,
            p.lines as f64 / secs
        );
        if self.tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }

    fn finish(&self) {
        if self.tty && self.total >= Self::MIN_FILES {
            eprintln!();
        }
    }
}
