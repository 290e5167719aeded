#!/usr/bin/env bash
# The newcomer check (CI, after `make test`): what a new user does, on a fresh clone of the
# committed tree. `make demo` builds a fresh .venv (core package only) and trains briefly; then the
# README's quick-start block ("Then type:") runs exactly as written. Any error fails the check.
# Network: pip's package index only. The first-run state is fresh too: a new feature/autotune cache.
#   scripts/newcomer.sh            # DEMO_SECONDS=15 by default
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH VIRTUAL_ENV  # nothing of the caller's environment may stand in for the fresh install
export GANKIT_CACHE="$work/cache"
start=$SECONDS

git clone -q --depth 1 "file://$src" "$work/gankit"
cd "$work/gankit"
make demo DEMO_SECONDS="${DEMO_SECONDS:-15}" 2>&1 | tee "$work/demo.log"
grep -q "source .venv/bin/activate" "$work/demo.log" || { echo "newcomer: make demo did not print the next commands"; exit 1; }
test -s runs/demo/samples.png && test -s runs/demo/eval.json

# the quick start's commands: the first fenced block under "## Quick start" that activates .venv
next="$(python3 - README.md <<'PY'
import re, sys

text = open(sys.argv[1]).read()
quick = text[text.index("## Quick start"):]
quick = quick[:quick.index("\n## ")]
blocks = [b for b in re.findall(r"^```\w*\n(.*?)^```", quick, re.S | re.M) if "source .venv/bin/activate" in b]
if not blocks:
    sys.exit("newcomer: README.md has no quick-start block that activates .venv")
print(blocks[0], end="")
PY
)"
printf 'newcomer: running the README quick start as written:\n%s\n' "$next"
bash -euo pipefail -c "$next"
test -s grid.png
echo "newcomer: fresh clone -> make demo -> README quick start: ok in $((SECONDS - start)) s"
