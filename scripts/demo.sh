#!/usr/bin/env bash
# Install hqnn and run the main job: `hqnn compare digits_cnn_qnn --seeds 5` on scikit-learn's
# bundled digits (the hybrid CNN + QNN, its classical twin and its circuit without entanglement,
# 5 seeds each), ending with the verdict table and the path of the HTML report.
# Extra arguments go to `hqnn demo` (e.g. --seeds 3 --epochs 5 --out-dir /tmp/runs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
exec .venv/bin/hqnn demo "$@"
