#!/usr/bin/env bash
# One command for a fresh machine: install everything (test tools, chromium, model
# cache) and run the whole test suite (two pytest passes: quick tests on two workers, then the
# slow ones in order). Extra arguments go to pytest.
#   --fast  the developer's loop instead: no browser, no real model, nothing marked slow,
#           on two pytest-xdist workers (about 2 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
fast=()
if [ "${1:-}" = "--fast" ]; then
  shift
  fast=(-m "not slow" -n 2)
fi
bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layers in pyproject.toml [tool.importlinter]
# A temp folder of this run's own: pytest keeps only its three newest numbered folders, so
# another pytest started meanwhile on this machine (a developer's quick subset) would delete
# ours, and the PostgreSQL server the workspace tests run inside it, mid-run.
basetemp=$(mktemp -d -t workbench-tests-XXXXXX)
chmod 711 "$basetemp"  # the postgres user must reach its data folder inside
trap 'rm -rf "$basetemp"' EXIT
if [ ${#fast[@]} -gt 0 ]; then
  set +e
  .venv/bin/python -m pytest --basetemp "$basetemp" "${fast[@]}" "$@"
  status=$?
  set -e
else
  # The whole suite in two passes: the quick tests on two xdist workers, then what is marked slow
  # (browser, real model, engine) one at a time, as those share servers and time CPU themselves.
  set +e
  .venv/bin/python -m pytest --basetemp "$basetemp/quick" -m "not slow" -n 2 "$@"
  quick=$?
  .venv/bin/python -m pytest --basetemp "$basetemp/slow" -m slow "$@"
  slow=$?
  set -e
  [ $quick = 5 ] && [ $slow != 5 ] && quick=0  # a selection with only slow tests, or none
  [ $slow = 5 ] && [ $quick != 5 ] && slow=0
  if [ $quick != 0 ]; then
    status=$quick
  else
    status=$slow
  fi
fi
if [ $status = 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit $status
