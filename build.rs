//! Embeds the built-in knowledge/ folder (entries and rules) and the prompt versions in prompts/
//! into the binary, so that a review needs no files beside the executable.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=knowledge");
    println!("cargo:rerun-if-changed=prompts");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("knowledge"), &root.join("knowledge"), &mut files);
    files.sort();
    let mut out = String::from(
        "/// Built-in knowledge files: (path under knowledge/, contents).\npub static FILES: &[(&str, &str)] = &[\n",
    );
    for (rel, abs) in files {
        out.push_str(&format!("    ({rel:?}, include_str!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("knowledge_files.rs");
    std::fs::write(dest, out).unwrap();

    // Prompt versions: prompts/<version>/system.md.
    let mut prompts: Vec<(String, String)> = std::fs::read_dir(root.join("prompts"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("system.md").is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.path().join("system.md").to_string_lossy().into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    prompts.sort();
    let mut out = String::from(
        "/// Prompt versions: (version, system prompt).\npub static PROMPTS: &[(&str, &str)] = &[\n",
    );
    for (version, abs) in prompts {
        out.push_str(&format!("    ({version:?}, include_str!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("prompt_files.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "md" || x == "toml")
            && p.file_name().is_some_and(|n| n != "README.md")
        {
            let rel = p
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, p.to_string_lossy().into_owned()));
        }
    }
}
