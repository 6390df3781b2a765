#!/usr/bin/env bash
# Install everything the workbench needs into .venv (idempotent), then build the
# embedded model cache. Usage: scripts/setup.sh [--dev]
#   --dev  also the test tools and Debian's postgresql (the workspace tests start their own
#          server). Debian's chromium is always installed: the app renders PNG exports with
#          it, and the browser tests drive it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
dev=0
[ "${1:-}" = "--dev" ] && dev=1

if [ ! -x .venv/bin/python ]; then
  echo "== Creating .venv"
  "$PYTHON" -m venv .venv
fi
requirements=requirements.txt
[ $dev = 1 ] && requirements=requirements-dev.txt
stamp=.venv/.installed-$(cat requirements.txt "$requirements" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "== Installing Python packages from $requirements"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  touch "$stamp"
fi

# Debian packages: chromium always (PNG export, browser tests) with a colour emoji font (the
# navigation icons, 📌 and prompts' emoji are empty boxes without one); PostgreSQL for the tests.
packages=""
command -v chromium >/dev/null 2>&1 || packages="chromium"
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || packages="$packages fonts-noto-color-emoji"
if [ $dev = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  packages="$packages postgresql"
fi
if [ -n "$packages" ]; then
  echo "== Installing Debian packages:$packages"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $packages >/dev/null
fi

echo "== Preparing the embedded Gemma 3 270M model cache"
.venv/bin/python -m salience prepare
