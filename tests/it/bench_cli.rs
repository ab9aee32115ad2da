//! `redline bench` over the shipped fixtures and over a hand-made set with an unreadable case.

use crate::common::*;

#[test]
fn bench_over_the_fixtures_writes_predictions_and_scores() {
    let out = tempfile::tempdir().unwrap();
    let pred = out.path().join("pred");
    let json = out.path().join("scores.json");
    let md = out.path().join("scores.md");
    let root = project_root();
    let r = run_in(
        &root,
        &[
            "bench",
            "fixtures/cases",
            "--predictions",
            pred.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("all severities"), "{}", r.stdout);
    assert!(r.stdout.contains("false-alarm rate:"));
    assert!(r.stderr.contains("[1/"), "no progress lines: {}", r.stderr);
    let cases = std::fs::read_dir(root.join("fixtures/cases"))
        .unwrap()
        .flatten()
        .map(|d| {
            std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .filter(|c| c.path().join("case.json").is_file())
                .count()
        })
        .sum::<usize>();
    assert!(cases >= 60);
    assert_eq!(std::fs::read_dir(&pred).unwrap().count(), cases);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["summary"]["cases"], cases);
    assert_eq!(v["summary"]["errors"], 0);
    assert!(v["summary"]["negatives"].as_u64().unwrap() >= 20);
    assert!(
        std::fs::read_to_string(&md)
            .unwrap()
            .contains("| **critical only** |")
    );
}

#[test]
fn an_unreadable_case_is_reported_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), &[
        ("set/good/case.json", br#"{"id":"good-1","language":"go","title":"t","source":"authored","kind":"positive"}"#),
        ("set/good/expected.json", br#"{"findings":[{"path":"c.go","line":3,"severity":"critical","category":"tls-verification-disabled"}]}"#),
        ("set/good/head/c.go", b"package c\n\nvar cfg = &tls.Config{InsecureSkipVerify: true}\n"),
        ("set/nested/bad/case.json", b"{ not json"),
        ("set/neg/case.json", br#"{"id":"neg-1","language":"go","title":"t","source":"authored","kind":"negative"}"#),
        ("set/neg/expected.json", br#"{"findings":[]}"#),
        ("set/neg/base/c.go", b"package c\n"),
        ("set/neg/head/c.go", b"package c\n\nvar cfg = &tls.Config{MinVersion: tls.VersionTLS12}\n"),
    ]);
    let r = run_in(
        dir.path(),
        &["bench", "set", "--predictions", "pred", "--json", "s.json"],
    );
    assert_eq!(r.code, 1, "exit 1 when a case is unreadable: {}", r.stderr);
    assert!(
        r.stderr.contains("case bad: cannot be read: case.json"),
        "{}",
        r.stderr
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["summary"]["cases"], 2);
    assert_eq!(v["precision"], 1.0);
    assert_eq!(v["recall"], 1.0);
    assert_eq!(v["false_alarm_rate"], 0.0);
    let p: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("pred/good-1.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(p["findings"][0]["line"], 3);
    assert_eq!(p["findings"][0]["source"], "rules");
}

#[test]
fn bench_of_a_missing_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &["bench", "nope"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("nope is not a folder"), "{}", r.stderr);
}

#[test]
fn predictions_from_elsewhere_are_scored_the_same_way() {
    let out = tempfile::tempdir().unwrap();
    let pred = out.path().join("pred");
    let root = project_root();
    let a = run_in(
        &root,
        &[
            "bench",
            "fixtures/cases",
            "--predictions",
            pred.to_str().unwrap(),
            "--json",
            out.path().join("a.json").to_str().unwrap(),
        ],
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    let b = run_in(
        &root,
        &[
            "bench",
            "fixtures/cases",
            "--score",
            pred.to_str().unwrap(),
            "--json",
            out.path().join("b.json").to_str().unwrap(),
        ],
    );
    assert_eq!(b.code, 0, "{}", b.stderr);
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.path().join(f)).unwrap()).unwrap()
    };
    let (va, vb) = (read("a.json"), read("b.json"));
    for k in [
        "precision",
        "recall",
        "f1",
        "critical_precision",
        "critical_recall",
        "false_alarm_rate",
    ] {
        assert_eq!(va[k], vb[k], "{k}");
    }
    assert_eq!(vb["engine"], "predictions");
    // A missing prediction file is a case error, named, and the run goes on.
    let one = std::fs::read_dir(&pred)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(&one).unwrap();
    let c = run_in(
        &root,
        &["bench", "fixtures/cases", "--score", pred.to_str().unwrap()],
    );
    assert_eq!(c.code, 1);
    assert!(c.stderr.contains("no predictions at"), "{}", c.stderr);
}
