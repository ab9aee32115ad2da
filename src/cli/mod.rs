//! The command line: `redline review`, `redline bench`, `redline knowledge`, and the GitHub App's
//! `redline serve`, `worker`, `migrate` and `jobs`.
//!
//! Exit codes: 0 success (or findings below `--fail-on`), 1 findings at or above `--fail-on`,
//! 2 errors (bad input, bad configuration). Errors print as one line on stderr.

mod bench_cmd;
mod knowledge_cmd;
mod post_github;
mod review_cmd;
mod server_cmd;
mod stats_cmd;

use clap::{Parser, Subcommand};

/// Exit code for errors.
pub const EXIT_ERROR: i32 = 2;

/// Self-hostable AI code review for pull requests.
#[derive(Debug, Parser)]
#[command(name = "redline", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Review a local change: git revisions, the working tree, two folders, a case folder or a diff.
    Review(review_cmd::ReviewArgs),
    /// Score the reviewer's precision and recall on annotated cases.
    Bench(bench_cmd::BenchArgs),
    /// Search the knowledge store, or check its entries and rules.
    #[command(subcommand)]
    Knowledge(knowledge_cmd::KnowledgeCommand),
    /// Run the webhook server (POST /webhook, /healthz, /metrics) with embedded workers.
    Serve(server_cmd::SettingsArgs),
    /// Run review workers only (they share the database and queue with `serve`).
    Worker(server_cmd::SettingsArgs),
    /// Apply the database migrations.
    Migrate(server_cmd::SettingsArgs),
    /// List recent review jobs and their outcomes from the store.
    Jobs(server_cmd::JobsArgs),
    /// Acceptance of posted findings (fixed / decided) by rule, category, severity, language,
    /// engine, model and prompt version; reviews, tokens, cost and latency.
    Stats(stats_cmd::StatsArgs),
    /// Show what the redactor would mask in files before anything is sent to an LLM.
    Redact {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Print the redacted text, not just the counts.
        #[arg(long)]
        show: bool,
    },
}

/// Parses the command line, runs it, and returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            // Usage errors are one line too, like every other error.
            let text = e.render().to_string();
            let line = text
                .lines()
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("Usage:")
                        && !l.starts_with("For more information")
                })
                .collect::<Vec<_>>()
                .join(" ");
            eprintln!("{line}");
            return EXIT_ERROR;
        }
    };
    // One runtime for the whole process: the server, the workers, the LLM calls of a review
    // or of a bench run all share it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    if std::env::var_os("REDLINE_RULE_TIMES").is_some() {
        redline_core::rules::profile::report();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            EXIT_ERROR
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Review(args) => review_cmd::run(args).await,
        Command::Bench(args) => bench_cmd::run(args).await,
        Command::Knowledge(cmd) => knowledge_cmd::run(cmd).await,
        Command::Redact { files, show } => redact(&files, show),
        Command::Serve(args) => server_cmd::serve(args).await,
        Command::Worker(args) => server_cmd::worker(args).await,
        Command::Migrate(args) => server_cmd::migrate(args).await,
        Command::Jobs(args) => server_cmd::jobs(args).await,
        Command::Stats(args) => stats_cmd::run(args).await,
    }
}

/// Errors are one line: the chain joined with ": ", newlines folded.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `text` to `path`, or to stdout for `-`; a closed stdout (`| head`) is not an error.
fn emit(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match path {
        Some(p) if p != std::path::Path::new("-") => std::fs::write(p, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", p.display())),
        _ => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(Into::into),
            }
        }
    }
}

/// `redline redact FILE...`: one line per file with the number of values masked.
fn redact(files: &[std::path::PathBuf], show: bool) -> anyhow::Result<i32> {
    let mut out = String::new();
    let mut total = 0;
    for f in files {
        let bytes =
            std::fs::read(f).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut r = redline_core::redact::Redactor::new();
        let red = r.redact(&text);
        total += r.count;
        out.push_str(&format!("{}: {} redaction(s)\n", f.display(), r.count));
        if show && r.count > 0 {
            for (a, b) in text.lines().zip(red.lines()) {
                if a != b {
                    out.push_str(&format!("    {b}\n"));
                }
            }
        }
    }
    out.push_str(&format!("{} file(s), {total} redaction(s)\n", files.len()));
    emit(None, &out)?;
    Ok(0)
}
