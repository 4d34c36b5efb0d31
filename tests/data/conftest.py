"""Small datasets shared by the data tests (subsampled replicas render in about a second)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from disco.data.datasets import GroundTruthData
from disco.data.factors import FactorSpace
from disco.data.replicas import make_replica

DS_STEPS = {"orientation": 8, "pos_x": 4, "pos_y": 4}
S3_STEPS = {"floor_hue": 5, "wall_hue": 5, "object_hue": 5, "orientation": 5, "scale": 2}


@pytest.fixture(scope="session")
def dsprites_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_replica("dsprites", tmp_path_factory.mktemp("ds") / "dsprites.h5", DS_STEPS)


@pytest.fixture(scope="session")
def shapes3d_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_replica("shapes3d", tmp_path_factory.mktemp("s3") / "shapes3d.h5", S3_STEPS)


def grid_data(sizes: tuple[int, ...] = (1, 3, 4, 5, 6), channels: int = 1, side: int = 64) -> GroundTruthData:
    """A full grid in order whose image pixel 0 encodes the row index (to check gathers)."""
    space = FactorSpace(tuple(f"f{i}" for i in range(len(sizes))), sizes)
    n = space.size
    index = np.arange(n)
    images = torch.zeros(n, channels, side, side, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.from_numpy(index % 256).to(torch.uint8)
    images[:, 0, 0, 1] = torch.from_numpy(index // 256).to(torch.uint8)
    classes = torch.from_numpy(np.asarray(space.index_to_classes(index)))
    return GroundTruthData("grid", images, classes, space, True)


def row_of(x: torch.Tensor) -> torch.Tensor:
    """Invert the pixel encoding of :func:`grid_data`."""
    pix = (x[:, 0, 0, :2] * 255).round().long()
    return pix[:, 0] + 256 * pix[:, 1]


@pytest.fixture()
def grid() -> GroundTruthData:
    return grid_data()
