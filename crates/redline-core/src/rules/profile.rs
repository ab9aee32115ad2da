//! Time spent per rule, printed at exit when REDLINE_RULE_TIMES is set (for rule authors).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

static TIMES: Mutex<Option<HashMap<String, Duration>>> = Mutex::new(None);

pub(super) fn record(rule: &str, d: Duration) {
    let mut t = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    *t.get_or_insert_with(HashMap::new)
        .entry(rule.to_string())
        .or_default() += d;
}

/// Prints the slowest rules to stderr.
pub fn report() {
    let t = TIMES.lock().unwrap_or_else(|e| e.into_inner());
    let Some(map) = t.as_ref() else { return };
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    for (rule, d) in v.into_iter().take(25) {
        eprintln!("{:>10.1} ms  {rule}", d.as_secs_f64() * 1000.0);
    }
}
