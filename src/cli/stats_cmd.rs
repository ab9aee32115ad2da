//! `redline stats`: what developers did with redline's comments. Acceptance is fixed / decided
//! (fixed + dismissed), overall and by rule, category, severity, language, engine, model and
//! prompt version, each with its sample size; plus reviews, tokens and cost per pull request and
//! review latency percentiles.

use crate::store::{OutcomeRow, ReviewRow};
use anyhow::Result;
use clap::{Args, ValueEnum};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    settings: super::server_cmd::SettingsArgs,
    /// Only findings and reviews from this date on (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: StatsFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatsFormat {
    Text,
    Json,
}

/// Outcome counts of one group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Acceptance {
    pub fixed: u64,
    pub dismissed: u64,
    pub open: u64,
}

impl Acceptance {
    fn add(&mut self, outcome: &str) {
        match outcome {
            "fixed" => self.fixed += 1,
            "dismissed" => self.dismissed += 1,
            _ => self.open += 1,
        }
    }
    pub fn decided(&self) -> u64 {
        self.fixed + self.dismissed
    }
    /// Fixed over decided; None before anything is decided.
    pub fn rate(&self) -> Option<f64> {
        (self.decided() > 0).then(|| self.fixed as f64 / self.decided() as f64)
    }
}

fn language(path: &str) -> String {
    redline_core::lang::detect(path, None)
        .map(|l| l.name().to_string())
        .unwrap_or_else(|| "other".into())
}

/// The figures, from the store's rows.
pub fn compute(findings: &[OutcomeRow], reviews: &[ReviewRow]) -> Value {
    let mut overall = Acceptance::default();
    let mut by: BTreeMap<&str, BTreeMap<String, Acceptance>> = BTreeMap::new();
    for f in findings {
        overall.add(&f.outcome);
        let groups = [
            ("rule", f.rule_id.clone().unwrap_or_else(|| "(llm)".into())),
            ("category", f.category.clone()),
            ("severity", f.severity.clone()),
            ("language", language(&f.path)),
            ("engine", f.engine.clone()),
            ("model", f.model.clone().unwrap_or_else(|| "(none)".into())),
            (
                "prompt_version",
                f.prompt_version.clone().unwrap_or_else(|| "(none)".into()),
            ),
        ];
        for (dim, key) in groups {
            by.entry(dim)
                .or_default()
                .entry(key)
                .or_default()
                .add(&f.outcome);
        }
    }
    let table = |m: &BTreeMap<String, Acceptance>| -> Vec<Value> {
        let mut rows: Vec<(&String, &Acceptance)> = m.iter().collect();
        rows.sort_by(|a, b| b.1.decided().cmp(&a.1.decided()).then(a.0.cmp(b.0)));
        rows.into_iter()
            .map(|(k, a)| json!({"key": k, "fixed": a.fixed, "dismissed": a.dismissed, "open": a.open, "decided": a.decided(), "acceptance": a.rate()}))
            .collect()
    };
    let prs: BTreeSet<(String, i64)> = reviews
        .iter()
        .map(|r| (r.repo.clone(), r.pr_number))
        .collect();
    let per_pr = |total: f64| {
        if prs.is_empty() {
            0.0
        } else {
            total / prs.len() as f64
        }
    };
    let tokens_in: i64 = reviews.iter().map(|r| r.tokens_in).sum();
    let tokens_out: i64 = reviews.iter().map(|r| r.tokens_out).sum();
    let cost: f64 = reviews.iter().map(|r| r.cost_usd).sum();
    let mut lat: Vec<i64> = reviews.iter().map(|r| r.latency_ms).collect();
    lat.sort();
    let pct = |p: f64| -> Option<i64> {
        (!lat.is_empty())
            .then(|| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1])
    };
    json!({
        "acceptance": {"fixed": overall.fixed, "dismissed": overall.dismissed, "open": overall.open, "decided": overall.decided(), "rate": overall.rate()},
        "by": by.iter().map(|(d, m)| (d.to_string(), Value::Array(table(m)))).collect::<serde_json::Map<_, _>>(),
        "reviews": {
            "count": reviews.len(),
            "pull_requests": prs.len(),
            "reviews_per_pr": per_pr(reviews.len() as f64),
            "tokens_in": tokens_in, "tokens_out": tokens_out,
            "tokens_per_pr": per_pr((tokens_in + tokens_out) as f64),
            "cost_usd": cost, "cost_per_pr_usd": per_pr(cost),
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": lat.last()},
        },
    })
}

fn text(v: &Value, since: Option<&str>) -> String {
    let a = &v["acceptance"];
    let rate = |x: &Value| {
        x.as_f64()
            .map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    let mut out = format!(
        "redline stats{}\n\nacceptance: {} ({} fixed / {} decided; {} dismissed, {} open)\n",
        since.map(|s| format!(" since {s}")).unwrap_or_default(),
        rate(&a["rate"]),
        a["fixed"],
        a["decided"],
        a["dismissed"],
        a["open"]
    );
    for dim in [
        "prompt_version",
        "engine",
        "model",
        "severity",
        "language",
        "category",
        "rule",
    ] {
        let rows = v["by"][dim].as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "\nby {}\n  {:<36} {:>10} {:>6} {:>9} {:>9} {:>5}\n",
            dim.replace('_', " "),
            "",
            "acceptance",
            "fixed",
            "dismissed",
            "decided",
            "open"
        ));
        let n = |x: &Value| x.as_u64().unwrap_or(0);
        for r in rows {
            out.push_str(&format!(
                "  {:<36} {:>10} {:>6} {:>9} {:>9} {:>5}\n",
                crate::truncate(r["key"].as_str().unwrap_or(""), 36),
                rate(&r["acceptance"]),
                n(&r["fixed"]),
                n(&r["dismissed"]),
                n(&r["decided"]),
                n(&r["open"])
            ));
        }
    }
    let r = &v["reviews"];
    let ms = |x: &Value| {
        x.as_i64()
            .map(|m| format!("{:.1} s", m as f64 / 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    out.push_str(&format!(
        "\nreviews: {} on {} pull request(s), {:.2} per pull request\ntokens: {} in, {} out ({:.0} per pull request)\ncost: ${:.4} (${:.4} per pull request)\nlatency: p50 {}, p90 {}, p99 {}, max {}\n",
        r["count"], r["pull_requests"], r["reviews_per_pr"].as_f64().unwrap_or(0.0),
        r["tokens_in"], r["tokens_out"], r["tokens_per_pr"].as_f64().unwrap_or(0.0),
        r["cost_usd"].as_f64().unwrap_or(0.0), r["cost_per_pr_usd"].as_f64().unwrap_or(0.0),
        ms(&r["latency_ms"]["p50"]), ms(&r["latency_ms"]["p90"]), ms(&r["latency_ms"]["p99"]), ms(&r["latency_ms"]["max"]),
    ));
    out
}

pub async fn run(args: StatsArgs) -> Result<i32> {
    let settings = args.settings.load()?;
    let since = args
        .since
        .as_deref()
        .map(super::server_cmd::parse_date_ms)
        .transpose()?
        .unwrap_or(0);
    let store = crate::store::Store::open(settings.database_url.expose_secret()).await?;
    let findings = store.outcome_rows(since).await?;
    let reviews = store.review_rows(since).await?;
    let v = compute(&findings, &reviews);
    let out = match args.format {
        StatsFormat::Json => serde_json::to_string_pretty(&v)? + "\n",
        StatsFormat::Text => text(&v, args.since.as_deref()),
    };
    super::emit(None, &out)?;
    Ok(0)
}
