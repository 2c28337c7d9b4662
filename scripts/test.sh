#!/usr/bin/env bash
# Install hqnn with its development extra (PennyLane, Qiskit, OpenQASM parser included, so that
# the parity tests run), lint and type-check src/ (ruff and mypy, configured in pyproject.toml; under
# a minute from a cold cache) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh dev
.venv/bin/ruff check src
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -n 2 "$@"
