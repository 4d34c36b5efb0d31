"""``disco export``: a trained encoder to TorchScript, so that disco-metrics and other tools can score it.

Usage::

    disco export --checkpoint runs/dsprites/checkpoints/last.ckpt --out encoder.pt [--force]

The exported module maps float images ``(B, C, 64, 64)`` in [0, 1] to the encoder MEAN ``(B, D)`` (the representation
scored by disentanglement_lib, Locatello et al. 2019). The subspace split and factor names are stored as extra files
``subspaces.json`` and ``factor_names.json`` in the archive. An existing ``--out`` is not overwritten without ``--force``;
the file is written to a temporary name and renamed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from disco.errors import ConfigError
from disco.models.factory import build_encoder
from disco.train.checkpointing import load_checkpoint


class MeanEncoder(nn.Module):
    """Wraps a ``(mean, logvar)`` encoder to return the mean only."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, _ = self.encoder(x)
        return mean


def encoder_from_checkpoint(ckpt: dict[str, Any]) -> nn.Module:
    """Rebuild the encoder of a disco checkpoint (architecture name + kwargs, weights under ``encoder.``)."""
    meta = ckpt["disco"]["encoder"]
    encoder = build_encoder(str(meta["name"]), **dict(meta["kwargs"]))
    prefix = "encoder."
    state = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    encoder.load_state_dict(state)
    return encoder.eval()


def export_torchscript(ckpt: dict[str, Any], out: Path) -> torch.jit.ScriptModule:
    """Script (or, failing that, trace) the mean encoder of ``ckpt`` and save it atomically to ``out``."""
    module = MeanEncoder(encoder_from_checkpoint(ckpt)).eval()
    try:
        scripted = torch.jit.script(module)
    except Exception:  # architectures with Python-only constructs are traced instead
        channels = int(ckpt["disco"]["encoder"]["kwargs"].get("in_channels", 1))
        scripted = torch.jit.trace(module, torch.rand(2, channels, 64, 64))
    extra = {
        "subspaces.json": json.dumps(ckpt["disco"].get("subspaces", {})),
        "factor_names.json": json.dumps(ckpt["disco"].get("factor_names", [])),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        torch.jit.save(scripted, tmp, _extra_files=extra)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return scripted


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``disco export``."""
    parser = argparse.ArgumentParser(prog="disco export", description="Export a trained encoder to TorchScript.")
    parser.add_argument("--checkpoint", required=True, help="a .ckpt written by disco train")
    parser.add_argument("--out", required=True, help="TorchScript file to write (e.g. encoder.pt)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ConfigError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    export_torchscript(load_checkpoint(args.checkpoint), out)
    print(f"wrote {out}")
    return 0
