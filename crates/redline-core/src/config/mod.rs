//! `.redline.toml`, the per-repository configuration: ignored paths, disabled rules, minimum
//! severity, extra knowledge folders. Unknown keys are an error that names the key.

use crate::model::Severity;
use anyhow::{Context, Result, anyhow};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file name looked for at the root of a reviewed repository.
pub const FILE_NAME: &str = ".redline.toml";

/// Paths never worth reviewing: vendored, generated, lock and minified files.
pub const DEFAULT_IGNORES: &[&str] = &[
    "**/vendor/**",
    "**/node_modules/**",
    "**/third_party/**",
    "**/dist/**",
    "**/*.min.js",
    "**/*-min.js",
    "**/*.min.mjs",
    "**/*.bundle.js",
    "**/package-lock.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/go.sum",
    "**/poetry.lock",
    "**/Pipfile.lock",
    "**/*_pb2.py",
    "**/*_pb2_grpc.py",
    "**/*.pb.go",
    "**/*_generated.go",
    "**/*.gen.go",
    "**/zz_generated*",
    "**/*.generated.ts",
    "**/*.d.ts",
];

/// `.redline.toml` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Globs of paths to skip, on top of the defaults.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Set to false to review vendored, generated, lock and minified files too.
    #[serde(default = "yes")]
    pub default_ignores: bool,
    /// Findings below this severity are not reported (default: suggestion, i.e. everything).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Which LLM endpoints this repository's code may go to: `any` (default), `local-only`
    /// (endpoints marked local in the server configuration) or `off`.
    #[serde(default)]
    pub llm: LlmPolicy,
    /// Globs of paths whose content never goes to an LLM (e.g. `secrets/**`, `*.pem`, `.env*`).
    #[serde(default)]
    pub never_send: Vec<String>,
    #[serde(default)]
    pub rules: RulesSection,
    #[serde(default)]
    pub knowledge: KnowledgeSection,
}

/// Where a repository's code may be sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LlmPolicy {
    #[default]
    Any,
    LocalOnly,
    Off,
}

fn yes() -> bool {
    true
}

/// `[rules]`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesSection {
    /// Rule ids to turn off.
    #[serde(default)]
    pub disable: Vec<String>,
}

/// `[knowledge]`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSection {
    /// Folders (relative to the repository root) of the team's own guidance in Markdown, and
    /// `*.rules.toml` detectors.
    #[serde(default)]
    pub extra: Vec<PathBuf>,
}

/// A loaded configuration, with its globs compiled and its folders resolved.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: RepoConfig,
    pub ignore: GlobSet,
    /// For each glob of `ignore` (by index): the pattern as written, and whether it is one of the
    /// defaults (else it comes from the configuration).
    ignore_sources: Vec<(String, bool)>,
    /// Paths whose content never goes to an LLM.
    pub never_send: GlobSet,
    pub extra_dirs: Vec<PathBuf>,
    /// Where it came from, for the report (None: defaults).
    pub origin: Option<PathBuf>,
}

impl Loaded {
    /// Whether `path` is ignored (by default or by the configuration).
    pub fn is_ignored(&self, path: &str) -> bool {
        self.ignore.is_match(path)
    }

    /// The pattern that ignores `path`, as written, and whether it is a default one (None: the
    /// path is not ignored).
    pub fn ignored_by(&self, path: &str) -> Option<(&str, bool)> {
        let first = self.ignore.matches(path).into_iter().min()?;
        self.ignore_sources
            .get(first)
            .map(|(glob, default)| (glob.as_str(), *default))
    }
}

/// Reads `.redline.toml` from `root` (if any); `explicit` names a file that must exist.
pub fn load(root: Option<&Path>, explicit: Option<&Path>) -> Result<Loaded> {
    let (path, base) = match explicit {
        Some(p) => (
            Some(p.to_path_buf()),
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => {
            let r = root
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            let p = r.join(FILE_NAME);
            (p.is_file().then_some(p), r)
        }
    };
    let config = match &path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            parse(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?
        }
        None => RepoConfig::default_with_ignores(),
    };
    compile(config, path, Some(&base))
}

/// A `.redline.toml` read from elsewhere (a pull request's head commit): `text` None means the
/// repository has none. `knowledge.extra` folders need a checkout and are refused here.
pub fn from_text(text: Option<&str>, origin: &str) -> Result<Loaded> {
    let config = match text {
        Some(t) => parse(t).map_err(|e| anyhow!("{origin}: {e}"))?,
        None => RepoConfig::default_with_ignores(),
    };
    if !config.knowledge.extra.is_empty() {
        return Err(anyhow!(
            "{origin}: knowledge.extra names local folders, which a server review cannot read"
        ));
    }
    compile(config, text.map(|_| PathBuf::from(origin)), None)
}

/// A `.redline.toml` read from a commit of a checkout at `root` (a pull request's base, read with
/// git): `text` None means the commit has none; `knowledge.extra` folders are resolved in `root`.
pub fn from_text_in(text: Option<&str>, origin: &str, root: &Path) -> Result<Loaded> {
    let config = match text {
        Some(t) => parse(t).map_err(|e| anyhow!("{origin}: {e}"))?,
        None => RepoConfig::default_with_ignores(),
    };
    compile(config, text.map(|_| PathBuf::from(origin)), Some(root))
}

/// Compiles a configuration's globs and resolves its folders against `base`.
fn compile(config: RepoConfig, path: Option<PathBuf>, base: Option<&Path>) -> Result<Loaded> {
    let base = base.map(Path::to_path_buf).unwrap_or_default();
    let mut builder = GlobSetBuilder::new();
    let mut ignore_sources = Vec::new();
    let defaults: &[&str] = if config.default_ignores {
        DEFAULT_IGNORES
    } else {
        &[]
    };
    for (g, default) in defaults
        .iter()
        .map(|g| (*g, true))
        .chain(config.ignore.iter().map(|g| (g.as_str(), false)))
    {
        let glob = Glob::new(g).map_err(|e| {
            anyhow!(
                "{}: bad ignore glob `{g}`: {e}",
                path.as_deref().unwrap_or(Path::new(FILE_NAME)).display()
            )
        })?;
        builder.add(glob);
        ignore_sources.push((g.to_string(), default));
        // `vendor/**` should also match at the root when written as `**/vendor/**`.
        if let Some(rest) = g.strip_prefix("**/") {
            builder.add(Glob::new(rest).expect("suffix of a valid glob"));
            ignore_sources.push((g.to_string(), default));
        }
    }
    let ignore = builder.build()?;
    let mut never = GlobSetBuilder::new();
    for g in &config.never_send {
        never.add(Glob::new(g).map_err(|e| {
            anyhow!(
                "{}: bad never_send glob `{g}`: {e}",
                path.as_deref().unwrap_or(Path::new(FILE_NAME)).display()
            )
        })?);
        if !g.contains('/') {
            // `*.pem` means at any depth.
            never.add(Glob::new(&format!("**/{g}")).expect("prefix of a valid glob"));
        }
    }
    let never_send = never.build()?;
    let extra_dirs = config
        .knowledge
        .extra
        .iter()
        .map(|d| {
            if d.is_absolute() {
                d.clone()
            } else {
                base.join(d)
            }
        })
        .collect::<Vec<_>>();
    for d in &extra_dirs {
        if !d.is_dir() {
            return Err(anyhow!(
                "{}: knowledge.extra folder {} does not exist",
                path.as_deref().unwrap_or(Path::new(FILE_NAME)).display(),
                d.display()
            ));
        }
    }
    Ok(Loaded {
        config,
        ignore,
        ignore_sources,
        never_send,
        extra_dirs,
        origin: path,
    })
}

/// Parses the text of a `.redline.toml`; errors name the offending key.
pub fn parse(text: &str) -> Result<RepoConfig> {
    toml::from_str(text).map_err(|e| anyhow!("{}", e.message()))
}

impl RepoConfig {
    fn default_with_ignores() -> RepoConfig {
        RepoConfig {
            default_ignores: true,
            ..RepoConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("ignroe = [\"x\"]").unwrap_err().to_string();
        assert!(e.contains("ignroe"), "{e}");
        let e = parse("[rules]\ndisabled = []").unwrap_err().to_string();
        assert!(e.contains("disabled"), "{e}");
        let e = parse("min_severity = \"high\"").unwrap_err().to_string();
        assert!(e.contains("high"), "{e}");
    }

    #[test]
    fn default_ignores_match_at_any_depth() {
        let l = load(Some(Path::new("/nonexistent-dir")), None).unwrap();
        assert!(l.is_ignored("vendor/lib/a.go"));
        assert!(l.is_ignored("web/node_modules/x/index.js"));
        assert!(l.is_ignored("static/app.min.js"));
        assert!(l.is_ignored("go.sum"));
        assert!(!l.is_ignored("app/vendors.py"));
        assert_eq!(l.ignored_by("go.sum"), Some(("**/go.sum", true)));
        assert_eq!(l.ignored_by("app/vendors.py"), None);
        let c = parse("ignore = [\"gen/**\"]").unwrap();
        let l = compile(c, None, None).unwrap();
        assert_eq!(l.ignored_by("gen/a.py"), Some(("gen/**", false)));
        assert_eq!(l.ignored_by("vendor/x/a.go"), Some(("**/vendor/**", true)));
    }
}
