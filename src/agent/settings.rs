//! How the agent runs: its bounds, thresholds and budget, from defaults and `REDLINE_AGENT_*`.

use super::prompts::PROMPT_VERSION;

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Tool calls per file; at the bound the loop stops and keeps what it has.
    pub max_tool_calls: usize,
    /// Files reviewed at once.
    pub concurrency: usize,
    /// Critical comments below this confidence are downgraded to warnings.
    pub min_critical_confidence: f64,
    /// Comments that cite no guidance need at least this confidence.
    pub uncited_min_confidence: f64,
    /// Prompt tokens per call above which a file is reviewed hunk by hunk.
    pub context_token_budget: usize,
    pub max_completion_tokens: u32,
    /// Stop calling the LLM for this pull request once it has cost this much (USD).
    pub budget_usd: Option<f64>,
    /// Paths whose content never goes to an LLM (`.redline.toml` `never_send`).
    pub never_send: globset::GlobSet,
    /// Which prompts/<version>/system.md the agent uses (recorded with every review).
    pub prompt_version: String,
    /// A second, narrow call checks each finding only the model made: the model must name the
    /// input or path that triggers the bug (`REDLINE_AGENT_VERIFY`, default on).
    pub verify: bool,
    /// What happens to a finding the verification does not confirm.
    pub unconfirmed: Unconfirmed,
    /// Independent reviews of each file (`REDLINE_AGENT_SAMPLES`); with more than one, a
    /// model-only finding is kept when at least `agree` of them report it.
    pub samples: usize,
    pub agree: usize,
    /// Sampling temperature: 0 for one sample, `REDLINE_AGENT_TEMPERATURE` (default 0.7) for several.
    pub temperature: f32,
    /// Candidates (rule hits too unsure to post alone) asked about per file, the first ones in
    /// the file (`REDLINE_AGENT_CANDIDATES`; 0: candidates stay silent).
    pub max_candidates: usize,
}

/// What happens to a model-only finding that verification rejects or cannot confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    /// Dropped; the record says why.
    Drop,
    /// Kept as a suggestion at most, so the reader still sees it, lowest.
    Demote,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            max_tool_calls: 15,
            concurrency: 4,
            min_critical_confidence: 0.7,
            uncited_min_confidence: 0.8,
            context_token_budget: 24_000,
            max_completion_tokens: 1024,
            budget_usd: None,
            never_send: globset::GlobSet::empty(),
            prompt_version: PROMPT_VERSION.to_string(),
            verify: true,
            // Measured with the local 1.5B model on 28 real fixes: its verifier rejected every
            // model-only finding, the 8 true ones with the 15 false; dropping them left the
            // rules' F1 (0.25), keeping them as suggestions the agent's (0.44; 0.48 with no
            // security warnings in test files).
            unconfirmed: Unconfirmed::Demote,
            samples: 1,
            agree: 1,
            temperature: 0.0,
            max_candidates: 3,
        }
    }
}

impl AgentSettings {
    /// Defaults, with `REDLINE_AGENT_MAX_TOOL_CALLS`, `_CONCURRENCY`, `_CONTEXT_TOKENS`, `_VERIFY`,
    /// `_UNCONFIRMED`, `_SAMPLES`, `_AGREE`, `_TEMPERATURE`, `_CANDIDATES` and `REDLINE_LLM_BUDGET_USD` applied.
    pub fn from_env() -> AgentSettings {
        let mut s = AgentSettings::default();
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let Some(v) = num("REDLINE_AGENT_MAX_TOOL_CALLS") {
            s.max_tool_calls = v.max(1.0) as usize;
        }
        if let Some(v) = num("REDLINE_AGENT_CONCURRENCY") {
            s.concurrency = v.max(1.0) as usize;
        }
        if let Some(v) = num("REDLINE_AGENT_CONTEXT_TOKENS") {
            s.context_token_budget = v.max(500.0) as usize;
        }
        s.budget_usd = num("REDLINE_LLM_BUDGET_USD");
        if let Ok(v) = std::env::var("REDLINE_AGENT_VERIFY") {
            s.verify = !matches!(v.trim(), "0" | "false" | "no" | "off");
        }
        if let Ok(v) = std::env::var("REDLINE_AGENT_UNCONFIRMED") {
            match v.trim() {
                "drop" => s.unconfirmed = Unconfirmed::Drop,
                "demote" => s.unconfirmed = Unconfirmed::Demote,
                _ => {}
            }
        }
        if let Some(v) = num("REDLINE_AGENT_CANDIDATES") {
            s.max_candidates = (v.max(0.0) as usize).min(20);
        }
        if let Some(v) = num("REDLINE_AGENT_SAMPLES") {
            s.samples = (v.max(1.0) as usize).min(9);
        }
        s.agree = num("REDLINE_AGENT_AGREE")
            .map(|v| v.max(1.0) as usize)
            .unwrap_or(s.samples / 2 + 1)
            .min(s.samples);
        if s.samples > 1 {
            s.temperature = num("REDLINE_AGENT_TEMPERATURE").unwrap_or(0.7) as f32;
        }
        if let Ok(v) = std::env::var("REDLINE_PROMPT_VERSION")
            && !v.trim().is_empty()
        {
            s.prompt_version = v.trim().to_string();
        }
        s
    }
}
