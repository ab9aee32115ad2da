//! Optional dense embeddings through any OpenAI-compatible `/v1/embeddings` endpoint, cached on
//! disk by content hash so that the built-in store is embedded once per model, not per run.
//!
//! Configured by `REDLINE_EMBEDDINGS_BASE_URL` (with `/v1`), `REDLINE_EMBEDDINGS_MODEL` (default
//! `text-embedding-3-small`) and `REDLINE_EMBEDDINGS_API_KEY` (else `REDLINE_LLM_API_KEY`, else
//! `OPENAI_API_KEY`); the cache lives in `REDLINE_CACHE_DIR` (default `~/.cache/redline`).

use anyhow::{Context, Result, anyhow};
use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{CreateEmbeddingRequest, EmbeddingInput};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Duration;

/// Texts per request; endpoints cap the batch size.
const BATCH: usize = 64;

/// Where and how to embed.
#[derive(Clone)]
pub struct EmbeddingConfig {
    pub base_url: String,
    pub model: String,
    api_key: String,
    pub cache_dir: PathBuf,
    pub timeout: Duration,
}

impl std::fmt::Debug for EmbeddingConfig {
    // The key never reaches logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl EmbeddingConfig {
    /// The configuration from the environment, or None when no endpoint is set.
    pub fn from_env() -> Option<EmbeddingConfig> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base_url = var("REDLINE_EMBEDDINGS_BASE_URL")?;
        let cache_dir = var("REDLINE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache/redline")))
            .unwrap_or_else(|| std::env::temp_dir().join("redline-cache"));
        Some(EmbeddingConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: var("REDLINE_EMBEDDINGS_MODEL")
                .unwrap_or_else(|| "text-embedding-3-small".into()),
            api_key: var("REDLINE_EMBEDDINGS_API_KEY")
                .or_else(|| var("REDLINE_LLM_API_KEY"))
                .or_else(|| var("OPENAI_API_KEY"))
                .unwrap_or_default(),
            cache_dir,
            timeout: Duration::from_secs(60),
        })
    }
}

/// An embeddings client with a content-addressed disk cache.
pub struct Embedder {
    config: EmbeddingConfig,
    client: async_openai::Client<OpenAIConfig>,
    /// Texts embedded through the endpoint (not the cache) by this embedder, for reports.
    pub fetched: std::sync::atomic::AtomicUsize,
}

impl Embedder {
    /// A client for `config`.
    pub fn new(config: EmbeddingConfig) -> Result<Embedder> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .context("cannot build the HTTP client")?;
        let oa = OpenAIConfig::new()
            .with_api_base(&config.base_url)
            .with_api_key(&config.api_key);
        let client = async_openai::Client::with_config(oa).with_http_client(http);
        Ok(Embedder {
            config,
            client,
            fetched: Default::default(),
        })
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    fn cache_path(&self, text: &str) -> PathBuf {
        let key = hex::encode(Sha256::digest(
            format!("{}\0{}", self.config.model, text).as_bytes(),
        ));
        self.config
            .cache_dir
            .join("embeddings")
            .join(&key[..2])
            .join(format!("{key}.f32"))
    }

    /// Embeddings of `texts`, L2-normalised, from the cache where present.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out: Vec<Option<Vec<f32>>> = texts
            .iter()
            .map(|t| read_vector(&self.cache_path(t)))
            .collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        for batch in missing.chunks(BATCH) {
            let input: Vec<String> = batch.iter().map(|&i| texts[i].clone()).collect();
            let req = CreateEmbeddingRequest {
                model: self.config.model.clone(),
                input: EmbeddingInput::StringArray(input),
                encoding_format: None,
                user: None,
                dimensions: None,
            };
            let resp = self.client.embeddings().create(req).await.map_err(|e| {
                anyhow!(
                    "embeddings request to {} failed: {}",
                    self.config.base_url,
                    super::scrub(&e.to_string())
                )
            })?;
            if resp.data.len() != batch.len() {
                return Err(anyhow!(
                    "embeddings endpoint returned {} vectors for {} texts",
                    resp.data.len(),
                    batch.len()
                ));
            }
            for e in resp.data {
                let i = *batch.get(e.index as usize).ok_or_else(|| {
                    anyhow!(
                        "embeddings endpoint returned index {} out of range",
                        e.index
                    )
                })?;
                let v = normalize(e.embedding);
                write_vector(&self.cache_path(&texts[i]), &v);
                out[i] = Some(v);
            }
            self.fetched
                .fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| anyhow!("embedding missing")))
            .collect()
    }
}

fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn read_vector(path: &PathBuf) -> Option<Vec<f32>> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() % 4 != 0 || bytes.is_empty() {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// A cache write that fails only costs a later refetch; it is not an error.
fn write_vector(path: &PathBuf, v: &[f32]) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(tmp, path);
    }
}

/// Embeds the knowledge store's chunks (from the cache where possible) and attaches the vectors,
/// so that its searches fuse BM25 with dense similarity.
pub async fn attach(store: &mut redline_core::knowledge::Store, embedder: &Embedder) -> Result<()> {
    let vectors = embedder.embed(store.documents()).await?;
    store.attach_vectors(vectors)
}
