//! Prints the agent's view of one changed file: `--example view -- BASE_DIR HEAD_DIR PATH`.
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let base = std::path::PathBuf::from(&a[0]);
    let change = redline_core::change::from_dirs(Some(&base), std::path::Path::new(&a[1])).unwrap();
    let rules = redline_core::rules::RuleSet::builtin().unwrap();
    let loaded = redline_core::config::load(None, None).unwrap();
    let r = redline_core::pipeline::Reviewer {
        rules: &rules,
        config: &loaded,
        min_severity: redline_core::model::Severity::Suggestion,
        count_tokens: false,
    };
    for p in r.prepare(&change) {
        if let Some(m) = p.material
            && m.diff.path() == a[2]
        {
            print!("{}", m.context.review_view(&m.text, &m.diff));
        }
    }
}
