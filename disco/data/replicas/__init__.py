"""Offline replicas of dSprites (Matthey et al. 2017) and 3D Shapes (Burgess & Kim 2018) in their official layouts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from disco.errors import DataError

REPLICAS = ("dsprites", "shapes3d")


def make_replica(
    name: str, out_path: str | Path, subsample: Mapping[str, int] | None = None, *, force: bool = False
) -> Path:
    """Render the replica of dataset ``name`` ("dsprites" or "shapes3d") to ``out_path`` (atomic) and return the path."""
    if name == "dsprites":
        from disco.data.replicas.dsprites import make_dsprites

        return make_dsprites(out_path, subsample, force=force)
    if name == "shapes3d":
        from disco.data.replicas.shapes3d import make_shapes3d

        return make_shapes3d(out_path, subsample, force=force)
    raise DataError(f"unknown dataset {name!r} to make; choose one of {', '.join(REPLICAS)}")
