//! The worker's cost per review once it is warm: one `ReviewService` (rules and knowledge loaded
//! once, as `redline serve` holds them) reviews the same change several times; prints the CPU
//! time of the first review and the median of the later ones.
//!
//!     cargo bench --bench review_cpu -- BASE_DIR HEAD_DIR [RUNS]
//!
//! `scripts/bench-speed.py` runs it on scripts/gen-change.py's 2,000-line change.

use redline::review::{ReviewOptions, ReviewService};
use std::path::PathBuf;

/// CPU time (user + system, all threads) of this process so far.
fn cpu() -> std::time::Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let base = PathBuf::from(args.first().expect("BASE_DIR HEAD_DIR [RUNS]"));
    let head = PathBuf::from(args.get(1).expect("BASE_DIR HEAD_DIR [RUNS]"));
    let runs: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(5);
    let change = redline_core::change::from_dirs(Some(&base), &head)?;
    let lines: usize = change
        .files
        .iter()
        .map(|f| f.diff.changed_line_count())
        .sum();
    let repo = redline_core::config::load(None, None)?;
    let service = ReviewService::new(None)?;
    let mut cpus = Vec::new();
    for _ in 0..runs.max(2) {
        let before = cpu();
        let reviewed = service
            .review(&change, &repo, &ReviewOptions::default())
            .await?;
        std::hint::black_box(&reviewed.review);
        cpus.push(cpu() - before);
    }
    let first = cpus[0];
    let mut later: Vec<_> = cpus[1..].to_vec();
    later.sort();
    println!(
        "worker, {lines} changed lines in {} files: first review {:.0} ms CPU, later reviews {:.0} ms CPU (median of {})",
        change.files.len(),
        first.as_secs_f64() * 1000.0,
        later[later.len() / 2].as_secs_f64() * 1000.0,
        later.len()
    );
    Ok(())
}
