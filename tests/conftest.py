"""Test-wide set-up: make the shared test helpers in this folder (``wandb_reader``) importable from every subfolder."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
