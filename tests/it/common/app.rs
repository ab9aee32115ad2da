//! The GitHub App under test: `redline serve` / `redline worker` as real processes, signed webhook
//! deliveries over HTTP, and `redline jobs` to read the store.

use super::fake_github::{FakeGitHub, FakePr, fake_file};
use super::{project_root, redline};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-webhook-secret-9f3a";
pub const APP_ID: u64 = 12345;
pub const REPO: &str = "acme/shop";
pub const HEAD_1: &str = "1111111111111111111111111111111111111111";
pub const HEAD_2: &str = "2222222222222222222222222222222222222222";
/// A token-shaped secret planted in the pull request: it must never reach GitHub or the logs.
pub const PLANTED_TOKEN: &str = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";

pub const BASE_PY: &str =
    "import sqlite3\n\n\ndef connect():\n    return sqlite3.connect(\"app.db\")\n";

/// Three critical findings: SQL built from input (line 15), a shell command from input (line 21)
/// and a hard-coded token (line 25).
pub fn head_py() -> String {
    format!(
        r#"import os
import sqlite3
import subprocess

from flask import request


def connect():
    return sqlite3.connect("app.db")


def report():
    name = request.args.get("name")
    db = connect()
    rows = db.execute("SELECT * FROM reports WHERE owner = '" + name + "'").fetchall()
    return rows


def export():
    target = request.args.get("target")
    subprocess.run("tar czf /tmp/out.tgz " + target, shell=True)
    return "ok"


API_TOKEN = "{PLANTED_TOKEN}"
"#
    )
}

/// A fake GitHub with installation 42 on acme/shop and pull request 7 at `HEAD_1`.
pub fn github_with_pr() -> FakeGitHub {
    let gh = FakeGitHub::start(APP_ID);
    gh.add_installation(42, &[REPO]);
    gh.set_pr(
        REPO,
        FakePr::new(
            7,
            HEAD_1,
            vec![
                fake_file("app/reports.py", Some(BASE_PY), Some(&head_py())),
                fake_file("README.md", Some("# shop\n"), Some("# shop\n\nReports.\n")),
            ],
        ),
    );
    gh
}

/// A running `redline serve` or `redline worker`, killed on drop; its stderr (logs) is kept.
pub struct Proc {
    pub child: Child,
    pub addr: Option<String>,
    log: PathBuf,
}

impl Proc {
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The environment of a server or worker against `gh`, with its database in `dir`.
pub fn app_env(dir: &Path, gh: &FakeGitHub) -> Vec<(String, String)> {
    [
        ("REDLINE_LISTEN", "127.0.0.1:0".to_string()),
        (
            "REDLINE_DATABASE_URL",
            format!("sqlite://{}", dir.join("redline.db").display()),
        ),
        ("REDLINE_WEBHOOK_SECRET", SECRET.to_string()),
        ("REDLINE_GITHUB_APP_ID", APP_ID.to_string()),
        (
            "REDLINE_GITHUB_PRIVATE_KEY",
            project_root()
                .join("fixtures/github/test-app-key.pem")
                .display()
                .to_string(),
        ),
        ("REDLINE_GITHUB_API_URL", gh.url.clone()),
        ("REDLINE_WORKERS", "2".into()),
        ("REDLINE_LEASE_SECS", "3".into()),
        ("REDLINE_GITHUB_WRITE_INTERVAL_MS", "200".into()),
        ("REDLINE_SHUTDOWN_GRACE_SECS", "5".into()),
        ("RUST_LOG", "info".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Starts `redline <command>` with `env`; for `serve`, waits for the address it prints.
pub fn start(command: &str, dir: &Path, env: &[(String, String)]) -> Proc {
    start_under(&[], command, dir, env)
}

/// As `start`, run by `wrapper` (e.g. `prlimit --nofile=512:512`).
pub fn start_under(wrapper: &[&str], command: &str, dir: &Path, env: &[(String, String)]) -> Proc {
    let log = dir.join(format!(
        "{command}-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let mut cmd = match wrapper {
        [] => redline(),
        [program, args @ ..] => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(super::redline_bin()).env("NO_COLOR", "1");
            c
        }
    };
    cmd.arg(command)
        .current_dir(dir)
        .env_remove("REDLINE_LLM_BASE_URL")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start redline");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "redline {command} printed nothing: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    let addr = first
        .strip_prefix("redline listening on ")
        .map(str::to_string);
    Proc { child, addr, log }
}

/// `sha256=` + HMAC-SHA256 of `body` with the test secret.
pub fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook fixture, with some fields replaced.
pub fn payload(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let path = project_root().join("fixtures/github/webhooks").join(name);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The `pull_request` opened delivery for PR 7 at `HEAD_1`, as fixed in the fixture.
pub fn opened() -> Vec<u8> {
    payload("pull_request.opened.json", |_| {})
}

/// POSTs a delivery; `signature` None sends no signature header.
pub async fn deliver(
    addr: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut req = client
        .post(format!("{addr}/webhook"))
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("user-agent", "GitHub-Hookshot/test")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("x-hub-signature-256", s);
    }
    let resp = req.send().await.expect("webhook request");
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, v)
}

/// A signed delivery.
pub async fn deliver_signed(addr: &str, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
    deliver(addr, event, delivery, body, Some(sign(body))).await
}

/// `redline jobs --format json` against the database in `dir`.
pub fn jobs(dir: &Path) -> Vec<Value> {
    jobs_in(&format!("sqlite://{}", dir.join("redline.db").display()))
}

/// `redline jobs --format json` against the database at `url`.
pub fn jobs_in(url: &str) -> Vec<Value> {
    let out = redline()
        .args(["jobs", "--format", "json", "--limit", "100"])
        .env("REDLINE_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redline jobs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `cond` every 100 ms until it holds or `secs` pass.
pub async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the server's worker has let go of job `id`: finished it (whatever the outcome),
/// failed it, or released it. The signal is the worker's own log line for that job.
pub async fn wait_job_ended(server: &Proc, id: i64, secs: u64) {
    let ended = [
        "job finished",
        "job failed",
        "job stopped",
        "job released",
        "job rescheduled",
    ];
    let tag = format!("job={id}");
    let names_job = |l: &str| {
        l.match_indices(&tag).any(|(i, _)| {
            !l[i + tag.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
    };
    wait_for(secs, &format!("the worker to let go of job {id}"), || {
        server
            .logs()
            .lines()
            .any(|l| names_job(l) && ended.iter().any(|e| l.contains(e)))
    })
    .await;
}

/// Waits until every job in the store has finished (done, dead or cancelled).
pub async fn wait_jobs_settled(dir: &Path, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let js = jobs(dir);
        if !js.is_empty()
            && js.iter().all(|j| {
                ["done", "dead", "cancelled"].contains(&j["status"].as_str().unwrap_or(""))
            })
        {
            return js;
        }
        assert!(Instant::now() < deadline, "jobs did not settle: {js:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
