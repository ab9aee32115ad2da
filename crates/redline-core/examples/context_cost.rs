//! What the agent's view of a change costs against the whole files it touches, in tokens:
//! `cargo run --release -p redline-core --example context_cost -- DIR...` where each DIR is a set
//! of bench cases (folders with case.json) or a change as DIR/base and DIR/head. Prints, per DIR,
//! the summed view tokens over the summed file tokens (1.0 = as much as sending the files).

use redline_core::change::{self, ChangeSet};
use redline_core::config;
use redline_core::context::tokens;
use redline_core::model::Severity;
use redline_core::pipeline::Reviewer;
use redline_core::rules::RuleSet;
use std::path::Path;

fn changes(dir: &Path) -> Vec<ChangeSet> {
    if dir.join("head").is_dir() && !dir.join("case.json").exists() {
        let base = dir.join("base");
        return vec![change::from_dirs(Some(&base), &dir.join("head")).expect("a change")];
    }
    redline_core::bench::find_cases(dir)
        .expect("cases")
        .iter()
        .map(|c| change::from_case_dir(c).expect("a case"))
        .collect()
}

fn main() {
    let rules = RuleSet::builtin().expect("rules");
    let loaded = config::load(None, None).expect("config");
    let reviewer = Reviewer {
        rules: &rules,
        config: &loaded,
        min_severity: Severity::Suggestion,
        count_tokens: false,
    };
    for arg in std::env::args().skip(1) {
        let (mut view, mut file, mut files) = (0usize, 0usize, 0usize);
        for change in changes(Path::new(&arg)) {
            for p in reviewer.prepare(&change) {
                let Some(m) = p.material else { continue };
                let v = tokens::count(&m.context.review_view(&m.text, &m.diff));
                let f = tokens::count(&m.text);
                if std::env::var_os("CONTEXT_COST_FILES").is_some() {
                    println!(
                        "  {:.2} {v}/{f} {}",
                        v as f64 / f.max(1) as f64,
                        m.diff.path()
                    );
                }
                view += v;
                file += f;
                files += 1;
            }
        }
        println!(
            "{arg}: {files} files, view {view} tokens, files {file} tokens, ratio {:.3}",
            view as f64 / file.max(1) as f64
        );
    }
}
