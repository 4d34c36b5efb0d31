#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install disco with its dev tools.
# torch is installed first and only if missing, so a GPU user's own CUDA build is kept:
#   DISCO_TORCH="torch==2.13.0"   (default: a CPU build on machines that have it; set it to the build you want)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DISCO_VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check "${DISCO_TORCH:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
fi
"$PY" -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
"$PY" -c "import disco, metrics, torch" || { echo "error: installing disco into $VENV failed; see the pip output above" >&2; exit 1; }
