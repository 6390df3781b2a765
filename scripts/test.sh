#!/usr/bin/env bash
# One command for a fresh machine: install everything (test tools, chromium, model
# cache) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layers in pyproject.toml [tool.importlinter]
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ $status = 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit $status
