//! `/metrics` in the Prometheus text format, encoded by `prometheus-client`. Job, review, token
//! and cost figures come from the store at each scrape, so any process sharing the database shows
//! the whole deployment; webhook outcomes are this process's own counters.

use crate::store::{JobState, StoreMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Webhook deliveries this process answered, by outcome.
pub type Deliveries = Family<Vec<(&'static str, &'static str)>, Counter>;

/// What the reconciler did since start: passes by outcome, redeliveries asked for.
#[derive(Debug, Clone, Default)]
pub struct Reconciles {
    pub runs: Family<Vec<(&'static str, &'static str)>, Counter>,
    pub redeliveries: Counter,
}

/// The connection figures of the listener, as one scrape saw them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connections {
    pub open: u64,
    pub cap: u64,
    pub accepted: u64,
    pub evicted: u64,
    pub refused: u64,
}

/// Counts one delivery's outcome.
pub fn count(deliveries: &Deliveries, outcome: &'static str) {
    deliveries.get_or_create(&vec![("outcome", outcome)]).inc();
}

/// What one scrape reports beyond the process's counters.
#[derive(Debug)]
pub struct Snapshot {
    pub store: StoreMetrics,
    pub queue_depth: i64,
    pub queue_kind: &'static str,
    /// The last `x-ratelimit-remaining` GitHub sent, when this process talks to GitHub.
    pub github_remaining: Option<i64>,
    pub connections: Connections,
    /// Bytes of webhook bodies in memory now, and the bound.
    pub buffered_body_bytes: (u64, u64),
}

/// The whole exposition for a scrape.
pub fn render(
    snapshot: Snapshot,
    deliveries: &Deliveries,
    reconciles: &Reconciles,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot.into_collector(deliveries.clone())));
    registry.register(
        "redline_reconcile_runs",
        "Passes of the reconciler (failed webhook deliveries redelivered), by outcome.",
        reconciles.runs.clone(),
    );
    registry.register(
        "redline_redeliveries_requested",
        "Failed webhook deliveries the reconciler asked GitHub to redeliver.",
        reconciles.redeliveries.clone(),
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

impl Snapshot {
    fn into_collector(self, deliveries: Deliveries) -> SnapshotCollector {
        SnapshotCollector {
            snapshot: self,
            deliveries,
        }
    }
}

/// The snapshot and the process's counters, in the order /metrics has always shown them.
#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Snapshot,
    deliveries: Deliveries,
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labelled: &[(&[(&str, &str)], f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in labelled {
        if labels.is_empty() {
            if value.fract() == 0.0 {
                m.encode_gauge(&(*value as i64))?;
            } else {
                m.encode_gauge(value)?;
            }
        } else {
            let mut f = m.encode_family(labels)?;
            if value.fract() == 0.0 {
                f.encode_gauge(&(*value as i64))?;
            } else {
                f.encode_gauge(value)?;
            }
        }
    }
    Ok(())
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.snapshot;
        let m = &s.store;
        gauge(
            &mut encoder,
            "redline_queue_depth",
            "Jobs waiting to run (queued or waiting to retry).",
            &[(&[("queue", s.queue_kind)], s.queue_depth as f64)],
        )?;
        let by_status: Vec<(Vec<(&str, &str)>, f64)> = JobState::ALL
            .iter()
            .map(|state| {
                let n = m
                    .jobs_by_status
                    .iter()
                    .find(|(x, _)| x == state.as_str())
                    .map(|(_, n)| *n)
                    .unwrap_or(0);
                (vec![("status", state.as_str())], n as f64)
            })
            .collect();
        let by_status: Vec<(&[(&str, &str)], f64)> =
            by_status.iter().map(|(l, n)| (l.as_slice(), *n)).collect();
        gauge(
            &mut encoder,
            "redline_jobs",
            "Jobs in the store by status.",
            &by_status,
        )?;
        // The store counts reviews at or under each bound; the encoder wants each bucket's own.
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        let mut below = 0i64;
        for (le, n) in &m.latency_buckets {
            buckets.push((*le as f64 / 1000.0, (n - below).max(0) as u64));
            below = *n;
        }
        buckets.push((f64::MAX, (m.reviews - below).max(0) as u64));
        encoder
            .encode_descriptor(
                "redline_review_latency_seconds",
                "Time from claiming a job to its review being posted.",
                None,
                MetricType::Histogram,
            )?
            .encode_histogram::<NoLabelSet>(
                m.latency_sum_ms as f64 / 1000.0,
                m.reviews as u64,
                &buckets,
                None,
            )?;
        let mut tokens = encoder.encode_descriptor(
            "redline_llm_tokens",
            "LLM tokens of stored reviews.",
            None,
            MetricType::Counter,
        )?;
        tokens
            .encode_family(&[("direction", "in")])?
            .encode_counter::<NoLabelSet, _, u64>(&(m.tokens_in as u64), None)?;
        tokens
            .encode_family(&[("direction", "out")])?
            .encode_counter::<NoLabelSet, _, u64>(&(m.tokens_out as u64), None)?;
        encoder
            .encode_descriptor(
                "redline_llm_cost_usd",
                "LLM cost of stored reviews, in US dollars.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, f64>(&m.cost_usd, None)?;
        let outcome = |o: &str| {
            m.findings_by_outcome
                .iter()
                .find(|(x, _)| x == o)
                .map(|(_, n)| *n)
                .unwrap_or(0)
        };
        gauge(
            &mut encoder,
            "redline_findings",
            "Posted findings by outcome: open, fixed (the code changed), dismissed.",
            &[
                (&[("outcome", "open")], outcome("open") as f64),
                (&[("outcome", "fixed")], outcome("fixed") as f64),
                (&[("outcome", "dismissed")], outcome("dismissed") as f64),
            ],
        )?;
        let by_rule: Vec<(Vec<(&str, &str)>, f64)> = m
            .findings_by_rule
            .iter()
            .map(|(rule, o, n)| {
                (
                    vec![("rule", rule.as_str()), ("outcome", o.as_str())],
                    *n as f64,
                )
            })
            .collect();
        let by_rule: Vec<(&[(&str, &str)], f64)> =
            by_rule.iter().map(|(l, n)| (l.as_slice(), *n)).collect();
        gauge(
            &mut encoder,
            "redline_findings_by_rule",
            "Posted findings by rule (agent: the model's own) and outcome, for acceptance by rule.",
            &by_rule,
        )?;
        let decided = outcome("fixed") + outcome("dismissed");
        if decided > 0 {
            let mut m = encoder.encode_descriptor(
                "redline_acceptance_rate",
                "Fixed findings over decided ones (fixed + dismissed).",
                None,
                MetricType::Gauge,
            )?;
            m.encode_gauge(&(outcome("fixed") as f64 / decided as f64))?;
        }
        self.deliveries.encode(encoder.encode_descriptor(
            "redline_webhook_deliveries",
            "Webhook deliveries this process answered, by outcome.",
            None,
            MetricType::Counter,
        )?)?;
        gauge(
            &mut encoder,
            "redline_deliveries_stored",
            "Distinct deliveries recorded in the store.",
            &[(&[], m.deliveries as f64)],
        )?;
        let c = s.connections;
        gauge(
            &mut encoder,
            "redline_connections_open",
            "Client connections open now.",
            &[(&[], c.open as f64)],
        )?;
        gauge(
            &mut encoder,
            "redline_connections_max",
            "The connection cap in force (REDLINE_MAX_CONNECTIONS, lowered to fit the open-file limit).",
            &[(&[], c.cap as f64)],
        )?;
        let mut conns = encoder.encode_descriptor(
            "redline_connections",
            "Connections since start: accepted, evicted (idle, closed to make room), refused (no room).",
            None,
            MetricType::Counter,
        )?;
        for (what, n) in [
            ("accepted", c.accepted),
            ("evicted", c.evicted),
            ("refused", c.refused),
        ] {
            conns
                .encode_family(&[("event", what)])?
                .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }
        gauge(
            &mut encoder,
            "redline_webhook_body_bytes_buffered",
            "Bytes of webhook bodies held in memory now (bound: REDLINE_MAX_BUFFERED_BODY_BYTES).",
            &[(&[], s.buffered_body_bytes.0 as f64)],
        )?;
        if let Some(r) = s.github_remaining {
            gauge(
                &mut encoder,
                "redline_github_rate_limit_remaining",
                "The last x-ratelimit-remaining GitHub sent.",
                &[(&[], r as f64)],
            )?;
        }
        Ok(())
    }
}
