//! Every rule's positive and negative examples, reviewed by the binary as added files in a folder
//! pair: each `hit` example must get a finding from its rule, each `clean` one must not.

use crate::common::*;
use redline_core::rules::{Expect, RuleSet};

fn extension(lang: &str) -> &'static str {
    match lang {
        "python" => "py",
        "go" => "go",
        "typescript" => "ts",
        "tsx" => "tsx",
        _ => "js",
    }
}

#[test]
fn every_rule_example_through_the_binary() {
    let rules = RuleSet::with_examples(&[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("base")).unwrap();
    let mut expectations = Vec::new();
    for rule in rules.rules() {
        for (i, ex) in rule.examples.iter().enumerate() {
            let lang = ex
                .language
                .clone()
                .unwrap_or_else(|| rule.languages[0].clone());
            let path = format!("{}/{}.{}", rule.id, i, extension(&lang));
            write_files(&dir.path().join("head"), &[(&path, ex.code.as_bytes())]);
            expectations.push((path, rule.id.clone(), ex.expect));
        }
    }
    assert!(
        expectations.len() >= 2 * rules.len(),
        "every rule has a hit and a clean example"
    );
    let r = run_in(
        dir.path(),
        &[
            "review",
            "--base-dir",
            "base",
            "--head-dir",
            "head",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = findings(&r.json());
    let mut failures = Vec::new();
    for (path, rule, expect) in &expectations {
        let hit = got.iter().any(|(p, _, r)| p == path && r == rule);
        if hit != (*expect == Expect::Hit) {
            failures.push(format!("{path}: expected {expect:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn knowledge_check_passes_and_search_finds_entries() {
    let root = project_root();
    let r = run_in(&root, &["knowledge", "check"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.trim_end().ends_with("ok"));
    let r = run_in(
        &root,
        &[
            "knowledge",
            "search",
            "tls.Config InsecureSkipVerify",
            "--language",
            "go",
            "--k",
            "3",
        ],
    );
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("1. sec.tls-verification-disabled"),
        "{}",
        r.stdout
    );
    let r = run_in(
        &root,
        &[
            "knowledge",
            "search",
            "cursor.execute f-string query",
            "--language",
            "python",
        ],
    );
    assert!(r.stdout.starts_with("1. sec.sql-injection"), "{}", r.stdout);
}

#[test]
fn knowledge_check_reports_broken_team_rules() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[(
            "team/no-print.rules.toml",
            br#"
[[rule]]
id = "team.no-print"
languages = ["python"]
severity = "suggestion"
category = "logic-error"
guidance = ["team.missing-entry"]
message = "use logging"
query = '(call function: (identifier) @f (#eq? @f "print")) @sink'
report = "sink"
[[rule.examples]]
expect = "hit"
code = "print(1)"
[[rule.examples]]
expect = "hit"
code = "log.info(1)"
"#,
        )],
    );
    let r = run_in(dir.path(), &["knowledge", "check", "--extra", "team"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("team.no-print example 2 (python): expected hit, got no hit"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("guidance entry `team.missing-entry` does not exist"),
        "{}",
        r.stdout
    );
    write_files(
        dir.path(),
        &[("bad/x.rules.toml", b"[[rule]]\nid = \"x\"\n")],
    );
    let r = run_in(dir.path(), &["knowledge", "check", "--extra", "bad"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("missing field"), "{}", r.stderr);
}

#[test]
fn knowledge_list_and_tree_help_rule_authors() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            (
                "a.go",
                b"package a\n\nvar c = tls.Config{InsecureSkipVerify: true}\n",
            ),
            ("notes.txt", b"x\n"),
        ],
    );
    let r = run_in(dir.path(), &["knowledge", "list"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("sec.sql-injection") && r.stdout.contains("go.tls.insecure-skip-verify"),
        "{}",
        r.stdout
    );
    let r = run_in(dir.path(), &["knowledge", "tree", "a.go"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("keyed_element L3"), "{}", r.stdout);
    assert!(
        r.stdout.contains("identifier L3 `InsecureSkipVerify`"),
        "{}",
        r.stdout
    );
    let r = run_in(dir.path(), &["knowledge", "tree", "notes.txt"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unsupported language"), "{}", r.stderr);
}
