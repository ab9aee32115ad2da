#!/usr/bin/env bash
# Reviews whole real code trees that have (almost) no known bugs as if every file were added, and
# prints the rules engine's findings by severity and by rule. A precision check for rule changes:
# a new critical finding here is almost always a false alarm.
#
# Trees (each prepared once under target/realscan/, then reused):
#   - the Python standard library of the python3 on PATH (test folders left out);
#   - popular server-side npm packages, installed with `npm install` into target/realscan/npm;
#   - Go projects from local snapshots: caddyserver/caddy and gin-gonic/gin, exported from
#     $REDLINE_MIRROR/<owner>+<name>/repo (default /work/.mirror) with `git archive`.
#
# Usage: scripts/real-code-scan.sh [--list SEVERITY] [--out DIR]
#   --list critical   also print every finding of that severity (path:line rule message)
#   --out DIR         keep each tree's JSON review in DIR (default target/realscan/out)
# Environment: REDLINE (the binary, default target/release/redline if built, else target/debug/redline).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCAN=$ROOT/target/realscan
OUT=$SCAN/out
LIST=""
while [ $# -gt 0 ]; do
    case "$1" in
        --list) LIST=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "${REDLINE:-}" ]; then
    if [ -x target/release/redline ] && [ target/release/redline -nt target/debug/redline ]; then
        REDLINE=target/release/redline
    else
        REDLINE=target/debug/redline
    fi
fi
MIRROR=${REDLINE_MIRROR:-/work/.mirror}
NPM_PACKAGES="express fastify lodash ws multer sequelize mongoose body-parser @hapi/hapi passport @nestjs/core @nestjs/common"
GO_PROJECTS="caddyserver/caddy gin-gonic/gin"
mkdir -p "$SCAN" "$OUT"
EMPTY=$SCAN/empty
mkdir -p "$EMPTY"

trees=()

# Python standard library, without its test suites.
PYLIB=$SCAN/python-stdlib
if [ ! -d "$PYLIB" ]; then
    src=$(python3 -c 'import sysconfig;print(sysconfig.get_paths()["stdlib"])')
    mkdir -p "$PYLIB"
    (cd "$src" && find . -name '*.py' -not -path '*/test/*' -not -path '*/tests/*' \
        -not -path '*/idle_test/*' -not -path './site-packages/*' -not -path './lib2to3/tests/*' -print0 |
        xargs -0 cp --parents -t "$PYLIB")
fi
trees+=("python-stdlib=$PYLIB")

# npm packages: each package's own folder (its dependencies are other packages).
if [ ! -d "$SCAN/npm/node_modules/express" ]; then
    mkdir -p "$SCAN/npm"
    (cd "$SCAN/npm" && { [ -f package.json ] || echo '{"name":"realscan","private":true}' > package.json; } &&
        npm install --no-audit --no-fund --ignore-scripts $NPM_PACKAGES >/dev/null)
fi
for p in $NPM_PACKAGES; do
    trees+=("npm:$p=$SCAN/npm/node_modules/$p")
done

# Go projects from local snapshots.
for r in $GO_PROJECTS; do
    dir=$SCAN/go/${r//\//+}
    if [ ! -d "$dir" ]; then
        git_dir=$MIRROR/${r//\//+}/repo
        if [ ! -d "$git_dir" ]; then
            echo "skip $r: no snapshot at $git_dir (fetch github:$r)" >&2
            continue
        fi
        mkdir -p "$dir"
        git --git-dir "$git_dir" archive HEAD | tar -x -C "$dir"
    fi
    trees+=("go:$r=$dir")
done

for t in "${trees[@]}"; do
    name=${t%%=*}
    dir=${t#*=}
    [ -d "$dir" ] || { echo "skip $name: $dir missing" >&2; continue; }
    # Nested node_modules are other packages (and vendored code is skipped by the reviewer anyway).
    "$REDLINE" review --base-dir "$EMPTY" --head-dir "$dir" --format json \
        -o "$OUT/${name//[\/:@]/_}.json" || true
done

python3 - "$OUT" "$LIST" "${trees[@]}" <<'EOF'
import json, os, sys, collections
out, listing, trees = sys.argv[1], sys.argv[2], sys.argv[3:]
total = collections.Counter()
by_rule = collections.Counter()
rules_ms = 0.0
print(f"{'tree':28s} {'files':>6s} {'critical':>8s} {'warning':>8s} {'suggest':>8s} {'rules_ms':>9s}")
for t in trees:
    name = t.split('=', 1)[0]
    path = os.path.join(out, name.replace('/', '_').replace(':', '_').replace('@', '_') + '.json')
    if not os.path.exists(path):
        continue
    d = json.load(open(path))
    s = d['summary']
    c = s['counts']
    ms = s['timings_ms']['rules_ms']
    rules_ms += ms
    total.update(c)
    print(f"{name:28s} {s['files_reviewed']:6d} {c['critical']:8d} {c['warning']:8d} {c['suggestion']:8d} {ms:9.0f}")
    for f in d['findings']:
        by_rule[(f['severity'], f.get('rule_id') or '-')] += 1
        if listing and f['severity'] == listing:
            print(f"    {name}:{f['path']}:{f['line']} {f.get('rule_id')} {f['message'][:100]}")
print(f"{'total':28s} {'':6s} {total['critical']:8d} {total['warning']:8d} {total['suggestion']:8d} {rules_ms:9.0f}")
print("\nby rule:")
order = {'critical': 0, 'warning': 1, 'suggestion': 2}
for (sev, rule), n in sorted(by_rule.items(), key=lambda x: (order.get(x[0][0], 3), -x[1], x[0][1])):
    print(f"  {sev:10s} {n:5d}  {rule}")
EOF
