//! The data boundary: secrets planted in a diff and in a file the agent asks for never reach the
//! fake LLM server; repository policy keeps code from endpoints it does not allow.

use crate::common::fake_openai::{FakeOpenAi, error_body, tool_calls};
use crate::common::*;
use std::time::Duration;

/// Every kind of secret the redactor covers, each a value that must not leave.
const SECRETS: &[&str] = &[
    "AKIAQWERTYUIOPASDFGH",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQWERTYKQ",
    "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "sk-proj-Zx81LmQpW93nVbTy77KkAa0011",
    "xoxb-1234567890-abcdefghijkl",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "MIIEowIBAAKCAQEAq1w2e3r4t5y6u7i8o9p0",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "Hunter2Pass",
    "Tr0ub4dor&3",
    "9f8a7sd6f5a4s3d2f1g0h9j8",
];

fn head_config() -> String {
    format!(
        concat!(
            "import os\n\n",
            "AWS_ACCESS_KEY_ID = \"{}\"\n",
            "aws_secret_access_key = \"{}\"\n",
            "GITHUB_TOKEN = \"{}\"\n",
            "STRIPE_KEY = \"{}\"\n",
            "OPENAI_KEY = \"{}\"\n",
            "SLACK = \"{}\"\n",
            "MAPS = \"{}\"\n",
            "DATABASE_URL = \"postgres://billing:{}@db.internal:5432/billing\"\n",
            "db_password = \"{}\"\n",
        ),
        SECRETS[0],
        SECRETS[1],
        SECRETS[2],
        SECRETS[3],
        SECRETS[4],
        SECRETS[5],
        SECRETS[6],
        SECRETS[9],
        SECRETS[10]
    )
}

fn keys_file() -> String {
    format!(
        "PRIVATE_KEY = \"\"\"-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\"\"\"\nSESSION_JWT = \"{}\"\nAPI_TOKEN = \"{}\"\n\ndef load():\n    return PRIVATE_KEY\n",
        SECRETS[7], SECRETS[8], SECRETS[11]
    )
}

fn run(dir: &std::path::Path, fake: &FakeOpenAi, env: &[(&str, &str)]) -> Run {
    let mut all = vec![("REDLINE_AGENT_CONCURRENCY", "1")];
    all.extend_from_slice(env);
    let r = agent_review(dir, &fake.base_url, &all);
    for s in SECRETS {
        assert!(!r.stderr.contains(s), "a secret in stderr");
    }
    r
}

#[test]
fn no_planted_secret_reaches_the_llm_and_the_finding_stays_on_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a/app/config.py", b"import os\n"),
            ("b/app/config.py", head_config().as_bytes()),
            ("b/app/keys.py", keys_file().as_bytes()),
        ],
    );
    // The model reads app/keys.py through the tool, then comments quoting the placeholder.
    let fake = FakeOpenAi::start().with_script(|_, n| match n {
        0 => (200, tool_calls(&[("get_file_content", r#"{"path": "app/keys.py", "start_line": 1, "end_line": 20}"#)]), Duration::ZERO),
        1 => (200, tool_calls(&[
            ("post_review_comment", r#"{"line": 3, "severity": "critical", "category": "hardcoded-secret", "body": "An AWS key <secret:1> is committed; rotate it.", "confidence": 0.95, "code_reference": "AWS_ACCESS_KEY_ID = \"<secret:1>\"", "guideline_ids": ["sec.hardcoded-secret"]}"#),
            ("finish_file", r#"{"summary": "secrets"}"#),
        ]), Duration::ZERO),
        2 => (200, tool_calls(&[("finish_file", r#"{"summary": "more secrets"}"#)]), Duration::ZERO),
        _ => (500, error_body("unexpected"), Duration::ZERO),
    });
    let r = run(dir.path(), &fake, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let requests = fake.chat_requests();
    assert!(requests.len() >= 2);
    let tool_result_seen = requests[1].body.to_string().contains("<secret:");
    assert!(
        tool_result_seen,
        "the file the agent asked for was sent, redacted"
    );
    for q in &requests {
        let body = q.body.to_string();
        for s in SECRETS {
            assert!(!body.contains(s), "secret {s} reached the LLM");
        }
    }
    let v = r.json();
    // The rules report the key on its line, and the agent's confirmation keeps the rule's id.
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["line"] == 3 && f["path"] == "app/config.py")
        .expect("finding on line 3");
    assert_eq!(f["category"], "hardcoded-secret");
    assert_eq!(f["severity"], "critical");
    assert!(f["rule_id"].as_str().unwrap().starts_with("py.secret."));
    // No finding, message or record repeats a secret.
    for s in SECRETS {
        assert!(!r.stdout.contains(s), "secret {s} in the review output");
    }
    let agent = &v["summary"]["agent"];
    assert!(
        agent["redactions"].as_u64().unwrap() >= SECRETS.len() as u64,
        "{agent}"
    );
    let file = agent["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["path"] == "app/config.py")
        .unwrap();
    assert!(file["sent_bytes"].as_u64().unwrap() > 0);
    assert_eq!(file["sent_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(file["endpoint"], "primary");
}

#[test]
fn local_only_and_off_keep_code_from_a_hosted_endpoint() {
    for policy in ["local-only", "off"] {
        let dir = tempfile::tempdir().unwrap();
        write_files(
            dir.path(),
            &[
                ("a/app/config.py", b"import os\n"),
                ("b/app/config.py", head_config().as_bytes()),
                (
                    "b/.redline.toml",
                    format!("llm = \"{policy}\"\n").as_bytes(),
                ),
            ],
        );
        let fake = FakeOpenAi::start().with_script(|_, _| {
            (
                200,
                tool_calls(&[("finish_file", r#"{"summary":"s"}"#)]),
                Duration::ZERO,
            )
        });
        let r = run(dir.path(), &fake, &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            fake.chat_requests().len(),
            0,
            "{policy}: code went to a non-local endpoint"
        );
        let v = r.json();
        let notes = v["summary"]["notes"].to_string();
        assert!(
            notes.contains(&format!("llm = \\\"{policy}\\\"")),
            "{notes}"
        );
        assert_eq!(v["summary"]["engine"], "rules");
        // The rules review still stands.
        assert!(
            v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["category"] == "hardcoded-secret")
        );
    }
    // local-only with an endpoint marked local: the agent runs.
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a/app/config.py", b"import os\n"),
            ("b/app/config.py", head_config().as_bytes()),
            ("b/.redline.toml", b"llm = \"local-only\"\n"),
        ],
    );
    let fake = FakeOpenAi::start().with_script(|_, _| {
        (
            200,
            tool_calls(&[("finish_file", r#"{"summary":"s"}"#)]),
            Duration::ZERO,
        )
    });
    let r = run(dir.path(), &fake, &[("REDLINE_LLM_LOCAL", "1")]);
    assert_eq!(r.json()["summary"]["engine"], "agent");
    assert_eq!(fake.chat_requests().len(), 1);
}

#[test]
fn never_send_paths_stay_home() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a/app/main.py", b"x = 1\n"),
            ("b/app/main.py", b"x = 2\n"),
            (
                "b/secrets/vault.py",
                b"VAULT_TOKEN_MARKER = \"plain-but-private-0042\"\n",
            ),
            ("b/.redline.toml", b"never_send = [\"secrets/**\"]\n"),
        ],
    );
    let fake = FakeOpenAi::start().with_script(|_, n| match n {
        0 => (
            200,
            tool_calls(&[(
                "get_file_content",
                r#"{"path": "secrets/vault.py", "start_line": 1, "end_line": 5}"#,
            )]),
            Duration::ZERO,
        ),
        _ => (
            200,
            tool_calls(&[("finish_file", r#"{"summary":"s"}"#)]),
            Duration::ZERO,
        ),
    });
    let v = run(dir.path(), &fake, &[]).json();
    for q in fake.chat_requests() {
        assert!(!q.body.to_string().contains("plain-but-private-0042"));
        assert!(!q.body.to_string().contains("VAULT_TOKEN_MARKER"));
    }
    let vault = v["summary"]["agent"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "secrets/vault.py")
        .unwrap()
        .clone();
    assert_eq!(vault["coverage"], "rules-only");
    assert!(
        fake.chat_requests()[1]
            .body
            .to_string()
            .contains("may not be sent to an LLM")
    );
}

#[test]
fn redact_command_shows_what_would_be_masked() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("app/config.py", head_config().as_bytes()),
            ("app/clean.py", b"password = request.form['password']\n"),
        ],
    );
    let r = run_in(
        dir.path(),
        &["redact", "app/config.py", "app/clean.py", "--show"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("app/config.py: 9 redaction(s)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("app/clean.py: 0 redaction(s)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("AWS_ACCESS_KEY_ID = \"<secret:1>\""),
        "{}",
        r.stdout
    );
    for s in SECRETS {
        assert!(!r.stdout.contains(s), "{s} shown");
    }
    assert_eq!(run_in(dir.path(), &["redact", "missing.py"]).code, 2);
}
