#!/usr/bin/env bash
# One command for a fresh machine: install, build the model cache, start the app.
# Usage: scripts/run_app.sh [--team] [--engine URL] [streamlit options…]
#   (default)     personal mode: listens on 127.0.0.1 only (.streamlit/config.toml)
#   --team        team mode: listens on every interface (--server.address 0.0.0.0), so other
#                 machines can open it; configure sign-in first (docs/DEPLOY.md, docs/SECURITY.md)
#   --engine URL  run every model call on an engine deployment (python -m salience serve);
#                 the same as GEMMA_WORKBENCH_ENGINE=URL. The in-process model stays the fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --team)
      args+=(--server.address 0.0.0.0)
      shift
      ;;
    --engine)
      if [ $# -lt 2 ]; then
        echo "--engine needs the engine's address, e.g. --engine http://127.0.0.1:8300" >&2
        exit 2
      fi
      export GEMMA_WORKBENCH_ENGINE="$2"
      shift 2
      ;;
    --engine=*)
      export GEMMA_WORKBENCH_ENGINE="${1#--engine=}"
      shift
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
[ "${GEMMA_WORKBENCH_SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh
exec .venv/bin/streamlit run serve.py --server.headless true ${args[@]+"${args[@]}"}
