//! The reconciler of `redline serve`: nothing GitHub sent is lost to an outage. A delivery the
//! server could not record (the store was down, or the server was busy or unreachable) is
//! counted by GitHub as failed and not sent again on its own. So, at start, when the store
//! answers again after failures, and every `REDLINE_RECONCILE_INTERVAL_SECS`, the reconciler lists
//! the App's recent deliveries (`GET /app/hook/deliveries`, as the App) and asks GitHub to
//! redeliver (`POST /app/hook/deliveries/{id}/attempts`) each one that no attempt delivered and
//! that the store does not hold, as GitHub's guide to failed deliveries recommends.

use super::AppState;
use crate::github::{GitHub, HookDelivery};
use anyhow::Result;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the store is probed (a recovery is noticed within this).
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// Deliveries listed per pass at most (ten pages).
const MAX_LISTED: usize = 1000;
/// A delivery redelivered this often and still failing is left alone (it would fail again).
const MAX_REDELIVERIES: usize = 3;
/// A delivery asked for is not asked for again within this (GitHub may take a moment).
const ASKED_MEMORY: Duration = Duration::from_secs(600);

/// Whether the store failed since the reconciler last looked.
#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: AtomicBool,
}

impl StoreHealth {
    /// Notes a failed or timed-out store call.
    pub fn failed(&self) {
        self.failing.store(true, Ordering::Release);
    }

    /// Whether a failure was noted since the last call (and forgets it).
    fn take_failed(&self) -> bool {
        self.failing.swap(false, Ordering::AcqRel)
    }
}

/// The reconciler's parts.
pub struct Reconciler {
    pub state: Arc<AppState>,
    pub github: Arc<GitHub>,
}

/// What one pass did.
#[derive(Debug, Default)]
struct Pass {
    listed: usize,
    failed_missing: usize,
    asked: usize,
}

impl Reconciler {
    /// Runs until `shutdown`: a pass at start, after each recovery of the store, and every
    /// interval.
    pub async fn run(self, shutdown: CancellationToken) {
        let settings = &self.state.settings;
        let mut asked: HashMap<String, Instant> = HashMap::new();
        let mut last_pass: Option<Instant> = None;
        loop {
            let store_up = self.state.store_call(self.state.store.ping()).await.is_ok();
            if store_up {
                let recovered = self.state.health.take_failed();
                let due = match (last_pass, settings.reconcile_interval) {
                    (None, _) => true,
                    (Some(at), Some(every)) => at.elapsed() >= every,
                    (Some(_), None) => false,
                };
                if recovered || due {
                    let why = if recovered {
                        "the store is back"
                    } else if last_pass.is_none() {
                        "start"
                    } else {
                        "interval"
                    };
                    self.pass_and_log(why, &mut asked).await;
                    last_pass = Some(Instant::now());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(PROBE_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn pass_and_log(&self, why: &str, asked: &mut HashMap<String, Instant>) {
        match self.pass(asked).await {
            Ok(p) => {
                self.count("ok");
                tracing::info!(
                    trigger = why,
                    listed = p.listed,
                    failed_and_missing = p.failed_missing,
                    redeliveries_requested = p.asked,
                    "reconciler: webhook deliveries checked"
                );
            }
            Err(e) => {
                self.count("error");
                tracing::warn!(trigger = why, error = %format!("{e:#}"), "reconciler: cannot check webhook deliveries");
            }
        }
    }

    fn count(&self, outcome: &'static str) {
        self.state
            .reconciles
            .runs
            .get_or_create(&vec![("outcome", outcome)])
            .inc();
    }

    /// Lists the recent deliveries and asks for each lost one again.
    async fn pass(&self, asked: &mut HashMap<String, Instant>) -> Result<Pass> {
        let lookback = self.state.settings.reconcile_lookback.as_secs() as i64;
        let since = chrono_now() - lookback;
        let listed = self.github.hook_deliveries(since, MAX_LISTED).await?;
        let guids: Vec<String> = listed
            .iter()
            .map(|d| d.guid.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let held = self
            .state
            .store_call(self.state.store.known_deliveries(&guids))
            .await?;
        asked.retain(|_, at| at.elapsed() < ASKED_MEMORY);
        let lost = to_redeliver(&listed, &held, asked);
        let mut pass = Pass {
            listed: listed.len(),
            failed_missing: lost.len(),
            asked: 0,
        };
        for d in lost {
            match self.github.redeliver(d.id).await {
                Ok(()) => {
                    tracing::info!(delivery = %d.guid, attempt = d.id, event = %d.event, status = ?d.status_code, "reconciler: asked GitHub to redeliver");
                    asked.insert(d.guid.clone(), Instant::now());
                    self.state.reconciles.redeliveries.inc();
                    pass.asked += 1;
                }
                Err(e) => {
                    tracing::warn!(delivery = %d.guid, attempt = d.id, error = %e, "reconciler: redelivery refused")
                }
            }
        }
        Ok(pass)
    }
}

/// Unix seconds now.
fn chrono_now() -> i64 {
    crate::store::now_ms() / 1000
}

/// The deliveries to ask for again, one per delivery (`guid`), its latest attempt: none of its
/// attempts succeeded, the store does not hold it, it was not asked for lately, and it has not
/// been redelivered `MAX_REDELIVERIES` times already.
pub fn to_redeliver<'a>(
    listed: &'a [HookDelivery],
    held: &HashSet<String>,
    asked: &HashMap<String, Instant>,
) -> Vec<&'a HookDelivery> {
    let mut by_guid: HashMap<&str, Vec<&HookDelivery>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for d in listed {
        let attempts = by_guid.entry(d.guid.as_str()).or_default();
        if attempts.is_empty() {
            order.push(d.guid.as_str());
        }
        attempts.push(d);
    }
    order
        .into_iter()
        .filter_map(|guid| {
            let attempts = &by_guid[guid];
            let lost = !attempts.iter().any(|d| d.succeeded())
                && !held.contains(guid)
                && !asked.contains_key(guid)
                && attempts.iter().filter(|d| d.redelivery).count() < MAX_REDELIVERIES;
            lost.then(|| {
                *attempts
                    .iter()
                    .max_by_key(|d| d.id)
                    .expect("one attempt at least")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64, guid: &str, status: i64, redelivery: bool) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: "2026-01-01T00:00:00Z".into(),
            redelivery,
            status_code: Some(status),
            event: "pull_request".into(),
            action: Some("opened".into()),
        }
    }

    #[test]
    fn only_lost_deliveries_are_asked_for_once_each() {
        let listed = vec![
            d(9, "retried-ok", 202, true),
            d(8, "lost", 503, false),
            d(7, "lost", 0, false),
            d(6, "retried-ok", 503, false),
            d(5, "held", 503, false),
            d(4, "ok", 200, false),
            d(3, "hopeless", 401, true),
            d(2, "hopeless", 401, true),
            d(1, "hopeless", 401, true),
            d(10, "asked", 500, false),
        ];
        let held = HashSet::from(["held".to_string()]);
        let asked = HashMap::from([("asked".to_string(), Instant::now())]);
        let ids: Vec<u64> = to_redeliver(&listed, &held, &asked)
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids, vec![8], "the latest attempt of the one lost delivery");
    }
}
