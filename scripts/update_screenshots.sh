#!/usr/bin/env bash
# Regenerate the README's screenshots from the browser tests, so the README shows the current app.
#
#   bash scripts/update_screenshots.sh                   run the browser tests that reach each state
#                                                        (a few minutes), then copy their screenshots
#   bash scripts/update_screenshots.sh --from-artifacts  only copy what the last test run saved
#
# The tests save every state at 1440x900 and 1024x768 under artifacts/screens/ (see
# tests/e2e/page_checks.py); docs/ gets the 1440x900 ones under the README's names and the
# 1024x768 ones under docs/screens-1024/.
set -euo pipefail
cd "$(dirname "$0")/.."
SCREENS=artifacts/screens

if [ "${1:-}" != "--from-artifacts" ]; then
  rm -rf "$SCREENS"
  .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/e2e/test_pages_clean.py "tests/e2e/test_workbench.py::test_codelab_story" \
    tests/e2e/test_deletion_browser.py tests/e2e/test_evaluate_browser.py
fi

# state in the tests -> README image
declare -A README=(
  [workbench]=screenshot.png
  [workbench-fixed]=screenshot-fixed.png
  [compare]=screenshot-compare.png
  [present]=screenshot-present.png
  [history]=screenshot-history.png
  [workbench-deletion]=screenshot-deletion.png
  [evaluate-results]=screenshot-evaluate.png
  [evaluate-why]=screenshot-evaluate-why.png
)
mkdir -p docs/screens-1024
missing=0
for state in "${!README[@]}"; do
  for size in 1440x900 1024x768; do
    # What the screen shows at that size (scrolled to the state's content); the whole page
    # is in $SCREENS/$state-$size-full.png.
    source="$SCREENS/$state-$size.png"
    if [ ! -f "$source" ]; then
      echo "missing $source (did the browser tests pass?)" >&2
      missing=1
      continue
    fi
    if [ "$size" = 1440x900 ]; then
      cp "$source" "docs/${README[$state]}"
    else
      cp "$source" "docs/screens-1024/${README[$state]}"
    fi
  done
done
[ "$missing" = 0 ] || exit 1
echo "README screenshots updated from $SCREENS:"
ls -l docs/*.png docs/screens-1024/*.png
