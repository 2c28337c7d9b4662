#!/usr/bin/env bash
# Install hqnn with its development extra (PennyLane, Qiskit, OpenQASM parser included, so that
# the parity tests run) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
exec .venv/bin/python -m pytest -q -n 2 "$@"
