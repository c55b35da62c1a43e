#!/usr/bin/env bash
# Installs jgan (editable, with the test extras) and the offline default data.
# Idempotent: re-running it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e '.[test]'
bash scripts/install_data.sh
