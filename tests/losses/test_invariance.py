"""SubspaceInvariance against a per-pair loop and a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.invariance import SubspaceInvariance
from disco.models.subspaces import SubspaceSpec

FACTORS = ["shape", "scale", "orient", "pos"]
SPEC = SubspaceSpec.parse("shape=3,scale=1,orient=2,free=2")


def loop_reference(za: torch.Tensor, zb: torch.Tensor, shared: torch.Tensor) -> tuple[float, dict[str, float]]:
    per_sub: dict[str, float] = {}
    for sub in SPEC.tied:
        col = FACTORS.index(str(sub.factor))
        dists = [
            sum((float(za[b, i]) - float(zb[b, i])) ** 2 for i in range(sub.slice.start, sub.slice.stop)) / sub.width
            for b in range(za.shape[0])
            if shared[b, col]
        ]
        if dists:
            per_sub[sub.name] = float(np.mean(dists))
    return float(np.mean(list(per_sub.values()))), per_sub


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop_reference(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(10, 8, generator=g, dtype=dtype), torch.randn(10, 8, generator=g, dtype=dtype)
    shared = torch.rand(10, 4, generator=g) < 0.5
    shared[:, 2] = False  # no pair shares orientation: its subspace drops out of the mean
    out = SubspaceInvariance(SPEC, FACTORS)(za, zb, shared)
    ref, per_sub = loop_reference(za.double(), zb.double(), shared)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert set(per_sub) == {"shape", "scale"}
    assert out.loss.item() == pytest.approx(ref, rel=tol)
    for name, value in per_sub.items():
        assert out.diagnostics[f"raw/{name}"].item() == pytest.approx(value, rel=tol)


def test_hand_computed_case() -> None:
    # pair 0 shares shape only, pair 1 shares scale and orientation; the free units never count
    za = torch.tensor([[1.0, 0.0, 0.0, 5.0, 0.0, 0.0, 9.0, 9.0], [0.0, 0.0, 0.0, 2.0, 1.0, 1.0, 9.0, 9.0]])
    zb = torch.tensor([[0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [7.0, 7.0, 7.0, 5.0, 1.0, 3.0, 0.0, 0.0]])
    shared = torch.tensor([[True, False, False, True], [False, True, True, True]])
    out = SubspaceInvariance(SPEC, FACTORS)(za, zb, shared)
    shape, scale, orient = (1 + 4) / 3, 9 / 1, (0 + 4) / 2
    assert out.loss.item() == pytest.approx((shape + scale + orient) / 3)
    za.requires_grad_(True)
    SubspaceInvariance(SPEC, FACTORS)(za, zb, shared).loss.backward()
    assert za.grad is not None and torch.all(za.grad[:, 6:] == 0)  # free units get no gradient


def test_no_shared_pair_gives_zero_with_zero_gradient() -> None:
    za = torch.randn(4, 8, requires_grad=True)
    out = SubspaceInvariance(SPEC, FACTORS)(za, torch.randn(4, 8), torch.zeros(4, 4, dtype=torch.bool))
    out.loss.backward()
    assert out.loss.item() == 0.0 and za.grad is not None and torch.all(za.grad == 0)


def test_bad_shapes_are_refused() -> None:
    loss = SubspaceInvariance(SPEC, FACTORS)
    with pytest.raises(ConfigError, match="do not match the subspace spec"):
        loss(torch.zeros(2, 7), torch.zeros(2, 7), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ConfigError, match="shared has shape"):
        loss(torch.zeros(2, 8), torch.zeros(2, 8), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="no subspace tied"):
        SubspaceInvariance(SubspaceSpec.parse("free=4"), FACTORS)
