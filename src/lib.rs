//! redline: a self-hostable code reviewer for pull requests. This crate holds the whole program;
//! `src/main.rs` only calls `cli::run`. One folder per layer:
//!
//! - `diff`: the unified diff model; `change`: where a change comes from (git, folders, a diff)
//! - `lang`: language detection; `context`: tree-sitter trimming and token counts
//! - `rules`: the deterministic detectors; `knowledge`: guidance entries and retrieval
//! - `review`: the pipeline; `report`: output formats; `config`: `.redline.toml`
//! - `bench`: precision and recall on annotated cases; `cli`: the command line
//! - the GitHub App: `settings`, `store` (SQLite/PostgreSQL), `queue` (embedded/SQS), `github`
//!   (app auth, REST, posting), `server` (webhook, metrics), `worker` (runs review jobs)

pub mod agent;
pub mod bench;
pub mod change;
pub mod cli;
pub mod config;
pub mod context;
pub mod diff;
pub mod github;
pub mod knowledge;
pub mod lang;
pub mod llm;
pub mod queue;
pub mod redact;
pub mod report;
pub mod review;
pub mod rules;
pub mod server;
pub mod settings;
pub mod store;
pub mod worker;

/// `s` cut to `n` characters, with an ellipsis when cut (for one-line messages and excerpts).
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// A number in [0, 1) that differs from call to call, for jittering retries (not for secrets).
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() % 1_000_000) as f64 / 1_000_000.0
}
