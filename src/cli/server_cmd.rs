//! `redline serve`, `redline worker`, `redline migrate` and `redline jobs`: the GitHub App side.

use crate::app::{App, Role};
use crate::settings::Settings;
use anyhow::Result;
use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;
use std::path::PathBuf;

/// Where server settings come from.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// A settings file (TOML; keys are the REDLINE_* variable names in lower case without the
    /// prefix). REDLINE_* environment variables override it.
    #[arg(long, value_name = "FILE", env = "REDLINE_CONFIG")]
    config: Option<PathBuf>,
}

impl SettingsArgs {
    pub(super) fn load(&self) -> Result<Settings> {
        Settings::load(self.config.as_deref())
    }
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    #[command(flatten)]
    settings: SettingsArgs,
    /// How many of the most recent jobs.
    #[arg(long, default_value_t = 20)]
    limit: i64,
    /// Only jobs created on or after this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: JobsFormat,
    /// In text, also show each review's data-boundary audit: which endpoint and model got which
    /// files, how many bytes and tokens, their hash, and the redactions.
    #[arg(long)]
    audit: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JobsFormat {
    Text,
    Json,
}

/// Logs go to stderr; REDLINE_LOG=json makes them JSON lines, RUST_LOG filters them.
fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("REDLINE_LOG").is_ok_and(|v| v == "json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

pub async fn serve(args: SettingsArgs) -> Result<i32> {
    let settings = args.load()?;
    init_logs();
    App::build(settings, Role::Serve).await?.serve().await?;
    Ok(0)
}

pub async fn worker(args: SettingsArgs) -> Result<i32> {
    let settings = args.load()?;
    init_logs();
    App::build(settings, Role::Worker)
        .await?
        .run_workers()
        .await?;
    Ok(0)
}

pub async fn migrate(args: SettingsArgs) -> Result<i32> {
    let settings = args.load()?;
    let store = crate::store::Store::connect(settings.database_url.expose_secret()).await?;
    let n = store.migrate().await?;
    println!(
        "{}: {n} migration(s) applied",
        crate::store::redact_url(settings.database_url.expose_secret())
    );
    Ok(0)
}

/// Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian).
pub(super) fn parse_date_ms(s: &str) -> Result<i64> {
    let parts: Vec<&str> = s.split('-').collect();
    let bad = || anyhow::anyhow!("--since must be a date like 2026-11-28 (got `{s}`)");
    if parts.len() != 3 {
        return Err(bad());
    }
    let (y, m, d): (i64, i64, i64) = (
        parts[0].parse().map_err(|_| bad())?,
        parts[1].parse().map_err(|_| bad())?,
        parts[2].parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000)
}

pub async fn jobs(args: JobsArgs) -> Result<i32> {
    let settings = args.settings.load()?;
    let since = args.since.as_deref().map(parse_date_ms).transpose()?;
    let store = crate::store::Store::open(settings.database_url.expose_secret()).await?;
    let jobs = store.recent_jobs(args.limit, since).await?;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let reviews = store.reviews_for_jobs(&ids).await?;
    let text = match args.format {
        JobsFormat::Json => {
            let list: Vec<serde_json::Value> = jobs
                .iter()
                .map(|j| {
                    let mut v = serde_json::to_value(j).unwrap_or_default();
                    if let Some(r) = reviews.iter().find(|r| r.job_id == j.id) {
                        let mut rv = serde_json::to_value(r).unwrap_or_default();
                        rv["audit"] = r
                            .audit
                            .as_deref()
                            .and_then(|a| serde_json::from_str(a).ok())
                            .unwrap_or(serde_json::Value::Null);
                        v["review"] = rv;
                    }
                    v
                })
                .collect();
            // A reply job's comment and answer (what left for an LLM, if anything).
            let mut list = list;
            for (v, j) in list.iter_mut().zip(&jobs) {
                if j.cause == crate::store::JobCause::Reply
                    && let Some(c) = store.conversation_for_job(j.id).await?
                {
                    let mut cv = serde_json::to_value(&c).unwrap_or_default();
                    cv["audit"] = c
                        .audit
                        .as_deref()
                        .and_then(|a| serde_json::from_str(a).ok())
                        .unwrap_or(serde_json::Value::Null);
                    v["conversation"] = cv;
                }
            }
            serde_json::to_string_pretty(&list)? + "\n"
        }
        JobsFormat::Text => {
            let mut out = format!(
                "{:>6}  {:<10} {:<28} {:>8}  {:>3}  {}\n",
                "job", "status", "pull request", "head", "try", "outcome"
            );
            for j in &jobs {
                let outcome = match (&j.outcome, &j.last_error) {
                    (Some(o), _) => o.clone(),
                    (None, Some(e)) => format!("error: {e}"),
                    (None, None) => String::new(),
                };
                let review = reviews
                    .iter()
                    .find(|r| r.job_id == j.id)
                    .map(|r| {
                        format!(
                            " [{} · {} · {} finding(s) · {} ms{}]",
                            r.verdict,
                            r.engine,
                            r.findings,
                            r.latency_ms,
                            r.model
                                .as_deref()
                                .map(|m| format!(" · {m}"))
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{:>6}  {:<10} {:<28} {:>8}  {:>3}  {}{review}\n",
                    j.id,
                    j.status,
                    crate::truncate(&format!("{}#{}", j.repo, j.pr_number), 28),
                    &j.head_sha.as_str()[..j.head_sha.as_str().len().min(8)],
                    j.attempts,
                    crate::truncate(&outcome, 100).replace('\n', " "),
                ));
            }
            if jobs.is_empty() {
                out.push_str("(no jobs)\n");
            }
            if args.audit {
                out.push_str(&audit_text(&jobs, &reviews));
            }
            out
        }
    };
    super::emit(None, &text)?;
    Ok(0)
}

/// The audit of each job's review, one line per file sent to an LLM.
fn audit_text(jobs: &[crate::store::Job], reviews: &[crate::store::StoredReview]) -> String {
    let mut out = String::from("\naudit (what left for an LLM):\n");
    for j in jobs {
        let Some(r) = reviews.iter().find(|r| r.job_id == j.id) else {
            continue;
        };
        let audit: serde_json::Value = r
            .audit
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_default();
        let files = audit["files"].as_array().cloned().unwrap_or_default();
        if files.is_empty() {
            out.push_str(&format!(
                "  job {}: nothing was sent ({} review)\n",
                j.id, r.engine
            ));
            continue;
        }
        out.push_str(&format!(
            "  job {}: {} file(s), {} redaction(s){}\n",
            j.id,
            files.len(),
            audit["redactions"].as_u64().unwrap_or(0),
            audit["llm_skipped"]
                .as_str()
                .map(|s| format!("; LLM skipped: {s}"))
                .unwrap_or_default()
        ));
        for f in files {
            out.push_str(&format!(
                "    {} -> {} ({}): {} bytes, {} tokens, sha256 {}, {} redaction(s)\n",
                f["path"].as_str().unwrap_or("?"),
                f["endpoint"].as_str().unwrap_or("?"),
                f["model"].as_str().unwrap_or("?"),
                f["bytes"].as_u64().unwrap_or(0),
                f["tokens"].as_u64().unwrap_or(0),
                f["sha256"]
                    .as_str()
                    .map(|h| &h[..h.len().min(12)])
                    .unwrap_or("-"),
                f["redactions"].as_u64().unwrap_or(0),
            ));
        }
        for w in audit["withheld"].as_array().cloned().unwrap_or_default() {
            out.push_str(&format!(
                "    {} withheld: {}\n",
                w["path"].as_str().unwrap_or("?"),
                w["why"].as_str().unwrap_or("-")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::parse_date_ms("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(
            super::parse_date_ms("2026-11-28").unwrap(),
            1_795_824_000_000
        );
        assert!(super::parse_date_ms("28/11/2026").is_err());
    }
}
