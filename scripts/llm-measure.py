#!/usr/bin/env python3
"""Measures the review agent with a real model on bench cases, in the configurations the agent
issue compares, and scores each with `redline bench --score` (the bench format's rules).

    scripts/llm-measure.py CASES_DIR OUT_DIR --base-url URL --model NAME [--configs verify,agree]
                           [--redline target/debug/redline] [--local]

Configurations (each case is reviewed once per configuration, sequentially):
  verify  one review per file at temperature 0, with the verification call; its record also
          yields "agent" (the same findings before verification), so both are scored from one run
  agree   three reviews per file at temperature 0.7, kept when two agree; no verification
  agree+verify  both
For every case and configuration it keeps the JSON review and the model's exchanges
(OUT_DIR/<config>/<case-id>.review.json and .transcript.json, the latter in the format of
fixtures/llm/ for tests/it/replay.rs), and prints per configuration: precision, recall, F1 (all
and critical), false alarms, LLM calls, tokens and wall time per case. `rules` is scored too.
A run can be resumed: cases already reviewed in a configuration are skipped.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "verify": {"REDLINE_AGENT_VERIFY": "1", "REDLINE_AGENT_SAMPLES": "1"},
    "agree": {"REDLINE_AGENT_VERIFY": "0", "REDLINE_AGENT_SAMPLES": "3",
              "REDLINE_AGENT_AGREE": "2", "REDLINE_AGENT_TEMPERATURE": "0.7"},
    "agree+verify": {"REDLINE_AGENT_VERIFY": "1", "REDLINE_AGENT_SAMPLES": "3",
                     "REDLINE_AGENT_AGREE": "2", "REDLINE_AGENT_TEMPERATURE": "0.7"},
}


def cases(root):
    out = []
    for dirpath, dirs, files in os.walk(root, followlinks=True):
        if "case.json" in files:
            out.append(Path(dirpath))
            dirs[:] = []
    return sorted(out)


def case_id(path):
    return json.loads((path / "case.json").read_text())["id"]


def review(redline, case, env, out_review, out_transcript):
    e = dict(os.environ)
    e.update(env)
    e["REDLINE_LLM_RECORD"] = str(out_transcript)
    start = time.time()
    p = subprocess.run([redline, "review", str(case), "--engine", "agent", "--format", "json",
                        "-o", str(out_review)], env=e, capture_output=True, text=True)
    wall = time.time() - start
    if p.returncode != 0:
        print(f"  failed ({p.returncode}): {p.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    v = json.loads(out_review.read_text())
    v["_wall_s"] = wall
    out_review.write_text(json.dumps(v, indent=1))
    return v


def own(f):
    """A finding only the model made (not a rule's it confirmed)."""
    return f.get("source") == "llm" and not f.get("rule_id")


def predictions(v, before_verification):
    findings = v["findings"]
    if before_verification:
        agent = (v.get("summary") or {}).get("agent") or {}
        kept = [f for f in findings if not own(f)]
        for file in agent.get("files", []):
            kept.extend(file.get("before_verification", []))
        findings = kept
    return {"findings": findings}


def score(redline, cases_dir, pred_dir):
    out = Path(pred_dir) / "scores.json"
    subprocess.run([redline, "bench", str(cases_dir), "--score", str(pred_dir), "--json", str(out)],
                   capture_output=True, text=True)
    return json.loads(out.read_text())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases")
    ap.add_argument("out")
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--configs", default="verify,agree")
    ap.add_argument("--redline", default="target/debug/redline")
    ap.add_argument("--local", action="store_true", help="the endpoint costs nothing (REDLINE_LLM_LOCAL=1)")
    args = ap.parse_args()
    base_env = {
        "REDLINE_LLM_BASE_URL": args.base_url, "REDLINE_LLM_MODEL": args.model,
        "REDLINE_LLM_API_KEY": os.environ.get("REDLINE_LLM_API_KEY", "local"),
        "REDLINE_AGENT_CONCURRENCY": "1", "REDLINE_AGENT_CONTEXT_TOKENS": "12000",
        "REDLINE_LLM_TIMEOUT_SECS": os.environ.get("REDLINE_LLM_TIMEOUT_SECS", "300"),
    }
    if args.local:
        base_env["REDLINE_LLM_LOCAL"] = "1"
    out = Path(args.out)
    all_cases = cases(args.cases)
    print(f"{len(all_cases)} cases", file=sys.stderr)
    # The rules alone, for comparison.
    rules_dir = out / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([args.redline, "bench", args.cases, "--predictions", str(rules_dir)],
                   capture_output=True, text=True)
    stats = {}
    for config in args.configs.split(","):
        env = dict(base_env, **CONFIGS[config])
        cdir = out / config
        cdir.mkdir(parents=True, exist_ok=True)
        pred = {config: out / f"pred-{config}"}
        if config == "verify":
            pred["agent"] = out / "pred-agent"
        for d in pred.values():
            d.mkdir(parents=True, exist_ok=True)
        calls = tokens = wall = n = 0
        for case in all_cases:
            cid = case_id(case)
            rv = cdir / f"{cid}.review.json"
            if rv.exists():
                v = json.loads(rv.read_text())
            else:
                print(f"[{config}] {cid}", file=sys.stderr, flush=True)
                v = review(args.redline, case, env, rv, cdir / f"{cid}.transcript.json")
                if v is None:
                    continue
            a = (v.get("summary") or {}).get("agent") or {}
            calls += a.get("llm_calls", 0)
            tokens += a.get("prompt_tokens", 0) + a.get("completion_tokens", 0)
            wall += v.get("_wall_s", 0)
            n += 1
            for name, d in pred.items():
                (d / f"{cid}.json").write_text(json.dumps(predictions(v, name == "agent"), indent=1))
        for name in pred:
            stats[name] = {"cases": n, "calls_per_case": calls / max(n, 1),
                           "tokens_per_case": tokens / max(n, 1), "wall_s_per_case": wall / max(n, 1)}
    stats["rules"] = {"cases": len(all_cases), "calls_per_case": 0, "tokens_per_case": 0, "wall_s_per_case": 0}
    rows = []
    for name in ["rules", "agent", "verify", "agree", "agree+verify"]:
        if name not in stats:
            continue
        d = out / ("rules" if name == "rules" else f"pred-{name}")
        s = score(args.redline, args.cases, d)
        st = stats[name]
        sm = s["summary"]
        rows.append((name, s["precision"], s["recall"], s["f1"], s["critical_precision"], s["critical_recall"],
                     s["false_alarm_rate"], st["calls_per_case"], st["tokens_per_case"], st["wall_s_per_case"]))
    fmt = lambda x: "-" if x is None else f"{x:.2f}"
    print("| engine | P | R | F1 | critical P | critical R | critical false alarms | calls/case | tokens/case | s/case |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {fmt(r[1])} | {fmt(r[2])} | {fmt(r[3])} | {fmt(r[4])} | {fmt(r[5])} | {fmt(r[6])} | "
              f"{r[7]:.1f} | {r[8]:.0f} | {r[9]:.0f} |")
    (out / "summary.json").write_text(json.dumps({"rows": rows, "stats": stats}, indent=1))


if __name__ == "__main__":
    main()
