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

/// How the fake answers chat requests: given the request body and its number (0-based), a status,
/// a body and a delay.
pub type Script = Arc<dyn Fn(&Value, usize) -> (u16, Value, std::time::Duration) + Send + Sync>;

#[derive(Default)]
struct Shared {
    requests: Vec<Recorded>,
    /// When set, every request is answered with this status and an OpenAI-style error body.
    fail_with: Option<u16>,
    chat_calls: usize,
    script: Option<Script>,
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
            .route("/v1/chat/completions", post(chat))
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

    /// Scripts the chat endpoint.
    pub fn with_script(
        self,
        script: impl Fn(&Value, usize) -> (u16, Value, std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        self.state.lock().unwrap().script = Some(Arc::new(script));
        self
    }

    /// Chat requests received so far.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == "/v1/chat/completions")
            .collect()
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

async fn chat(
    State(state): State<Arc<Mutex<Shared>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let (n, script) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded {
            path: "/v1/chat/completions".into(),
            authorization: headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
        });
        s.chat_calls += 1;
        (s.chat_calls - 1, s.script.clone())
    };
    let Some(script) = script else {
        return (StatusCode::NOT_FOUND, "no script").into_response();
    };
    let (status, reply, delay) = script(&body, n);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = (StatusCode::from_u16(status).unwrap(), axum::Json(reply)).into_response();
    if status == 429 {
        resp.headers_mut()
            .insert("retry-after", "0".parse().unwrap());
    }
    resp
}

/// A chat completion that calls tools: (name, arguments JSON text).
pub fn tool_calls(calls: &[(&str, &str)]) -> Value {
    let tc: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| json!({"id": format!("call_{i}_{}", rand_suffix()), "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": "fake-large",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": tc}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}
    })
}

/// A chat completion with text only.
pub fn text_reply(text: &str) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000, "model": "fake-large",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 800, "completion_tokens": 40, "total_tokens": 840}
    })
}

/// An OpenAI-style error body.
pub fn error_body(message: &str) -> Value {
    json!({"error": {"message": message, "type": "server_error", "param": null, "code": null}})
}

fn rand_suffix() -> u32 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
