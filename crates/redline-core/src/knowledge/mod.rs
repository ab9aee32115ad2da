//! The knowledge store: review guidance entries (Markdown with TOML front matter), chunked by
//! section and indexed with BM25 at start-up. Built-in entries are compiled into the binary; a
//! repository can add folders of its own Markdown through `.redline.toml`.

pub mod bm25;
pub mod query;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::builtin::files as builtin_files;

/// One guidance entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default = "default_severity")]
    pub severity: String,
    #[serde(default)]
    pub cwe: Option<String>,
    #[serde(default)]
    pub owasp: Option<String>,
    #[serde(default)]
    pub references: Vec<String>,
    /// The Markdown after the front matter.
    #[serde(skip_deserializing)]
    pub body: String,
    /// Where the entry came from (`builtin:security/x.md` or a file path).
    #[serde(skip_deserializing)]
    pub origin: String,
}

fn default_severity() -> String {
    "suggestion".into()
}

/// Parses an entry: `+++` TOML front matter, then Markdown. A file with no front matter (a team's
/// own notes) becomes an entry whose id is derived from `origin` and whose title is its first heading.
pub fn parse_entry(origin: &str, text: &str, require_front_matter: bool) -> Result<Entry> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    if let Some(rest) = text.strip_prefix("+++\n") {
        let end = rest
            .find("\n+++")
            .ok_or_else(|| anyhow!("{origin}: front matter has no closing +++"))?;
        let mut entry: Entry = toml::from_str(&rest[..end])
            .map_err(|e| anyhow!("{origin}: front matter: {}", e.message()))?;
        entry.body = rest[end + 4..].trim_start_matches('\n').to_string();
        entry.origin = origin.to_string();
        validate(&entry)?;
        return Ok(entry);
    }
    if require_front_matter {
        bail!("{origin}: no +++ front matter");
    }
    let title = text
        .lines()
        .find_map(|l| l.strip_prefix("# ").map(str::trim))
        .unwrap_or(origin)
        .to_string();
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(origin);
    Ok(Entry {
        id: format!(
            "repo.{}",
            stem.to_ascii_lowercase().replace([' ', '_'], "-")
        ),
        title,
        languages: vec!["any".into()],
        categories: Vec::new(),
        severity: default_severity(),
        cwe: None,
        owasp: None,
        references: Vec::new(),
        body: text,
        origin: origin.to_string(),
    })
}

fn validate(e: &Entry) -> Result<()> {
    if e.id.is_empty() || e.id.contains(char::is_whitespace) {
        bail!("{}: bad id `{}`", e.origin, e.id);
    }
    if !matches!(e.severity.as_str(), "critical" | "warning" | "suggestion") {
        bail!(
            "{}: severity must be critical, warning or suggestion, not `{}`",
            e.origin,
            e.severity
        );
    }
    for l in &e.languages {
        if l != "any" && crate::lang::Language::from_name(l).is_none() {
            bail!("{}: unknown language `{l}`", e.origin);
        }
    }
    Ok(())
}

/// A searchable piece of an entry: one `## ` section (or the entry's lead).
#[derive(Debug, Clone)]
pub struct Chunk {
    pub entry: usize,
    pub heading: String,
    /// Languages this chunk speaks to (a language section narrows the entry's list).
    pub languages: Vec<String>,
    pub text: String,
}

/// A search result: the entry id, the best matching section, its score.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub id: String,
    pub title: String,
    pub section: String,
    pub score: f64,
    pub text: String,
}

/// All entries, their chunks and the BM25 index over them; with embeddings attached, a dense
/// vector per chunk too.
pub struct Store {
    pub entries: Vec<Entry>,
    pub chunks: Vec<Chunk>,
    index: bm25::Index,
    /// The text of each chunk as indexed (and embedded).
    docs: Vec<String>,
    dense: Option<Vec<Vec<f32>>>,
}

/// Reciprocal rank fusion constant (the usual 60: ranks matter, raw scores do not).
const RRF_K: f64 = 60.0;
/// How deep each ranking goes into the fusion.
const FUSION_DEPTH: usize = 50;

impl Store {
    /// The built-in entries only.
    pub fn builtin() -> Result<Store> {
        Store::build(builtin_entries()?)
    }

    /// The built-in entries plus every Markdown file under `dirs` (a team's own rules).
    pub fn with_extra(dirs: &[std::path::PathBuf]) -> Result<Store> {
        let mut entries = builtin_entries()?;
        for dir in dirs {
            let mut files = Vec::new();
            collect_markdown(dir, &mut files)
                .with_context(|| format!("knowledge folder {}", dir.display()))?;
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                entries.push(parse_entry(&f.to_string_lossy(), &text, false)?);
            }
        }
        Store::build(entries)
    }

    fn build(entries: Vec<Entry>) -> Result<Store> {
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            if !seen.insert(e.id.clone()) {
                bail!("duplicate knowledge entry id `{}` ({})", e.id, e.origin);
            }
        }
        let chunks: Vec<Chunk> = entries
            .iter()
            .enumerate()
            .flat_map(|(i, e)| chunk_entry(i, e))
            .collect();
        let docs: Vec<String> = chunks
            .iter()
            .map(|c| {
                let e = &entries[c.entry];
                // The title and categories say what the entry is about: weigh them twice.
                format!(
                    "{t} {t} {c} {c} {h} {x}",
                    t = e.title,
                    c = e.categories.join(" "),
                    h = c.heading,
                    x = c.text
                )
            })
            .collect();
        let index = bm25::Index::build(&docs);
        Ok(Store {
            entries,
            chunks,
            index,
            docs,
            dense: None,
        })
    }

    /// The entry with this id.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Every category the entries name, each once: the classes findings are filed under.
    pub fn categories(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .flat_map(|e| e.categories.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The CWE of the first entry filed under `category` that names one.
    pub fn cwe_of_category(&self, category: &str) -> Option<String> {
        self.entries
            .iter()
            .filter(|e| e.categories.iter().any(|c| c == category))
            .find_map(|e| e.cwe.clone())
    }

    /// The indexed text of every chunk, in order: what an embedder embeds.
    pub fn documents(&self) -> &[String] {
        &self.docs
    }

    /// Attaches one normalised vector per document (see `documents`) so that searches can fuse
    /// BM25 with dense similarity.
    pub fn attach_vectors(&mut self, vectors: Vec<Vec<f32>>) -> Result<()> {
        if vectors.len() != self.docs.len() {
            bail!(
                "{} vectors for {} knowledge chunks",
                vectors.len(),
                self.docs.len()
            );
        }
        self.dense = Some(vectors);
        Ok(())
    }

    /// Whether dense vectors are attached.
    pub fn has_embeddings(&self) -> bool {
        self.dense.is_some()
    }

    /// The best `k` entries for `query` by BM25, one hit per entry, filtered to `language`.
    pub fn search(&self, query: &str, language: Option<&str>, k: usize) -> Vec<Hit> {
        self.search_with(query, None, language, k)
    }

    /// The best `k` entries, fusing BM25 with dense similarity to `query_vector` (when given and
    /// embeddings are attached) by reciprocal rank fusion.
    pub fn search_with(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        language: Option<&str>,
        k: usize,
    ) -> Vec<Hit> {
        let lang = language.map(|l| {
            crate::lang::Language::from_name(l)
                .map(|x| x.name())
                .unwrap_or(l)
        });
        let allowed = |doc: usize| {
            lang.is_none_or(|l| {
                self.chunks[doc]
                    .languages
                    .iter()
                    .any(|c| c == "any" || c == l)
            })
        };
        let sparse: Vec<(usize, f64)> = self
            .index
            .search(query)
            .into_iter()
            .filter(|(d, _)| allowed(*d))
            .collect();
        let ranked: Vec<(usize, f64)> = match (query_vector, &self.dense) {
            (Some(qv), Some(dense)) => {
                let mut by_dense: Vec<(usize, f32)> = dense
                    .iter()
                    .enumerate()
                    .filter(|(d, _)| allowed(*d))
                    .map(|(d, v)| (d, dot(qv, v)))
                    .collect();
                by_dense.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                let mut fused: std::collections::HashMap<usize, f64> =
                    std::collections::HashMap::new();
                for (rank, (d, _)) in sparse.iter().take(FUSION_DEPTH).enumerate() {
                    *fused.entry(*d).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
                }
                for (rank, (d, _)) in by_dense.iter().take(FUSION_DEPTH).enumerate() {
                    *fused.entry(*d).or_default() += 1.0 / (RRF_K + rank as f64 + 1.0);
                }
                let mut v: Vec<(usize, f64)> = fused.into_iter().collect();
                v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                v
            }
            _ => sparse,
        };
        let mut hits: Vec<Hit> = Vec::new();
        for (doc, score) in ranked {
            let c = &self.chunks[doc];
            let e = &self.entries[c.entry];
            if hits.iter().any(|h| h.id == e.id) {
                continue;
            }
            hits.push(Hit {
                id: e.id.clone(),
                title: e.title.clone(),
                section: c.heading.clone(),
                score,
                text: c.text.clone(),
            });
            if hits.len() == k {
                break;
            }
        }
        hits
    }
}

/// Every built-in entry (the `.md` files of knowledge/).
pub fn builtin_entries() -> Result<Vec<Entry>> {
    builtin_files()
        .iter()
        .filter(|(p, _)| p.ends_with(".md"))
        .map(|(p, t)| parse_entry(&format!("builtin:{p}"), t, true))
        .collect()
}

fn collect_markdown(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect_markdown(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "md" || x == "markdown") {
            out.push(p);
        }
    }
    Ok(())
}

/// Splits an entry at its `## ` headings; a heading naming a language narrows the chunk to it.
fn chunk_entry(index: usize, e: &Entry) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut heading = String::from("overview");
    let mut buf = String::new();
    let mut in_fence = false;
    let push = |heading: &str, buf: &str, chunks: &mut Vec<Chunk>| {
        if buf.trim().is_empty() {
            return;
        }
        chunks.push(Chunk {
            entry: index,
            heading: heading.to_string(),
            languages: section_languages(heading, &e.languages),
            text: buf.trim().to_string(),
        });
    };
    for line in e.body.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(h) = line.strip_prefix("## ") {
            push(&heading, &buf, &mut chunks);
            heading = h.trim().to_string();
            buf.clear();
            continue;
        }
        buf.push_str(line);
        buf.push('\n');
    }
    push(&heading, &buf, &mut chunks);
    if chunks.is_empty() {
        chunks.push(Chunk {
            entry: index,
            heading,
            languages: e.languages.clone(),
            text: e.title.clone(),
        });
    }
    chunks
}

fn section_languages(heading: &str, entry_langs: &[String]) -> Vec<String> {
    let h = heading.to_ascii_lowercase();
    let mut langs = Vec::new();
    for (needle, name) in [
        ("python", "python"),
        ("typescript", "typescript"),
        ("javascript", "javascript"),
        ("node", "javascript"),
        ("go", "go"),
    ] {
        let hit = if needle == "go" {
            h.split(|c: char| !c.is_alphanumeric())
                .any(|w| w == "go" || w == "golang")
        } else {
            h.contains(needle)
        };
        if hit && !langs.contains(&name.to_string()) {
            langs.push(name.to_string());
        }
    }
    if langs.contains(&"javascript".to_string())
        && !langs.contains(&"typescript".to_string())
        && h.contains("js")
    {
        langs.push("typescript".into());
    }
    if langs.is_empty() {
        entry_langs.to_vec()
    } else {
        langs
    }
}

/// Cosine similarity of two normalised vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
