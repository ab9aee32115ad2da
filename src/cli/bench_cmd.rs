//! `redline bench DIR`: runs every case under DIR and prints the score table.

use super::review_cmd::{Engine, resolve_engine, review_change};
use crate::bench::{self, score};
use crate::review::Reviewer;
use crate::rules::{RuleSet, Severity};
use anyhow::Result;
use clap::Args;
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
}

pub fn run(args: BenchArgs) -> Result<i32> {
    let llm = resolve_engine(args.engine)?;
    let engine = if llm.is_some() { "agent" } else { "rules" };
    let rules = RuleSet::builtin()?;
    let config = crate::config::load(None, None)?;
    let reviewer = Reviewer {
        rules: &rules,
        config: &config,
        min_severity: Severity::Suggestion,
    };
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let engine = if args.score.is_some() {
        "predictions"
    } else {
        engine
    };
    let review: Box<
        dyn FnMut(
            &bench::Case,
            &crate::change::ChangeSet,
        ) -> anyhow::Result<Vec<crate::review::Finding>>,
    > = match &args.score {
        Some(dir) => Box::new(bench::from_predictions(dir.clone())),
        None => Box::new(bench::with_reviewer(|change: &crate::change::ChangeSet| {
            review_change(change, &reviewer, llm.as_ref(), &config)
        })),
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
        crate::review::rules_version()
    );
    table.push_str(&score::table(&summary));
    table.push_str(&format!("wall time: {:.0} ms\n", wall_ms));
    super::emit(None, &table)?;
    if let Some(p) = &args.json {
        let v = serde_json::json!({
            "engine": engine,
            "rules_version": crate::review::rules_version(),
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
