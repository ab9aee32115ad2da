//! The embedded queue: the store's jobs table is the queue. Claims take a lease; a worker that
//! dies stops renewing, and the job is claimed again once the lease expires.

use super::{BoxFuture, Claim, JobQueue};
use crate::store::{JobStatus, Store};
use std::time::Duration;

pub struct EmbeddedQueue {
    store: Store,
    lease_ms: i64,
    /// Wakes idle claimers when a job is pushed in this process (others poll).
    notify: tokio::sync::Notify,
}

impl EmbeddedQueue {
    pub fn new(store: Store, lease: Duration) -> EmbeddedQueue {
        EmbeddedQueue {
            store,
            lease_ms: lease.as_millis() as i64,
            notify: tokio::sync::Notify::new(),
        }
    }
}

/// How often idle workers look for jobs pushed by other processes.
const POLL: Duration = Duration::from_millis(250);

impl JobQueue for EmbeddedQueue {
    fn push<'a>(&'a self, _job: &'a crate::store::Job) -> BoxFuture<'a, ()> {
        // The job row is the queue entry already.
        self.notify.notify_waiters();
        Box::pin(async { Ok(()) })
    }

    fn claim<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, Option<Claim>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            loop {
                if let Some(job) = self.store.claim_next(worker, self.lease_ms).await? {
                    if job.attempts > job.max_attempts {
                        // Its workers died mid-job this often: stop trying.
                        let error = format!(
                            "lease expired {} times (the worker stopped mid-job); last error: {}",
                            job.attempts - 1,
                            job.last_error.as_deref().unwrap_or("none")
                        );
                        self.store.bury_job(job.id, &error).await?;
                        continue;
                    }
                    return Ok(Some(Claim {
                        job,
                        worker: worker.to_string(),
                        receipt: None,
                    }));
                }
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                let _ =
                    tokio::time::timeout(POLL.min(deadline - now), self.notify.notified()).await;
            }
        })
    }

    fn renew<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            self.store
                .renew_lease(
                    claim.job.id,
                    &claim.worker,
                    claim.job.attempts,
                    self.lease_ms,
                )
                .await
        })
    }

    fn complete<'a>(&'a self, claim: &'a Claim, outcome: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .complete_job(claim.job.id, &claim.worker, claim.job.attempts, outcome)
                .await?;
            Ok(())
        })
    }

    fn fail<'a>(&'a self, claim: &'a Claim, error: &'a str) -> BoxFuture<'a, JobStatus> {
        Box::pin(async move {
            self.store
                .fail_job(claim.job.id, &claim.worker, claim.job.attempts, error)
                .await
        })
    }

    fn release<'a>(
        &'a self,
        claim: &'a Claim,
        delay_ms: i64,
        why: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .release_job(
                    claim.job.id,
                    &claim.worker,
                    claim.job.attempts,
                    delay_ms,
                    why,
                )
                .await?;
            self.notify.notify_waiters();
            Ok(())
        })
    }

    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}
