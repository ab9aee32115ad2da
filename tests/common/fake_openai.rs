//! A fake OpenAI-compatible server on 127.0.0.1 for tests: real HTTP, the real wire format.
//! `/v1/embeddings` answers with deterministic bag-of-words vectors (feature hashing), so that
//! similar texts get similar vectors; every request is recorded.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Shared {
    requests: Vec<Recorded>,
    /// When set, every request is answered with this status and an OpenAI-style error body.
    fail_with: Option<u16>,
}

/// A running fake; it stops with the test process.
#[derive(Clone)]
pub struct FakeOpenAi {
    pub base_url: String,
    state: Arc<Mutex<Shared>>,
}

impl FakeOpenAi {
    /// Starts the server on a free port.
    pub fn start() -> FakeOpenAi {
        let state = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Makes every later request fail with `status`.
    pub fn fail_with(&self, status: u16) {
        self.state.lock().unwrap().fail_with = Some(status);
    }
}

/// Feature-hashed bag of words, 256 dimensions.
pub fn embed_text(text: &str) -> Vec<f32> {
    let mut v = vec![0f32; 256];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
    {
        let w = w.to_lowercase();
        let mut h: u32 = 2166136261;
        for b in w.bytes() {
            h = (h ^ b as u32).wrapping_mul(16777619);
        }
        v[(h % 256) as usize] += 1.0;
    }
    v
}

async fn embeddings(
    State(state): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let fail = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            path: "/v1/embeddings".into(),
            authorization: headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
        });
        s.fail_with
    };
    if let Some(status) = fail {
        let err = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return (StatusCode::from_u16(status).unwrap(), axum::Json(err)).into_response();
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "input must be a string or an array of strings",
            )
                .into_response();
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": embed_text(t)}))
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    axum::Json(json!({
        "object": "list",
        "model": body["model"],
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}
