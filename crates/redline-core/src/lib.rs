//! redline's offline analysis: everything a review needs that is pure computation over files,
//! with no database, HTTP server, GitHub, cloud or LLM client. The `redline` crate builds the
//! program (CLI, GitHub App, LLM agent) on top of it.
//!
//! Layers, lowest first (each imports only those above it in this list):
//! - `text`, `builtin`: small helpers and the embedded knowledge/ files
//! - `diff`: the unified diff model; `lang`: language detection
//! - `model`: severities, findings, reviews and the agent's record
//! - `change`: where a change comes from (git, folders, case folders, a diff)
//! - `context`: tree-sitter trimming and token counts; `redact`: secrets masked before an LLM
//! - `knowledge`: guidance entries and BM25 retrieval; `rules`: the deterministic detectors
//! - `config`: `.redline.toml`; `pipeline`: a change through rules and context to a review
//! - `report`: text, JSON, SARIF and Markdown; `bench`: cases, scoring, retrieval evaluation

// Nested conditions are kept where each level reads as its own step of an analysis.
#![allow(clippy::collapsible_if, clippy::collapsible_match)]

pub mod bench;
pub mod builtin;
pub mod change;
pub mod config;
pub mod context;
pub mod diff;
pub mod knowledge;
pub mod lang;
pub mod model;
pub mod pipeline;
pub mod redact;
pub mod report;
pub mod rules;
pub mod text;
