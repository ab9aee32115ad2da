//! Prices per million tokens, for cost per file and per pull request. Built-in figures for common
//! hosted models; `REDLINE_LLM_PRICES="model=in/out,other=in/out"` (USD per 1M tokens) overrides.
//! Local endpoints cost nothing.

/// USD per million (input, output) tokens for `model`, if known.
pub fn price(model: &str) -> Option<(f64, f64)> {
    if let Ok(spec) = std::env::var("REDLINE_LLM_PRICES") {
        for item in spec.split(',') {
            if let Some((m, p)) = item.split_once('=')
                && m.trim() == model
                && let Some((i, o)) = p.split_once('/')
                && let (Ok(i), Ok(o)) = (i.trim().parse(), o.trim().parse())
            {
                return Some((i, o));
            }
        }
    }
    let known: &[(&str, f64, f64)] = &[
        ("gpt-4o-mini", 0.15, 0.60),
        ("gpt-4o", 2.50, 10.00),
        ("gpt-4.1-mini", 0.40, 1.60),
        ("gpt-4.1-nano", 0.10, 0.40),
        ("gpt-4.1", 2.00, 8.00),
        ("o4-mini", 1.10, 4.40),
    ];
    known
        .iter()
        .find(|(m, _, _)| model == *m || model.starts_with(&format!("{m}-20")))
        .map(|(_, i, o)| (*i, *o))
}

/// The cost of a call in USD (0 for unknown models and local endpoints).
pub fn cost(model: &str, local: bool, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    if local {
        return 0.0;
    }
    price(model)
        .map(|(i, o)| (prompt_tokens as f64 * i + completion_tokens as f64 * o) / 1e6)
        .unwrap_or(0.0)
}
