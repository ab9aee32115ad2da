//! redline: a self-hostable code reviewer for pull requests. The offline analysis (diff model,
//! languages, context, rules, knowledge, reports, the bench) is the `redline-core` crate; this
//! crate builds the program on it. Layers, lowest first (each imports only those above it here):
//!
//! - `ids`: GitHub's identifiers as types; `settings`: the server's settings
//! - `llm`: the OpenAI-compatible client (retries, breaker, pricing, embeddings)
//! - `agent`: the per-file tool-calling review; `review`: rules, then the agent, per change
//! - `store` (SQLite/PostgreSQL) and `queue` (embedded/SQS): jobs and what they produced
//! - `github`: App auth, REST calls, posting reviews
//! - `worker`: runs review jobs; `server`: the webhook, /healthz and /metrics
//! - `app`: the composition root that wires them; `cli`: the command line

pub mod agent;
pub mod app;
pub mod cli;
pub mod github;
pub mod ids;
pub mod llm;
pub mod queue;
pub mod review;
pub mod server;
pub mod settings;
pub mod store;
pub mod worker;

pub use redline_core::text::truncate;
