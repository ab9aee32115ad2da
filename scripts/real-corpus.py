#!/usr/bin/env python3
"""Builds the real-fix development corpus (fixtures/real/) into bench case folders.

The corpus is metadata only: each fixtures/real/<language>/<id>.json names a public repository,
two commits, the files to take and the annotated findings, in our own words. The code itself is
never committed: this script reads it from local snapshots of the repositories (the `fetch` tool
puts them under /work/.mirror/<owner>+<name>/repo, or set REDLINE_MIRROR) and writes cases in the
format of ../shared/bench-format.md.

    scripts/real-corpus.py build [--out target/real] [--only tune|measure] [--lang python]
    scripts/real-corpus.py check           # validate metadata (and annotations, where snapshots exist)
    scripts/real-corpus.py stats           # counts by language, kind, class, split, project
    scripts/real-corpus.py split --seed N  # assign projects to tune/measure once (refuses to redo)

A missing snapshot is reported with the list of repositories to fetch; the other cases are built.
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fixtures" / "real"
SPLIT = CORPUS / "split.json"
HELDOUT = Path(os.environ.get("REDLINE_HELDOUT", ROOT.parent / "shared" / "heldout-repos.sha256"))
MIRROR = Path(os.environ.get("REDLINE_MIRROR", "/work/.mirror"))
LANGS = ("python", "javascript", "typescript", "go")
KINDS = ("positive", "negative")
ORIGINS = ("fix-reversed", "fix-forward", "ordinary")
SEVERITIES = ("critical", "warning", "suggestion")


def load_cases():
    cases = []
    for lang in LANGS:
        for path in sorted((CORPUS / lang).glob("*.json")):
            with open(path) as f:
                case = json.load(f)
            case["_file"] = str(path.relative_to(ROOT))
            cases.append(case)
    return cases


def heldout_hashes():
    if not HELDOUT.exists():
        return set()
    return {line.split()[0] for line in HELDOUT.read_text().splitlines() if line.strip()}


def repo_hash(repo):
    return hashlib.sha256(repo.lower().encode()).hexdigest()


def git_dir(repo):
    owner, name = repo.split("/", 1)
    d = MIRROR / f"{owner}+{name}" / "repo"
    # Snapshots arrive as a bare repository, or (some renamed or archived ones) as a work tree's .git.
    for candidate in (d, d / ".git"):
        if (candidate / "HEAD").exists() and (candidate / "objects").exists():
            return candidate
    return None


def git(gdir, *args, binary=False):
    out = subprocess.run(["git", f"--git-dir={gdir}", *args], capture_output=True)
    if out.returncode != 0:
        return None
    return out.stdout if binary else out.stdout.decode("utf-8", "replace")


def show(gdir, commit, path):
    return git(gdir, "show", f"{commit}:{path}", binary=True)


def changed_head_lines(base_text, head_text):
    """New-side line numbers a reviewer can point at: added lines, and the head lines next to a
    deletion (a fix that added a check shows, reversed, as a deletion)."""
    import difflib

    a = base_text.splitlines()
    b = head_text.splitlines()
    lines = set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "insert"):
            lines.update(range(j1 + 1, j2 + 1))
        elif tag == "delete":
            lines.update({j1, j1 + 1})
    return lines


def validate_metadata(case, heldout, errors):
    where = case["_file"]
    for key in ("id", "repo", "language", "kind", "origin", "base_commit", "head_commit", "paths",
                "class", "title", "note", "findings"):
        if key not in case:
            errors.append(f"{where}: missing `{key}`")
            return
    if Path(where).stem != case["id"]:
        errors.append(f"{where}: file name and id differ")
    if case["language"] not in LANGS:
        errors.append(f"{where}: language {case['language']!r}")
    if case["kind"] not in KINDS:
        errors.append(f"{where}: kind {case['kind']!r}")
    if case["origin"] not in ORIGINS:
        errors.append(f"{where}: origin {case['origin']!r}")
    if repo_hash(case["repo"]) in heldout:
        errors.append(f"{where}: {case['repo']} is a held-out repository")
    if case["kind"] == "positive" and not case["findings"]:
        errors.append(f"{where}: a positive case with no findings")
    if case["kind"] == "negative" and case["findings"]:
        errors.append(f"{where}: a negative case with findings")
    for c in ("base_commit", "head_commit"):
        if len(case[c]) != 40:
            errors.append(f"{where}: {c} is not a full sha")
    for f in case["findings"]:
        if f.get("severity") not in SEVERITIES:
            errors.append(f"{where}: severity {f.get('severity')!r}")
        if f.get("path") not in case["paths"]:
            errors.append(f"{where}: finding path {f.get('path')} not in paths")
        if not isinstance(f.get("line"), int) or f["line"] < 1:
            errors.append(f"{where}: bad line {f.get('line')!r}")
        if f.get("end_line", f.get("line", 0)) - f.get("line", 0) > 10:
            errors.append(f"{where}: a finding spans more than 10 lines")


def build_case(case, out_dir, errors, warnings):
    gdir = git_dir(case["repo"])
    if gdir is None:
        return "missing"
    dest = out_dir / case["id"]
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    texts = {}
    for side, commit in (("base", case["base_commit"]), ("head", case["head_commit"])):
        for path in case["paths"]:
            if path.startswith("/") or ".." in Path(path).parts:
                errors.append(f"{case['_file']}: unsafe path {path}")
                return "error"
            data = show(gdir, commit, path)
            if data is None:
                continue
            target = dest / side / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            texts[(side, path)] = data.decode("utf-8", "replace")
    if not any(side == "head" for side, _ in texts) and not any(side == "base" for side, _ in texts):
        errors.append(f"{case['_file']}: none of the paths exist at either commit (commit missing from the snapshot?)")
        return "error"
    for f in case["findings"]:
        head = texts.get(("head", f["path"]))
        if head is None:
            errors.append(f"{case['_file']}: {f['path']} does not exist at head")
            continue
        n = len(head.splitlines())
        end = f.get("end_line", f["line"])
        if end > n:
            errors.append(f"{case['_file']}: line {end} past the end of {f['path']} ({n} lines)")
            continue
        near = changed_head_lines(texts.get(("base", f["path"]), ""), head)
        if not any(abs(l - x) <= 3 for x in near for l in range(f["line"], end + 1)):
            warnings.append(f"{case['_file']}: {f['path']}:{f['line']} is not within 3 lines of a change")
    meta = {k: case[k] for k in ("id", "language", "title", "kind")}
    meta["source"] = f"https://github.com/{case['repo']} {case['base_commit'][:12]}..{case['head_commit'][:12]} ({case['origin']})"
    (dest).mkdir(parents=True, exist_ok=True)
    (dest / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    findings = [{k: v for k, v in f.items()} for f in case["findings"]]
    (dest / "expected.json").write_text(json.dumps({"findings": findings}, indent=2) + "\n")
    return "built"


def load_split():
    if SPLIT.exists():
        return json.loads(SPLIT.read_text())
    return None


def cmd_split(args):
    cases = load_cases()
    existing = load_split()
    repos = sorted({c["repo"].lower() for c in cases})
    if existing and not args.extend:
        sys.exit(f"{SPLIT} exists; the split is made once (use --extend to place new projects only)")
    assignment = dict(existing["projects"]) if existing else {}
    seed = existing["seed"] if existing else args.seed
    rng = random.Random(f"{seed}")
    new = [r for r in repos if r not in assignment]
    rng.shuffle(new)
    # One third of the projects, chosen at random, are only measured.
    for i, repo in enumerate(new):
        assignment[repo] = "measure" if i % 3 == 0 else "tune"
    SPLIT.write_text(json.dumps({"seed": seed, "method": "projects shuffled with random.Random(seed); every third to measure",
                                 "projects": dict(sorted(assignment.items()))}, indent=1) + "\n")
    print(f"{len(new)} projects placed; {sum(v == 'measure' for v in assignment.values())} measure, "
          f"{sum(v == 'tune' for v in assignment.values())} tune")


def cmd_build(args):
    cases = load_cases()
    split = load_split()
    errors, warnings, missing = [], [], set()
    heldout = heldout_hashes()
    counts = Counter()
    out = Path(args.out)
    for case in cases:
        if args.lang and case["language"] != args.lang:
            continue
        validate_metadata(case, heldout, errors)
        part = split["projects"].get(case["repo"].lower(), "unsplit") if split else "unsplit"
        if args.only and part != args.only:
            continue
        status = build_case(case, out / part / case["language"], errors, warnings)
        counts[status] += 1
        if status == "missing":
            missing.add(case["repo"])
    for w in warnings:
        print("warning:", w, file=sys.stderr)
    for e in errors:
        print("error:", e, file=sys.stderr)
    print(f"built {counts['built']} cases under {out}; {counts['missing']} need a snapshot; {counts['error']} failed")
    if missing:
        print("fetch these repositories first (the `fetch` tool, github:<owner>/<name>):", file=sys.stderr)
        for r in sorted(missing):
            print("  " + r, file=sys.stderr)
    return 1 if errors or missing else 0


def cmd_check(args):
    cases = load_cases()
    heldout = heldout_hashes()
    errors, warnings = [], []
    ids = Counter(c.get("id") for c in cases)
    for i, n in ids.items():
        if n > 1:
            errors.append(f"duplicate id {i}")
    for case in cases:
        validate_metadata(case, heldout, errors)
    for e in errors:
        print("error:", e, file=sys.stderr)
    print(f"{len(cases)} cases; {len(errors)} errors")
    return 1 if errors else 0


def cmd_stats(args):
    cases = load_cases()
    split = load_split() or {"projects": {}}
    by = defaultdict(Counter)
    for c in cases:
        part = split["projects"].get(c["repo"].lower(), "unsplit")
        by["language"][c["language"]] += 1
        by["kind"][c["kind"]] += 1
        by["origin"][c["origin"]] += 1
        by["split"][part] += 1
        by["class"][c["class"]] += 1
        by["language/kind"][f"{c['language']}/{c['kind']}"] += 1
        by["split/language"][f"{part}/{c['language']}"] += 1
    print(f"cases: {len(cases)}; projects: {len({c['repo'].lower() for c in cases})}")
    for k, counter in by.items():
        print(f"{k}: " + ", ".join(f"{n} {v}" for v, n in counter.most_common()))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--out", default=str(ROOT / "target" / "real"))
    b.add_argument("--only", choices=("tune", "measure", "unsplit"))
    b.add_argument("--lang", choices=LANGS)
    sub.add_parser("check")
    sub.add_parser("stats")
    s = sub.add_parser("split")
    s.add_argument("--seed", type=int, default=20261206)
    s.add_argument("--extend", action="store_true")
    args = p.parse_args()
    return {"build": cmd_build, "check": cmd_check, "stats": cmd_stats, "split": cmd_split}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
