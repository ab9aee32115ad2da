//! Queue throughput: N jobs enqueued (each with its webhook delivery, as the server does), then
//! claimed and completed by 8 concurrent workers on the embedded queue.
//!
//!     cargo bench --bench queue_throughput -- sqlite:///tmp/q.db [JOBS]
//!     cargo bench --bench queue_throughput -- postgres://postgres@127.0.0.1:5433/postgres [JOBS]
//!
//! `scripts/bench-queue.sh` runs both, with a throwaway PostgreSQL cluster.

use redline::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use redline::queue::{EmbeddedQueue, JobQueue};
use redline::store::{Accepted, Delivery, DeliveryPlan, JobCause, NewJob, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: usize = 8;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "sqlite:///tmp/redline-queue-bench.db".into());
    let jobs: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5000);
    let store = Store::open(&url).await?;
    sqlx::query("DELETE FROM jobs")
        .execute(store.pool())
        .await?;
    sqlx::query("DELETE FROM deliveries")
        .execute(store.pool())
        .await?;
    let queue: Arc<dyn JobQueue> =
        Arc::new(EmbeddedQueue::new(store.clone(), Duration::from_secs(60)));

    // Enqueue from 8 concurrent producers, as concurrent webhook requests would.
    let start = Instant::now();
    let mut producers = Vec::new();
    for p in 0..WORKERS {
        let store = store.clone();
        let queue = queue.clone();
        producers.push(tokio::spawn(async move {
            for i in (p..jobs).step_by(WORKERS) {
                let plan = DeliveryPlan {
                    outcome: "enqueued".into(),
                    cancel: None,
                    enqueue: Some(NewJob {
                        delivery_id: None,
                        installation_id: InstallationId(1),
                        repo: RepoName::parse(&format!("bench/repo{}", i % 50)).unwrap(),
                        pr_number: PrNumber(i as u64),
                        head_sha: CommitSha::new("0123456789abcdef0123456789abcdef01234567"),
                        cause: JobCause::Opened,
                        priority: (i % 10 == 0) as i64 * 10,
                        max_attempts: 3,
                    }),
                };
                let d = Delivery {
                    id: format!("bench-{i}"),
                    event: "pull_request".into(),
                    action: Some("opened".into()),
                };
                match store.accept_delivery(&d, &plan).await.unwrap() {
                    Accepted::New { job: Some(j), .. } => queue.push(&j).await.unwrap(),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }));
    }
    for p in producers {
        p.await?;
    }
    let enqueue = start.elapsed();

    // Claim and complete with 8 workers.
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let queue = queue.clone();
        workers.push(tokio::spawn(async move {
            let name = format!("bench-worker-{w}");
            let mut done = 0usize;
            let mut last = Instant::now();
            // An empty claim waits up to a second before it says so: time the last completion.
            while let Some(c) = queue.claim(&name).await.unwrap() {
                queue.complete(&c, "ok").await.unwrap();
                done += 1;
                last = Instant::now();
            }
            (done, last)
        }));
    }
    let mut total = 0;
    let mut last = start;
    for w in workers {
        let (n, l) = w.await?;
        total += n;
        last = last.max(l);
    }
    let drain = last - start;
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = 'done'")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(total, jobs, "every job claimed once");
    assert_eq!(done as usize, jobs, "every job done");
    let backend = url.split(':').next().unwrap_or("?");
    println!(
        "{backend}: {jobs} jobs, {WORKERS} workers | enqueue {:.0} jobs/s ({:.2} s) | claim+complete {:.0} jobs/s ({:.2} s) | end to end {:.0} jobs/s",
        jobs as f64 / enqueue.as_secs_f64(),
        enqueue.as_secs_f64(),
        jobs as f64 / drain.as_secs_f64(),
        drain.as_secs_f64(),
        jobs as f64 / (enqueue + drain).as_secs_f64(),
    );
    Ok(())
}
