"""Shared machinery of the offline replicas: subsample grids and the atomic, checksummed HDF5 writer.

The replicas are written in the official HDF5 layouts of dSprites (Matthey et al. 2017) and 3D Shapes (Burgess & Kim
2018) so that the same loader reads the real files and the replicas.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from disco.data.factors import FactorSpace
from disco.errors import ConfigError, DataError

GENERATOR_VERSION = "1"


def parse_subsample(items: Sequence[str] | None) -> dict[str, int]:
    """``["scale=2", "pos_x=4"]`` -> ``{"scale": 2, "pos_x": 4}``."""
    out: dict[str, int] = {}
    for item in items or ():
        name, sep, step = item.partition("=")
        if not sep or not name or not step.strip().isdigit():
            raise ConfigError(
                f"--subsample {item!r} is not NAME=STEP; write it like scale=2 (a factor name and a positive integer)"
            )
        out[name.strip()] = int(step)
    return out


def subsample_steps(space: FactorSpace, subsample: Mapping[str, int] | None) -> list[int]:
    """One step per factor of ``space`` (1 where not given); unknown names and non-divisors raise :class:`ConfigError`."""
    subsample = dict(subsample or {})
    for name in subsample:
        if name not in space.names:
            raise ConfigError(
                f"unknown factor {name!r} in --subsample; this dataset's factors are {', '.join(space.names)}"
            )
    steps = [int(subsample.get(name, 1)) for name in space.names]
    space.subset(steps)
    return steps


def grid_classes(space: FactorSpace, steps: Sequence[int]) -> np.ndarray:
    """Official (full-grid) class indices ``(M, K)`` of every point of the subsampled grid, in storage order."""
    sub = space.subset(steps)
    compact = np.asarray(sub.index_to_classes(np.arange(sub.size, dtype=np.int64)))
    return compact * np.asarray(steps, dtype=np.int64)


def write_replica_file(
    out_path: Path,
    *,
    force: bool,
    image_key: str,
    image_shape: tuple[int, ...],
    labels: Mapping[str, np.ndarray],
    chunks: Iterable[np.ndarray],
    attrs: Mapping[str, str | int],
    compression: str | None = "lzf",
) -> Path:
    """Write images (streamed from ``chunks``) and label arrays to ``out_path`` atomically.

    The file is built under a temporary name in the same folder and moved into place with ``os.replace`` only after
    the last chunk, so an interrupted run never leaves a complete-looking file. The md5 of the image bytes (in storage
    order) and the generator version are stored as attributes.
    """
    out_path = Path(out_path)
    if out_path.exists() and not force:
        raise DataError(f"{out_path} already exists; pass --force to overwrite it or choose another --out")
    if out_path.suffix.lower() not in {".h5", ".hdf5"}:
        raise ConfigError(
            f"--out {out_path} must end in .h5 or .hdf5 (replicas are written in the official HDF5 layout)"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(labels.values())))
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    digest = hashlib.md5()
    try:
        with h5py.File(tmp, "w") as fh:
            rows = max(1, min(n, (4 << 20) // int(np.prod(image_shape))))
            images = fh.create_dataset(
                image_key, shape=(n, *image_shape), dtype=np.uint8, chunks=(rows, *image_shape), compression=compression
            )
            for key, array in labels.items():
                fh.create_dataset(key, data=array)
            written = 0
            for block in chunks:
                block = np.ascontiguousarray(block, dtype=np.uint8)
                images[written : written + len(block)] = block
                digest.update(block.data)
                written += len(block)
            if written != n:
                raise DataError(f"replica generator produced {written} images for {n} labels; this is a bug in disco")
            fh.attrs["images_md5"] = digest.hexdigest()
            fh.attrs["disco_generator_version"] = GENERATOR_VERSION
            for key, value in attrs.items():
                fh.attrs[key] = value
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def replica_attrs(dataset: str, space: FactorSpace, steps: Sequence[int]) -> dict[str, str | int]:
    """Attributes that record which grid a replica holds (read back by the loader)."""
    sub = space.subset(steps)
    return {
        "disco_dataset": dataset,
        "disco_generator": f"disco.data.replicas.{dataset}",
        "disco_subsample": json.dumps({n: s for n, s in zip(space.names, steps, strict=True) if s != 1}),
        "factor_names": json.dumps(list(sub.names)),
        "factor_sizes": json.dumps(list(sub.sizes)),
    }
