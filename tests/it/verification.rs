//! What keeps the model's findings honest, through the binary against a scripted fake model:
//! references that must point at the code, a verification call per finding only the model made,
//! and agreement across independent reviews. A model that invents, misplaces or contradicts
//! itself leaves the rules' review unchanged.

use crate::common::fake_openai::{FakeOpenAi, error_body, text_reply, tool_calls};
use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

const BASE: &[u8] = b"from flask import request\n\n\ndef show_invoice(db, invoice_id):\n    return db.get(invoice_id)\n";
// Line 5: SQL injection (a rule finds it). Line 10: no ownership check (only a reviewer finds it).
const HEAD: &[u8] = b"from flask import request\n\n\ndef show_invoice(db, invoice_id):\n    return db.execute(f\"SELECT * FROM invoices WHERE id = {invoice_id}\")\n\n\ndef delete_invoice(db, user, invoice_id):\n    # callers check permissions elsewhere\n    db.delete(\"invoices\", invoice_id)\n    return True\n";
const LINE_10: &str = "    db.delete(\"invoices\", invoice_id)";

fn workspace() -> tempfile::TempDir {
    change("billing/invoices.py", BASE, HEAD)
}

/// A folder with `a/PATH` (base) and `b/PATH` (head).
fn change(path: &str, base: &[u8], head: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (format!("a/{path}"), format!("b/{path}"));
    write_files(dir.path(), &[(a.as_str(), base), (b.as_str(), head)]);
    dir
}

fn comment(line: u64, severity: &str, category: &str, reference: &str) -> String {
    json!({"line": line, "severity": severity, "category": category,
           "body": "Anyone can delete any invoice: check that it belongs to the user first.",
           "confidence": 0.95, "code_reference": reference,
           "guideline_ids": ["sec.missing-authorization"]})
    .to_string()
}

/// Whether a request is a verification call (its system prompt is the verifier's).
fn is_verification(body: &Value) -> bool {
    body["messages"][0]["content"]
        .as_str()
        .is_some_and(|s| s.starts_with("You check one finding"))
}

/// The body of the first verification call the fake received.
fn first_verification(fake: &FakeOpenAi) -> Value {
    fake.chat_requests()
        .into_iter()
        .find(|r| is_verification(&r.body))
        .expect("a verification call")
        .body
}

/// (path, line, severity, category) of every finding, sorted.
fn keys(v: &Value) -> Vec<(String, u64, String, String)> {
    let mut k: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["severity"].as_str().unwrap().to_string(),
                f["category"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    k.sort();
    k
}

fn rules_review(dir: &std::path::Path) -> Value {
    let r = review_folders_with(dir, &["--engine", "rules"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

fn agent(dir: &std::path::Path, fake: &FakeOpenAi, env: &[(&str, &str)]) -> Value {
    let mut all = vec![
        ("REDLINE_LLM_BACKOFF_MS", "1"),
        ("REDLINE_LLM_TIMEOUT_SECS", "5"),
        ("REDLINE_AGENT_CONCURRENCY", "1"),
    ];
    all.extend_from_slice(env);
    let r = agent_review(dir, &fake.base_url, &all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()
}

/// A fake model that posts `comments` on every file and confirms whatever it is asked to verify.
fn confirming_model(comments: Vec<String>) -> FakeOpenAi {
    FakeOpenAi::start().with_script(move |body, _| {
        if is_verification(body) {
            return (
                200,
                text_reply(r#"{"verdict": "confirmed", "trigger": "any request"}"#),
                Duration::ZERO,
            );
        }
        let mut calls: Vec<(&str, &str)> = comments
            .iter()
            .map(|c| ("post_review_comment", c.as_str()))
            .collect();
        calls.push(("finish_file", r#"{"summary":"s"}"#));
        (200, tool_calls(&calls), Duration::ZERO)
    })
}

#[test]
fn invented_misplaced_or_unanchored_findings_leave_the_rules_review_unchanged() {
    let fake = confirming_model(vec![
        // No code reference at all, confidently.
        comment(10, "critical", "missing-authorization", ""),
        // Code that is not on its line.
        comment(11, "critical", "sql-injection", "cursor.execute(raw_sql)"),
        // A line far from the diff.
        comment(40, "warning", "logic-error", LINE_10),
        // A location of another file.
        comment(10, "warning", "race-condition", "app/other.py:10"),
    ]);
    let dir = workspace();
    let v = agent(dir.path(), &fake, &[]);
    assert_eq!(
        keys(&v),
        keys(&rules_review(dir.path())),
        "{}",
        v["summary"]["agent"]
    );
    let notes = v["summary"]["agent"]["files"][0]["validation"].to_string();
    assert!(notes.contains("no code reference"), "{notes}");
    assert!(
        notes.contains("the code reference does not match"),
        "{notes}"
    );
    assert!(notes.contains("outside the diff: dropped"), "{notes}");
    assert!(notes.contains("the location it gives"), "{notes}");
}

#[test]
fn in_test_code_the_models_security_warnings_are_dropped_and_other_findings_lowered() {
    // The rules' policy for test files holds for the model's findings too.
    let fake = confirming_model(vec![
        comment(10, "warning", "missing-authorization", LINE_10),
        comment(11, "warning", "logic-error", "    return True"),
    ]);
    let dir = change("tests/test_invoices.py", BASE, HEAD);
    let v = agent(dir.path(), &fake, &[]);
    let model: Vec<_> = keys(&v)
        .into_iter()
        .filter(|(_, line, _, _)| *line >= 10)
        .collect();
    assert_eq!(
        model,
        vec![(
            "tests/test_invoices.py".to_string(),
            11,
            "suggestion".to_string(),
            "logic-error".to_string()
        )],
        "{}",
        v["summary"]["agent"]
    );
    let notes = v["summary"]["agent"]["files"][0]["validation"].to_string();
    assert!(
        notes.contains("missing-authorization below critical in test code: dropped"),
        "{notes}"
    );
}

#[test]
fn a_finding_verification_rejects_is_dropped_or_kept_as_a_suggestion_and_the_record_says_why() {
    let fake = FakeOpenAi::start().with_script(|body, _| {
        if is_verification(body) {
            return (
                200,
                text_reply(
                    r#"{"verdict": "rejected", "trigger": "", "reason": "the caller checks ownership"}"#,
                ),
                Duration::ZERO,
            );
        }
        (
            200,
            tool_calls(&[
                (
                    "post_review_comment",
                    &comment(10, "critical", "missing-authorization", LINE_10),
                ),
                ("finish_file", r#"{"summary":"s"}"#),
            ]),
            Duration::ZERO,
        )
    });
    let dir = workspace();
    let v = agent(dir.path(), &fake, &[("REDLINE_AGENT_UNCONFIRMED", "drop")]);
    assert_eq!(keys(&v), keys(&rules_review(dir.path())));
    let file = &v["summary"]["agent"]["files"][0];
    assert!(
        file["verification"][0]
            .as_str()
            .unwrap()
            .contains("the caller checks ownership"),
        "{file}"
    );
    // By default an unconfirmed finding stays, as a suggestion: a small model's verifier turns
    // down true findings as often as false ones (measured on real fixes).
    let kept = agent(dir.path(), &fake, &[]);
    let mut want = keys(&rules_review(dir.path()));
    want.push((
        "billing/invoices.py".to_string(),
        10,
        "suggestion".to_string(),
        "missing-authorization".to_string(),
    ));
    want.sort();
    assert_eq!(keys(&kept), want, "{}", kept["summary"]["agent"]);
    assert!(
        kept["summary"]["agent"]["files"][0]["verification"][0]
            .as_str()
            .unwrap()
            .contains("kept as a suggestion"),
        "{}",
        kept["summary"]["agent"]
    );
    // The verification call saw the finding and the code it points at, and no tools.
    let verify = first_verification(&fake);
    let question = verify["messages"][1]["content"].as_str().unwrap();
    assert!(question.contains(">10:"), "{question}");
    assert!(question.contains("sec.missing-authorization"), "{question}");
    assert!(verify["tools"].is_null());
}

#[test]
fn a_confirmed_finding_stays_critical_and_its_cost_is_counted() {
    let fake = FakeOpenAi::start().with_script(|body, _| {
        if is_verification(body) {
            return (
                200,
                text_reply(
                    r#"{"verdict": "confirmed", "trigger": "POST /invoices/7/delete by any signed-in user", "reason": "no ownership check"}"#,
                ),
                Duration::ZERO,
            );
        }
        (
            200,
            tool_calls(&[
                (
                    "post_review_comment",
                    &comment(10, "critical", "broken-access-control", "line 10"),
                ),
                ("finish_file", r#"{"summary":"s"}"#),
            ]),
            Duration::ZERO,
        )
    });
    let dir = workspace();
    let v = agent(dir.path(), &fake, &[]);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["line"] == 10)
        .unwrap_or_else(|| panic!("{}", v["summary"]["agent"]));
    assert_eq!(f["severity"], "critical");
    assert_eq!(
        f["category"], "missing-authorization",
        "mapped onto our class"
    );
    assert_eq!(
        v["summary"]["agent"]["llm_calls"], 2,
        "the loop and one verification"
    );
}

#[test]
fn findings_the_samples_disagree_on_are_dropped_and_agreed_ones_kept() {
    // Three reviews of the file: each invents a different problem; two agree on line 10.
    let fake = FakeOpenAi::start().with_script(|body, n| {
        if is_verification(body) {
            return (
                200,
                text_reply(r#"{"verdict": "confirmed", "trigger": "another user's invoice id"}"#),
                Duration::ZERO,
            );
        }
        let temperature = body["temperature"].as_f64().unwrap_or(0.0);
        assert!(temperature > 0.0, "samples are drawn with a temperature");
        let own = match n {
            0 => comment(11, "warning", "logic-error", "    return True"),
            1 => comment(10, "warning", "race-condition", LINE_10),
            _ => comment(11, "suggestion", "resource-leak", "    return True"),
        };
        let agreed = comment(10, "critical", "missing-authorization", LINE_10);
        let mut calls: Vec<(&str, &str)> = vec![("post_review_comment", own.as_str())];
        if n < 2 {
            calls.push(("post_review_comment", agreed.as_str()));
        }
        calls.push(("finish_file", r#"{"summary":"s"}"#));
        (200, tool_calls(&calls), Duration::ZERO)
    });
    let dir = workspace();
    let v = agent(
        dir.path(),
        &fake,
        &[("REDLINE_AGENT_SAMPLES", "3"), ("REDLINE_AGENT_AGREE", "2")],
    );
    let mut want = keys(&rules_review(dir.path()));
    want.push((
        "billing/invoices.py".into(),
        10,
        "critical".into(),
        "missing-authorization".into(),
    ));
    want.sort();
    assert_eq!(keys(&v), want, "{}", v["summary"]["agent"]);
    let file = &v["summary"]["agent"]["files"][0];
    assert_eq!(file["samples"], 3);
    let notes = file["validation"].to_string();
    assert!(notes.contains("reported by 1 of 3 reviews"), "{notes}");
    // Three loops and one verification of the agreed finding.
    assert_eq!(v["summary"]["agent"]["llm_calls"], 4);
}

#[test]
fn a_verification_outage_keeps_the_finding_as_a_warning() {
    let fake = FakeOpenAi::start().with_script(|body, _| {
        if is_verification(body) {
            return (400, error_body("context length exceeded"), Duration::ZERO);
        }
        (
            200,
            tool_calls(&[
                (
                    "post_review_comment",
                    &comment(10, "critical", "missing-authorization", LINE_10),
                ),
                ("finish_file", r#"{"summary":"s"}"#),
            ]),
            Duration::ZERO,
        )
    });
    let dir = workspace();
    let v = agent(dir.path(), &fake, &[]);
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["line"] == 10)
        .expect("kept");
    assert_eq!(f["severity"], "warning", "not confirmed: not critical");
    assert!(
        v["summary"]["agent"]["files"][0]["verification"][0]
            .as_str()
            .unwrap()
            .contains("not verified")
    );
}

// Candidates: a helper that opens a path built from its own parameter. Whether a caller passes
// request input is not in this file, so the path rule holds it as a candidate (line 6): silent
// with the rules alone, posted only when the model confirms it.
const CANDIDATE_BASE: &[u8] = b"import os\n\nUPLOADS = \"/srv/uploads\"\n";
const CANDIDATE_HEAD: &[u8] = b"import os\n\nUPLOADS = \"/srv/uploads\"\n\ndef read_upload(name):\n    with open(os.path.join(UPLOADS, name)) as f:\n        return f.read()\n";

fn candidate_workspace() -> tempfile::TempDir {
    change("store/uploads.py", CANDIDATE_BASE, CANDIDATE_HEAD)
}

/// A fake model whose reviews report `review` and whose verifier answers `verdict`.
fn candidate_model(verdict: &'static str, review: Vec<String>) -> FakeOpenAi {
    FakeOpenAi::start().with_script(move |body, _| {
        if is_verification(body) {
            return (200, text_reply(verdict), Duration::ZERO);
        }
        let mut calls: Vec<(&str, &str)> = review
            .iter()
            .map(|c| ("post_review_comment", c.as_str()))
            .collect();
        calls.push(("finish_file", r#"{"summary":"s"}"#));
        (200, tool_calls(&calls), Duration::ZERO)
    })
}

/// The candidate, posted as the rule's critical finding.
fn candidate_posted() -> Vec<(String, u64, String, String)> {
    vec![(
        "store/uploads.py".to_string(),
        6,
        "critical".to_string(),
        "path-traversal".to_string(),
    )]
}

fn verification_record(v: &Value) -> String {
    v["summary"]["agent"]["files"][0]["verification"].to_string()
}

#[test]
fn a_candidate_is_silent_without_a_model_and_posted_once_verification_confirms_it() {
    let dir = candidate_workspace();
    assert_eq!(
        keys(&rules_review(dir.path())),
        vec![],
        "the rules alone never post a candidate"
    );

    let fake = candidate_model(
        r#"{"verdict": "confirmed", "trigger": "read_upload('../../etc/passwd')"}"#,
        vec![],
    );
    let v = agent(dir.path(), &fake, &[]);
    assert_eq!(keys(&v), candidate_posted(), "{}", v["summary"]["agent"]);
    assert_eq!(
        v["findings"][0]["rule_id"], "py.path.tainted-file-access",
        "{v}"
    );
    let record = verification_record(&v);
    assert!(
        record
            .contains("line 6 path-traversal: candidate (py.path.tainted-file-access): confirmed"),
        "{record}"
    );
    // The verifier saw the candidate's line, marked.
    let asked = first_verification(&fake);
    assert!(
        asked["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains(">6:     with open(os.path.join(UPLOADS, name)) as f:"),
        "{}",
        asked
    );
}

#[test]
fn a_candidate_the_verifier_rejects_or_cannot_judge_stays_silent() {
    let dir = candidate_workspace();
    for verdict in [
        r#"{"verdict": "rejected", "reason": "callers pass fixed names"}"#,
        // A confirmation that names no trigger is no confirmation.
        r#"{"verdict": "confirmed", "trigger": ""}"#,
        "not JSON at all",
    ] {
        let fake = candidate_model(verdict, vec![]);
        let v = agent(dir.path(), &fake, &[]);
        assert_eq!(keys(&v), vec![], "{verdict}: {}", v["summary"]["agent"]);
        let record = verification_record(&v);
        assert!(record.contains("not confirmed"), "{verdict}: {record}");
        assert!(record.contains("silent"), "{verdict}: {record}");
    }
}

#[test]
fn without_verification_a_candidate_needs_the_models_own_report_and_the_limit_bounds_the_calls() {
    let dir = candidate_workspace();
    let same = json!({"line": 6, "severity": "warning", "category": "path-traversal",
        "body": "`name` can hold ../ and escape the uploads folder.", "confidence": 0.9,
        "code_reference": "with open(os.path.join(UPLOADS, name)) as f:",
        "guideline_ids": ["sec.path-traversal"]})
    .to_string();
    let fake = candidate_model("unused", vec![same]);
    let v = agent(dir.path(), &fake, &[("REDLINE_AGENT_VERIFY", "0")]);
    assert_eq!(
        keys(&v),
        candidate_posted(),
        "the rule's severity stands once the model reports the same: {}",
        v["summary"]["agent"]
    );
    assert!(
        verification_record(&v).contains("the model reported it too: posted"),
        "{}",
        verification_record(&v)
    );

    let fake = candidate_model("unused", vec![]);
    let v = agent(dir.path(), &fake, &[("REDLINE_AGENT_VERIFY", "0")]);
    assert_eq!(keys(&v), vec![], "{}", v["summary"]["agent"]);

    // With the limit at 0, no verification call is made and the candidate stays silent.
    let fake = candidate_model(r#"{"verdict": "confirmed", "trigger": "x"}"#, vec![]);
    let v = agent(dir.path(), &fake, &[("REDLINE_AGENT_CANDIDATES", "0")]);
    assert_eq!(keys(&v), vec![], "{}", v["summary"]["agent"]);
    assert!(
        !fake
            .chat_requests()
            .iter()
            .any(|r| is_verification(&r.body)),
        "no verification call"
    );
    assert!(
        verification_record(&v).contains("not asked (candidate limit)"),
        "{}",
        verification_record(&v)
    );
}
