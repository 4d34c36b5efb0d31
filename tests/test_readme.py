"""The README's examples are executed: every fenced block preceded by ``<!-- test -->`` runs, in order, in one scratch
folder (so a later block can use what an earlier one made). Python blocks run in a fresh interpreter; bash blocks run
with this interpreter's ``bin`` folder first on PATH, so ``disco`` and ``disco-metrics`` are the installed scripts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- test -->\s*\n```(python|bash)\n(.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer((ROOT / "README.md").read_text())]


def test_readme_marks_examples() -> None:
    kinds = [kind for kind, _ in readme_blocks()]
    assert "python" in kinds and "bash" in kinds


@pytest.mark.slow
def test_readme_examples_run(tmp_path: Path) -> None:
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
    for i, (kind, code) in enumerate(readme_blocks()):
        cmd = [sys.executable, "-c", code] if kind == "python" else ["bash", "-euo", "pipefail", "-c", code]
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"README block {i} ({kind}) failed:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"
