//! The integration tests: one test binary that drives the real `redline` binary (the CLI, and
//! `redline serve` / `redline worker` as processes) against the fakes in `common/`.

mod common;

mod acceptance;
mod agent;
mod bench_cli;
mod conversation;
mod data_boundary;
mod fake_github;
mod first_review;
mod github_app;
mod hardening;
mod knowledge_retrieval;
mod post_github;
mod queue_store;
mod replay;
mod review_inputs;
mod review_outputs;
mod rules_examples;
mod rules_real;
mod verification;
mod worker_crash;
