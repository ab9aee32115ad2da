//! Helpers shared by the integration tests: run the real binary, make git repositories.

pub mod app;
pub mod fake_github;
pub mod fake_openai;
pub mod rendered;
pub mod services;
pub mod threads;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `redline` binary under test: this build's, or the one `REDLINE_TEST_BIN` names (to run
/// the same tests against another build, such as the release before a change).
pub fn redline_bin() -> PathBuf {
    std::env::var_os("REDLINE_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_redline")))
}

/// The built `redline` binary.
pub fn redline() -> Command {
    let mut c = Command::new(redline_bin());
    c.env("NO_COLOR", "1");
    c
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `redline review --base-dir a --head-dir b --engine agent --format json` in `dir`, against the
/// OpenAI-compatible server at `base_url` (model `fake-large`), with `env` set on top.
pub fn agent_review(dir: &Path, base_url: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = redline();
    cmd.current_dir(dir).args([
        "review",
        "--base-dir",
        "a",
        "--head-dir",
        "b",
        "--engine",
        "agent",
        "--format",
        "json",
    ]);
    cmd.env("REDLINE_LLM_BASE_URL", base_url)
        .env("REDLINE_LLM_MODEL", "fake-large")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_cmd(&mut cmd)
}

/// Runs a prepared command.
pub fn run_cmd(cmd: &mut Command) -> Run {
    to_run(cmd.stdin(Stdio::null()).output().expect("binary runs"))
}

fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `redline review --base-dir a --head-dir b --format json` in `dir`.
pub fn review_folders(dir: &Path) -> Run {
    review_folders_with(dir, &[])
}

/// `review_folders` with more options (`--engine rules`).
pub fn review_folders_with(dir: &Path, options: &[&str]) -> Run {
    let mut args = vec![
        "review",
        "--base-dir",
        "a",
        "--head-dir",
        "b",
        "--format",
        "json",
    ];
    args.extend_from_slice(options);
    run_in(dir, &args)
}

/// Runs `redline ARGS` in `dir`.
pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    to_run(
        redline()
            .current_dir(dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("binary runs"),
    )
}

/// Runs `redline ARGS` with `input` on standard input.
pub fn run_with_stdin(dir: &Path, args: &[&str], input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = redline()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    to_run(child.wait_with_output().unwrap())
}

/// Writes `files` (path, contents) under `root`, creating folders.
pub fn write_files(root: &Path, files: &[(&str, &[u8])]) {
    for (p, c) in files {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
}

/// Runs git in `dir` with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new repository with one commit of `files` on main.
pub fn repo_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    write_files(dir.path(), files);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "base"]);
    dir
}

/// Finding (path, line, rule id) triples of a JSON review.
pub fn findings(v: &serde_json::Value) -> Vec<(String, u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["rule_id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Skip reasons by path of a JSON review.
pub fn skipped(v: &serde_json::Value) -> Vec<(String, String)> {
    v["summary"]["files_skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The repository root (for fixtures and examples).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
