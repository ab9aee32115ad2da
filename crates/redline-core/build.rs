//! Embeds the workspace's knowledge/ folder (guidance entries and rules) into the crate, so that a
//! review needs no files beside the executable. Also stores each rules file in the form a review
//! reads: JSON without the rules' examples (parsing the TOML was half of a one-line review).

use sha2::{Digest, Sha256};
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Built-in knowledge files: (path under knowledge/, contents).\npub static FILES: &[(&str, &str)] = &[\n",
    );
    // The rules' version: a hash of the rules files, computed here rather than on every review.
    let mut rules = Sha256::new();
    let mut review_form = String::from(
        "/// The built-in rules files as a review reads them: (path, JSON of the rules without `examples` and `changes`).\npub static RULES_FOR_REVIEW: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
        if rel.ends_with(".rules.toml") {
            let text = std::fs::read_to_string(abs).unwrap();
            rules.update(rel.as_bytes());
            rules.update(text.as_bytes());
            review_form.push_str(&format!("    ({rel:?}, {:?}),\n", for_review(rel, &text)));
        }
    }
    out.push_str("];\n");
    review_form.push_str("];\n");
    out.push_str(&review_form);
    let hash: String = rules
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    out.push_str(&format!(
        "/// The first 12 hex digits of the SHA-256 of the rules files (path, then contents, in order).\npub const RULES_HASH: &str = {:?};\n",
        &hash[..12]
    ));
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("knowledge_files.rs");
    std::fs::write(dest, out).unwrap();
}

/// A rules file as JSON, less what only `redline knowledge check` reads. A built-in rules file
/// that is not valid TOML stops the build, with the parser's message.
fn for_review(rel: &str, text: &str) -> String {
    let mut file: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("knowledge/{rel} is not valid TOML: {e}"));
    let mut prefixes = toml::Table::new();
    if let Some(toml::Value::Array(rules)) = file.get_mut("rule") {
        for rule in rules.iter_mut() {
            if let toml::Value::Table(t) = rule {
                t.remove("examples");
                t.remove("changes");
                if let (Some(toml::Value::String(id)), Some(toml::Value::String(removed))) =
                    (t.get("id"), t.get("removed"))
                    && let Some(p) = match_prefixes(removed)
                {
                    prefixes.insert(id.clone(), p.into());
                }
            }
        }
    }
    file.insert("removed_prefixes".into(), prefixes.into());
    serde_json::to_string(&file).unwrap()
}

/// Literals every match of a removed-check regex starts with, when there are few enough to list:
/// a change whose deleted lines hold none of them cannot match, so the review need not compile
/// the regex (a tenth of an edited line's cost). Read from the pattern as written, whose `\w`
/// and `\d` take more than the ASCII ones the review compiles: its literals hold for both.
fn match_prefixes(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::parse(pattern).ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    let out: Vec<String> = literals
        .iter()
        .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
        .collect::<Option<_>>()?;
    // An empty literal (a match may start anywhere) or a one-byte one says nothing useful.
    (!out.is_empty() && out.iter().all(|l| l.len() >= 2)).then_some(out)
}

/// Every entry (`.md`, READMEs aside) and rules file (`.toml`) under `dir`.
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            println!("cargo:rerun-if-changed={}", p.display());
            collect(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "md" || x == "toml")
            && p.file_name().is_some_and(|n| n != "README.md")
        {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                rel,
                p.canonicalize().unwrap().to_string_lossy().into_owned(),
            ));
        }
    }
}
