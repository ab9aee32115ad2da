//! One queue and store suite, run against the embedded queue on SQLite, the embedded queue on a
//! throwaway PostgreSQL cluster, and SQS (moto's emulator) with the store on SQLite.

use crate::common::services::{Moto, TempPg};
use redline::ids::{CommitSha, InstallationId, PrNumber, RepoName};
use redline::queue::{EmbeddedQueue, JobQueue, SqsQueue};
use redline::store::{Accepted, Delivery, DeliveryPlan, JobCause, JobStatus, NewJob, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(2);

fn new_job(repo: &str, pr: i64, head: &str, priority: i64, max_attempts: i64) -> NewJob {
    NewJob {
        delivery_id: None,
        installation_id: InstallationId(42),
        repo: RepoName::parse(repo).unwrap(),
        pr_number: PrNumber(pr as u64),
        head_sha: CommitSha::new(head),
        cause: JobCause::Opened,
        priority,
        max_attempts,
    }
}

/// Records a delivery that enqueues a job (cancelling the PR's older ones) and pushes it.
async fn deliver(
    store: &Store,
    queue: &dyn JobQueue,
    id: &str,
    job: NewJob,
) -> Option<redline::store::Job> {
    let plan = DeliveryPlan {
        outcome: "enqueued".into(),
        cancel: Some((job.repo.clone(), job.pr_number)),
        enqueue: Some(job),
    };
    let delivery = Delivery {
        id: id.into(),
        event: "pull_request".into(),
        action: Some("synchronize".into()),
    };
    match store.accept_delivery(&delivery, &plan).await.unwrap() {
        Accepted::New { job: Some(j), .. } => {
            queue.push(&j).await.unwrap();
            Some(*j)
        }
        _ => None,
    }
}

/// Claims until a job comes or `within` has passed.
async fn claim_within(
    queue: &dyn JobQueue,
    worker: &str,
    within: Duration,
) -> Option<redline::queue::Claim> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(c) = queue.claim(worker).await.unwrap() {
            return Some(c);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Claims until a job comes or `tries` claims came back empty.
async fn claim(queue: &dyn JobQueue, worker: &str, tries: usize) -> Option<redline::queue::Claim> {
    for _ in 0..tries {
        if let Some(c) = queue.claim(worker).await.unwrap() {
            return Some(c);
        }
    }
    None
}

async fn status(store: &Store, id: i64) -> String {
    store.job(id).await.unwrap().unwrap().status.to_string()
}

async fn suite(store: Store, queue: Arc<dyn JobQueue>) {
    let q = queue.as_ref();

    // A redelivered webhook does nothing.
    let a = deliver(&store, q, "d-1", new_job("acme/shop", 1, "a1", 0, 3))
        .await
        .expect("a job");
    assert!(
        deliver(&store, q, "d-1", new_job("acme/shop", 1, "a1", 0, 3))
            .await
            .is_none()
    );

    // Enqueue, claim, complete; nothing left.
    let c = claim(q, "w1", 5).await.expect("the job is claimed");
    assert_eq!(c.job.id, a.id);
    assert_eq!(c.job.attempts, 1);
    assert!(q.renew(&c).await.unwrap());
    q.complete(&c, "posted").await.unwrap();
    assert_eq!(status(&store, a.id).await, "done");
    assert!(
        claim(q, "w1", 1).await.is_none(),
        "a finished job is not claimed again"
    );

    // Critical repositories go first.
    let low = deliver(&store, q, "d-2", new_job("acme/blog", 2, "b1", 0, 3))
        .await
        .unwrap();
    let high = deliver(&store, q, "d-3", new_job("acme/pay", 3, "c1", 10, 3))
        .await
        .unwrap();
    let first = claim(q, "w1", 5).await.unwrap();
    assert_eq!(first.job.id, high.id, "the critical repository's job first");
    let second = claim(q, "w1", 5).await.unwrap();
    assert_eq!(second.job.id, low.id);
    q.complete(&first, "ok").await.unwrap();
    q.complete(&second, "ok").await.unwrap();

    // A newer head cancels the pull request's queued and running jobs; the old worker learns it.
    let old = deliver(&store, q, "d-4", new_job("acme/shop", 4, "old", 0, 3))
        .await
        .unwrap();
    let running = claim(q, "w1", 5).await.unwrap();
    assert_eq!(running.job.id, old.id);
    let new = deliver(&store, q, "d-5", new_job("acme/shop", 4, "new", 0, 3))
        .await
        .unwrap();
    assert_eq!(status(&store, old.id).await, "cancelled");
    assert!(
        !q.renew(&running).await.unwrap(),
        "a cancelled job's lease is not renewed"
    );
    let next = claim(q, "w2", 5).await.unwrap();
    assert_eq!(next.job.id, new.id);
    q.complete(&running, "late").await.unwrap();
    assert_eq!(
        status(&store, old.id).await,
        "cancelled",
        "completing a cancelled job changes nothing"
    );

    // Release on shutdown: claimable again at once, the attempt not counted.
    q.release(&next, 0, None).await.unwrap();
    let again = claim(q, "w3", 5).await.unwrap();
    assert_eq!(again.job.id, new.id);
    assert_eq!(again.job.attempts, 1);

    // A worker that stops renewing loses the job when the lease expires; another finishes it.
    let left = std::time::Instant::now();
    let taken = claim_within(q, "w4", LEASE + Duration::from_secs(10))
        .await
        .expect("the expired lease is claimed again");
    assert!(
        left.elapsed() >= LEASE - Duration::from_millis(500),
        "not before the lease expires"
    );
    assert_eq!(taken.job.id, new.id);
    assert_eq!(taken.job.attempts, 2);
    assert!(
        !q.renew(&again).await.unwrap(),
        "the first worker no longer holds it"
    );
    q.complete(&again, "from the dead worker").await.unwrap();
    assert_eq!(
        status(&store, new.id).await,
        "running",
        "the first worker's late completion is refused"
    );
    q.complete(&taken, "done by w4").await.unwrap();
    let j = store.job(new.id).await.unwrap().unwrap();
    assert_eq!(
        (j.status.as_str(), j.outcome.as_deref()),
        ("done", Some("done by w4"))
    );

    // Failures retry after a backoff, then the job is dead with its error kept.
    let flaky = deliver(&store, q, "d-6", new_job("acme/api", 6, "f1", 0, 2))
        .await
        .unwrap();
    let c1 = claim(q, "w1", 5).await.unwrap();
    assert_eq!(
        q.fail(&c1, "GitHub 502").await.unwrap(),
        JobStatus::Retrying { delay_ms: 2000 }
    );
    assert_eq!(status(&store, flaky.id).await, "failed");
    assert!(
        q.claim("w1").await.unwrap().is_none(),
        "not before the backoff"
    );
    let c2 = claim_within(q, "w1", Duration::from_secs(12))
        .await
        .expect("claimed after the backoff");
    assert_eq!(c2.job.attempts, 2);
    assert_eq!(
        q.fail(&c2, "GitHub 502 again").await.unwrap(),
        JobStatus::Dead
    );
    let dead = store.job(flaky.id).await.unwrap().unwrap();
    assert_eq!(dead.status, "dead");
    assert_eq!(dead.last_error.as_deref(), Some("GitHub 502 again"));

    // Eight concurrent claimers over 40 jobs: each job runs exactly once.
    let mut ids = HashSet::new();
    for i in 0..40 {
        let j = deliver(
            &store,
            q,
            &format!("bulk-{i}"),
            new_job("acme/bulk", 100 + i, "h", 0, 3),
        )
        .await
        .unwrap();
        ids.insert(j.id);
    }
    let mut tasks = Vec::new();
    for w in 0..8 {
        let queue = queue.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut empty = 0;
            while empty < 3 {
                match queue.claim(&format!("bulk-{w}")).await.unwrap() {
                    Some(c) => {
                        empty = 0;
                        got.push(c.job.id);
                        queue.complete(&c, "ok").await.unwrap();
                    }
                    None => empty += 1,
                }
            }
            got
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.extend(t.await.unwrap());
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "no job was claimed twice");
    assert_eq!(unique, ids, "every job was claimed");
    assert_eq!(store.queue_depth().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_queue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("redline.db").display());
    let store = Store::open(&url).await.unwrap();
    let queue = Arc::new(EmbeddedQueue::new(store.clone(), LEASE));
    suite(store, queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_queue_on_postgres() {
    let pg = TempPg::start();
    let store = Store::open(&pg.url).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), 0, "migrations run once");
    let queue = Arc::new(EmbeddedQueue::new(store.clone(), LEASE));
    suite(store, queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_queue_on_moto() {
    let moto = Moto::start();
    let url = moto.create_queue("review-jobs").await;
    let priority = moto.create_queue("review-jobs-critical").await;
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .unwrap();
    let queue = Arc::new(SqsQueue::with_client(
        aws_sdk_sqs::Client::new(&conf),
        store.clone(),
        url,
        Some(priority),
        LEASE,
    ));
    suite(store, queue).await;
}

#[tokio::test]
async fn bad_database_urls_are_named_without_their_password() {
    let e = Store::open("mysql://u:topsecret@h/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("REDLINE_DATABASE_URL") && !e.contains("topsecret"),
        "{e}"
    );
    let port = crate::common::services::free_port();
    let e = Store::open(&format!("postgres://u:topsecret@127.0.0.1:{port}/db"))
        .await
        .err()
        .unwrap();
    let e = format!("{e:#}");
    assert!(
        e.contains("cannot open the database") && !e.contains("topsecret"),
        "{e}"
    );
}
