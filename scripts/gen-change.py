#!/usr/bin/env python3
"""Generates a synthetic pull request for performance measurements: OUT/base and OUT/head with
10 files across Python, TypeScript, JavaScript and Go, about 2,000 changed lines in all.

    scripts/gen-change.py OUT [--files 10] [--changed 2000]

Each file has unchanged functions and a block of new or edited functions, in the shape of
handler and service code, so that parsing, rules and context trimming do realistic work.
"""
import argparse
import os
import random
import re

PY = '''
def {name}(request, store, limit=50):
    """Return the {noun} records for the current account."""
    account = request.user.account_id
    rows = store.query("SELECT id, {noun}_name, total FROM {noun}s WHERE account_id = %s LIMIT %s", (account, limit))
    result = []
    for row in rows:
        if row.total > {n}:
            result.append({{"id": row.id, "name": row.{noun}_name, "total": row.total}})
        else:
            log.debug("skipping %s", row.id)
    return result
'''
TS = '''
export async function {name}(req: Request, res: Response): Promise<void> {{
  const account = req.user.accountId;
  const limit = Math.min(Number(req.query.limit ?? 50), 200);
  const rows = await db.query("SELECT id, {noun}_name, total FROM {noun}s WHERE account_id = $1 LIMIT $2", [account, limit]);
  const items = rows.map((r: Row) => ({{ id: r.id, name: r.{noun}_name, total: r.total }}));
  if (items.length > {n}) {{
    logger.info("large {noun} page", {{ account, count: items.length }});
  }}
  res.json({{ items }});
}}
'''
JS = '''
async function {name}(req, res, next) {{
  try {{
    const account = req.user.accountId;
    const rows = await pool.query("SELECT id, {noun}_name FROM {noun}s WHERE account_id = $1", [account]);
    const names = rows.map((r) => r.{noun}_name).filter(Boolean);
    if (names.length === {n}) {{
      metrics.increment("{noun}.exact");
    }}
    res.json({{ names }});
  }} catch (err) {{
    next(err);
  }}
}}
'''
GO = '''
func (s *Service) {name}(ctx context.Context, accountID int64) ([]{Noun}, error) {{
	rows, err := s.db.QueryContext(ctx, "SELECT id, {noun}_name, total FROM {noun}s WHERE account_id = $1", accountID)
	if err != nil {{
		return nil, fmt.Errorf("{name}: %w", err)
	}}
	defer rows.Close()
	var out []{Noun}
	for rows.Next() {{
		var v {Noun}
		if err := rows.Scan(&v.ID, &v.Name, &v.Total); err != nil {{
			return nil, err
		}}
		if v.Total > {n} {{
			out = append(out, v)
		}}
	}}
	return out, rows.Err()
}}
'''
HEADERS = {
    "py": "import logging\n\nlog = logging.getLogger(__name__)\n",
    "ts": "import { Request, Response } from \"express\";\nimport { db, logger } from \"./deps\";\n\ntype Row = { id: number; total: number; [k: string]: unknown };\n",
    "js": "const { pool, metrics } = require(\"./deps\");\n",
    "go": "package service\n\nimport (\n\t\"context\"\n\t\"fmt\"\n)\n",
}
TEMPLATES = {"py": PY, "ts": TS, "js": JS, "go": GO}
NOUNS = ["order", "invoice", "ticket", "shipment", "refund", "coupon", "review", "device", "report", "payout"]


EXTRA = {
    "py": "    log.info(\"{noun} page served\")\n",
    "ts": "  logger.debug(\"{noun} page served\");\n",
    "js": "    metrics.increment(\"{noun}.served\");\n",
    "go": "\ts.metrics.Inc(\"{noun}.served\")\n",
}


def function(ext, name, noun, n):
    return TEMPLATES[ext].format(name=name, noun=noun, Noun=noun.capitalize(), n=n)


def edited(ext, text, noun, rng):
    """An edit of 3 changed lines: a threshold changes and a statement is added before the last line."""
    lines = text.split("\n")
    for i, l in enumerate(lines):
        if re.search(r"(> |=== )\d+", l):
            lines[i] = re.sub(r"(> |=== )(\d+)", lambda m: m.group(1) + str(rng.randint(1000, 9999)), l, count=1)
            break
    insert_at = len(lines) - 3
    lines.insert(insert_at, EXTRA[ext].format(noun=noun).rstrip("\n"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--changed", type=int, default=2000)
    ap.add_argument("--functions", type=int, default=100, help="functions per file")
    ap.add_argument("--shape", choices=["typical", "spread"], default="typical",
                    help="typical: a few functions rewritten and new ones added; spread: a 3-line edit in most functions")
    args = ap.parse_args()
    rng = random.Random(7)
    exts = ["py", "ts", "js", "go", "py", "ts", "js", "go", "py", "ts"][: args.files]
    per_file = args.changed // len(exts)
    changed_total = 0
    for i, ext in enumerate(exts):
        funcs = []
        for j in range(args.functions):
            noun = rng.choice(NOUNS)
            name = f"{noun}_{j}" if ext == "py" else f"{noun}{j}"
            funcs.append((name, noun, rng.randint(1, 999)))
        old_parts = [function(ext, *f) for f in funcs]
        new_parts = list(old_parts)
        if args.shape == "spread":
            # Each edit changes 3 lines (1 removed, 2 added); spread the edits over the file.
            edits = min(args.functions, per_file // 3)
            for j in sorted(rng.sample(range(args.functions), edits)):
                new_parts[j] = edited(ext, old_parts[j], funcs[j][1], rng)
            changed_total += edits * 3
        else:
            # A third of the change rewrites existing functions, the rest adds new ones.
            changed = 0
            for j in sorted(rng.sample(range(args.functions), args.functions)):
                if changed >= per_file // 3:
                    break
                name, noun, n = funcs[j]
                other = rng.choice([x for x in NOUNS if x != noun])
                new_parts[j] = function(ext, name, other, rng.randint(1, 999))
                changed += sum(1 for a, b in zip(old_parts[j].split("\n"), new_parts[j].split("\n")) if a != b) * 2
            k = 0
            while changed < per_file:
                noun = rng.choice(NOUNS)
                text = function(ext, f"{noun}_new_{k}" if ext == "py" else f"{noun}New{k}", noun, rng.randint(1, 999))
                new_parts.append(text)
                changed += text.count("\n")
                k += 1
            changed_total += changed
        old = HEADERS[ext] + "".join(old_parts)
        new = HEADERS[ext] + "".join(new_parts)
        path = f"src/mod{i}/file{i}.{ext}"
        for side, text in (("base", old), ("head", new)):
            p = os.path.join(args.out, side, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)
    print(f"{len(exts)} files, about {changed_total} changed lines under {args.out}")


if __name__ == "__main__":
    main()
