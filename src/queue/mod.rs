//! The job queue, between the webhook (which must answer at once) and the workers.
//!
//! Two backends behind one trait: `EmbeddedQueue` claims from the store's jobs table with leases
//! (one process or several sharing PostgreSQL), and `SqsQueue` carries job ids through Amazon SQS
//! (several machines). Either way the job's state lives in the store: the queue only decides who
//! runs what, and when.

mod embedded;
#[cfg(feature = "sqs")]
mod sqs;

use crate::store::{Job, JobStatus};
use anyhow::Result;
use std::future::Future;
use std::pin::Pin;

pub use embedded::EmbeddedQueue;
#[cfg(feature = "sqs")]
pub use sqs::SqsQueue;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// A job a worker holds, with what the backend needs to acknowledge it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub job: Job,
    pub worker: String,
    /// The SQS receipt handle and queue URL, when the job came through SQS.
    pub receipt: Option<(String, String)>,
}

/// A queue of review jobs. Jobs are created in the store first (with the webhook delivery that
/// asked for them), then `push`ed.
pub trait JobQueue: Send + Sync {
    /// Hands a stored, queued job to the workers.
    fn push<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, ()>;
    /// Waits up to about a second for a job; None when there is none.
    fn claim<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, Option<Claim>>;
    /// Keeps the claim alive; false when the job is no longer this worker's (cancelled or taken over).
    fn renew<'a>(&'a self, claim: &'a Claim) -> BoxFuture<'a, bool>;
    /// The job is finished (done or cancelled); `outcome` is one line for `redline jobs`.
    fn complete<'a>(&'a self, claim: &'a Claim, outcome: &'a str) -> BoxFuture<'a, ()>;
    /// The attempt failed: retry after a backoff, or dead when out of attempts.
    fn fail<'a>(&'a self, claim: &'a Claim, error: &'a str) -> BoxFuture<'a, JobStatus>;
    /// Gives the job back without counting the attempt, to run again after `delay_ms`: at once
    /// on shutdown, or when a rate limit resets (`why` is kept as the job's last error).
    fn release<'a>(
        &'a self,
        claim: &'a Claim,
        delay_ms: i64,
        why: Option<&'a str>,
    ) -> BoxFuture<'a, ()>;
    /// The lease a claim gets, renewed at a third of it.
    fn lease_ms(&self) -> i64;
    /// `embedded` or `sqs`, for logs and metrics.
    fn kind(&self) -> &'static str;
}
