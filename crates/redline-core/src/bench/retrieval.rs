//! Retrieval quality on a labelled set of (hunk -> relevant entry ids): recall@k, MRR and query
//! latency. The query for each hunk is built the way a review builds it: language, identifiers and
//! calls of the hunk, and the categories of the rules that fire on it.

use crate::knowledge::{Store, query};
use crate::lang::Language;
use crate::rules::RuleSet;
use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How deep the ranking is read for MRR.
pub const MRR_DEPTH: usize = 20;

/// One labelled pair.
#[derive(Debug, Clone, Deserialize)]
pub struct Labelled {
    pub id: String,
    pub language: String,
    #[serde(default)]
    pub path: String,
    pub hunk: String,
    pub relevant: Vec<String>,
}

/// A labelled pair with its query built.
pub struct Prepared {
    pub item: Labelled,
    pub query: String,
}

/// Scores of one retrieval method.
#[derive(Debug, Clone, Serialize)]
pub struct Scores {
    pub method: String,
    pub pairs: usize,
    pub k: usize,
    pub recall_at_k: f64,
    /// Share of pairs with at least one relevant entry in the top k.
    pub hit_rate_at_k: f64,
    pub mrr: f64,
    pub latency_p50_us: f64,
    pub latency_p95_us: f64,
    /// Pairs whose relevant entries were all missed in the top k.
    pub misses: Vec<String>,
}

/// Reads a labelled set and checks that every relevant id exists in `store`.
pub fn load(path: &std::path::Path, store: &Store) -> Result<Vec<Labelled>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let items: Vec<Labelled> =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    for it in &items {
        for r in &it.relevant {
            if store.entry(r).is_none() {
                return Err(anyhow!(
                    "{}: pair {} names unknown entry `{r}`",
                    path.display(),
                    it.id
                ));
            }
        }
    }
    Ok(items)
}

/// Builds each pair's query as a review would.
pub fn prepare(items: Vec<Labelled>, rules: &RuleSet) -> Vec<Prepared> {
    items
        .into_iter()
        .map(|item| {
            let mut categories: Vec<String> = Vec::new();
            if let Some(lang) = Language::from_name(&item.language) {
                let lang = if lang == Language::TypeScript && item.path.ends_with(".tsx") {
                    Language::Tsx
                } else {
                    lang
                };
                let mut parser = tree_sitter::Parser::new();
                if parser.set_language(&lang.grammar()).is_ok() {
                    if let Some(tree) = parser.parse(&item.hunk, None) {
                        for h in rules.run(lang, &item.hunk, &tree) {
                            if !categories.contains(&h.category) {
                                categories.push(h.category);
                            }
                        }
                    }
                }
            }
            let query = query::for_hunks(&item.language, &item.hunk, &categories);
            Prepared { item, query }
        })
        .collect()
}

/// Scores a ranking function over the prepared pairs.
pub fn score(
    method: &str,
    pairs: &[Prepared],
    k: usize,
    mut rank: impl FnMut(&Prepared) -> Vec<String>,
) -> Scores {
    let mut recall = 0.0;
    let mut hits = 0usize;
    let mut rr = 0.0;
    let mut latencies = Vec::with_capacity(pairs.len());
    let mut misses = Vec::new();
    for p in pairs {
        let started = Instant::now();
        let ranked = rank(p);
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        let top: Vec<&String> = ranked.iter().take(k).collect();
        let found = p.item.relevant.iter().filter(|r| top.contains(r)).count();
        recall += found as f64 / p.item.relevant.len().max(1) as f64;
        if found > 0 {
            hits += 1;
        } else {
            misses.push(p.item.id.clone());
        }
        if let Some(pos) = ranked
            .iter()
            .take(MRR_DEPTH)
            .position(|id| p.item.relevant.contains(id))
        {
            rr += 1.0 / (pos + 1) as f64;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let n = pairs.len().max(1) as f64;
    Scores {
        method: method.to_string(),
        pairs: pairs.len(),
        k,
        recall_at_k: recall / n,
        hit_rate_at_k: hits as f64 / n,
        mrr: rr / n,
        latency_p50_us: pct(0.5),
        latency_p95_us: pct(0.95),
        misses,
    }
}
