//! The scorer on hand-made predictions: every rule of bench-format.md, one test each.

use super::*;

fn exp(path: &str, line: u32, end: Option<u32>, sev: &str) -> Expected {
    Expected {
        path: path.into(),
        line,
        end_line: end,
        severity: sev.into(),
        category: "sql-injection".into(),
        cwe: None,
        note: None,
    }
}

fn rep(path: &str, line: u32, sev: &str) -> Reported {
    Reported {
        path: path.into(),
        line,
        severity: sev.into(),
        category: "sql-injection".into(),
    }
}

#[test]
fn exact_hit() {
    let (all, _) = score_case(
        &[rep("a.py", 42, "critical")],
        &[exp("a.py", 42, None, "critical")],
    );
    assert_eq!(
        all,
        Counts {
            matched: 1,
            reported: 1,
            expected: 1
        }
    );
    assert_eq!(all.precision(), Some(1.0));
    assert_eq!(all.recall(), Some(1.0));
    assert_eq!(all.f1(), 1.0);
}

#[test]
fn off_by_three_matches_on_both_sides_of_the_range() {
    let e = [exp("a.py", 42, Some(44), "critical")];
    assert_eq!(score_case(&[rep("a.py", 39, "critical")], &e).0.matched, 1);
    assert_eq!(score_case(&[rep("a.py", 47, "critical")], &e).0.matched, 1);
}

#[test]
fn off_by_four_does_not_match() {
    let e = [exp("a.py", 42, Some(44), "critical")];
    let (all, _) = score_case(&[rep("a.py", 38, "critical")], &e);
    assert_eq!(
        all,
        Counts {
            matched: 0,
            reported: 1,
            expected: 1
        }
    );
    assert_eq!(score_case(&[rep("a.py", 48, "critical")], &e).0.matched, 0);
    assert_eq!(all.precision(), Some(0.0));
    assert_eq!(all.f1(), 0.0);
}

#[test]
fn duplicate_report_is_a_false_positive() {
    let (all, _) = score_case(
        &[rep("a.py", 42, "critical"), rep("a.py", 43, "warning")],
        &[exp("a.py", 42, None, "critical")],
    );
    assert_eq!(
        all,
        Counts {
            matched: 1,
            reported: 2,
            expected: 1
        }
    );
    assert_eq!(all.precision(), Some(0.5));
}

#[test]
fn wrong_path_does_not_match() {
    let (all, _) = score_case(
        &[rep("b.py", 42, "critical")],
        &[exp("a.py", 42, None, "critical")],
    );
    assert_eq!(all.matched, 0);
}

#[test]
fn severity_mismatch_counts_only_in_the_all_severities_score() {
    // A warning on a critical expectation: matched over all severities, missed for critical alone.
    let (all, crit) = score_case(
        &[rep("a.py", 42, "warning")],
        &[exp("a.py", 42, None, "critical")],
    );
    assert_eq!(all.matched, 1);
    assert_eq!(
        crit,
        Counts {
            matched: 0,
            reported: 0,
            expected: 1
        }
    );
    // A critical report on a warning expectation is a critical false positive.
    let (_, crit) = score_case(
        &[rep("a.py", 42, "critical")],
        &[exp("a.py", 42, None, "warning")],
    );
    assert_eq!(
        crit,
        Counts {
            matched: 0,
            reported: 1,
            expected: 0
        }
    );
}

#[test]
fn matching_is_maximum_not_greedy() {
    // Report at 45 could take either; greedy would give it the first and leave 48 unmatched.
    let e = [
        exp("a.py", 42, None, "critical"),
        exp("a.py", 48, None, "critical"),
    ];
    let r = [rep("a.py", 45, "critical"), rep("a.py", 40, "critical")];
    assert_eq!(score_case(&r, &e).0.matched, 2);
}

#[test]
fn negatives_count_false_alarms() {
    let mk = |id: &str, kind: &str, reported: Vec<Reported>| CaseRun {
        id: id.into(),
        language: "python".into(),
        kind: kind.into(),
        expected: vec![],
        reported,
        findings: vec![],
        millis: 1.0,
    };
    let runs = vec![
        mk("n1", "negative", vec![rep("a.py", 1, "critical")]),
        mk("n2", "negative", vec![rep("a.py", 1, "warning")]),
        mk("n3", "negative", vec![]),
        mk("n4", "negative", vec![]),
    ];
    let s = summarize(&runs, 0);
    assert_eq!(s.negatives, 4);
    assert_eq!(s.negatives_with_critical, 1);
    assert_eq!(s.false_alarm_rate(), Some(0.25));
    assert_eq!(s.all.precision(), Some(0.0));
    assert_eq!(s.all.recall(), None);
    assert!(table(&s).contains("false-alarm rate: 0.250"));
}
