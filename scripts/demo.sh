#!/usr/bin/env bash
# Install hqnn and run the main job: train a hybrid model on scikit-learn's bundled digits.
# Extra arguments go to `hqnn demo` (e.g. --epochs 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/hqnn demo "$@"
