//! Recorded exchanges with a real model (fixtures/llm/*.json, written by
//! `scripts/record-transcripts.sh` with REDLINE_LLM_RECORD), replayed through the fake server: the
//! agent must read what the real model said, quirks and all, and reach the same findings.
//! After an intended change to validation, `REDLINE_REPLAY_BLESS=1 cargo test --test replay`
//! rewrites the expected findings (never the exchanges); review that diff like any other.

use crate::common::fake_openai::FakeOpenAi;
use crate::common::*;
use serde_json::Value;
use std::time::Duration;

fn transcripts() -> Vec<std::path::PathBuf> {
    let dir = project_root().join("fixtures/llm");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn key(f: &Value) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        f["path"], f["line"], f["severity"], f["category"], f["source"]
    )
}

#[test]
fn recorded_real_model_transcripts_replay_to_the_same_findings() {
    let files = transcripts();
    let mut replayed = 0;
    for path in &files {
        let t: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let case = t["change"]
            .as_str()
            .unwrap()
            .strip_prefix("case ")
            .expect("transcripts are of case folders")
            .to_string();
        let exchanges = t["exchanges"].as_array().unwrap().clone();
        let n = exchanges.len();
        let fake = FakeOpenAi::start().with_script(move |_, i| match exchanges.get(i) {
            Some(x) => {
                let text = x["response"].as_str().unwrap_or("");
                (
                    x["status"].as_u64().unwrap_or(200) as u16,
                    serde_json::from_str(text).unwrap_or(Value::String(text.into())),
                    Duration::ZERO,
                )
            }
            None => (
                500,
                serde_json::json!({"error": {"message": "transcript exhausted"}}),
                Duration::ZERO,
            ),
        });
        let mut cmd = redline();
        cmd.current_dir(project_root())
            .args(["review", &case, "--engine", "agent", "--format", "json"]);
        cmd.env("REDLINE_LLM_BASE_URL", &fake.base_url)
            .env(
                "REDLINE_LLM_MODEL",
                t["model"].as_str().unwrap_or("qwen2.5-coder-1.5b"),
            )
            .env("REDLINE_LLM_LOCAL", "1")
            .env("REDLINE_AGENT_CONCURRENCY", "1")
            .env("REDLINE_AGENT_CONTEXT_TOKENS", "12000")
            .env("REDLINE_LLM_BACKOFF_MS", "1")
            // As recorded: transcripts from before verification existed made no verification calls.
            .env(
                "REDLINE_AGENT_VERIFY",
                if t["verify"].as_bool().unwrap_or(false) {
                    "1"
                } else {
                    "0"
                },
            )
            .env(
                "REDLINE_AGENT_SAMPLES",
                t["samples"].as_u64().unwrap_or(1).to_string(),
            )
            .env_remove("REDLINE_LLM_API_KEY")
            .env_remove("OPENAI_API_KEY");
        let o = cmd.output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            fake.chat_requests().len(),
            n,
            "{}: the agent made a different number of calls",
            path.display()
        );
        if std::env::var_os("REDLINE_REPLAY_BLESS").is_some() {
            // After an intended change to validation: keep the model's exchanges, take the new
            // findings. The exchanges are what the real model said and are never edited.
            let mut t = t.clone();
            t["findings"] = v["findings"].clone();
            t["quirks"] = v["summary"]["agent"]["quirks"].clone();
            std::fs::write(path, serde_json::to_string_pretty(&t).unwrap() + "\n").unwrap();
            replayed += 1;
            continue;
        }
        let mut got: Vec<String> = v["findings"].as_array().unwrap().iter().map(key).collect();
        let mut want: Vec<String> = t["findings"].as_array().unwrap().iter().map(key).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", path.display());
        assert_eq!(
            v["summary"]["agent"]["quirks"],
            t["quirks"],
            "{}",
            path.display()
        );
        replayed += 1;
    }
    assert_eq!(replayed, files.len());
    // Until transcripts are recorded the test says so instead of passing on nothing.
    assert!(
        replayed >= 10 || std::env::var_os("REDLINE_ALLOW_FEW_TRANSCRIPTS").is_some(),
        "only {replayed} transcripts in fixtures/llm"
    );
}
