#!/usr/bin/env bash
# The whole test suite: lint (ruff), types (mypy), then pytest (unit tests and end-to-end runs on small generated data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
. "${DISCO_VENV:-.venv}/bin/activate"
ruff check .
ruff format --check .
mypy
python -m pytest -q "$@"
