//! A review of one change, the way the CLI, the bench and the workers all run it: the offline
//! pipeline (parsing, rules, context) prepares every file off the async threads; then, when an
//! LLM is configured and the repository's policy lets its code go to one of the endpoints, the
//! agent reviews the prepared files; the review is assembled from both.
//!
//! `ReviewService` holds what every review shares: the rules and the knowledge store, loaded once.

use crate::agent::{self, AgentOutput, AgentSettings};
use crate::llm::embeddings::{Embedder, EmbeddingConfig};
use crate::llm::{LlmClient, LlmConfig};
use anyhow::Result;
use redline_core::change::ChangeSet;
use redline_core::config::{self, LlmPolicy};
use redline_core::knowledge;
use redline_core::model::{AgentRecord, Coverage, Engine, Review, Severity};
use redline_core::pipeline::{self, PreparedFile, Reviewer};
use redline_core::rules::RuleSet;
use std::sync::Arc;
use std::time::Instant;

/// What every review shares: the built-in rules and knowledge, and the LLM endpoints.
pub struct ReviewService {
    rules: Arc<RuleSet>,
    /// Loaded on the first agent review (a rules review never needs it); with an embeddings
    /// endpoint, its chunks are embedded then, so retrieval fuses BM25 with dense similarity.
    knowledge: tokio::sync::OnceCell<Arc<knowledge::Store>>,
    embedder: Option<Arc<Embedder>>,
    llm: Option<LlmConfig>,
}

/// Per-review choices beyond the repository's `.redline.toml`.
#[derive(Debug, Clone, Default)]
pub struct ReviewOptions {
    /// Findings below this are dropped (the stricter of this and the repository's).
    pub min_severity: Option<Severity>,
    /// Overrides `REDLINE_PROMPT_VERSION` (an A/B test's choice).
    pub prompt_version: Option<String>,
    /// Keep the model's exchanges for a transcript (`REDLINE_LLM_RECORD`).
    pub record: bool,
    /// Review with the rules alone, whatever is configured.
    pub rules_only: bool,
}

/// A finished review, and the LLM client when the agent ran (for its recording).
pub struct Reviewed {
    pub review: Review,
    pub llm: Option<LlmClient>,
}

impl ReviewService {
    /// Loads the built-in rules and knowledge once; `llm` is None for rules-only reviews.
    pub fn new(llm: Option<LlmConfig>) -> Result<ReviewService> {
        Ok(ReviewService {
            rules: Arc::new(RuleSet::builtin()?),
            knowledge: tokio::sync::OnceCell::new(),
            embedder: match EmbeddingConfig::from_env() {
                Some(c) if llm.is_some() => Some(Arc::new(Embedder::new(c)?)),
                _ => None,
            },
            llm,
        })
    }

    /// Whether reviews may use an LLM at all.
    pub fn has_llm(&self) -> bool {
        self.llm.is_some()
    }

    /// The rules a repository's review runs: the shared built-in set, or the built-in set plus
    /// the repository's own rule folders.
    pub fn rules_for(&self, repo: &config::Loaded) -> Result<Arc<RuleSet>> {
        if repo.extra_dirs.is_empty() {
            Ok(self.rules.clone())
        } else {
            Ok(Arc::new(RuleSet::load(
                &repo.extra_dirs,
                &repo.config.rules.disable,
            )?))
        }
    }

    /// Reviews `change` under the repository's settings `repo`. A refused LLM policy is said in
    /// the review's notes and the review is a rules review.
    pub async fn review(
        &self,
        change: &ChangeSet,
        repo: &config::Loaded,
        options: &ReviewOptions,
    ) -> Result<Reviewed> {
        let start = Instant::now();
        let rules = self.rules_for(repo)?;
        // Whether an LLM reviews, and if not, why: decided first, since only then are the
        // context's tokens worth counting.
        let llm = self
            .llm
            .as_ref()
            .filter(|_| !options.rules_only)
            .map(|llm| allowed_endpoints(llm, repo));
        let reviewer = Reviewer {
            rules: &rules,
            config: repo,
            min_severity: options.min_severity.unwrap_or(Severity::Suggestion),
            count_tokens: matches!(llm, Some(Ok(_))),
        };
        // Parsing and rules are CPU work: keep it off the threads that drive I/O.
        let prepared = tokio::task::block_in_place(|| reviewer.prepare(change));
        let llm = match llm {
            None => {
                return Ok(Reviewed {
                    review: pipeline::assemble(change, prepared, start),
                    llm: None,
                });
            }
            Some(Ok(llm)) => llm,
            Some(Err(why)) => {
                let mut review = pipeline::assemble(change, prepared, start);
                review
                    .notes
                    .push(format!("LLM not used: {why}; rules review only"));
                return Ok(Reviewed { review, llm: None });
            }
        };
        let knowledge = if repo.extra_dirs.is_empty() {
            self.knowledge
                .get_or_try_init(|| self.load_knowledge(&[]))
                .await?
                .clone()
        } else {
            self.load_knowledge(&repo.extra_dirs).await?
        };
        let mut client = LlmClient::new(llm)?;
        if options.record {
            client = client.record();
        }
        let mut settings = AgentSettings::from_env();
        settings.never_send = repo.never_send.clone();
        if let Some(v) = &options.prompt_version {
            settings.prompt_version = v.clone();
        }
        agent::check_prompt_version(&settings.prompt_version)?;
        let embedder = self
            .embedder
            .as_deref()
            .filter(|_| knowledge.has_embeddings());
        let output =
            agent::review_files(change, &prepared, &client, &knowledge, embedder, &settings).await;
        let review = assemble_agent(change, prepared, output, &settings, start);
        Ok(Reviewed {
            review,
            llm: Some(client),
        })
    }
}

impl ReviewService {
    /// The knowledge store with `extra` folders; its chunks embedded when an embeddings endpoint
    /// is configured (an embeddings outage leaves BM25 alone, and says so in the log).
    async fn load_knowledge(&self, extra: &[std::path::PathBuf]) -> Result<Arc<knowledge::Store>> {
        let mut store = knowledge::Store::with_extra(extra)?;
        if let Some(e) = &self.embedder
            && let Err(err) = crate::llm::embeddings::attach(&mut store, e).await
        {
            tracing::warn!(error = %format!("{err:#}"), "embeddings unavailable: retrieval is BM25 only");
        }
        Ok(Arc::new(store))
    }
}

/// The endpoints the repository's `llm` policy lets its code go to, or why none (reviews, and
/// answers in review threads: one policy).
pub(crate) fn allowed_endpoints(
    llm: &LlmConfig,
    repo: &config::Loaded,
) -> Result<LlmConfig, String> {
    let mut llm = llm.clone();
    match repo.config.llm {
        LlmPolicy::Off => Err("this repository's .redline.toml sets llm = \"off\"".to_string()),
        LlmPolicy::LocalOnly => {
            llm.endpoints.retain(|e| e.local);
            if llm.endpoints.is_empty() {
                Err("this repository's .redline.toml sets llm = \"local-only\" and no configured endpoint is marked local".to_string())
            } else {
                Ok(llm)
            }
        }
        LlmPolicy::Any => Ok(llm),
    }
}

/// An agent review from the prepared files and what the agent made of those it reviewed: its
/// findings replace the rules' for those files; the others keep the rules' findings.
fn assemble_agent(
    change: &ChangeSet,
    prepared: Vec<PreparedFile>,
    output: AgentOutput,
    settings: &AgentSettings,
    start: Instant,
) -> Review {
    let mut review = pipeline::assemble(change, Vec::new(), start);
    let mut record = AgentRecord {
        prompt_version: settings.prompt_version.clone(),
        ..Default::default()
    };
    let mut findings = Vec::new();
    let mut outputs = output.files.into_iter();
    for r in prepared {
        if r.material.is_some() {
            let (file_record, file_findings) =
                outputs.next().expect("one output per reviewed file");
            record.llm_calls += file_record.llm_calls;
            record.prompt_tokens += file_record.prompt_tokens;
            record.completion_tokens += file_record.completion_tokens;
            record.prompt_tokens_sent += file_record.prompt_tokens_sent;
            record.redactions += file_record.redactions;
            record.cost_usd += file_record.cost_usd;
            for (k, v) in &file_record.quirks {
                *record.quirks.entry(k.clone()).or_default() += v;
            }
            record.files.push(file_record);
            findings.extend(file_findings);
        } else {
            findings.extend(r.findings.clone());
        }
        pipeline::add_timings(&mut review.timings, &r);
        review.files.push(r.report);
    }
    let not_covered = record
        .files
        .iter()
        .filter(|f| f.coverage != Coverage::Agent)
        .count();
    record.llm_skipped = output.stopped.or_else(|| {
        record
            .files
            .iter()
            .find(|f| f.coverage != Coverage::Agent)
            .map(|f| {
                format!(
                    "{not_covered} file(s) not reviewed by the LLM ({})",
                    f.reason.clone().unwrap_or_default()
                )
            })
    });
    pipeline::sort_findings(&mut findings);
    review.findings = findings;
    review.engine = Engine::Agent;
    if let Some(why) = &record.llm_skipped {
        review.notes.push(format!(
            "LLM skipped for {not_covered} file(s): {why}; those files have rules findings only"
        ));
    }
    review.timings.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    review.agent = Some(record);
    review
}
