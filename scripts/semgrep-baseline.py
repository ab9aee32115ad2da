#!/usr/bin/env python3
"""Semgrep baseline for redline's benchmark: run semgrep's public security rules, diff-aware, on
annotated cases (../shared/bench-format.md) and write findings that `redline bench --score` reads.

    semgrep-baseline.py CASES_DIR RULES_DIR OUT_DIR [--semgrep BIN] [--jobs N] [--raw FILE]

For every folder under CASES_DIR that holds case.json (the same walk `redline bench` does):
  - the PR's files are the head/ files that were added or modified relative to base/
    (deleted files have nothing to scan);
  - semgrep scans them (one semgrep run for all cases at once: rule loading dominates the cost,
    so the changed files of every case are copied into one staging tree, scanned together, and the
    results are split back per case);
  - a finding is kept only when its line range [start, end] touches a line the PR added or
    modified (the right side of the base -> head diff, computed with difflib), as semgrep's
    pull-request comments do;
  - OUT_DIR/<case-id>.json gets {"findings": [{path, line, end_line, severity, category, message,
    rule_id, source}]}, with <case-id> the id from case.json (sanitized as redline does), and a file
    is written for every case, empty when nothing was found.

Mapping: severity ERROR -> critical, WARNING -> warning, INFO -> suggestion (semgrep >= 1.x also
has CRITICAL/HIGH/MEDIUM/LOW; mapped to critical/critical/warning/suggestion). category comes from
the rule's metadata: the first CWE that maps to a known class (sql-injection, command-injection,
code-injection, path-traversal, ssrf, xss, open-redirect, unsafe-deserialization, xxe,
prototype-pollution, redos, regex-injection, hardcoded-secret, weak-crypto, weak-password-hash,
insecure-randomness, tls-verification-disabled, ...), else vulnerability_class, else keywords of
the rule id, else `other`. rule_id is semgrep's check_id, named as semgrep names the rules of a
config folder (the rule file's folder in dots + the rule id, e.g.
python.lang.security.audit.formatted-sql-query.formatted-sql-query); source is "semgrep".
line/end_line are semgrep's start/end lines (redline matches on `line`). Findings are not
de-duplicated: two matches of one rule on one line (different columns) are two reports.

Semgrep runs offline on local rules: every rule of RULES_DIR's .yaml/.yml files is merged into one
JSON config (semgrep loads that ~4x faster than the folder itself: rule loading, not matching, is
most of its time), with --metrics=off, --disable-version-check, SEMGREP_ENABLE_VERSION_CHECK=0
(without it `semgrep --version` alone waited ~90 s here on a version check), and no git /
.semgrepignore filtering of the staged files. Every staged file is checked against
semgrep's list of scanned paths and any file semgrep skipped is reported.

Setup (semgrep from PyPI in a venv under target/, which is git-ignored):

    python3 -m venv target/semgrep-venv
    target/semgrep-venv/bin/pip install semgrep          # used: semgrep 1.187.0

Rules: the security rules of github.com/semgrep/semgrep-rules for python, javascript, typescript
and go (rule YAML only: no test files next to them, nothing outside .../security/...). They are
fetched content and never committed; produce them with, given a clone (or bare git dir) G of
semgrep-rules (used: commit 157ae4706d7f54aa33647332f234dd68f30da195, 2024-10-24):

    G=/path/to/semgrep-rules/.git      # a bare mirror works too
    rm -rf target/semgrep-rules && mkdir -p target/semgrep-rules
    git --git-dir=$G ls-tree -r --name-only HEAD \\
      | grep -E '^(python|javascript|typescript|go)/(.*/)?security/.*\\.ya?ml$' \\
      | xargs git --git-dir=$G archive --format=tar HEAD -- \\
      | tar -x -C target/semgrep-rules
    # 491 files, 506 rules: python 249, javascript 168, typescript 18, go 71 (by folder)

Run and score:

    target/semgrep-venv/bin/python scripts/semgrep-baseline.py \\
        fixtures/cases target/semgrep-rules target/semgrep-pred
    target/debug/redline bench fixtures/cases --score target/semgrep-pred

The semgrep binary is --semgrep, else $SEMGREP, else the `semgrep` next to this Python
interpreter, else `semgrep` on PATH.
"""

import argparse
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEVERITY = {
    "ERROR": "critical",
    "CRITICAL": "critical",
    "HIGH": "critical",
    "WARNING": "warning",
    "MEDIUM": "warning",
    "INFO": "suggestion",
    "LOW": "suggestion",
}

# CWE number -> category. The first CWE of a rule that is listed here wins.
CWE_CATEGORY = {
    89: "sql-injection",
    564: "sql-injection",
    943: "nosql-injection",
    77: "command-injection",
    78: "command-injection",
    88: "command-injection",
    94: "code-injection",
    95: "code-injection",
    96: "code-injection",
    470: "code-injection",
    913: "code-injection",
    1336: "code-injection",  # server-side template injection
    22: "path-traversal",
    23: "path-traversal",
    36: "path-traversal",
    73: "path-traversal",
    918: "ssrf",
    79: "xss",
    80: "xss",
    83: "xss",
    601: "open-redirect",
    502: "unsafe-deserialization",
    611: "xxe",
    776: "xxe",
    1321: "prototype-pollution",
    1333: "redos",
    798: "hardcoded-secret",
    259: "hardcoded-secret",
    321: "hardcoded-secret",
    327: "weak-crypto",
    326: "weak-crypto",
    328: "weak-crypto",
    310: "weak-crypto",
    1204: "weak-crypto",
    916: "weak-password-hash",
    330: "insecure-randomness",
    338: "insecure-randomness",
    295: "tls-verification-disabled",
    297: "tls-verification-disabled",
    208: "timing-unsafe-comparison",
    352: "csrf",
    319: "cleartext-transmission",
    862: "missing-authorization",
    285: "missing-authorization",
    306: "missing-authentication",
    347: "jwt-signature-not-verified",
    489: "debug-enabled",
    614: "insecure-cookie",
    1004: "insecure-cookie",
    1275: "insecure-cookie",
    942: "cors-misconfiguration",
    346: "cors-misconfiguration",
    183: "cors-misconfiguration",
}

# CWEs whose rules vary (or whose metadata is sometimes wrong, e.g. django tainted-sql-string says
# CWE-915): the rule id's keywords decide, else this.
AMBIGUOUS_CWE = {
    915: "mass-assignment",  # or prototype pollution in JS
    116: "other",  # improper output encoding: mostly HTML (xss)
    1333: "redos",  # or regex injection (detect-non-literal-regexp)
    400: "other",
    20: "other",
}

# Keywords (of vulnerability_class, then of the rule id) -> category, tried in order.
KEYWORDS = [
    (r"prototype", "prototype-pollution"),
    (r"non-literal-regexp|regex-injection|regexp-injection", "regex-injection"),
    (r"redos|regular expression", "redos"),
    (r"nosql", "nosql-injection"),
    (r"sql", "sql-injection"),
    (r"command|subprocess|shell|os-system|exec-cmd|child-process", "command-injection"),
    (r"code injection|code-injection|eval|exec\b|template-injection|ssti", "code-injection"),
    (r"path traversal|path-traversal|directory traversal|path-join", "path-traversal"),
    (r"ssrf|request forgery", "ssrf"),
    (r"xss|cross-site-scripting|cross site scripting|html|innerhtml|unescape|markup", "xss"),
    (r"open-redirect|open redirect|redirect", "open-redirect"),
    (r"deserializ|pickle|yaml-load|marshal", "unsafe-deserialization"),
    (r"xxe|xml external|xml injection", "xxe"),
    (r"secret|hardcoded|hard-coded|password", "hardcoded-secret"),
    (r"random", "insecure-randomness"),
    (r"tls|ssl|certificate|verify", "tls-verification-disabled"),
    (r"crypto|md5|sha1|des\b|cipher|hash", "weak-crypto"),
]


def sanitize_id(case_id):
    """The file name redline reads predictions from (src/bench/mod.rs: sanitize_id)."""
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in case_id)


def find_cases(root):
    """Every folder under root holding case.json, sorted by path (like redline's find_cases)."""
    out = []
    stack = [root]
    while stack:
        d = stack.pop()
        if (d / "case.json").is_file():
            out.append(d)
            continue
        for p in d.iterdir():
            if p.is_dir():
                stack.append(p)
    return sorted(out)


def files_under(d):
    if not d.is_dir():
        return {}
    return {p.relative_to(d).as_posix(): p for p in sorted(d.rglob("*")) if p.is_file()}


def lines_of(data):
    """Lines of a file as semgrep numbers them (split on \\n only)."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def changed_lines(base, head):
    """1-based head lines added or modified by base -> head (None base: an added file)."""
    h = lines_of(head)
    if base is None:
        return set(range(1, len(h) + 1))
    sm = difflib.SequenceMatcher(None, lines_of(base), h, autojunk=False)
    out = set()
    for tag, _i1, _i2, j1, j2 in sm.get_opcodes():
        if tag in ("replace", "insert"):
            out.update(range(j1 + 1, j2 + 1))
    return out


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def category_of(check_id, metadata):
    for cwe in as_list(metadata.get("cwe")):
        m = re.search(r"CWE-(\d+)", str(cwe))
        if not m:
            continue
        n = int(m.group(1))
        if n in AMBIGUOUS_CWE:  # the rule id says more than the CWE
            return keyword_category(check_id) or AMBIGUOUS_CWE[n]
        if n in CWE_CATEGORY:
            return CWE_CATEGORY[n]
    vclass = " ".join(str(x) for x in as_list(metadata.get("vulnerability_class")))
    return keyword_category(vclass) or keyword_category(check_id) or "other"


def keyword_category(text):
    text = text.lower()
    for pat, cat in KEYWORDS:
        if re.search(pat, text):
            return cat
    return None


def load_rules(rules_dir):
    """Every rule of every .yaml/.yml under rules_dir, its id prefixed with the file's folder in
    dots (python/lang/security/audit/x.yaml: python.lang.security.audit.<id>), as semgrep itself
    names rules of a config folder. Semgrep loads one merged file ~4x faster than the folder
    (rule loading, not matching, dominates its time here)."""
    try:
        from ruamel.yaml import YAML  # semgrep's own dependency: present in its venv

        load = YAML(typ="safe", pure=False).load
    except ImportError:
        import yaml

        load = yaml.safe_load
    rules, files = [], 0
    for f in sorted(rules_dir.rglob("*")):
        if f.suffix not in (".yaml", ".yml") or not f.is_file():
            continue
        rel = f.relative_to(rules_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        doc = load(f.read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            print(f"warning: {rel} is not a rules file, skipped", file=sys.stderr)
            continue
        files += 1
        prefix = ".".join(rel.parent.parts)
        for r in doc["rules"]:
            r = dict(r)
            r["id"] = f"{prefix}.{r['id']}" if prefix else r["id"]
            rules.append(r)
    return rules, files


def default_semgrep():
    if os.environ.get("SEMGREP"):
        return os.environ["SEMGREP"]
    local = Path(sys.executable).parent / "semgrep"
    if local.exists():
        return str(local)
    return shutil.which("semgrep") or "semgrep"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cases_dir", type=Path)
    ap.add_argument("rules_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--semgrep", default=default_semgrep(), help="semgrep binary")
    ap.add_argument("--jobs", type=int, default=None, help="semgrep -j (default: semgrep's)")
    ap.add_argument("--timeout", type=float, default=None, help="semgrep --timeout per rule per file")
    ap.add_argument("--raw", type=Path, default=None, help="also keep semgrep's raw JSON output here")
    args = ap.parse_args()

    t0 = time.monotonic()
    cases_dir = args.cases_dir.resolve()
    rules_dir = args.rules_dir.resolve()
    if not rules_dir.is_dir():
        sys.exit(f"{rules_dir}: not a folder (see the docstring for how to extract the rules)")

    # no network: without these, `semgrep --version` alone waits ~90 s on a version check
    env = dict(os.environ, SEMGREP_SEND_METRICS="off", SEMGREP_ENABLE_VERSION_CHECK="0")
    version = subprocess.run(
        [args.semgrep, "--version", "--disable-version-check"],
        capture_output=True, text=True, check=True, env=env,
    ).stdout.strip()

    # 1. the changed files of every case, and their changed lines
    cases = []  # (case_id, out_name, {relpath: changed_line_set})
    seen_names = {}
    with tempfile.TemporaryDirectory(prefix="semgrep-baseline-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        (stage / ".semgrepignore").write_text("")  # no default ignores (tests/, vendor/, ...)
        staged = {}  # staged relpath -> (case index, repo relpath)
        for i, d in enumerate(find_cases(cases_dir)):
            try:
                meta = json.loads((d / "case.json").read_text())
                case_id = meta["id"]
            except Exception as e:  # redline counts such a case as unreadable too
                print(f"skipping {d}: {e}", file=sys.stderr)
                continue
            name = sanitize_id(case_id)
            if name in seen_names:
                print(f"warning: case id {case_id} in {d} repeats {seen_names[name]}", file=sys.stderr)
            seen_names[name] = d
            base = files_under(d / "base")
            head = files_under(d / "head")
            changed = {}
            for rel, hp in head.items():
                hdata = hp.read_bytes()
                bdata = base[rel].read_bytes() if rel in base else None
                if bdata == hdata:
                    continue
                changed[rel] = changed_lines(bdata, hdata)
                dst = stage / f"c{i:05d}" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(hp, dst)
                staged[f"c{i:05d}/{rel}"] = (len(cases), rel)
            cases.append((case_id, name, changed))
        t_prep = time.monotonic()

        # 2. one semgrep run over every case's changed files, with all rules merged in one file
        rules, rule_files = load_rules(rules_dir)
        config = Path(tmp) / "rules.json"
        config.write_text(json.dumps({"rules": rules}, default=str))
        t_rules = time.monotonic()
        raw_path = Path(tmp) / "semgrep.json"
        cmd = [
            args.semgrep, "scan",
            "--config", str(config), "--no-rewrite-rule-ids",
            "--json", "--output", str(raw_path),
            "--metrics=off", "--disable-version-check",
            "--no-git-ignore", "--x-ignore-semgrepignore-files",
            "--quiet",
        ]
        if args.jobs:
            cmd += ["--jobs", str(args.jobs)]
        if args.timeout is not None:
            cmd += ["--timeout", str(args.timeout)]
        cmd.append(str(stage))
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
        t_scan = time.monotonic()
        if not raw_path.exists():
            sys.exit(f"semgrep failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        raw = json.loads(raw_path.read_text())
        stage_root = stage.resolve()
        if args.raw:
            args.raw.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(raw_path, args.raw)

    def stage_rel(p):
        p = Path(p)
        if not p.is_absolute():
            p = Path(tmp) / p
        try:
            return p.resolve().relative_to(stage_root).as_posix()
        except ValueError:
            return os.path.relpath(os.path.normpath(p), stage_root)

    # 3. split per case, keep findings that touch changed lines
    scanned = {stage_rel(p) for p in raw.get("paths", {}).get("scanned", [])}
    skipped = sorted(set(staged) - scanned)
    per_case = [[] for _ in cases]
    total = kept = 0
    for r in raw.get("results", []):
        rel = stage_rel(r["path"])
        if rel not in staged:
            print(f"warning: result on unknown path {r['path']}", file=sys.stderr)
            continue
        total += 1
        ci, repo_rel = staged[rel]
        start = r["start"]["line"]
        end = max(r["end"]["line"], start)
        lines = cases[ci][2][repo_rel]
        if not any(n in lines for n in range(start, end + 1)):
            continue
        kept += 1
        extra = r.get("extra", {})
        meta = extra.get("metadata", {}) or {}
        per_case[ci].append({
            "path": repo_rel,
            "line": start,
            "end_line": end,
            "severity": SEVERITY.get(str(extra.get("severity", "")).upper(), "warning"),
            "category": category_of(r["check_id"], meta),
            "message": " ".join(str(extra.get("message", "")).split()),
            "rule_id": r["check_id"],
            "source": "semgrep",
        })

    args.out_dir.mkdir(parents=True, exist_ok=True)
    for (case_id, name, _), findings in zip(cases, per_case):
        findings.sort(key=lambda f: (f["path"], f["line"], f["rule_id"]))
        (args.out_dir / f"{name}.json").write_text(json.dumps({"findings": findings}, indent=2) + "\n")
    t_end = time.monotonic()

    errors = raw.get("errors", [])
    print(f"semgrep {version}; exit {proc.returncode}")
    print(f"cases: {len(cases)}; changed files staged: {len(staged)}; scanned by semgrep: "
          f"{len(scanned & set(staged))}; skipped: {len(skipped)}")
    for s in skipped:
        print(f"  not scanned: {s}")
    print(f"rules: {len(rules)} from {rule_files} files; skipped by semgrep: "
          f"{len(raw.get('skipped_rules', []))}")
    print(f"semgrep findings: {total}; on changed lines (kept): {kept}; "
          f"cases with findings: {sum(1 for f in per_case if f)}")
    if errors:
        kinds = {}
        for e in errors:
            k = e.get("type")
            k = k if isinstance(k, str) else json.dumps(k)[:60]
            kinds[k] = kinds.get(k, 0) + 1
        print(f"semgrep errors: {len(errors)} {kinds} (see --raw for details)")
    print(f"time: prepare {t_prep - t0:.2f}s, merge rules {t_rules - t_prep:.2f}s, "
          f"semgrep {t_scan - t_rules:.2f}s, "
          f"split+write {t_end - t_scan:.2f}s, total {t_end - t0:.2f}s "
          f"({(t_end - t0) / max(len(cases), 1):.2f}s per case)")
    print(f"wrote {len(cases)} prediction files to {args.out_dir}")


if __name__ == "__main__":
    main()
