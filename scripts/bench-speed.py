#!/usr/bin/env python3
"""How fast a review is, as a user sees it (release build, wall time including process start,
median of N runs): a one-line change in each language (a line added, and a line edited in
place), a 2,000-line change of 10 files (200 lines changed in each of 10 long files, and 10 new
files of real library code), a whole real tree, and the worker's CPU for both 2,000-line
reviews after its first job.

    cargo build --release && scripts/bench-speed.py [--runs 10] [--tree DIR] [--only one,change,tree,worker]

The one-line changes add a line to (or edit one line of) a file of the shipped cases
(fixtures/cases), one per language; the 2,000-line change comes from scripts/gen-change.py; the tree defaults to this
Python's standard library (a real tree of more than 500k lines). Timings are printed, never
asserted: this machine is shared and noisy.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "redline"
LANGS = [("python", "python", {".py"}), ("javascript", "javascript", {".js", ".mjs"}),
         ("go", "go", {".go"}), ("typescript", "typescript", {".ts", ".tsx"})]


def biggest(lang_dir, exts):
    files = [p for p in (ROOT / "fixtures" / "cases" / lang_dir).rglob("head/**/*") if p.suffix in exts]
    return max(files, key=lambda p: p.stat().st_size)


def one_line_change(work, name, src, comment_only=False):
    """One line added in the middle of the file: a copy of the first code line from there (code
    the rules must look at), or with `comment_only` a comment line (which runs no rules)."""
    base, head = work / (("comment-" if comment_only else "") + name) / "base", None
    head = base.parent / "head"
    for d in (base, head):
        d.mkdir(parents=True, exist_ok=True)
    lines = src.read_text().splitlines(keepends=True)
    comment = "# " if src.suffix == ".py" else "// "
    mid = len(lines) // 2
    if comment_only:
        added = comment + "one more line\n"
    else:
        while not any(c.isalnum() for c in lines[mid]) or lines[mid].strip().startswith(("#", "//", "*", "/*")):
            mid += 1
        added = lines[mid]
    (base / src.name).write_text("".join(lines))
    (head / src.name).write_text("".join(lines[:mid] + [added] + lines[mid:]))
    return base, head


def one_comment_line(work, name, src):
    return one_line_change(work, name, src, comment_only=True)


def one_line_edit(work, name, src):
    """The commonest real edit: one line changed in place (a deletion and an addition), which also
    runs the removed-check rules on the deleted line."""
    base, head = work / ("edit-" + name) / "base", work / ("edit-" + name) / "head"
    for d in (base, head):
        d.mkdir(parents=True, exist_ok=True)
    lines = src.read_text().splitlines(keepends=True)
    i = len(lines) // 2
    while not lines[i].strip():
        i += 1
    line = lines[i].rstrip("\n")
    edited = line.replace("=", "= ", 1) if "=" in line else line + " "
    (base / src.name).write_text("".join(lines))
    (head / src.name).write_text("".join(lines[:i] + [edited + "\n"] + lines[i + 1:]))
    return base, head


def timed(args, runs, env=None):
    """Median wall and median CPU (user + system) in ms over `runs` runs, and the last run. CPU
    time is the steadier figure on a shared machine: other processes stretch wall time only."""
    walls, cpus, last = [], [], None
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        p = subprocess.run(args, capture_output=True, text=True, env=env)
        walls.append((time.perf_counter() - t) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000)
        last = p
    return statistics.median(walls), statistics.median(cpus), last


def library_change(work):
    """The issue's own shape: 2,000 new lines in 10 files of real library code, 6 Python files
    from this Python's standard library and 4 JavaScript files from npm's own dependencies (the
    first files of 180-220 lines in sorted order), all added. Every line is new, so every pattern
    of both languages can match: this is the shape that pays for compiling the rules."""
    import sysconfig
    def pick(root, suffix, n):
        found = []
        for p in sorted(Path(root).rglob("*" + suffix)):
            if "test" in str(p.relative_to(root)).lower() or not p.is_file():
                continue
            try:
                count = p.read_bytes().count(b"\n")
            except OSError:
                continue
            if 180 <= count <= 220:
                found.append(p)
            if len(found) == n:
                break
        return found
    npm = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True).stdout.strip()
    py = pick(sysconfig.get_paths()["stdlib"], ".py", 6)
    js = pick(Path(npm) / "npm" / "node_modules", ".js", 4) if npm else []
    if len(py) < 6 or len(js) < 4:
        return None
    base, head = work / "library" / "base", work / "library" / "head"
    base.mkdir(parents=True)
    for i, src in enumerate(py + js):
        (head / f"m{i}").mkdir(parents=True)
        shutil.copy(src, head / f"m{i}" / src.name)
    return base, head


def rules_ms(stdout):
    try:
        s = json.loads(stdout)["summary"]["timings_ms"]
        return s.get("rules_ms", 0), s.get("context_ms", 0)
    except Exception:
        return None, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--tree", default=None)
    ap.add_argument("--only", default="one,change,tree,worker")
    args = ap.parse_args()
    only = set(args.only.split(","))
    if not BIN.exists():
        sys.exit("build first: cargo build --release")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDLINE_LLM", "OPENAI"))}
    work = Path(tempfile.mkdtemp(prefix="redline-speed-"))
    try:
        if "one" in only:
            for title, make in [("one added line (a copy of a code line)", one_line_change),
                                ("one edited line (a line changed in place)", one_line_edit),
                                ("one added comment line (no code: no rule runs)", one_comment_line)]:
                print(f"{title}, median of {args.runs} (wall incl. process start; rules and context ms of the last run)")
                for name, lang_dir, exts in LANGS:
                    src = biggest(lang_dir, exts)
                    base, head = make(work, name, src)
                    wall, cpu, p = timed([str(BIN), "review", "--base-dir", str(base), "--head-dir", str(head),
                                          "--format", "json"], args.runs, env)
                    r, c = rules_ms(p.stdout)
                    print(f"  {name:<11} {wall:7.1f} ms wall, {cpu:6.1f} ms CPU   rules {r} ms, context {c} ms   "
                          f"({src.name}, {len(src.read_text().splitlines())} lines)")
        if "change" in only or "worker" in only:
            change = work / "change"
            subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-change.py"), str(change)], check=True,
                           capture_output=True)
        if "change" in only:
            wall, cpu, p = timed([str(BIN), "review", "--base-dir", str(change / "base"), "--head-dir", str(change / "head"),
                                  "--format", "json"], args.runs, env)
            r, c = rules_ms(p.stdout)
            print(f"2,000 changed lines in 10 files: {wall:.1f} ms wall, {cpu:.1f} ms CPU (medians)   rules {r} ms, context {c} ms (summed over files)")
        library = library_change(work) if ("change" in only or "worker" in only) else None
        if "change" in only:
            if library is None:
                print("2,000 new lines of library code: skipped (needs npm's own node_modules)")
            else:
                wall, cpu, p = timed([str(BIN), "review", "--base-dir", str(library[0]), "--head-dir",
                                      str(library[1]), "--format", "json"], args.runs, env)
                r, c = rules_ms(p.stdout)
                n = sum(f.read_bytes().count(b"\n") for f in library[1].rglob("*") if f.is_file())
                print(f"{n:,} new lines in 10 library files (6 Python, 4 JS): {wall:.1f} ms wall, {cpu:.1f} ms CPU "
                      f"(medians)   rules {r} ms, context {c} ms")
        if "tree" in only:
            tree = Path(args.tree) if args.tree else Path(
                subprocess.run([sys.executable, "-c", "import sysconfig;print(sysconfig.get_paths()['stdlib'])"],
                               capture_output=True, text=True).stdout.strip())
            empty = work / "empty"
            empty.mkdir()
            lines = 0
            for p in tree.rglob("*"):
                if p.is_file() and p.suffix in {".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".go"}:
                    try:
                        lines += p.read_bytes().count(b"\n")
                    except OSError:
                        pass
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            p = subprocess.run([str(BIN), "review", "--base-dir", str(empty), "--head-dir", str(tree), "--format", "json",
                                "-o", str(work / "tree.json")], capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            cores = os.cpu_count() or 1
            peak_mb = after.ru_maxrss / 1024
            print(f"whole tree {tree}: {lines} lines in {wall:.1f} s wall, {cpu:.1f} s CPU on {cores} cores: "
                  f"{lines / wall / cores:,.0f} lines/s/core (wall), {lines / cpu:,.0f} lines per CPU-second; "
                  f"peak RSS {peak_mb:.0f} MiB; exit {p.returncode}")
        if "worker" in only:
            p = subprocess.run(["cargo", "bench", "--quiet", "--bench", "review_cpu", "--",
                                str(change / "base"), str(change / "head"), "5"], cwd=ROOT, capture_output=True, text=True)
            print(p.stdout.strip() or p.stderr.strip()[-500:])
            if library is not None:
                p = subprocess.run(["cargo", "bench", "--quiet", "--bench", "review_cpu", "--",
                                    str(library[0]), str(library[1]), "5"], cwd=ROOT, capture_output=True, text=True)
                print(p.stdout.strip() or p.stderr.strip()[-500:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
