//! Output formats and exit codes of `redline review`.

use crate::common::*;

fn sample_repo() -> tempfile::TempDir {
    let repo = repo_with(&[("svc/app.py", b"import os\n")]);
    write_files(repo.path(), &[(
        "svc/app.py",
        b"import os\n\n\ndef run(name, opts={}):\n    os.system(\"convert \" + name)\n    return opts\n",
    )]);
    git(repo.path(), &["commit", "-qam", "c"]);
    repo
}

#[test]
fn json_has_findings_and_summary() {
    let repo = sample_repo();
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    let f = &v["findings"][0];
    for key in [
        "path",
        "line",
        "end_line",
        "severity",
        "category",
        "message",
        "confidence",
        "rule_id",
        "source",
    ] {
        assert!(!f[key].is_null(), "{key} missing in {f}");
    }
    let s = &v["summary"];
    assert_eq!(s["counts"]["critical"], 1);
    assert_eq!(s["counts"]["warning"], 1);
    assert_eq!(s["files_reviewed"], 1);
    assert_eq!(s["verdict"], "request_changes");
    assert!(s["rules_version"].as_str().unwrap().starts_with("0.1.0+"));
    assert!(
        s["engine_note"]
            .as_str()
            .unwrap()
            .contains("no LLM configured")
    );
    assert!(s["timings_ms"]["total_ms"].as_f64().unwrap() >= 0.0);
    let ctx = &s["files"][0]["context"];
    assert!(ctx["context_lines"].as_u64().unwrap() > 0);
    // Tokens are counted only when an LLM reads the context (tests/it/agent.rs checks them).
    assert!(ctx["context_tokens"].is_null() && s["context_tokens"].is_null());
}

#[test]
fn sarif_is_2_1_0_with_rules_and_locations() {
    let repo = sample_repo();
    let v = run_in(repo.path(), &["review", "--format", "sarif"]).json();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "redline");
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        vec!["py.cmd.os-system", "py.mutable-default-argument"]
    );
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx], r["ruleId"].as_str().unwrap());
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "svc/app.py");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 4);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
    }
}

#[test]
fn text_is_plain_when_not_a_terminal_and_markdown_reads_as_a_summary() {
    let repo = sample_repo();
    let r = run_in(repo.path(), &["review"]);
    assert_eq!(r.code, 0);
    assert!(!r.stdout.contains('\x1b'), "colour codes in piped output");
    assert!(
        r.stdout.contains("svc/app.py:5 critical command-injection"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains(">    5 |     os.system(\"convert \" + name)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("rules review"), "{}", r.stdout);
    let colored = run_in(repo.path(), &["review", "--color", "always"]);
    assert!(colored.stdout.contains("\x1b[1;31mcritical"));
    let md = run_in(repo.path(), &["review", "--format", "markdown"]).stdout;
    assert!(md.starts_with("## redline review"));
    assert!(md.contains("**Changes requested**"));
    assert!(md.contains("| `svc/app.py` | modified | reviewed"));
}

#[test]
fn fail_on_sets_the_exit_code() {
    let repo = sample_repo();
    assert_eq!(
        run_in(repo.path(), &["review", "--fail-on", "critical"]).code,
        1
    );
    assert_eq!(
        run_in(repo.path(), &["review", "--fail-on", "warning"]).code,
        1
    );
    assert_eq!(
        run_in(repo.path(), &["review", "--fail-on", "never"]).code,
        0
    );
    assert_eq!(
        run_in(
            repo.path(),
            &[
                "review",
                "--fail-on",
                "critical",
                "--min-severity",
                "warning",
                "--output",
                "out.json",
                "--format",
                "json"
            ]
        )
        .code,
        1
    );
    assert!(repo.path().join("out.json").is_file());
    let clean = repo_with(&[("a.py", b"x = 1\n")]);
    write_files(clean.path(), &[("a.py", b"x = 2\n")]);
    git(clean.path(), &["commit", "-qam", "c"]);
    let r = run_in(clean.path(), &["review", "--fail-on", "suggestion"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("No findings."));
}
