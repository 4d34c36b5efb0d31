"""Atomic checkpoint writes and safe loads for Lightning.

Lightning's own writer serialises to memory and then streams into the target path, so a crash during the write can
leave a truncated file in place of the previous one. :class:`AtomicCheckpointIO` writes to a temporary file in the same
folder, flushes it to disk and renames it over the target with :func:`os.replace` (atomic on POSIX and Windows): the
target holds either the old or the new checkpoint, never a torn one.

Loads always use ``weights_only=True``: Lightning 2.6's ``trainer.fit(ckpt_path=..., weights_only=...)`` forwards its
``weights_only`` (default ``None``, i.e. torch's default) to ``CheckpointIO.load_checkpoint``; this plugin ignores it and
always restricts unpickling to tensors and plain containers, so checkpoints must hold only safe types (the run config is
stored as plain dicts/lists/str/numbers, the sampler and noise generator states as uint8 tensors).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from disco.errors import ConfigError


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj, path)`` through a temporary file and :func:`os.replace`; nothing is left behind on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and :func:`os.replace`: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO plugin: atomic writes (temp file + rename), ``weights_only=True`` loads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(
        self, path: Any, map_location: Callable | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        ckpt: dict[str, Any] = torch.load(path, map_location=map_location or "cpu", weights_only=True)
        return ckpt


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a training checkpoint with ``weights_only=True``; one-line :class:`ConfigError` if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} does not exist; pass the path of a .ckpt written by disco train")
    try:
        ckpt = torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or unsafe files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(
            f"cannot read checkpoint {path} ({first[:160]}); pass a .ckpt written by disco train"
        ) from err
    if not isinstance(ckpt, dict) or "disco" not in ckpt:
        raise ConfigError(
            f"{path} is not a disco training checkpoint (no 'disco' entry); pass a .ckpt from disco train"
        )
    return ckpt
