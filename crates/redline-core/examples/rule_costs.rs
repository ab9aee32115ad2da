//! What the rules cost to compile: `cargo run --release -p redline-core --example rule_costs`.
//! Prints, per language, the time to compile all its rules as one query, and the ten rules whose
//! own queries take longest to compile (the patterns worth simplifying).
use redline_core::lang::Language;
use redline_core::rules::RuleSet;
use std::time::Instant;

fn main() {
    let set = RuleSet::builtin().expect("rules");
    let mut each: Vec<(f64, String, Language)> = Vec::new();
    for lang in Language::ALL {
        let queries: Vec<&str> = set
            .rules()
            .filter(|r| {
                r.languages.iter().any(|l| {
                    Language::from_name(l).is_some_and(|x| {
                        x == lang || (x == Language::TypeScript && lang == Language::Tsx)
                    })
                }) && !r.query.trim().is_empty()
            })
            .map(|r| r.query.as_str())
            .collect();
        let t = Instant::now();
        let all = queries.join("\n");
        let ok = tree_sitter::Query::new(&lang.grammar(), &all).is_ok();
        println!(
            "{:<11} {} rules, combined {:>7.1} ms{}",
            lang.name(),
            queries.len(),
            t.elapsed().as_secs_f64() * 1000.0,
            if ok { "" } else { " (does not compile)" }
        );
        for r in set.rules().filter(|r| !r.query.trim().is_empty()) {
            if !r
                .languages
                .iter()
                .any(|l| Language::from_name(l) == Some(lang))
            {
                continue;
            }
            let t = Instant::now();
            let _ = tree_sitter::Query::new(&lang.grammar(), &r.query);
            each.push((t.elapsed().as_secs_f64() * 1000.0, r.id.clone(), lang));
        }
    }
    each.sort_by(|a, b| b.0.total_cmp(&a.0));
    let total: f64 = each.iter().map(|e| e.0).sum();
    println!("\nall rules one by one: {total:.1} ms; the slowest ten:");
    for (ms, id, lang) in each.iter().take(10) {
        println!("{ms:>8.1} ms  {id} ({})", lang.name());
    }
}
