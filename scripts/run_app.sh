#!/usr/bin/env bash
# One command for a fresh machine: install, build the model cache, start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamlit run serve.py --server.headless true "$@"
