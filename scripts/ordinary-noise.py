#!/usr/bin/env python3
"""Noise on everyday changes: reviews ordinary commits of real projects (base = parent, head =
commit) and counts the findings by rule and severity. Nothing here is a known bug, so every
finding is a comment a reviewer has to read: a rule that fires often here is noisy, and a new
critical here is almost always a false alarm. The removed-check rules (which only fire on
deletions) get no such check from the whole-tree scans of scripts/real-code-scan.sh.

    scripts/ordinary-noise.py sample LIST [--per-repo 3] [--seed 7]   # pick commits once
    scripts/ordinary-noise.py run LIST OUT [--redline BIN] [--show RULE]

`sample` takes the corpus projects (fixtures/real/split.json) that have a local snapshot under
/work/.mirror (or $REDLINE_MIRROR), skips the held-out repositories, and picks up to --per-repo
non-merge commits at random among each one's last 400 whose subject does not speak of a security
fix and that change 3-300 lines of Python, JavaScript, TypeScript or Go (tests, vendored and
minified files left out); it writes one `owner/name commit` per line. The list is the sample:
keep it to compare two builds on the same commits. `run` exports each commit's changed files
into OUT/<owner+name>-<commit>/{base,head}, reviews them with the rules engine and prints the
counts (and, with --show, every finding of that rule).
"""
import argparse
import collections
import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("REDLINE_MIRROR", "/work/.mirror"))
HELDOUT = ROOT.parent / "shared" / "heldout-repos.sha256"
SOURCE = {".py", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go"}
SECURITY_WORDS = ("secur", "vuln", "cve", "xss", "inject", "travers", "sanitiz", "escape", "ghsa",
                  "exploit", "ssrf", "redos", "csrf", "advisory")


def git_dir(repo):
    d = MIRROR / repo.replace("/", "+", 1) / "repo"
    for candidate in (d, d / ".git"):
        if (candidate / "HEAD").exists():
            return candidate
    return None


def git(gdir, *args):
    r = subprocess.run(["git", f"--git-dir={gdir}", *args], capture_output=True)
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def source_files(gdir, commit):
    """The commit's changed source files and its changed line count, or None if unsuitable."""
    stat = git(gdir, "diff", "--numstat", f"{commit}^", commit)
    if stat is None:
        return None, 0
    files, total = [], 0
    for line in stat.splitlines():
        added, deleted, path = line.split("\t", 2)
        if added == "-" or Path(path).suffix not in SOURCE:
            continue
        low = path.lower()
        if "test" in low or "vendor/" in low or ".min." in low or "dist/" in low:
            continue
        files.append(path)
        total += int(added) + int(deleted)
    return files, total


def cmd_sample(args):
    held = set()
    if HELDOUT.exists():
        held = {l.split()[0] for l in HELDOUT.read_text().splitlines() if l.strip()}
    projects = sorted(json.loads((ROOT / "fixtures" / "real" / "split.json").read_text())["projects"])
    rng = random.Random(args.seed)
    picked = []
    for repo in projects:
        if hashlib.sha256(repo.encode()).hexdigest() in held:
            continue
        gdir = git_dir(repo)
        log = git(gdir, "log", "--no-merges", "--format=%H %s", "-n", "400", "HEAD") if gdir else None
        if not log:
            continue
        commits = [l.split(" ", 1) for l in log.splitlines() if " " in l]
        rng.shuffle(commits)
        taken = 0
        for sha, subject in commits:
            if taken >= args.per_repo:
                break
            if any(w in subject.lower() for w in SECURITY_WORDS):
                continue
            files, total = source_files(gdir, sha)
            if files and 3 <= total <= 300:
                picked.append(f"{repo} {sha}")
                taken += 1
    Path(args.list).write_text("\n".join(picked) + "\n")
    print(f"{len(picked)} commits from {len({p.split()[0] for p in picked})} projects -> {args.list}")


def cmd_run(args):
    binary = args.redline or str(ROOT / "target" / "release" / "redline")
    out = Path(args.out)
    by_rule, by_severity, shown, reviewed = collections.Counter(), collections.Counter(), [], 0
    for line in Path(args.list).read_text().split("\n"):
        if not line.strip():
            continue
        repo, sha = line.split()
        gdir = git_dir(repo)
        files, _ = source_files(gdir, sha) if gdir else (None, 0)
        if not files:
            print(f"skipped {repo} {sha[:10]}: no snapshot or no source files", file=sys.stderr)
            continue
        case = out / f"{repo.replace('/', '+')}-{sha[:10]}"
        for side, rev in (("base", f"{sha}^"), ("head", sha)):
            for path in files:
                blob = subprocess.run(["git", f"--git-dir={gdir}", "show", f"{rev}:{path}"], capture_output=True)
                if blob.returncode == 0:
                    target = case / side / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(blob.stdout)
        (case / "base").mkdir(parents=True, exist_ok=True)
        (case / "head").mkdir(parents=True, exist_ok=True)
        review = case / "review.json"
        subprocess.run([binary, "review", "--base-dir", str(case / "base"), "--head-dir", str(case / "head"),
                        "--format", "json", "-o", str(review)], capture_output=True)
        reviewed += 1
        try:
            findings = json.loads(review.read_text())["findings"]
        except (OSError, ValueError, KeyError):
            print(f"no review for {repo} {sha[:10]}", file=sys.stderr)
            continue
        for f in findings:
            by_rule[(f["severity"], f.get("rule_id"))] += 1
            by_severity[f["severity"]] += 1
            if args.show and f.get("rule_id") == args.show:
                shown.append(f"{repo} {sha[:10]} {f['path']}:{f['line']} {f['message'][:160]}")
    print(f"{reviewed} ordinary commits reviewed: {sum(by_severity.values())} findings "
          f"({', '.join(f'{n} {s}' for s, n in sorted(by_severity.items()))})")
    for (severity, rule), n in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {severity:<10} {n:4}  {rule}")
    for s in shown:
        print(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("list")
    s.add_argument("--per-repo", type=int, default=3)
    s.add_argument("--seed", type=int, default=7)
    r = sub.add_parser("run")
    r.add_argument("list")
    r.add_argument("out")
    r.add_argument("--redline")
    r.add_argument("--show")
    args = ap.parse_args()
    {"sample": cmd_sample, "run": cmd_run}[args.cmd](args)


if __name__ == "__main__":
    main()
