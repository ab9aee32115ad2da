//! Retrieval through the binary: BM25 alone, and fused with embeddings from a fake
//! OpenAI-compatible server over HTTP (cached on disk by content hash).

use crate::common::fake_openai::FakeOpenAi;
use crate::common::*;

const KEY: &str = "sk-test-0123456789abcdef";

fn eval_with(fake: Option<&FakeOpenAi>, cache: &std::path::Path, out: &std::path::Path) -> Run {
    let mut cmd = redline();
    cmd.current_dir(project_root()).args([
        "knowledge",
        "eval",
        "fixtures/retrieval/labelled.json",
        "--json",
        out.to_str().unwrap(),
    ]);
    cmd.env("REDLINE_CACHE_DIR", cache)
        .env_remove("REDLINE_EMBEDDINGS_BASE_URL");
    if let Some(f) = fake {
        cmd.env("REDLINE_EMBEDDINGS_BASE_URL", &f.base_url)
            .env("REDLINE_EMBEDDINGS_API_KEY", KEY)
            .env("REDLINE_EMBEDDINGS_MODEL", "fake-embed-1");
    }
    let o = cmd.output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

#[test]
fn bm25_alone_meets_the_recall_aim() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.json");
    let r = eval_with(None, dir.path(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(v[0]["pairs"].as_u64().unwrap() >= 50);
    // The issue's aim; a regression below it is worth a failing test.
    assert!(v[0]["recall_at_k"].as_f64().unwrap() >= 0.9, "{}", r.stdout);
}

#[test]
fn embeddings_from_a_fake_server_are_fused_and_cached() {
    let fake = FakeOpenAi::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scores.json");
    let r = eval_with(Some(&fake), dir.path(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("bm25+embeddings (fake-embed-1, RRF)"),
        "{}",
        r.stdout
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v[1]["mrr"].as_f64().unwrap() > 0.5);
    let reqs = fake.requests();
    assert!(!reqs.is_empty());
    for q in &reqs {
        assert_eq!(
            q.authorization.as_deref(),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(q.body["model"], "fake-embed-1");
        assert!(q.body["input"].as_array().unwrap().len() <= 64);
    }
    let embedded: usize = reqs
        .iter()
        .map(|q| q.body["input"].as_array().unwrap().len())
        .sum();
    assert!(
        embedded > 200,
        "chunks and queries were embedded: {embedded}"
    );
    // Second run: every vector comes from the disk cache.
    let r = eval_with(Some(&fake), dir.path(), &out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fake.requests().len(), reqs.len(), "the cache was not used");
    assert!(!r.stdout.contains(KEY) && !r.stderr.contains(KEY));
}

#[test]
fn a_failing_endpoint_is_a_clear_error_without_the_key() {
    let fake = FakeOpenAi::start();
    fake.fail_with(401);
    let dir = tempfile::tempdir().unwrap();
    let r = eval_with(Some(&fake), dir.path(), &dir.path().join("s.json"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("embeddings request to http://127.0.0.1"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(KEY), "{}", r.stderr);
}

#[test]
fn search_reads_the_repository_knowledge_folders() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[
        (".redline.toml", b"[knowledge]\nextra = [\"docs/review\"]\n"),
        ("docs/review/billing.md", b"# Billing: never call legacy_invoice_api\nUse the invoices service client instead of legacy_invoice_api.\n"),
    ]);
    let r = run_in(
        dir.path(),
        &[
            "knowledge",
            "search",
            "legacy_invoice_api(order)",
            "--repo",
            ".",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("1. repo.billing"), "{}", r.stdout);
}

#[test]
fn plain_words_find_the_entry_that_uses_the_technical_ones() {
    let r = run_in(
        &project_root(),
        &[
            "knowledge",
            "search",
            "unpickling data received from the network",
            "--language",
            "python",
            "--k",
            "5",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("1. sec.unsafe-deserialization"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_agent_retrieves_with_embeddings_when_an_endpoint_is_configured() {
    use crate::common::fake_openai::tool_calls;
    let fake = FakeOpenAi::start().with_script(|_, _| {
        (
            200,
            tool_calls(&[("finish_file", r#"{"summary":"s"}"#)]),
            std::time::Duration::ZERO,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a/app/load.py", b"import json\n"),
            (
                "b/app/load.py",
                b"import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n",
            ),
        ],
    );
    let cache = dir.path().join("cache");
    let r = agent_review(
        dir.path(),
        &fake.base_url,
        &[
            ("REDLINE_EMBEDDINGS_BASE_URL", &fake.base_url),
            ("REDLINE_EMBEDDINGS_MODEL", "fake-embed-1"),
            ("REDLINE_CACHE_DIR", cache.to_str().unwrap()),
            ("REDLINE_AGENT_VERIFY", "0"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let embedded = fake
        .requests()
        .into_iter()
        .filter(|x| x.path == "/v1/embeddings")
        .count();
    // The knowledge chunks (in batches), then the file's query.
    assert!(embedded >= 2, "{embedded} embeddings requests");
    let chat = &fake.chat_requests()[0];
    let user = chat.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("[sec.unsafe-deserialization]"), "{user}");
}
