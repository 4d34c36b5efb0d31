"""Ground-truth datasets: the official factor spaces and the in-memory dataset every sampler reads.

dSprites (Matthey et al. 2017, "dSprites: Disentanglement testing Sprites dataset") and 3D Shapes (Burgess & Kim 2018,
"3D Shapes Dataset") enumerate every combination of their factors exactly once, last factor fastest. The spaces below
carry the official names, sizes and values in storage order; :func:`load_dataset` reads the official files, disco's
offline replicas (same layout), a user's own labelled ``images`` + ``factors`` file or an unlabelled ``images`` file
(e.g. written by ``disco data import``) into :class:`GroundTruthData`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from disco.data.factors import FactorSpace
from disco.errors import DataError

DSPRITES = FactorSpace(
    ("color", "shape", "scale", "orientation", "pos_x", "pos_y"),
    (1, 3, 6, 40, 32, 32),
    (
        np.array([1.0]),
        np.array([1.0, 2.0, 3.0]),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2.0 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    ),
)

SHAPES3D = FactorSpace(
    ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"),
    (10, 10, 10, 8, 4, 15),
    (
        np.arange(10) / 10.0,
        np.arange(10) / 10.0,
        np.arange(10) / 10.0,
        np.linspace(0.75, 1.25, 8),
        np.arange(4, dtype=np.float64),
        np.linspace(-30.0, 30.0, 15),
    ),
)

SPACES: dict[str, FactorSpace] = {"dsprites": DSPRITES, "shapes3d": SHAPES3D}

# File names looked for under the data folder, in order: the official files first, then disco's replicas.
DEFAULT_FILES: dict[str, tuple[str, ...]] = {
    "dsprites": (
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
        "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5",
        "dsprites.h5",
    ),
    "shapes3d": ("3dshapes.h5", "shapes3d.h5"),
}

REPLICA_FILES: dict[str, str] = {"dsprites": "dsprites.h5", "shapes3d": "shapes3d.h5"}


@dataclass
class GroundTruthData:
    """Images with per-factor class labels.

    Attributes:
        name: dataset name ("dsprites", "shapes3d") or the file stem of a user's dataset.
        images: uint8 ``(N, C, 64, 64)`` with values 0..255 (dSprites' 0/1 pixels are scaled to 0/255). It may be a
            strided view of a channels-last array (no copy is made of multi-gigabyte files).
        classes: long ``(N, K)`` class index of each factor (``0 .. factors.sizes[k]-1``); ``(N, 0)`` when unlabelled.
        factors: the factor space (names, sizes, values); ``FactorSpace((), ())`` when unlabelled.
        on_grid: True when row ``i`` holds grid point ``i`` of ``factors`` (every combination once, in order), so that
            index arithmetic on the grid finds any image; always False when unlabelled.
    """

    name: str
    images: torch.Tensor
    classes: torch.Tensor
    factors: FactorSpace
    on_grid: bool

    @property
    def has_factors(self) -> bool:
        """True when the images carry factor labels (False for an unlabelled set, whose factor space is empty)."""
        return self.factors.num_factors > 0

    @property
    def num_channels(self) -> int:
        return int(self.images.shape[1])

    def __len__(self) -> int:
        return int(self.images.shape[0])


def data_dir() -> Path:
    """The folder named by ``$DISCO_DATA_DIR`` (default ``./data``)."""
    return Path(os.environ.get("DISCO_DATA_DIR", "data"))


def resolve_path(name_or_path: str) -> tuple[Path, str | None]:
    """The file a dataset name or path stands for, and the official dataset name when one was given."""
    key = name_or_path.lower()
    if key in DEFAULT_FILES:
        folder = data_dir()
        for candidate in DEFAULT_FILES[key]:
            if (folder / candidate).is_file():
                return folder / candidate, key
        raise DataError(
            f"no {key} file under {folder}/ (looked for {', '.join(DEFAULT_FILES[key])}); "
            f"make an offline replica with `disco data make {key} --out {folder / REPLICA_FILES[key]}` "
            f"or set DISCO_DATA_DIR to the folder holding it"
        )
    path = Path(name_or_path)
    if path.suffix.lower() not in {".h5", ".hdf5", ".npz"}:
        raise DataError(f"unknown dataset {name_or_path!r}; use dsprites, shapes3d or a path to an .h5/.hdf5/.npz file")
    if not path.is_file():
        raise DataError(f"dataset file {path} not found; check the path or make a replica with `disco data make`")
    return path, None


def load_dataset(name_or_path: str, *, verify: bool = False) -> GroundTruthData:
    """Load dSprites, 3D Shapes (official file or disco replica) or a user's labelled or unlabelled dataset into memory.

    ``verify=True`` recomputes the checksum (the official file's md5, or a replica's stored image checksum); without it
    the checksum is computed once at first use and remembered in a ``<file>.md5ok`` sidecar.
    """
    from disco.data.loaders import read_dataset_file

    path, _ = resolve_path(name_or_path)
    return read_dataset_file(path, verify=verify)
