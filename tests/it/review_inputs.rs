//! `redline review` driven through the binary on git repositories and folders the tests create:
//! every input mode, every kind of changed file, and bad input.

use crate::common::*;

const SQLI_BASE: &[u8] = b"import sqlite3\n\n\ndef find(cur, name):\n    cur.execute(\"SELECT id FROM users WHERE name = ?\", (name,))\n    return cur.fetchall()\n";
const SQLI_HEAD: &[u8] = b"import sqlite3\n\n\ndef find(cur, name):\n    cur.execute(f\"SELECT id FROM users WHERE name = '{name}'\")\n    return cur.fetchall()\n";

#[test]
fn git_revisions_report_only_changed_lines() {
    let repo = repo_with(&[
        ("app/users.py", SQLI_BASE),
        ("app/old.py", b"def g(x=[]):\n    return x\n"),
    ]);
    let base = git(repo.path(), &["rev-parse", "HEAD"]);
    write_files(repo.path(), &[("app/users.py", SQLI_HEAD)]);
    git(repo.path(), &["commit", "-qam", "inject"]);
    let r = run_in(
        repo.path(),
        &[
            "review", "--base", &base, "--head", "HEAD", "--format", "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    // The mutable default in the untouched file is not on a changed line: not reported.
    assert_eq!(
        findings(&v),
        vec![(
            "app/users.py".to_string(),
            5,
            "py.sql.dynamic-query".to_string()
        )]
    );
    assert_eq!(v["summary"]["engine"], "rules");
    assert_eq!(v["findings"][0]["source"], "rules");
    assert_eq!(v["findings"][0]["severity"], "critical");
}

#[test]
fn default_base_is_the_merge_base_with_main() {
    let repo = repo_with(&[("app/users.py", SQLI_BASE)]);
    git(repo.path(), &["checkout", "-q", "-b", "feature"]);
    write_files(repo.path(), &[("app/users.py", SQLI_HEAD)]);
    git(repo.path(), &["commit", "-qam", "inject"]);
    let r = run_in(repo.path(), &["review", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert_eq!(findings(&v).len(), 1);
    assert!(
        v["summary"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("merge-base with main"),
        "{}",
        v["summary"]["notes"]
    );
    // In text too, the note goes to stderr: stdout (pipes, --output files) has the report only.
    let r = run_in(repo.path(), &["review"]);
    assert!(!r.stdout.contains("note:"), "{}", r.stdout);
    assert!(
        !r.stdout.starts_with('\n'),
        "no leading blank line: {:?}",
        r.stdout
    );
    assert!(
        r.stderr.contains("note: base: merge-base with main"),
        "{}",
        r.stderr
    );
    // On main itself, the last commit is reviewed.
    git(repo.path(), &["checkout", "-q", "main"]);
    git(repo.path(), &["merge", "-q", "feature"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    assert_eq!(findings(&v).len(), 1);
}

#[test]
fn worktree_includes_staged_unstaged_and_untracked_files() {
    let repo = repo_with(&[("app/users.py", SQLI_BASE), ("web/a.js", b"const x = 1;\n")]);
    write_files(repo.path(), &[("app/users.py", SQLI_HEAD)]);
    write_files(
        repo.path(),
        &[(
            "web/a.js",
            b"const x = 1;\nfunction f(el, c) {\n  el.innerHTML = c.body;\n}\n",
        )],
    );
    git(repo.path(), &["add", "web/a.js"]);
    write_files(
        repo.path(),
        &[(
            "cmd/new.go",
            b"package main\n\nvar cfg = &tls.Config{InsecureSkipVerify: true}\n",
        )],
    );
    let v = run_in(repo.path(), &["review", "--worktree", "--format", "json"]).json();
    let mut got: Vec<String> = findings(&v)
        .into_iter()
        .map(|(p, l, r)| format!("{p}:{l}:{r}"))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "app/users.py:5:py.sql.dynamic-query",
            "cmd/new.go:3:go.tls.insecure-skip-verify",
            "web/a.js:3:js.xss.inner-html"
        ]
    );
}

#[test]
fn staged_reviews_only_the_index() {
    let repo = repo_with(&[("app/users.py", SQLI_BASE), ("web/a.js", b"const x = 1;\n")]);
    // Unstaged: not what the commit records.
    write_files(repo.path(), &[("app/users.py", SQLI_HEAD)]);
    write_files(
        repo.path(),
        &[(
            "web/a.js",
            b"const x = 1;\nfunction f(el, c) {\n  el.innerHTML = c.body;\n}\n",
        )],
    );
    git(repo.path(), &["add", "web/a.js"]);
    // Changed in the working tree after staging: the staged text is reviewed.
    write_files(repo.path(), &[("web/a.js", b"const x = 1;\n")]);
    let r = run_in(
        repo.path(),
        &[
            "review",
            "--staged",
            "--format",
            "json",
            "--fail-on",
            "critical",
        ],
    );
    assert_eq!(
        r.code, 1,
        "a critical finding fails (the pre-commit hook)\n{}",
        r.stderr
    );
    let got: Vec<String> = findings(&r.json())
        .into_iter()
        .map(|(p, l, r)| format!("{p}:{l}:{r}"))
        .collect();
    assert_eq!(got, vec!["web/a.js:3:js.xss.inner-html"]);

    // A repository with no commit yet: the staged files against nothing.
    let fresh = tempfile::tempdir().unwrap();
    git(fresh.path(), &["init", "-q"]);
    write_files(fresh.path(), &[("app/users.py", SQLI_HEAD)]);
    git(fresh.path(), &["add", "-A"]);
    let r = run_in(fresh.path(), &["review", "--staged", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(findings(&r.json()).len(), 1);
    // Nothing staged: no findings, exit 0.
    git(fresh.path(), &["commit", "-qm", "first"]);
    let r = run_in(
        fresh.path(),
        &["review", "--staged", "--fail-on", "critical"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("No findings."), "{}", r.stdout);
}

#[test]
fn every_kind_of_changed_file_is_handled_and_skips_are_listed() {
    let repo = repo_with(&[
        ("keep/rename_me.py", b"def f():\n    return 1\n"),
        ("gone.py", b"x = 1\n"),
        ("run.sh", b"#!/bin/sh\necho hi\n"),
        ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary"),
        ("notes.md", b"# notes\n"),
    ]);
    let base = git(repo.path(), &["rev-parse", "HEAD"]);
    git(repo.path(), &["mv", "keep/rename_me.py", "keep/renamed.py"]);
    git(repo.path(), &["rm", "-q", "gone.py"]);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            repo.path().join("run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    // A bundle committed under an ordinary name: one long line of machine-written code, with an
    // eval a reviewer cannot act on there.
    let bundle = format!(
        "(()=>{{{}eval(window.name)}})();\n",
        "var a=document.getElementById('x');a.innerHTML=a.title;".repeat(120)
    );
    write_files(
        repo.path(),
        &[
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0binary2"),
            ("notes.md", b"# notes\nmore\n"),
            ("latin1.py", b"name = \"caf\xe9\"\n"),
            ("crlf.py", b"def f(a, b=[]):\r\n    return b\r\n"),
            (
                "tools/deploy",
                b"#!/usr/bin/env python3\ntry:\n    run()\nexcept:\n    pass\n",
            ),
            ("vendor/lib/x.py", b"def f(a=[]):\n    pass\n"),
            ("static/app.js", bundle.as_bytes()),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "many kinds"]);
    let r = run_in(
        repo.path(),
        &["review", "--base", &base, "--format", "json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    let skips = skipped(&v);
    let reason = |p: &str| {
        skips
            .iter()
            .find(|(q, _)| q == p)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{p} not skipped: {skips:?}"))
    };
    assert_eq!(reason("gone.py"), "deleted");
    assert_eq!(reason("logo.png"), "binary file");
    assert_eq!(reason("run.sh"), "mode change only");
    assert_eq!(reason("keep/renamed.py"), "renamed without content changes");
    assert_eq!(reason("notes.md"), "unsupported language (.md)");
    assert_eq!(reason("latin1.py"), "not UTF-8 text");
    assert!(
        reason("static/app.js").starts_with("minified or bundled code"),
        "{}",
        reason("static/app.js")
    );
    // An ignored file names the pattern that ignored it.
    assert!(
        reason("vendor/lib/x.py").starts_with("ignored by the default pattern `**/vendor/**`"),
        "{}",
        reason("vendor/lib/x.py")
    );
    let mut got: Vec<String> = findings(&v)
        .into_iter()
        .map(|(p, l, r)| format!("{p}:{l}:{r}"))
        .collect();
    got.sort();
    // CRLF lines keep their numbers; the extension-less script is Python by its shebang.
    assert_eq!(
        got,
        vec![
            "crlf.py:1:py.mutable-default-argument",
            "tools/deploy:4:py.bare-except"
        ]
    );
}

#[test]
fn two_folders_and_a_case_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_files(
        dir.path(),
        &[
            ("a/app/users.py", SQLI_BASE),
            ("b/app/users.py", SQLI_HEAD),
            (
                "b/app/new.ts",
                b"export const agent = new https.Agent({ rejectUnauthorized: false });\n",
            ),
        ],
    );
    let r = review_folders(dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = findings(&r.json());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.contains(&(
        "app/new.ts".into(),
        1,
        "js.tls.reject-unauthorized-false".into()
    )));

    let case = dir.path().join("case");
    write_files(&case, &[
        ("case.json", br#"{"id":"t1","language":"python","title":"t","source":"authored","kind":"positive"}"#),
        ("expected.json", br#"{"findings":[]}"#),
        ("base/app/users.py", SQLI_BASE),
        ("head/app/users.py", SQLI_HEAD),
    ]);
    let r = run_in(dir.path(), &["review", "case", "--format", "json"]);
    assert_eq!(
        findings(&r.json()),
        vec![(
            "app/users.py".to_string(),
            5,
            "py.sql.dynamic-query".to_string()
        )]
    );
}

#[test]
fn symbolic_links_in_folders_are_listed_as_skipped_and_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    // Code outside the reviewed tree that a rule would flag if the link were followed.
    write_files(
        outside.path(),
        &[("secret.py", b"def run(expr):\n    return eval(expr)\n")],
    );
    write_files(
        dir.path(),
        &[("a/app/ok.py", b"x = 1\n"), ("b/app/ok.py", b"x = 2\n")],
    );
    let b = dir.path().join("b/app");
    std::os::unix::fs::symlink(outside.path().join("secret.py"), b.join("linked.py")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/gone.py", b.join("dangling.py")).unwrap();
    // The same link on both sides is no change.
    for side in ["a/app", "b/app"] {
        std::os::unix::fs::symlink("ok.py", dir.path().join(side).join("same.py")).unwrap();
    }
    let r = review_folders(dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(findings(&v).is_empty(), "{v}");
    let mut skips = skipped(&v);
    skips.sort();
    assert_eq!(
        skips,
        vec![
            (
                "app/dangling.py".to_string(),
                "symbolic link (not followed)".to_string()
            ),
            (
                "app/linked.py".to_string(),
                "symbolic link (not followed)".to_string()
            ),
        ]
    );
}

#[test]
fn unified_diff_from_a_file_and_from_stdin() {
    let repo = repo_with(&[("app/users.py", SQLI_BASE)]);
    write_files(repo.path(), &[("app/users.py", SQLI_HEAD)]);
    let diff = git(repo.path(), &["diff"]) + "\n";
    std::fs::write(repo.path().join("change.diff"), &diff).unwrap();
    let r = run_in(
        repo.path(),
        &[
            "review",
            "--diff",
            "change.diff",
            "--repo",
            ".",
            "--format",
            "json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        findings(&r.json()),
        vec![(
            "app/users.py".to_string(),
            5,
            "py.sql.dynamic-query".to_string()
        )]
    );
    // From stdin, in a folder that does not hold the files: reviewed from the hunks alone.
    let elsewhere = tempfile::tempdir().unwrap();
    let r = run_with_stdin(
        elsewhere.path(),
        &["review", "--diff", "-", "--format", "json"],
        diff.as_bytes(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        findings(&r.json()),
        vec![(
            "app/users.py".to_string(),
            5,
            "py.sql.dynamic-query".to_string()
        )]
    );
}

#[test]
fn bad_input_gives_one_line_errors_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let check = |r: Run, needle: &str| {
        assert_eq!(r.code, 2, "stdout: {} stderr: {}", r.stdout, r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "not one line: {}",
            r.stderr
        );
        assert!(r.stderr.contains(needle), "{needle:?} not in {}", r.stderr);
    };
    check(
        run_in(dir.path(), &["review", "--repo", "."]),
        "is not a git repository",
    );
    check(
        run_in(dir.path(), &["review", "--repo", "does-not-exist"]),
        "is not a folder",
    );
    let repo = repo_with(&[("a.py", b"x = 1\n")]);
    check(
        run_in(repo.path(), &["review", "--base", "no-such-rev"]),
        "bad revision `no-such-rev`",
    );
    check(
        run_in(
            repo.path(),
            &["review", "--base", "HEAD", "--head=--upload-pack=x"],
        ),
        "bad revision",
    );
    std::fs::write(dir.path().join("bad.diff"), "this is not a diff\n").unwrap();
    check(
        run_in(dir.path(), &["review", "--diff", "bad.diff"]),
        "not a unified diff",
    );
    std::fs::write(
        dir.path().join("short.diff"),
        "--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n-a\n",
    )
    .unwrap();
    check(
        run_in(dir.path(), &["review", "--diff", "short.diff"]),
        "ends early",
    );
    check(
        run_in(dir.path(), &["review", "--diff", "missing.diff"]),
        "cannot read diff file missing.diff",
    );
    check(
        run_in(dir.path(), &["review", "nonexistent-case"]),
        "not a case folder",
    );
    write_files(repo.path(), &[(".redline.toml", b"ignroe = [\"x\"]\n")]);
    write_files(repo.path(), &[("a.py", b"x = 2\n")]);
    git(repo.path(), &["commit", "-qam", "c"]);
    check(run_in(repo.path(), &["review"]), "ignroe");
    check(run_in(repo.path(), &["review", "--format", "yaml"]), "yaml");
}

#[test]
fn redline_toml_ignores_disables_and_filters() {
    let base: &[(&str, &[u8])] = &[("a.py", b"x = 1\n")];
    let repo = repo_with(base);
    write_files(repo.path(), &[
        ("a.py", b"def f(a=[]):\n    a.append(1)\n    try:\n        pass\n    except:\n        pass\n"),
        ("gen/b.py", b"def g(a={}):\n    pass\n"),
        ("team/rules.md", b"# Our rule\nNever call legacy_billing_api from new code.\n"),
        (".redline.toml", b"ignore = [\"gen/**\"]\nmin_severity = \"warning\"\n[rules]\ndisable = [\"py.bare-except\"]\n[knowledge]\nextra = [\"team\"]\n"),
    ]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "c"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    assert_eq!(
        findings(&v),
        vec![(
            "a.py".to_string(),
            1,
            "py.mutable-default-argument".to_string()
        )]
    );
    assert!(
        skipped(&v)
            .iter()
            .any(|(p, r)| p == "gen/b.py" && r == "ignored by `gen/**` in .redline.toml"),
        "{:?}",
        skipped(&v)
    );
    // The configuration file in the change is configuration, not an unsupported language.
    assert!(
        skipped(&v).iter().any(|(p, r)| p == ".redline.toml"
            && r == "redline configuration (.redline.toml): read as settings, not reviewed as code"),
        "{:?}",
        skipped(&v)
    );
    // --min-severity critical drops the warning.
    let v = run_in(
        repo.path(),
        &["review", "--format", "json", "--min-severity", "critical"],
    )
    .json();
    assert!(findings(&v).is_empty());
}

#[test]
fn findings_in_test_files_are_one_level_lower_and_security_warnings_dropped() {
    let repo = repo_with(&[("a.py", b"x = 1\n")]);
    write_files(
        repo.path(),
        &[
            (
                "tests/test_client.py",
                b"import requests\n\ndef test_get(url):\n    requests.get(url, verify=False)\n",
            ),
            (
                "tests/test_keys.py",
                b"AWS_KEY = \"AKIAQWERTYUIOPASDFGH\"\n",
            ),
            (
                "app/client.py",
                b"import requests\n\ndef get(url):\n    return requests.get(url, verify=False)\n",
            ),
            // A security warning (pickle of a value from elsewhere) in a test and in app code.
            (
                "tests/test_cache.py",
                b"import pickle\n\ndef load(blob):\n    return pickle.loads(blob)\n",
            ),
            (
                "app/cache.py",
                b"import pickle\n\ndef load(blob):\n    return pickle.loads(blob)\n",
            ),
            // A correctness warning in a test.
            (
                "tests/test_util.py",
                b"def add(item, items=[]):\n    items.append(item)\n    return items\n",
            ),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "c"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    let sev = |p: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == p)
            .map(|f| f["severity"].as_str().unwrap().to_string())
    };
    assert_eq!(sev("app/client.py").as_deref(), Some("critical"));
    assert_eq!(sev("tests/test_client.py").as_deref(), Some("warning"));
    // A key-shaped value in a test is still reported, a level lower: in real code such values
    // are mostly test vectors (the real-fix corpus and the real-code scans), not leaks.
    assert_eq!(sev("tests/test_keys.py").as_deref(), Some("warning"));
    // Test code is not attack surface: a security warning there is dropped, not posted as a
    // suggestion; a correctness warning is still a bug in the test, one level lower.
    assert_eq!(sev("app/cache.py").as_deref(), Some("warning"));
    assert_eq!(sev("tests/test_cache.py"), None);
    assert_eq!(sev("tests/test_util.py").as_deref(), Some("suggestion"));
}

#[test]
fn values_pasted_into_markup_or_generated_code_are_found_once_per_line() {
    let parser = "const helpers = require('./helpers');\nfunction readDate(timezone) {\n  return `packet.parseDate(${helpers.srcEscape(timezone)})`;\n}\nmodule.exports = new Function('packet', readDate(process.env.TZ));\n";
    let listing =
        "function row(file) {\n  return '<tr><td>' + escapeHtml(file.name) + '</td></tr>';\n}\n";
    let repo = repo_with(&[
        ("lib/parser.js", parser.as_bytes()),
        ("lib/listing.js", listing.as_bytes()),
    ]);
    write_files(
        repo.path(),
        &[
            (
                "lib/parser.js",
                parser
                    .replace("${helpers.srcEscape(timezone)}", "'${timezone}'")
                    .as_bytes(),
            ),
            (
                "lib/listing.js",
                format!("{listing}function cell(label) {{\n  return `<td title=\"${{label.text}}\">` + label.count + '</td>';\n}}\n")
                    .as_bytes(),
            ),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "c"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    let on = |p: &str| lines_and(&v, p, "category");
    // The deleted escape and the quoted value in generated source are one problem on one line:
    // one comment, the one next to the deletion.
    assert_eq!(on("lib/parser.js").len(), 1, "{v:#}");
    assert_eq!(on("lib/parser.js")[0].0, 3);
    // A label's text put into a table cell unescaped (its count is a number: not reported).
    assert_eq!(on("lib/listing.js"), vec![(5, "xss".to_string())], "{v:#}");
}

#[test]
fn a_change_that_only_adds_comments_or_blank_lines_gets_no_rule_findings() {
    let base = "async function ping(url) {\n  fetch(\n    url,\n  );\n  return true;\n}\n";
    let repo = repo_with(&[("a.js", base.as_bytes()), ("b.js", base.as_bytes())]);
    write_files(
        repo.path(),
        &[
            // A comment inside the old, unawaited call, and a blank line: nothing new to say.
            (
                "a.js",
                b"async function ping(url) {\n  fetch(\n    // the health endpoint\n    url,\n\n  );\n  return true;\n}\n",
            ),
            // The same call with a code line added to it: the finding is the change's.
            (
                "b.js",
                b"async function ping(url) {\n  fetch(\n    url,\n    { method: 'HEAD' },\n  );\n  return true;\n}\n",
            ),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "c"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    let rules_on = |p: &str| -> Vec<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["path"] == p)
            .map(|f| f["rule_id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(rules_on("a.js").is_empty(), "{v:#}");
    assert_eq!(rules_on("b.js"), vec!["js.async.floating-promise"], "{v:#}");
}

#[test]
fn a_deleted_check_speaks_only_for_unchecked_code_of_its_own_edit() {
    let base = "function card(el, user) {\n  el.innerHTML = `<b>${escapeHtml(user.name)}</b>`;\n  const width = el.offsetWidth;\n  el.dataset.width = String(width);\n  return el;\n}\n";
    let repo = repo_with(&[("apart.js", base.as_bytes()), ("next.js", base.as_bytes())]);
    let unescaped = base.replace("${escapeHtml(user.name)}", "${user.name}");
    let bio = "  el.insertAdjacentHTML('beforeend', user.bio);\n";
    let mut lines: Vec<&str> = unescaped.split_inclusive('\n').collect();
    // Two lines of code the change left alone between the deletion and the new sink: two places
    // to fix, two comments.
    let mut apart = lines.clone();
    apart.insert(4, bio);
    // The new sink right after the deleted escape: one edit, one comment (next to the deletion).
    lines.insert(2, bio);
    write_files(
        repo.path(),
        &[
            ("apart.js", apart.concat().as_bytes()),
            ("next.js", lines.concat().as_bytes()),
        ],
    );
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "c"]);
    let v = run_in(repo.path(), &["review", "--format", "json"]).json();
    let on = |p: &str| lines_and(&v, p, "rule_id");
    assert_eq!(
        on("apart.js"),
        vec![
            (2, "removed.html-escape".to_string()),
            (5, "js.xss.inner-html".to_string())
        ],
        "{v:#}"
    );
    assert_eq!(
        on("next.js"),
        vec![(2, "removed.html-escape".to_string())],
        "{v:#}"
    );
}

/// The findings of a JSON review on one path: each line with the given field.
fn lines_and(v: &serde_json::Value, path: &str, field: &str) -> Vec<(u64, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"] == path)
        .map(|f| {
            (
                f["line"].as_u64().unwrap(),
                f[field].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
