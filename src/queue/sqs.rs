//! The SQS queue: messages carry job ids; the job's state stays in the store. The message's
//! visibility timeout is the lease: extended while a worker runs the job, deleted when it is
//! finished, and left to expire when a worker dies, so SQS delivers it again.

use super::{BoxFuture, Claim, JobQueue};
use crate::store::{Job, JobStatus, Store};
use anyhow::{Context, Result, anyhow};
use aws_sdk_sqs::Client;
use std::time::Duration;

pub struct SqsQueue {
    client: Client,
    store: Store,
    queue_url: String,
    /// Jobs of critical repositories go here when set, and are received first.
    priority_url: Option<String>,
    lease_ms: i64,
    /// When this process last looked for jobs whose message may be lost (unix ms).
    last_sweep: std::sync::atomic::AtomicI64,
}

/// How often, and after how long without a claim, jobs are sent again.
const SWEEP_EVERY_MS: i64 = 60_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Message {
    job_id: i64,
}

impl SqsQueue {
    /// Connects with the AWS SDK's own configuration (AWS_REGION, credentials, AWS_ENDPOINT_URL...).
    pub async fn connect(
        store: Store,
        queue_url: String,
        priority_url: Option<String>,
        lease: Duration,
    ) -> Result<SqsQueue> {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        if conf.region().is_none() {
            anyhow::bail!("REDLINE_QUEUE=sqs needs an AWS region: set AWS_REGION");
        }
        Ok(SqsQueue::with_client(
            Client::new(&conf),
            store,
            queue_url,
            priority_url,
            lease,
        ))
    }

    /// With a client configured by the caller.
    pub fn with_client(
        client: Client,
        store: Store,
        queue_url: String,
        priority_url: Option<String>,
        lease: Duration,
    ) -> SqsQueue {
        SqsQueue {
            client,
            store,
            queue_url,
            priority_url,
            lease_ms: lease.as_millis() as i64,
            last_sweep: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Sends again the jobs nobody claimed for a while: their message may be lost (a crash
    /// between the store's commit and the send, a dead-letter queue). A duplicate message is
    /// harmless: the store lets one worker claim the job, and the other message is deleted.
    async fn sweep(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let now = crate::store::now_ms();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_MS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let stale = self
            .store
            .stale_jobs((self.lease_ms * 2).max(SWEEP_EVERY_MS), 100)
            .await?;
        for job in stale {
            tracing::info!(job = job.id, "sending a job again: unclaimed for a while");
            self.push(&job).await?;
            self.store.touch_job(job.id).await?;
        }
        Ok(())
    }

    fn lease_secs(&self) -> i32 {
        ((self.lease_ms + 999) / 1000).clamp(1, 43_200) as i32
    }

    /// Receives one message from `url`, waiting up to `wait_secs`.
    async fn receive(&self, url: &str, wait_secs: i32) -> Result<Option<(Message, String)>> {
        let got = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(1)
            .visibility_timeout(self.lease_secs())
            .wait_time_seconds(wait_secs)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "SQS receive failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        let Some(m) = got.messages().first() else {
            return Ok(None);
        };
        let receipt = m
            .receipt_handle()
            .context("SQS message without a receipt handle")?
            .to_string();
        match serde_json::from_str::<Message>(m.body().unwrap_or("")) {
            Ok(msg) => Ok(Some((msg, receipt))),
            Err(e) => {
                // Not ours: drop it rather than receive it forever.
                tracing::warn!(queue = url, error = %e, "deleting an SQS message that is not a redline job");
                self.delete(url, &receipt).await?;
                Ok(None)
            }
        }
    }

    async fn delete(&self, url: &str, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "SQS delete failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }

    async fn set_visibility(&self, url: &str, receipt: &str, secs: i32) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(secs.clamp(0, 43_200))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "SQS visibility change failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }

    /// Deletes the message of a job that no worker needs any more (cancelled or finished). A job
    /// taken over by another worker keeps its message: that worker holds it now.
    async fn settle_if_finished(&self, claim: &Claim, url: &str, receipt: &str) {
        if let Ok(Some(job)) = self.store.job(claim.job.id).await
            && ["cancelled", "done", "dead"].contains(&job.status.as_str())
            && let Err(e) = self.delete(url, receipt).await
        {
            tracing::debug!(job = job.id, error = %format!("{e:#}"), "message already gone");
        }
    }

    /// Turns a received message into a claim, or settles it when the store says the job is not
    /// runnable (finished, cancelled, unknown, or leased by a live worker).
    async fn take(
        &self,
        url: &str,
        msg: Message,
        receipt: String,
        worker: &str,
    ) -> Result<Option<Claim>> {
        if let Some(job) = self
            .store
            .claim_job(msg.job_id, worker, self.lease_ms)
            .await?
        {
            if job.attempts > job.max_attempts {
                let error = format!(
                    "delivered {} times without finishing (the worker stopped mid-job); last error: {}",
                    job.attempts - 1,
                    job.last_error.as_deref().unwrap_or("none")
                );
                self.store.bury_job(job.id, &error).await?;
                self.delete(url, &receipt).await?;
                return Ok(None);
            }
            return Ok(Some(Claim {
                job,
                worker: worker.to_string(),
                receipt: Some((url.to_string(), receipt)),
            }));
        }
        match self.store.job(msg.job_id).await? {
            Some(Job { status, .. })
                if ["queued", "running", "failed"].contains(&status.as_str()) =>
            {
                // Someone holds it, or its backoff has not passed: look again later.
                self.set_visibility(url, &receipt, self.lease_secs())
                    .await?;
            }
            // Finished, cancelled, dead, or unknown: nobody needs the message.
            _ => self.delete(url, &receipt).await?,
        }
        Ok(None)
    }
}

impl JobQueue for SqsQueue {
    fn push<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let url = match &self.priority_url {
                Some(p) if job.priority > 0 => p,
                _ => &self.queue_url,
            };
            let body = serde_json::to_string(&Message { job_id: job.id })?;
            self.client
                .send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "SQS send failed: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                })?;
            Ok(())
        })
    }

    fn claim<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, Option<Claim>> {
        Box::pin(async move {
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %format!("{e:#}"), "cannot look for jobs to send again");
            }
            if let Some(p) = &self.priority_url
                && let Some((msg, receipt)) = self.receive(p, 0).await?
            {
                return self.take(p, msg, receipt, worker).await;
            }
            match self.receive(&self.queue_url, 1).await? {
                Some((msg, receipt)) => self.take(&self.queue_url, msg, receipt, worker).await,
                None => Ok(None),
            }
        })
    }

    fn renew<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let held = self
                .store
                .renew_lease(
                    claim.job.id,
                    &claim.worker,
                    claim.job.attempts,
                    self.lease_ms,
                )
                .await?;
            if let Some((url, receipt)) = &claim.receipt {
                if held {
                    self.set_visibility(url, receipt, self.lease_secs()).await?;
                } else {
                    self.settle_if_finished(claim, url, receipt).await;
                }
            }
            Ok(held)
        })
    }

    fn complete<'a>(&'a self, claim: &'a Claim, outcome: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let held = self
                .store
                .complete_job(claim.job.id, &claim.worker, claim.job.attempts, outcome)
                .await?;
            if let Some((url, receipt)) = &claim.receipt {
                if held {
                    self.delete(url, receipt).await?;
                } else {
                    self.settle_if_finished(claim, url, receipt).await;
                }
            }
            Ok(())
        })
    }

    fn fail<'a>(&'a self, claim: &'a Claim, error: &'a str) -> BoxFuture<'a, JobStatus> {
        Box::pin(async move {
            let status = self
                .store
                .fail_job(claim.job.id, &claim.worker, claim.job.attempts, error)
                .await?;
            if let Some((url, receipt)) = &claim.receipt {
                match status {
                    // SQS delivers it again once the backoff has passed.
                    JobStatus::Retrying { delay_ms } => {
                        self.set_visibility(url, receipt, (delay_ms / 1000) as i32)
                            .await?
                    }
                    JobStatus::Dead => self.delete(url, receipt).await?,
                    JobStatus::Lost => self.settle_if_finished(claim, url, receipt).await,
                }
            }
            Ok(status)
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
            if let Some((url, receipt)) = &claim.receipt {
                self.set_visibility(url, receipt, ((delay_ms + 999) / 1000) as i32)
                    .await?;
            }
            Ok(())
        })
    }

    fn lease_ms(&self) -> i64 {
        self.lease_ms
    }

    fn kind(&self) -> &'static str {
        "sqs"
    }
}
