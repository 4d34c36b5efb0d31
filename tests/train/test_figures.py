"""Traversal grids against a decoder whose image is a known function of the code; heatmap files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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


def test_heatmaps_put_factors_on_columns_and_name_latents_or_subspaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A square factors × subspaces matrix is where guessing the orientation from the shape went wrong.
    from types import SimpleNamespace

    from disco.train import callbacks, figures
    from metrics.types import MetricResult

    drawn: dict[str, tuple[np.ndarray, list[str], list[str]]] = {}

    def fake_heatmap(arr: np.ndarray, rows: list[str], cols: list[str], title: str, path: Path) -> Path:
        drawn[title.split(" (")[0]] = (arr, list(rows), list(cols))
        return path

    monkeypatch.setattr(figures, "save_heatmap", fake_heatmap)
    spec = SubspaceSpec.parse("s=1,o=2,free=1")
    factor_names = ("f0", "f1", "f2")
    mi = np.arange(12.0).reshape(4, 3)  # latents × factors
    sub = np.arange(9.0).reshape(3, 3)  # factors × subspaces
    dims = np.arange(12.0).reshape(3, 4)  # factors × latents
    results = {
        "mig": MetricResult("mig", 0.0, {"mi_matrix": mi}),
        "activity": MetricResult("activity", 0.0, {"intervention": {"dimension_matrix": dims, "subspace_matrix": sub}}),
    }
    host = SimpleNamespace(
        run_dir=tmp_path, spec=spec, data=SimpleNamespace(factors=SimpleNamespace(names=factor_names)), images=[]
    )
    trainer, module = SimpleNamespace(loggers=[]), SimpleNamespace(decoder=None)
    callbacks.EvaluationCallback._figures(host, trainer, module, results, np.zeros((4, 4)), "eval", 1)  # type: ignore[arg-type]
    arr, rows, cols = drawn["mig mi_matrix"]
    assert rows == ["s", "o[0]", "o[1]", "free"] and cols == list(factor_names) and np.array_equal(arr, mi)
    arr, rows, cols = drawn["activity intervention.subspace_matrix"]
    assert rows == ["s", "o", "free"] and cols == list(factor_names) and np.array_equal(arr, sub.T)
    arr, rows, cols = drawn["activity intervention.dimension_matrix"]
    assert rows == ["s", "o[0]", "o[1]", "free"] and np.array_equal(arr, dims.T)
