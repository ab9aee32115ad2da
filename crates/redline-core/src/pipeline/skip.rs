//! Which changed files are reviewed, and why the others are not: ignored paths, deletions, binary
//! and generated files, unsupported languages, files too large or not UTF-8.

use crate::change::ChangedFile;
use crate::config;
use crate::diff::{FileStatus, LineKind};
use crate::lang::{self, Language};
use crate::model::FileReport;

/// Files larger than this are skipped (generated or data files, not code to review).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The file's report (no context yet), and either its language and LF text or why it is skipped.
pub(super) fn check(
    config: &config::Loaded,
    file: &ChangedFile,
) -> (FileReport, Result<(Language, String), String>) {
    let diff = &file.diff;
    let path = diff.path().to_string();
    let added = diff
        .hunks
        .iter()
        .flat_map(|h| &h.lines)
        .filter(|l| l.kind == LineKind::Added)
        .count();
    let removed = diff.changed_line_count() - added;
    let text = file.new_content.as_deref().map(String::from_utf8_lossy);
    let language = lang::detect(&path, text.as_deref());
    let report = FileReport {
        path: path.clone(),
        status: diff.status,
        language: language.map(Language::name),
        skipped: None,
        added_lines: added,
        removed_lines: removed,
        context: None,
    };
    let verdict = readable(config, file, &path, added, language);
    (report, verdict)
}

fn readable(
    config: &config::Loaded,
    file: &ChangedFile,
    path: &str,
    added: usize,
    language: Option<Language>,
) -> Result<(Language, String), String> {
    let diff = &file.diff;
    if let Some((glob, default)) = config.ignored_by(path) {
        return Err(if default {
            format!(
                "ignored by the default pattern `{glob}` (vendored, generated, lock or minified files; `default_ignores = false` in .redline.toml reviews them)"
            )
        } else {
            let file = config
                .origin
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| config::FILE_NAME.to_string());
            format!("ignored by `{glob}` in {file}")
        });
    }
    if path == config::FILE_NAME {
        return Err(
            "redline configuration (.redline.toml): read as settings, not reviewed as code".into(),
        );
    }
    if diff.status == FileStatus::Deleted {
        return Err("deleted".into());
    }
    if diff.new_mode.as_deref() == Some(crate::change::SYMLINK_MODE) {
        return Err("symbolic link (not followed)".into());
    }
    if diff.binary
        || file
            .new_content
            .as_deref()
            .is_some_and(|b| b.iter().take(8000).any(|&c| c == 0))
    {
        return Err("binary file".into());
    }
    if diff.mode_only() {
        return Err("mode change only".into());
    }
    if diff.hunks.is_empty() {
        return Err(if diff.status == FileStatus::Renamed {
            "renamed without content changes".into()
        } else {
            "no content changes".into()
        });
    }
    // A change that only deletes lines is still reviewed: deleting a check is a change to review
    // (the removed-check rules). Without the old text there is nothing to compare, so skip it.
    if added == 0 && file.old_content.is_none() {
        return Err("only removed lines".into());
    }
    let Some(language) = language else {
        let ext = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".{e}"))
            .unwrap_or_else(|| "no extension".into());
        return Err(format!("unsupported language ({ext})"));
    };
    let Some(bytes) = file.new_content.as_deref() else {
        return Err("file content unavailable".into());
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!(
            "too large ({} KiB > {} KiB)",
            bytes.len() / 1024,
            MAX_FILE_BYTES / 1024
        ));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err("not UTF-8 text".into());
    };
    if is_generated(text) {
        return Err("generated file (has a `Code generated ... DO NOT EDIT` header)".into());
    }
    if let Some(width) = minified_width(text) {
        return Err(format!(
            "minified or bundled code (lines of {width} characters on average): review its source"
        ));
    }
    // CRLF files: tree-sitter and line numbers work on LF; the line count is unchanged.
    let text = if text.contains('\r') {
        text.replace("\r\n", "\n")
    } else {
        text.to_string()
    };
    Ok((language, text))
}

/// Test code, by the conventions of the four languages: a `test`, `tests`, `__tests__`, `testing`,
/// `spec` or `e2e` folder, `test_*.py`, `*_test.py`, `*_test.go`, `conftest.py`, Django's
/// `tests.py`, and
/// `*.test.*`/`*.spec.*` for JavaScript and TypeScript. Written out rather than as a regex, whose
/// compilation was a tenth of a one-line review.
pub fn is_test_path(path: &str) -> bool {
    let (dirs, name) = match path.rsplit_once('/') {
        Some((dirs, name)) => (Some(dirs), name),
        None => (None, path),
    };
    let test_dir = |d: &str| {
        matches!(
            d,
            "test" | "tests" | "__tests__" | "testing" | "spec" | "e2e"
        )
    };
    if dirs.is_some_and(|d| d.split('/').any(test_dir)) {
        return true;
    }
    if (name.starts_with("test_") && name.ends_with(".py"))
        || name.ends_with("_test.py")
        || name.ends_with("_test.go")
        || name == "conftest.py"
        || name == "tests.py"
    {
        return true;
    }
    // `.test.js`, `.spec.tsx`, `.test.mjs`, `.spec.cts` ...: `[cm]?[jt]sx?` after `.test`/`.spec`.
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ext = ext.strip_prefix(['c', 'm']).unwrap_or(ext);
    let ext = ext.strip_suffix('x').unwrap_or(ext);
    matches!(ext, "js" | "ts") && (stem.ends_with(".test") || stem.ends_with(".spec"))
}

/// Go's and others' convention for generated code, in the first lines of a file.
fn is_generated(text: &str) -> bool {
    text.lines().take(5).any(|l| {
        let l = l.trim_start_matches(['/', '#', ' ', '*']);
        (l.starts_with("Code generated") && l.contains("DO NOT EDIT"))
            || l.starts_with("@generated")
    })
}

/// The average line width of a file written for machines, not people (a bundle or a minified
/// build under a name the ignore patterns do not know): over 300 characters a line, in a file of
/// more than a few kilobytes. Code reviewed there is reviewed in its source.
fn minified_width(text: &str) -> Option<usize> {
    let lines = text.lines().count().max(1);
    let width = text.len() / lines;
    (text.len() > 4096 && width > 300).then_some(width)
}

#[cfg(test)]
mod tests {
    use super::{is_test_path, minified_width};
    use proptest::prelude::*;

    #[test]
    fn bundles_are_told_apart_from_code_by_their_line_width() {
        let bundle = format!("(()=>{{{}}})();\n", "var a=1;".repeat(2000));
        assert!(minified_width(&bundle).is_some());
        let code = "function add(a, b) {\n  return a + b;\n}\n".repeat(500);
        assert!(minified_width(&code).is_none());
        // A short file with one long line (a data URI, a long string) is still reviewed.
        assert!(minified_width(&"x".repeat(3000)).is_none());
    }

    /// The convention as the regex it replaced: the written-out check must agree with it.
    fn by_regex(path: &str) -> bool {
        regex::Regex::new(r"(^|/)(tests?|__tests__|testing|spec|e2e)/|(^|/)test_[^/]*\.py$|_test\.(py|go)$|(^|/)(conftest|tests)\.py$|\.(test|spec)\.[cm]?[jt]sx?$")
            .unwrap()
            .is_match(path)
    }

    #[test]
    fn test_paths_of_the_four_languages() {
        for p in [
            "tests/test_api.py",
            "pkg/api_test.go",
            "src/__tests__/a.js",
            "a/b.spec.tsx",
            "a/b.test.mjs",
            "conftest.py",
            "alerts/tests.py",
            "e2e/x.ts",
            "test_.py",
        ] {
            assert!(is_test_path(p), "{p}");
            assert!(by_regex(p), "{p}");
        }
        for p in [
            "src/api.py",
            "contest.py",
            "a/testdata.go",
            "a/b.test.py",
            "a/mytests.py",
            "spec",
            "tests",
        ] {
            assert!(!is_test_path(p), "{p}");
            assert!(!by_regex(p), "{p}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_regex(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "test", "tests", "__tests__", "testing", "spec", "e2e", "src", "", "test_a", "a_test",
                "conftest", "b", ".test", ".spec", ".py", ".go", ".js", ".cjs", ".mts", ".tsx", ".jsx",
                ".ctsx", ".x", "/", "/", "/", "_test", "test_", "m", "c",
            ]),
            0..7,
        )) {
            let path: String = parts.concat();
            prop_assert_eq!(is_test_path(&path), by_regex(&path), "{}", path);
        }
    }
}
