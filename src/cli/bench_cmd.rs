//! `redline bench DIR`: runs every case under DIR and prints the score table.

use super::review_cmd::{Engine, resolve_engine, review_change};
use crate::review::{ReviewOptions, ReviewService};
use anyhow::Result;
use clap::Args;
use redline_core::bench::{self, score};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A folder of cases (every folder below it holding case.json is a case).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Which engine reviews the cases.
    #[arg(long, value_enum, default_value = "rules")]
    engine: Engine,
    /// Write each case's findings to OUT_DIR/<case-id>.json.
    #[arg(long, value_name = "OUT_DIR")]
    predictions: Option<PathBuf>,
    /// Write the scores as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the score table as Markdown.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Score the findings in DIR/<case-id>.json (another run's or another tool's) instead of reviewing.
    #[arg(long, value_name = "DIR", conflicts_with = "predictions")]
    score: Option<PathBuf>,
    /// Run the agent once per prompt version (e.g. review-v1,review-v2) on the same cases and
    /// compare their scores. Needs an LLM endpoint.
    #[arg(long, value_name = "A,B", value_delimiter = ',', conflicts_with_all = ["score", "predictions"])]
    compare_prompts: Vec<String>,
}

/// What produces a case's findings: a review, or another run's predictions.
type CaseReviewer<'a> = Box<
    dyn FnMut(
            &bench::Case,
            &redline_core::change::ChangeSet,
        ) -> anyhow::Result<Vec<redline_core::model::Finding>>
        + 'a,
>;

pub async fn run(args: BenchArgs) -> Result<i32> {
    if !args.compare_prompts.is_empty() {
        return compare_prompts(&args);
    }
    let llm = resolve_engine(args.engine)?;
    let engine = if llm.is_some() { "agent" } else { "rules" };
    let service = ReviewService::new(llm)?;
    let config = redline_core::config::load(None, None)?;
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let engine = if args.score.is_some() {
        "predictions"
    } else {
        engine
    };
    let review: CaseReviewer = match &args.score {
        Some(dir) => Box::new(bench::from_predictions(dir.clone())),
        None => Box::new(bench::with_reviewer(
            |change: &redline_core::change::ChangeSet| {
                blocking(review_change(
                    &service,
                    change,
                    &config,
                    ReviewOptions::default(),
                ))
            },
        )),
    };
    let (runs, errors) = bench::run(&args.dir, review, |i, n, id| {
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r\x1b[2K[{i}/{n}] {id}");
        } else {
            let _ = writeln!(err, "[{i}/{n}] {id}");
        }
    })?;
    if tty {
        eprintln!();
    }
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    for e in &errors {
        eprintln!("case {}: cannot be read: {}", e.id, e.error);
    }
    if let Some(dir) = &args.predictions {
        bench::write_predictions(dir, &runs)?;
    }
    let summary = score::summarize(&runs, errors.len());
    let mut table = format!(
        "redline bench: {} ({} engine, rules {})\n\n",
        args.dir.display(),
        engine,
        redline_core::pipeline::rules_version()
    );
    table.push_str(&score::table(&summary));
    table.push_str(&format!("wall time: {:.0} ms\n", wall_ms));
    super::emit(None, &table)?;
    if let Some(p) = &args.json {
        let v = serde_json::json!({
            "engine": engine,
            "rules_version": redline_core::pipeline::rules_version(),
            "summary": summary,
            "false_alarm_rate": summary.false_alarm_rate(),
            "precision": summary.all.precision(), "recall": summary.all.recall(), "f1": summary.all.f1(),
            "critical_precision": summary.critical.precision(), "critical_recall": summary.critical.recall(), "critical_f1": summary.critical.f1(),
            "errors": errors.iter().map(|e| serde_json::json!({"id": e.id, "error": e.error})).collect::<Vec<_>>(),
            "wall_ms": wall_ms,
        });
        super::emit(Some(p), &(serde_json::to_string_pretty(&v)? + "\n"))?;
    }
    if let Some(p) = &args.markdown {
        super::emit(Some(p), &score::markdown(&summary))?;
    }
    // Every case ran: 0. Some could not be read: 1, so that CI notices a broken case set.
    Ok(if errors.is_empty() { 0 } else { 1 })
}

/// `--compare-prompts A,B`: the same cases through the agent with each prompt version.
fn compare_prompts(args: &BenchArgs) -> Result<i32> {
    let versions = &args.compare_prompts;
    if versions.len() < 2 {
        anyhow::bail!("--compare-prompts needs at least two versions, e.g. review-v1,review-v2");
    }
    for v in versions {
        crate::agent::check_prompt_version(v)
            .map_err(|e| anyhow::anyhow!("--compare-prompts: {e}"))?;
    }
    let service = ReviewService::new(resolve_engine(Engine::Agent)?)?;
    let config = redline_core::config::load(None, None)?;
    let mut rows = Vec::new();
    let mut out = format!(
        "redline bench: {} (agent engine, prompts compared)\n\n",
        args.dir.display()
    );
    let mut any_errors = false;
    for version in versions {
        let started = std::time::Instant::now();
        let (runs, errors) = bench::run(
            &args.dir,
            bench::with_reviewer(|change: &redline_core::change::ChangeSet| {
                blocking(review_change(
                    &service,
                    change,
                    &config,
                    ReviewOptions {
                        prompt_version: Some(version.clone()),
                        ..Default::default()
                    },
                ))
            }),
            |i, n, id| eprintln!("[{version} {i}/{n}] {id}"),
        )?;
        any_errors |= !errors.is_empty();
        let summary = score::summarize(&runs, errors.len());
        out.push_str(&format!("## {version}\n\n{}\n", score::table(&summary)));
        rows.push((version.clone(), summary, started.elapsed().as_secs_f64()));
    }
    let f = |x: Option<f64>| x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
    out.push_str("## Comparison\n\nprompt            precision  recall  F1     critical P  critical R  false alarms  wall s\n");
    for (version, s, wall) in &rows {
        out.push_str(&format!(
            "{:<17} {:<10} {:<7} {:<6.3} {:<11} {:<11} {:<13} {:.1}\n",
            version,
            f(s.all.precision()),
            f(s.all.recall()),
            s.all.f1(),
            f(s.critical.precision()),
            f(s.critical.recall()),
            f(s.false_alarm_rate()),
            wall
        ));
    }
    super::emit(None, &out)?;
    if let Some(p) = &args.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(version, s, wall)| serde_json::json!({
                "prompt_version": version,
                "precision": s.all.precision(), "recall": s.all.recall(), "f1": s.all.f1(),
                "critical_precision": s.critical.precision(), "critical_recall": s.critical.recall(),
                "false_alarm_rate": s.false_alarm_rate(), "summary": s, "wall_s": wall,
            }))
            .collect();
        super::emit(Some(p), &(serde_json::to_string_pretty(&v)? + "\n"))?;
    }
    Ok(if any_errors { 1 } else { 0 })
}

/// Runs a review from the bench's case loop, which is synchronous, on the command's runtime.
fn blocking<T>(review: impl std::future::Future<Output = T>) -> T {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(review))
}
