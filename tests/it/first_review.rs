//! `examples/first-review`, the change the README's quick start reviews: `expected.json` lists what
//! redline reports on it, and this test runs the binary on the example and compares, so that the
//! example, its expected findings and the README cannot drift apart.

use crate::common::{project_root, redline, run_cmd};
use serde_json::Value;

/// (path, line, severity, category) of each reported finding.
fn reported(v: &Value) -> Vec<(String, u64, String, String)> {
    v["findings"]
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
        .collect()
}

fn review(format: &str) -> crate::common::Run {
    let mut cmd = redline();
    cmd.current_dir(project_root())
        .args(["review", "examples/first-review", "--format", format])
        // The README's command, as a rules review: no LLM from the test's environment.
        .env_remove("REDLINE_LLM_BASE_URL")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    run_cmd(&mut cmd)
}

#[test]
fn the_example_reports_exactly_its_expected_findings() {
    let r = review("json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = reported(&r.json());
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(project_root().join("examples/first-review/expected.json"))
            .unwrap(),
    )
    .unwrap();
    let expected = expected["findings"].as_array().unwrap();
    assert_eq!(
        got.len(),
        expected.len(),
        "reported {got:#?}\nexpected {expected:#?}"
    );
    // Each expected finding is one reported finding: same file, severity and category, on a line
    // of its range.
    let mut unmatched = got.clone();
    for e in expected {
        let path = e["path"].as_str().unwrap();
        let line = e["line"].as_u64().unwrap();
        let end = e["end_line"].as_u64().unwrap_or(line);
        let at = unmatched.iter().position(|(p, l, s, c)| {
            p == path
                && (line..=end).contains(l)
                && s == e["severity"].as_str().unwrap()
                && c == e["category"].as_str().unwrap()
        });
        match at {
            Some(i) => {
                unmatched.remove(i);
            }
            None => panic!("expected {e} is not reported; reported: {got:#?}"),
        }
    }
    assert!(
        unmatched.is_empty(),
        "reported but not expected: {unmatched:#?}"
    );
}

#[test]
fn the_quick_start_output_starts_with_the_first_file() {
    let r = review("text");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("app/orders.py\n"),
        "no blank line first:\n{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("app/orders.py:26 critical sql-injection"),
        "the finding the README shows:\n{}",
        r.stdout
    );
}
