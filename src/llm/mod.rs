//! The LLM client: any OpenAI-compatible chat endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp's
//! server, a LiteLLM proxy), chosen by base URL, key and model.
//!
//! Requests are built with async-openai's types; the transport is our own reqwest call so that
//! timeouts, retries (jittered exponential backoff on 429, 5xx, timeouts and connection errors,
//! honouring Retry-After), the circuit breaker and the fallback endpoints are in one place, and so
//! that replies from servers that bend the wire format are read leniently.

mod breaker;
pub mod embeddings;
pub mod pricing;

use anyhow::Result;
use async_openai::types::chat::CreateChatCompletionRequest;
use backon::Retryable;
use breaker::Breaker;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

/// One OpenAI-compatible endpoint.
#[derive(Clone)]
pub struct Endpoint {
    /// A short name for records (`primary`, `fallback`).
    pub name: String,
    /// Base URL including `/v1`.
    pub base_url: String,
    api_key: String,
    /// The model for security-sensitive or complex files.
    pub model: String,
    /// The model for small, low-risk files (default: `model`).
    pub small_model: Option<String>,
    /// Marked local in the configuration (the code never leaves the network).
    pub local: bool,
}

impl std::fmt::Debug for Endpoint {
    // Keys never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub endpoints: Vec<Endpoint>,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Retries per call and endpoint (after the first attempt).
    pub max_retries: u32,
    /// First backoff; doubled per retry, with ±50% jitter.
    pub backoff: Duration,
    /// Failures within `breaker_window` that open an endpoint's breaker.
    pub breaker_failures: usize,
    pub breaker_window: Duration,
    /// How long an open breaker stays open.
    pub breaker_cooldown: Duration,
}

impl LlmConfig {
    /// From `REDLINE_LLM_*` (or `OPENAI_BASE_URL` / `OPENAI_API_KEY`); None when no endpoint is set.
    ///
    /// `REDLINE_LLM_BASE_URL`, `REDLINE_LLM_API_KEY`, `REDLINE_LLM_MODEL` (default gpt-4o-mini),
    /// `REDLINE_LLM_SMALL_MODEL`, `REDLINE_LLM_LOCAL=1`; a fallback endpoint with the same names
    /// prefixed `REDLINE_LLM_FALLBACK_`; `REDLINE_LLM_TIMEOUT_SECS` (60), `REDLINE_LLM_MAX_RETRIES`
    /// (3), `REDLINE_LLM_BACKOFF_MS` (500).
    pub fn from_env() -> Option<LlmConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let primary_url = var("REDLINE_LLM_BASE_URL")
            .or_else(|| var("OPENAI_BASE_URL"))
            .or_else(|| {
                // A bare OpenAI key means the OpenAI API itself.
                var("OPENAI_API_KEY").map(|_| "https://api.openai.com/v1".to_string())
            })?;
        let endpoint = |prefix: &str, name: &str, url: String| Endpoint {
            name: name.to_string(),
            base_url: url.trim_end_matches('/').to_string(),
            api_key: var(&format!("{prefix}API_KEY"))
                .or_else(|| {
                    if prefix == "REDLINE_LLM_" {
                        var("OPENAI_API_KEY")
                    } else {
                        None
                    }
                })
                .unwrap_or_default(),
            model: var(&format!("{prefix}MODEL")).unwrap_or_else(|| "gpt-4o-mini".into()),
            small_model: var(&format!("{prefix}SMALL_MODEL")),
            local: var(&format!("{prefix}LOCAL")).is_some_and(|v| v == "1" || v == "true"),
        };
        let mut endpoints = vec![endpoint("REDLINE_LLM_", "primary", primary_url)];
        if let Some(url) = var("REDLINE_LLM_FALLBACK_BASE_URL") {
            endpoints.push(endpoint("REDLINE_LLM_FALLBACK_", "fallback", url));
        }
        let num = |k: &str, d: u64| var(k).and_then(|v| v.parse().ok()).unwrap_or(d);
        Some(LlmConfig {
            endpoints,
            timeout: Duration::from_secs(num("REDLINE_LLM_TIMEOUT_SECS", 60)),
            max_retries: num("REDLINE_LLM_MAX_RETRIES", 3) as u32,
            backoff: Duration::from_millis(num("REDLINE_LLM_BACKOFF_MS", 500)),
            breaker_failures: 3,
            breaker_window: Duration::from_secs(30),
            breaker_cooldown: Duration::from_secs(60),
        })
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, maybe malformed).
    pub arguments: String,
}

/// A model's reply, read leniently.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Whether the token counts came from the server (else they are our estimate).
    pub usage_reported: bool,
    pub endpoint: String,
    pub model: String,
    pub local: bool,
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlmError {
    /// Every endpoint failed or has its breaker open: the caller falls back to rules.
    #[error("no LLM endpoint available: {0}")]
    Unavailable(String),
    /// The request itself was refused (a 4xx other than 429): retrying will not help.
    #[error("the LLM endpoint refused the request: {0}")]
    Refused(String),
}

/// Which model a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Small,
    Large,
}

/// The client: endpoints in order of preference, each behind its breaker.
pub struct LlmClient {
    pub config: LlmConfig,
    http: reqwest::Client,
    breakers: Vec<Mutex<Breaker>>,
    /// Every exchange (request body, status, response text), when recording transcripts.
    recording: Option<Mutex<Vec<Value>>>,
}

impl LlmClient {
    /// A client for `config`.
    pub fn new(config: LlmConfig) -> Result<LlmClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let breakers = config
            .endpoints
            .iter()
            .map(|_| Mutex::new(Breaker::default()))
            .collect();
        Ok(LlmClient {
            config,
            http,
            breakers,
            recording: None,
        })
    }

    /// Keeps every exchange from now on, for `take_recording`.
    pub fn record(mut self) -> LlmClient {
        self.recording = Some(Mutex::new(Vec::new()));
        self
    }

    /// The exchanges recorded so far, in order.
    pub fn take_recording(&self) -> Vec<Value> {
        self.recording
            .as_ref()
            .map(|r| std::mem::take(&mut *r.lock().unwrap_or_else(|e| e.into_inner())))
            .unwrap_or_default()
    }

    /// Whether every endpoint's breaker is open (nothing left to try).
    pub fn all_open(&self) -> bool {
        self.breakers
            .iter()
            .all(|b| b.lock().unwrap_or_else(|e| e.into_inner()).is_open())
    }

    /// The model a route uses on the first endpoint.
    pub fn model_for(&self, route: Route) -> String {
        let e = &self.config.endpoints[0];
        match route {
            Route::Small => e.small_model.clone().unwrap_or_else(|| e.model.clone()),
            Route::Large => e.model.clone(),
        }
    }

    /// Sends one chat request: the first endpoint whose breaker is closed, with retries; on
    /// failure the next endpoint. `Unavailable` when none is left.
    pub async fn chat(
        &self,
        request: &CreateChatCompletionRequest,
        route: Route,
    ) -> Result<Reply, LlmError> {
        let mut reasons = Vec::new();
        for (i, ep) in self.config.endpoints.iter().enumerate() {
            if self.breakers[i]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_open()
            {
                reasons.push(format!("{}: circuit breaker open", ep.name));
                continue;
            }
            let model = match route {
                Route::Small => ep.small_model.clone().unwrap_or_else(|| ep.model.clone()),
                Route::Large => ep.model.clone(),
            };
            match self.call_with_retries(ep, &model, request).await {
                Ok(reply) => {
                    self.breakers[i]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .success();
                    return Ok(reply);
                }
                Err(Failure::Refused(msg)) => {
                    return Err(LlmError::Refused(format!("{}: {msg}", ep.name)));
                }
                Err(Failure::Transient(msg)) => {
                    let cfg = &self.config;
                    self.breakers[i]
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failure(
                            cfg.breaker_failures,
                            cfg.breaker_window,
                            cfg.breaker_cooldown,
                        );
                    reasons.push(format!("{}: {msg}", ep.name));
                }
            }
        }
        Err(LlmError::Unavailable(reasons.join("; ")))
    }

    /// One endpoint with retries: 429, 5xx, timeouts and connection errors are retried with
    /// jittered exponential backoff (a `Retry-After` wins, up to 30 s); other answers are final.
    async fn call_with_retries(
        &self,
        ep: &Endpoint,
        model: &str,
        request: &CreateChatCompletionRequest,
    ) -> Result<Reply, Failure> {
        let mut body =
            serde_json::to_value(request).map_err(|e| Failure::Refused(e.to_string()))?;
        body["model"] = Value::String(model.to_string());
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.config.backoff)
            .with_factor(2.0)
            .with_jitter()
            .without_max_delay()
            .with_max_times(self.config.max_retries as usize);
        let reply = (|| self.call_once(ep, &body))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|f: &Attempt| matches!(f, Attempt::Retryable { .. }))
            .adjust(|f: &Attempt, delay| match f {
                Attempt::Retryable {
                    retry_after: Some(secs),
                    ..
                } => delay.map(|_| Duration::from_secs_f64(secs.min(30.0))),
                _ => delay,
            })
            .await;
        match reply {
            // A reply that came back but cannot be read is not retried: the model would say it again.
            Ok(text) => parse_reply(&text, ep, model).map_err(Failure::Transient),
            Err(Attempt::Retryable { message, .. }) => Err(Failure::Transient(message)),
            Err(Attempt::Refused(message)) => Err(Failure::Refused(message)),
        }
    }

    /// One request: the body of a 2xx, or why not.
    async fn call_once(&self, ep: &Endpoint, body: &Value) -> Result<String, Attempt> {
        let url = format!("{}/chat/completions", ep.base_url);
        let mut req = self.http.post(&url).json(body);
        if !ep.api_key.is_empty() {
            req = req.bearer_auth(&ep.api_key);
        }
        let outcome = tokio::time::timeout(self.config.timeout, async {
            let resp = req.send().await?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok());
            let text = resp.text().await?;
            Ok::<_, reqwest::Error>((status, retry_after, text))
        })
        .await;
        match outcome {
            Err(_) => Err(Attempt::Retryable {
                message: format!("timed out after {}s", self.config.timeout.as_secs_f64()),
                retry_after: None,
            }),
            Ok(Err(e)) => Err(Attempt::Retryable {
                message: format!("connection failed: {}", without_url(&e)),
                retry_after: None,
            }),
            Ok(Ok((status, retry_after, text))) => {
                if let Some(rec) = &self.recording {
                    rec.lock().unwrap_or_else(|e| e.into_inner()).push(serde_json::json!({
                        "endpoint": ep.name, "request": body, "status": status.as_u16(), "response": text,
                    }));
                }
                if status.is_success() {
                    return Ok(text);
                }
                let msg = error_message(&text);
                if status.as_u16() == 429 || status.is_server_error() {
                    Err(Attempt::Retryable {
                        message: format!("HTTP {}: {msg}", status.as_u16()),
                        retry_after,
                    })
                } else {
                    Err(Attempt::Refused(format!("HTTP {}: {msg}", status.as_u16())))
                }
            }
        }
    }
}

/// Why an endpoint gave no reply.
enum Failure {
    /// Failed after the retries, or a reply that cannot be read: counts against the breaker.
    Transient(String),
    /// The endpoint refused the request (4xx): another try would be refused too.
    Refused(String),
}

/// Why one request failed.
enum Attempt {
    /// Worth another try (429, 5xx, timeout, connection), with the server's `Retry-After`.
    Retryable {
        message: String,
        retry_after: Option<f64>,
    },
    Refused(String),
}

/// A reqwest error described without its URL (which may carry credentials in its userinfo).
fn without_url(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "could not connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    }
}

/// The `error.message` of an OpenAI-style error body, or the start of the body.
fn error_message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let m = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| text.chars().take(200).collect());
    scrub(&m)
}

/// Reads a chat completion leniently: arguments as text or objects, missing usage estimated.
pub fn parse_reply(text: &str, ep: &Endpoint, model: &str) -> Result<Reply, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("reply is not JSON: {e}"))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err("reply has no choices".into());
    }
    let msg = &choice["message"];
    let content = msg["content"]
        .as_str()
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty());
    let mut tool_calls = Vec::new();
    if let Some(calls) = msg["tool_calls"].as_array() {
        for (i, c) in calls.iter().enumerate() {
            let name = c["function"]["name"].as_str().unwrap_or("").to_string();
            let arguments = match &c["function"]["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".to_string(),
                other => other.to_string(),
            };
            let id = c["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{i}"));
            tool_calls.push(ToolCall {
                id,
                name,
                arguments,
            });
        }
    }
    let usage = &v["usage"];
    let usage_reported = usage["prompt_tokens"].is_u64();
    let completion_estimate = || {
        redline_core::context::tokens::count(&format!(
            "{}{}",
            content.clone().unwrap_or_default(),
            tool_calls
                .iter()
                .map(|t| t.arguments.clone())
                .collect::<String>()
        )) as u64
    };
    Ok(Reply {
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap_or(0),
        completion_tokens: usage["completion_tokens"]
            .as_u64()
            .unwrap_or_else(completion_estimate),
        usage_reported,
        finish_reason: choice["finish_reason"].as_str().map(str::to_string),
        content,
        tool_calls,
        endpoint: ep.name.clone(),
        model: v["model"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| model.to_string()),
        local: ep.local,
    })
}

/// Removes anything that looks like a bearer key from an error message.
pub fn scrub(s: &str) -> String {
    static KEY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(sk-[A-Za-z0-9_*.-]{3,}|Bearer\s+\S+)").unwrap()
    });
    KEY.replace_all(s, "<redacted>").into_owned()
}
