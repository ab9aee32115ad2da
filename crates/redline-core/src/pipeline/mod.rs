//! The offline review pipeline: a `ChangeSet` in, findings and per-file coverage out. Every file
//! is either reviewed or listed as skipped with its reason; nothing is dropped silently.
//!
//! `Reviewer::prepare` runs each file through parsing, the rules and context trimming and returns
//! `PreparedFile`s; a rules review assembles them at once, and an agent review (in the `redline`
//! crate) takes the same prepared files further before assembling.

mod skip;

use crate::change::{ChangeSet, ChangedFile};
use crate::config;
use crate::context::{self, FileContext};
use crate::lang::Language;
use crate::model::{
    ContextStats, Engine, FileReport, Finding, FindingSource, Review, Severity, Timings,
};
use crate::rules::{PatternNeeds, RuleHit, RuleSet};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

pub use skip::{MAX_FILE_BYTES, is_test_path};

/// One file through the rules stage, with what an agent needs to review it further.
pub struct PreparedFile {
    pub report: FileReport,
    pub findings: Vec<Finding>,
    /// Rule hits too unsure to post on their own (see `Rule::candidate_when`): the agent posts
    /// one only when a model confirms it; the rules engine alone never does.
    pub candidates: Vec<Finding>,
    /// Parse, rules and context milliseconds.
    pub timings: [f64; 3],
    /// None when the file was skipped.
    pub material: Option<Material>,
    /// Notes for the review: findings suppressed by a comment, with where and why.
    pub notes: Vec<String>,
}

/// A reviewed file's text, diff and trimmed context.
pub struct Material {
    pub language: Language,
    /// The new text (LF line ends).
    pub text: String,
    pub diff: crate::diff::FileDiff,
    /// The trimmed context (spans and outline).
    pub context: FileContext,
}

/// What the pipeline needs besides the change.
pub struct Reviewer<'a> {
    pub rules: &'a RuleSet,
    pub config: &'a config::Loaded,
    /// Findings below this are dropped (the stricter of this and the config's).
    pub min_severity: Severity,
    /// Count the context's tokens (an LLM will read it); a rules review does not need them.
    pub count_tokens: bool,
}

/// The version of the built-in rules: a short hash of their files, so results can be compared.
pub fn rules_version() -> String {
    format!(
        "{}+{}",
        env!("CARGO_PKG_VERSION"),
        crate::builtin::rules_hash()
    )
}

impl Reviewer<'_> {
    /// Reviews a change with the rules engine.
    pub fn review(&self, change: &ChangeSet) -> Review {
        let start = Instant::now();
        let prepared = self.prepare(change);
        assemble(change, prepared, start)
    }

    /// Runs every file through parsing, rules and context trimming, on all cores. Compiling the
    /// rules' queries is most of a small change's cost, so for a change of up to
    /// `COMPILED_TOGETHER_MAX_LINES` lines it is done once per language for all the files: they
    /// are parsed first (with the rule patterns each needs), then each language's patterns
    /// compile as one query, the biggest first, on their own threads, while other threads go on
    /// with the files of languages already compiled.
    pub fn prepare(&self, change: &ChangeSet) -> Vec<PreparedFile> {
        let order = language_interleaved(change.files.iter().map(|f| f.diff.path()));
        // Big files: parsing and running the rules cost more than compiling them, and a file's
        // tree is best used while it is fresh, so each file goes through on its own.
        let lines: usize = change
            .files
            .iter()
            .filter_map(|f| f.new_content.as_deref())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .sum();
        if lines > COMPILED_TOGETHER_MAX_LINES {
            return on_all_cores(&order, order.len(), |i| self.prepare_file(&change.files[i]));
        }
        type Needed = Result<(Parsed, Option<PatternNeeds>), Box<PreparedFile>>;
        let parsed: Vec<Needed> = on_all_cores(&order, order.len(), |i| {
            let mut parsed = self.parse_file(&change.files[i])?;
            let t0 = Instant::now();
            let needs = (!parsed.code_lines.is_empty()).then(|| {
                self.rules.needs(
                    parsed.language,
                    &parsed.text,
                    &parsed.tree,
                    &parsed.code_lines,
                )
            });
            parsed.selecting_ms = t0.elapsed().as_secs_f64() * 1000.0;
            Ok((parsed, needs))
        });
        let mut languages: Vec<(Language, PatternNeeds, OnceLock<()>)> = Vec::new();
        for (p, needs) in parsed.iter().filter_map(|p| p.as_ref().ok()) {
            let Some(needs) = needs else { continue };
            match languages.iter_mut().find(|(l, _, _)| *l == p.language) {
                Some((_, all, _)) => all.add(needs),
                None => languages.push((p.language, needs.clone(), OnceLock::new())),
            }
        }
        languages.sort_by_key(|(_, needs, _)| std::cmp::Reverse(needs.count()));
        let compile = |l: usize| {
            let (language, needs, compiled) = &languages[l];
            compiled.get_or_init(|| self.rules.compile_needs(*language, needs));
        };
        // The tasks: each language's compilation (`l`), then each file (`languages.len() + i`),
        // those of the quickest languages to compile first.
        let rank = |language: Language| languages.iter().rev().position(|(l, _, _)| *l == language);
        let mut files = order.clone();
        files.sort_by_key(|&i| match &parsed[i] {
            Ok((p, _)) => rank(p.language),
            Err(_) => None,
        });
        let tasks: Vec<usize> = (0..languages.len())
            .chain(files.iter().map(|i| languages.len() + i))
            .collect();
        let parsed: Vec<Mutex<Option<_>>> =
            parsed.into_iter().map(|p| Mutex::new(Some(p))).collect();
        // As many threads as files at most: a one-file change compiles and runs on this thread.
        let done = on_all_cores(&tasks, order.len(), |task| {
            let Some(i) = task.checked_sub(languages.len()) else {
                compile(task);
                return None;
            };
            let taken = parsed[i].lock().unwrap_or_else(|e| e.into_inner()).take();
            Some(match taken.expect("each file is finished once") {
                Ok((p, needs)) => {
                    // Wait for its language's query (compiled by now, or being compiled).
                    if let Some(l) = languages.iter().position(|(l, _, _)| *l == p.language) {
                        compile(l);
                    }
                    self.finish_file(&change.files[i], p, needs.as_ref())
                }
                Err(skipped) => *skipped,
            })
        });
        done.into_iter().flatten().collect()
    }

    /// One file: skipped with a reason, or parsed, run through the rules and trimmed.
    pub fn prepare_file(&self, file: &ChangedFile) -> PreparedFile {
        match self.parse_file(file) {
            Ok(parsed) => self.finish_file(file, parsed, None),
            Err(skipped) => *skipped,
        }
    }

    /// A file's first step: skipped with its reason, or read and parsed, with its added code
    /// lines (not blank and not only a comment).
    fn parse_file(&self, file: &ChangedFile) -> Result<Parsed, Box<PreparedFile>> {
        let (report, readable) = skip::check(self.config, file);
        let (language, text) = match readable {
            Ok(r) => r,
            Err(why) => return Err(Box::new(PreparedFile::skipped(report, why))),
        };
        let t0 = Instant::now();
        let mut parser = tree_sitter::Parser::new();
        parser
            .set_language(&language.grammar())
            .expect("bundled grammar loads");
        let Some(tree) = parser.parse(text.as_bytes(), None) else {
            return Err(Box::new(PreparedFile::skipped(
                report,
                "parser gave up".into(),
            )));
        };
        // Adding a comment changes no behaviour, so the rules do not report the code around it
        // (it was there before).
        let lines = crate::rules::edits::Lines::new(&text, &tree);
        let code_lines = file
            .diff
            .added_lines()
            .into_iter()
            .filter(|&l| lines.is_code(l))
            .collect();
        let parse_ms = t0.elapsed().as_secs_f64() * 1000.0;
        Ok(Parsed {
            report,
            language,
            text,
            tree,
            code_lines,
            parse_ms,
            selecting_ms: 0.0,
        })
    }

    /// A parsed file's second step: the rules on its added code lines (the patterns in `needs`
    /// when the caller has worked them out) and on what it deleted, then its trimmed context.
    fn finish_file(
        &self,
        file: &ChangedFile,
        parsed: Parsed,
        needs: Option<&PatternNeeds>,
    ) -> PreparedFile {
        let Parsed {
            report,
            language,
            text,
            tree,
            code_lines,
            parse_ms,
            selecting_ms,
        } = parsed;
        let t1 = Instant::now();
        let disabled = &self.config.config.rules.disable;
        let lines = crate::rules::edits::Lines::new(&text, &tree);
        // Only hits on added code lines are kept (below), so only the rules that can match there
        // run; a change that only adds comments or blank lines runs none.
        let hits = if code_lines.is_empty() {
            Vec::new()
        } else if let Some(needs) = needs {
            self.rules
                .run_needed(language, &text, &tree, disabled, &code_lines, needs)
        } else {
            self.rules
                .run_on_lines(language, &text, &tree, disabled, &code_lines)
        };
        // Removed-check rules read what the change deleted (and the base text, to tell a guard
        // that moved from one that went).
        let removals = crate::rules::removed::removals(&file.diff);
        let removed_hits = match file.old_content.as_deref() {
            // Tests delete checks on purpose (a fixture, a rewritten assertion).
            Some(old) if !removals.is_empty() && !is_test_path(&report.path) => {
                let old = String::from_utf8_lossy(old).replace("\r\n", "\n");
                self.rules
                    .run_removed(language, &text, &tree, &old, &removals, disabled)
            }
            _ => Vec::new(),
        };
        let (candidates, hits): (Vec<RuleHit>, Vec<RuleHit>) =
            hits.into_iter().partition(|h| h.candidate);
        let findings =
            self.changed_line_findings(&report.path, &lines, &code_lines, hits, removed_hits);
        let (findings, notes) = suppress(&report.path, &text, findings);
        let candidates =
            self.changed_line_findings(&report.path, &lines, &code_lines, candidates, Vec::new());
        let (mut candidates, _) = suppress(&report.path, &text, candidates);
        // A finding of the class nearby already speaks for the place.
        candidates.retain(|c| {
            !findings
                .iter()
                .any(|f| f.category == c.category && f.line.abs_diff(c.line) <= 3)
        });
        let t2 = Instant::now();
        let mut ctx: FileContext = context::trim(language, &text, &tree, &file.diff);
        if self.count_tokens {
            ctx.count_tokens(&text);
        }
        let t3 = Instant::now();
        let mut report = report;
        report.context = Some(ContextStats {
            context_lines: ctx.context_lines,
            file_lines: ctx.file_lines,
            context_tokens: self.count_tokens.then_some(ctx.context_tokens),
            file_tokens: self.count_tokens.then_some(ctx.file_tokens),
            capped: ctx.capped,
        });
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
        PreparedFile {
            report,
            findings,
            candidates,
            timings: [parse_ms, selecting_ms + ms(t1, t2), ms(t2, t3)],
            material: Some(Material {
                language,
                context: ctx,
                text,
                diff: file.diff.clone(),
            }),
            notes,
        }
    }

    /// The hits that touch an added code line (and the removed-check hits, which sit next to a
    /// deletion) and pass the severity threshold, one per line and category, lowered a level in
    /// test code.
    fn changed_line_findings(
        &self,
        path: &str,
        lines: &crate::rules::edits::Lines<'_>,
        added_lines: &std::collections::BTreeSet<u32>,
        hits: Vec<RuleHit>,
        near_deletions: Vec<RuleHit>,
    ) -> Vec<Finding> {
        let min = self
            .config
            .config
            .min_severity
            .unwrap_or(Severity::Suggestion)
            .min(self.min_severity);
        let in_tests = is_test_path(path);
        let mut findings: Vec<Finding> = Vec::new();
        let anchored = near_deletions.len();
        // How many findings (the first ones) sit next to a deletion.
        let mut removed_findings = 0;
        let all = near_deletions.into_iter().chain(hits);
        for (i, h) in all.enumerate() {
            if i == anchored {
                removed_findings = findings.len();
            }
            if h.severity > min {
                continue;
            }
            let near_deletion = i < anchored;
            if !near_deletion && !(h.line..=h.end_line).any(|l| added_lines.contains(&l)) {
                continue;
            }
            // Point at the first changed line of a multi-line node (a removed check: at the line
            // next to the deletion).
            let line = if near_deletion {
                h.line
            } else {
                (h.line..=h.end_line)
                    .find(|l| added_lines.contains(l))
                    .unwrap_or(h.line)
            };
            // A removed check and the unchecked code right after it are one bug: the finding
            // next to the deletion speaks for both (and for anything else said on its line, no
            // graver than itself), unless the change left code alone between them (another
            // edit, another place).
            if !near_deletion
                && findings[..removed_findings].iter().any(|f| {
                    f.severity <= h.severity && f.line == line
                        || (f.category == h.category
                            && f.line <= h.line
                            && h.line <= f.line + 10
                            && !lines.unchanged_code_between(
                                added_lines,
                                f.line,
                                first_changed(added_lines, h.line, h.end_line),
                            ))
                })
            {
                continue;
            }
            let severity = if in_tests {
                match severity_in_test_code(h.severity, &h.category) {
                    Some(s) => s,
                    None => continue,
                }
            } else {
                h.severity
            };
            // Several rules of one category on one line are one finding: the surest one speaks,
            // at the higher of their severities.
            if let Some(prev) = findings
                .iter_mut()
                .find(|f| f.line == line && f.category == h.category)
            {
                prev.severity = prev.severity.min(severity);
                if h.confidence > prev.confidence {
                    prev.confidence = h.confidence;
                    prev.rule_id = Some(h.rule_id);
                    prev.message = h.message;
                    prev.guidance = h.guidance;
                }
                continue;
            }
            findings.push(Finding {
                path: path.to_string(),
                line,
                end_line: if near_deletion {
                    line.max(h.end_line)
                } else {
                    line.max(h.end_line.min(line + 2))
                },
                severity,
                category: h.category,
                message: h.message,
                confidence: h.confidence,
                rule_id: Some(h.rule_id),
                source: FindingSource::Rules,
                cwe: h.cwe,
                guidance: h.guidance,
                suggestion: None,
            });
        }
        // A graver finding on a removed check's line speaks for it (a generic guard-removal
        // warning next to the eval that the guard protected).
        let graver_on_line = |f: &Finding, all: &[Finding]| {
            all[removed_findings..]
                .iter()
                .any(|g| g.line == f.line && g.severity < f.severity)
        };
        let keep: Vec<bool> = (0..findings.len())
            .map(|i| i >= removed_findings || !graver_on_line(&findings[i], &findings))
            .collect();
        let mut keep = keep.into_iter();
        findings.retain(|_| keep.next().unwrap_or(true));
        findings
    }
}

impl PreparedFile {
    fn skipped(mut report: FileReport, why: String) -> PreparedFile {
        report.skipped = Some(why);
        PreparedFile {
            report,
            findings: Vec::new(),
            candidates: Vec::new(),
            timings: [0.0; 3],
            material: None,
            notes: Vec::new(),
        }
    }
}

/// Drops the findings a suppression comment covers (see `rules::suppress`) and says so in notes.
fn suppress(path: &str, text: &str, findings: Vec<Finding>) -> (Vec<Finding>, Vec<String>) {
    if !(text.contains("redline:")
        || text.contains("nosec")
        || text.contains("nosemgrep")
        || text.contains("noqa"))
    {
        return (findings, Vec::new());
    }
    let marks = crate::rules::suppress::suppressions(text);
    let mut notes = Vec::new();
    let kept = findings
        .into_iter()
        .filter(|f| {
            let rule = f.rule_id.as_deref().unwrap_or("");
            let Some(m) = marks
                .iter()
                .find(|m| crate::rules::suppress::suppresses(m, rule, &f.category, f.line))
            else {
                return true;
            };
            let reason = if m.reason.is_empty() {
                "no reason given".to_string()
            } else {
                m.reason.clone()
            };
            notes.push(format!(
                "suppressed by a comment: {rule} at {path}:{} ({reason})",
                f.line
            ));
            false
        })
        .collect();
    (kept, notes)
}

/// A change whose files hold at most this many lines in all has its rules compiled together
/// (see `Reviewer::prepare`).
const COMPILED_TOGETHER_MAX_LINES: usize = 8_000;

/// A change of at most this many files is read whole before its review (a pull request's
/// usual size), so that `prepare` compiles all its files' rules at once; a bigger one (a
/// whole tree) is streamed, a file per thread at a time.
const HELD_WHOLE_FILES: usize = 64;

/// How far a streamed review has got: files done of all, and lines read.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub lines: usize,
}

impl Reviewer<'_> {
    /// A rules review of a change between two folders, reading and reviewing its files on all
    /// cores, one file per thread at a time: a whole tree is never held in memory, only each
    /// file's report and findings. `progress` hears of every file as it is done.
    pub fn review_dirs(
        &self,
        change: &crate::change::DirChange,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> anyhow::Result<Review> {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let start = Instant::now();
        let total = change.paths.len();
        if total <= HELD_WHOLE_FILES {
            return self.review_small_dirs(change, progress, start);
        }
        let order = language_interleaved(change.paths.iter().map(String::as_str));
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let lines = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, PreparedFile)>> = Mutex::new(Vec::new());
        let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(total.max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if failure.lock().is_ok_and(|f| f.is_some()) {
                            break;
                        }
                        match change.file(&change.paths[i]) {
                            Ok(Some(file)) => {
                                let n = file
                                    .new_content
                                    .as_deref()
                                    .map(|b| b.iter().filter(|&&c| c == b'\n').count())
                                    .unwrap_or(0);
                                let mut prepared = self.prepare_file(&file);
                                // Only what the report needs is kept: not the text or the context.
                                prepared.material = None;
                                results
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push((i, prepared));
                                lines.fetch_add(n, Ordering::Relaxed);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                failure
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .get_or_insert(e);
                                break;
                            }
                        }
                        progress(Progress {
                            done: done.fetch_add(1, Ordering::Relaxed) + 1,
                            total,
                            lines: lines.load(Ordering::Relaxed),
                        });
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(e);
        }
        let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.sort_by_key(|(i, _)| *i);
        let set = ChangeSet {
            description: change.description.clone(),
            files: Vec::new(),
            notes: Vec::new(),
        };
        Ok(assemble(
            &set,
            results.into_iter().map(|(_, p)| p).collect(),
            start,
        ))
    }
}

impl Reviewer<'_> {
    /// `review_dirs` for a small change: every file read first, then reviewed as one
    /// `prepare`.
    fn review_small_dirs(
        &self,
        change: &crate::change::DirChange,
        progress: &(dyn Fn(Progress) + Sync),
        start: Instant,
    ) -> anyhow::Result<Review> {
        let mut files = Vec::new();
        for path in &change.paths {
            files.extend(change.file(path)?);
        }
        let lines = files
            .iter()
            .filter_map(|f| f.new_content.as_deref())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .sum();
        let mut set = ChangeSet {
            description: change.description.clone(),
            files,
            notes: Vec::new(),
        };
        let mut prepared = self.prepare(&set);
        for p in &mut prepared {
            // Only what the report needs is kept, as in a streamed review.
            p.material = None;
        }
        set.files.clear();
        progress(Progress {
            done: change.paths.len(),
            total: change.paths.len(),
            lines,
        });
        Ok(assemble(&set, prepared, start))
    }
}

/// A file read and parsed, waiting for the rules (see `Reviewer::prepare`).
struct Parsed {
    report: FileReport,
    language: Language,
    text: String,
    tree: tree_sitter::Tree,
    /// The added lines that hold code.
    code_lines: std::collections::BTreeSet<u32>,
    parse_ms: f64,
    /// Working out which rule patterns it needs, when done before the rules run (counted with
    /// them).
    selecting_ms: f64,
}

/// `work` for every index in `order`, on all cores (at most `threads`), each thread taking the
/// next index when it is done with one; the results in index order.
fn on_all_cores<R: Send>(
    order: &[usize],
    threads: usize,
    work: impl Fn(usize) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(order.len().min(threads).max(1));
    // One task (a one-file change), or one core: no thread to start.
    if workers == 1 {
        let mut all: Vec<(usize, R)> = order.iter().map(|&i| (i, work(i))).collect();
        all.sort_by_key(|(i, _)| *i);
        return all.into_iter().map(|(_, r)| r).collect();
    }
    let mut all: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                        done.push((i, work(i)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("review thread"))
            .collect()
    });
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// The order in which the threads take files (indices into `paths`): each language's files in
/// their order, the languages taking turns. A language's rules compile on the first file that
/// needs them (most of a small review's cost) and any other thread needing them waits; taking
/// turns lets the first files of each thread be of different languages, so their rule sets
/// compile at once on different cores instead of one after the other.
fn language_interleaved<'p>(paths: impl Iterator<Item = &'p str>) -> Vec<usize> {
    let mut by_language: Vec<(Option<Language>, Vec<usize>)> = Vec::new();
    for (i, path) in paths.enumerate() {
        let language = crate::lang::detect(path, None);
        match by_language.iter_mut().find(|(l, _)| *l == language) {
            Some((_, files)) => files.push(i),
            None => by_language.push((language, vec![i])),
        }
    }
    let longest = by_language.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
    (0..longest)
        .flat_map(|turn| {
            by_language
                .iter()
                .filter_map(move |(_, f)| f.get(turn).copied())
        })
        .collect()
}

/// The severity a finding of `category` is posted with in a test file, or None when it is not
/// posted there. Tests do insecure things on purpose (a local server without TLS, eval of a
/// fixture, a made-up password, a private key generated as a test vector), and test code is not
/// attack surface: a security critical is a warning there (a value with the shape of a real key
/// is still worth a look), and a lesser security finding (a pickle of a fixture, SQL built from
/// test data) is not posted. Other findings are one level lower: a test that forgets an await is
/// still a real bug. The rules and the agent's model findings both go through this.
pub fn severity_in_test_code(severity: Severity, category: &str) -> Option<Severity> {
    if severity != Severity::Critical && crate::rules::suppress::is_security_category(category) {
        None
    } else {
        Some(severity.lower())
    }
}

/// Builds a rules review from the prepared files.
pub fn assemble(change: &ChangeSet, prepared: Vec<PreparedFile>, start: Instant) -> Review {
    let mut timings = Timings::default();
    let mut findings = Vec::new();
    let mut files = Vec::new();
    let mut notes = change.notes.clone();
    for r in prepared {
        add_timings(&mut timings, &r);
        files.push(r.report);
        findings.extend(r.findings);
        notes.extend(r.notes);
    }
    sort_findings(&mut findings);
    timings.total_ms = start.elapsed().as_secs_f64() * 1000.0;
    Review {
        description: change.description.clone(),
        engine: Engine::Rules,
        rules_version: rules_version(),
        findings,
        files,
        notes,
        timings,
        agent: None,
    }
}

/// Adds a prepared file's stage times to a review's.
pub fn add_timings(timings: &mut Timings, file: &PreparedFile) {
    timings.parse_ms += file.timings[0];
    timings.rules_ms += file.timings[1];
    timings.context_ms += file.timings[2];
}

/// Findings in reading order: by path, line, then most severe first.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.path
            .cmp(&b.path)
            .then(a.line.cmp(&b.line))
            .then(a.severity.cmp(&b.severity))
    });
}

/// The first changed line of `first..=last` (where a finding lands), or `first`.
fn first_changed(changed: &std::collections::BTreeSet<u32>, first: u32, last: u32) -> u32 {
    changed.range(first..=last).next().copied().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::language_interleaved;
    use crate::model::Severity;

    #[test]
    fn a_multi_line_sink_and_the_removed_escape_on_its_changed_line_are_one_comment() {
        // The innerHTML assignment starts two lines above the only changed line; the removed
        // escape is reported on that line, and the sink rule lands there too: one comment.
        let old = "function show(overlay, label) {\n  overlay.innerHTML = `\n    <div>\n      <b>${escapeHTML(label)}</b>\n    </div>`;\n}\n";
        let new = old.replace("${escapeHTML(label)}", "${label}");
        let file = crate::change::ChangedFile {
            diff: crate::diff::diff_texts(Some("ui.js"), Some("ui.js"), old, &new),
            old_content: Some(old.as_bytes().to_vec()),
            new_content: Some(new.as_bytes().to_vec()),
        };
        let rules = crate::rules::RuleSet::builtin().expect("rules");
        let config = crate::config::load(None, None).expect("config");
        let reviewer = super::Reviewer {
            rules: &rules,
            config: &config,
            min_severity: Severity::Suggestion,
            count_tokens: false,
        };
        let review = reviewer.review(&crate::change::ChangeSet {
            files: vec![file],
            ..Default::default()
        });
        let on_line: Vec<_> = review.findings.iter().filter(|f| f.line == 4).collect();
        assert_eq!(on_line.len(), 1, "{:#?}", review.findings);
        assert_eq!(on_line[0].severity, Severity::Critical);
    }

    #[test]
    fn threads_take_the_languages_in_turn() {
        let paths = ["a.py", "b.py", "c.py", "d.js", "e.js", "README.md", "f.go"];
        // Every file once; each language keeps its own order; the first of each comes first.
        assert_eq!(
            language_interleaved(paths.into_iter()),
            vec![0, 3, 5, 6, 1, 4, 2]
        );
        assert!(language_interleaved(std::iter::empty()).is_empty());
    }
}
