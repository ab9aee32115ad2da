//! `redline knowledge search|check|list`.

use anyhow::Result;
use clap::Subcommand;
use redline_core::knowledge::Store;
use redline_core::rules::RuleSet;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum KnowledgeCommand {
    /// Search the knowledge store (BM25; fused with embeddings when REDLINE_EMBEDDINGS_BASE_URL is set).
    Search {
        /// What to look for: words, identifiers or code.
        query: String,
        /// Only entries for this language.
        #[arg(long)]
        language: Option<String>,
        /// How many entries to show.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Extra folders of Markdown guidance to index too.
        #[arg(long = "extra", value_name = "DIR")]
        extra: Vec<PathBuf>,
        /// Also index the knowledge folders named in this repository's .redline.toml.
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
    /// Measure retrieval on a labelled set of (hunk -> relevant entry ids): recall@k, MRR, latency.
    Eval {
        /// A JSON array of {id, language, path, hunk, relevant: [entry ids]}.
        file: PathBuf,
        /// The cut-off for recall.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Write the scores as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Validate the entries and rules, run every rule's examples, and report rules naming missing entries.
    Check {
        /// Extra folders (Markdown entries and .rules.toml files) to check too.
        #[arg(long = "extra", value_name = "DIR")]
        extra: Vec<PathBuf>,
    },
    /// List entries and rules.
    List,
    /// Print the syntax tree of a file, for writing rule queries.
    Tree {
        /// A Python, TypeScript, JavaScript or Go file.
        file: PathBuf,
    },
}

pub async fn run(cmd: KnowledgeCommand) -> Result<i32> {
    match cmd {
        KnowledgeCommand::Search {
            query,
            language,
            k,
            mut extra,
            repo,
        } => {
            if let Some(repo) = &repo {
                extra.extend(redline_core::config::load(Some(repo), None)?.extra_dirs);
            }
            let mut store = Store::with_extra(&extra)?;
            let hits = match embedder()? {
                Some(emb) => {
                    crate::llm::embeddings::attach(&mut store, &emb).await?;
                    let qv = emb.embed(std::slice::from_ref(&query)).await?.pop();
                    store.search_with(&query, qv.as_deref(), language.as_deref(), k)
                }
                None => store.search(&query, language.as_deref(), k),
            };
            let mut out = String::new();
            if hits.is_empty() {
                out.push_str("no entries match\n");
            }
            for (i, h) in hits.iter().enumerate() {
                let first = h.text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                out.push_str(&format!(
                    "{}. {} ({:.2})  {}\n   § {}: {}\n",
                    i + 1,
                    h.id,
                    h.score,
                    h.title,
                    h.section,
                    first
                ));
            }
            super::emit(None, &out)?;
            Ok(0)
        }
        KnowledgeCommand::Eval { file, k, json } => {
            use redline_core::bench::retrieval as eval;
            let mut store = Store::builtin()?;
            let rules = RuleSet::builtin()?;
            let pairs = eval::prepare(eval::load(&file, &store)?, &rules);
            // Warm up (first-touch costs are not query latency).
            for p in pairs.iter().take(5) {
                store.search(&p.query, Some(&p.item.language), k);
            }
            let mut results = vec![eval::score("bm25", &pairs, k, |p| {
                store
                    .search(&p.query, Some(&p.item.language), eval::MRR_DEPTH)
                    .into_iter()
                    .map(|h| h.id)
                    .collect()
            })];
            if let Some(emb) = embedder()? {
                crate::llm::embeddings::attach(&mut store, &emb).await?;
                let queries: Vec<String> = pairs.iter().map(|p| p.query.clone()).collect();
                let vectors = emb.embed(&queries).await?;
                let mut i = 0;
                results.push(eval::score(
                    &format!("bm25+embeddings ({}, RRF)", emb.model()),
                    &pairs,
                    k,
                    |p| {
                        let v = &vectors[i];
                        i += 1;
                        store
                            .search_with(&p.query, Some(v), Some(&p.item.language), eval::MRR_DEPTH)
                            .into_iter()
                            .map(|h| h.id)
                            .collect()
                    },
                ));
            }
            let mut out = format!(
                "{} labelled pairs, {} entries, {} chunks\n\n{:<40} {:>9} {:>9} {:>7} {:>11} {:>11}\n",
                pairs.len(),
                store.entries.len(),
                store.chunks.len(),
                "method",
                format!("recall@{k}"),
                format!("hit@{k}"),
                "MRR",
                "p50 (us)",
                "p95 (us)"
            );
            for r in &results {
                out.push_str(&format!(
                    "{:<40} {:>9.3} {:>9.3} {:>7.3} {:>11.1} {:>11.1}\n",
                    r.method,
                    r.recall_at_k,
                    r.hit_rate_at_k,
                    r.mrr,
                    r.latency_p50_us,
                    r.latency_p95_us
                ));
            }
            for r in &results {
                if !r.misses.is_empty() {
                    out.push_str(&format!(
                        "{}: no relevant entry in the top {k} for {}\n",
                        r.method,
                        r.misses.join(", ")
                    ));
                }
            }
            super::emit(None, &out)?;
            if let Some(p) = json {
                super::emit(Some(&p), &(serde_json::to_string_pretty(&results)? + "\n"))?;
            }
            Ok(0)
        }
        KnowledgeCommand::Check { extra } => {
            let store = Store::with_extra(&extra)?;
            let rules = RuleSet::with_examples(&extra)?;
            let mut problems = rules.check_examples();
            for r in rules.rules() {
                if r.guidance.is_empty() {
                    problems.push(format!("{}: names no guidance entry", r.id));
                }
                for g in &r.guidance {
                    if store.entry(g).is_none() {
                        problems.push(format!("{}: guidance entry `{g}` does not exist", r.id));
                    }
                }
                if let Some(entry) = r.guidance.first().and_then(|g| store.entry(g))
                    && !entry.categories.is_empty()
                    && !entry.categories.contains(&r.category)
                {
                    problems.push(format!(
                        "{}: category `{}` is not among its entry's categories {:?}",
                        r.id, r.category, entry.categories
                    ));
                }
            }
            let examples: usize = rules.rules().map(|r| r.examples.len()).sum();
            let mut out = format!(
                "{} entries ({} chunks), {} rules, {} examples\n",
                store.entries.len(),
                store.chunks.len(),
                rules.len(),
                examples
            );
            for p in &problems {
                out.push_str(&format!("problem: {p}\n"));
            }
            out.push_str(if problems.is_empty() {
                "ok\n"
            } else {
                "FAILED\n"
            });
            super::emit(None, &out)?;
            Ok(if problems.is_empty() { 0 } else { 1 })
        }
        KnowledgeCommand::Tree { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let path = file.to_string_lossy();
            let lang = redline_core::lang::detect(&path, Some(&text))
                .ok_or_else(|| anyhow::anyhow!("{path}: unsupported language"))?;
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&lang.grammar())?;
            let tree = parser
                .parse(&text, None)
                .ok_or_else(|| anyhow::anyhow!("{path}: parser gave up"))?;
            let mut out = String::new();
            print_tree(tree.root_node(), &text, 0, None, &mut out);
            super::emit(None, &out)?;
            Ok(0)
        }
        KnowledgeCommand::List => {
            let store = Store::builtin()?;
            let rules = RuleSet::builtin()?;
            let mut out = String::from("entries:\n");
            for e in &store.entries {
                out.push_str(&format!("  {:<36} {:<10} {}\n", e.id, e.severity, e.title));
            }
            out.push_str("rules:\n");
            for r in rules.rules() {
                out.push_str(&format!(
                    "  {:<40} {:<10} {:<26} {}\n",
                    r.id,
                    r.severity.as_str(),
                    r.category,
                    r.languages.join(",")
                ));
            }
            super::emit(None, &out)?;
            Ok(0)
        }
    }
}

/// One named node per line, indented, with its field name, line and (for leaves) text.
fn print_tree(
    n: tree_sitter::Node,
    src: &str,
    depth: usize,
    field: Option<&str>,
    out: &mut String,
) {
    let label = field.map(|f| format!("{f}: ")).unwrap_or_default();
    let leaf = if n.named_child_count() == 0 {
        format!(
            " `{}`",
            &src[n.byte_range()].chars().take(60).collect::<String>()
        )
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{}{label}{} L{}{leaf}\n",
        "  ".repeat(depth),
        n.kind(),
        n.start_position().row + 1
    ));
    let mut c = n.walk();
    for (i, ch) in n.children(&mut c).enumerate() {
        if ch.is_named() {
            print_tree(ch, src, depth + 1, n.field_name_for_child(i as u32), out);
        }
    }
}

/// The embeddings client, when an endpoint is configured.
fn embedder() -> Result<Option<crate::llm::embeddings::Embedder>> {
    crate::llm::embeddings::EmbeddingConfig::from_env()
        .map(crate::llm::embeddings::Embedder::new)
        .transpose()
}
