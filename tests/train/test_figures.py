"""Traversal grids against a decoder whose image is a known function of the code; heatmap files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from disco.models.subspaces import SubspaceSpec
from disco.train.callbacks import fit_sample_sizes, matrices
from disco.train.figures import latent_labels, save_heatmap, traversal_images


class SumDecoder(nn.Module):
    """Every pixel's logit is ``z[0] + 10·z[1] + 100·z[2]``."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        value = z @ torch.tensor([1.0, 10.0, 100.0])
        return value[:, None, None, None].expand(-1, 1, 4, 4)


def test_traversal_sweeps_one_dimension_per_row() -> None:
    spec = SubspaceSpec.parse("a=1,b=2")
    base, low, high = torch.tensor([0.1, 0.0, 0.0]), torch.tensor([-1.0, 0.0, -0.02]), torch.tensor([1.0, 0.2, 0.02])
    grids = traversal_images(SumDecoder(), base, spec, low, high, steps=3)
    assert grids["a"].shape == (4, 12, 1) and grids["b"].shape == (8, 12, 1)
    a = grids["a"][0, ::4, 0]  # one pixel per column
    np.testing.assert_allclose(a, torch.sigmoid(torch.tensor([-1.0, 0.0, 1.0])).numpy(), rtol=1e-6)
    b_row0, b_row1 = grids["b"][0, ::4, 0], grids["b"][4, ::4, 0]
    np.testing.assert_allclose(b_row0, torch.sigmoid(0.1 + 10 * torch.tensor([0.0, 0.1, 0.2])).numpy(), rtol=1e-6)
    np.testing.assert_allclose(b_row1, torch.sigmoid(0.1 + 100 * torch.tensor([-0.02, 0.0, 0.02])).numpy(), rtol=1e-6)
    assert latent_labels(spec) == ["a", "b[0]", "b[1]"]


def test_heatmap_and_matrix_discovery(tmp_path: Path) -> None:
    details = {"mi_matrix": np.ones((3, 2)), "gaps": np.ones(2), "intervention": {"dimension_matrix": np.eye(2)}}
    found = dict(matrices(details))
    assert set(found) == {"mi_matrix", "intervention.dimension_matrix"}
    path = save_heatmap(found["mi_matrix"], ["a", "b", "c"], ["f", "g"], "mi", tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_sizes_follow_the_protocol_or_the_split() -> None:
    assert fit_sample_sizes(["mig", "dci", "probes"], 73728, {}) == {}
    small = fit_sample_sizes(["mig", "dci", "probes"], 300, {"mig": {"num_bins": 10}})
    assert small["mig"] == {"num_train": 300, "num_bins": 10}
    assert small["dci"] == {"num_train": 200, "num_test": 100}
    assert small["probes"] == {"num_train": (10, 100), "num_test": 100, "subspace_num_train": 100}
