"""VarianceFloor against a hand computation; its wiring picks the tied subspaces' units."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from disco.errors import ConfigError
from disco.losses.variance import VarianceFloor
from disco.models.subspaces import SubspaceSpec
from disco.train.config import VarianceConfig
from disco.train.step import TermContext
from disco.train.terms import build_variance


def test_hinge_on_the_standard_deviation_by_hand() -> None:
    z = torch.tensor([[0.0, 0.0, 10.0], [2.0, 0.1, -10.0], [4.0, 0.2, 0.0]])
    # unbiased variances 4, 0.01, 100 -> std 2, 0.1, 10 (eps 0): hinge at 1 -> 0, 0.9, 0
    out = VarianceFloor(gamma=1.0, eps=0.0)(z)
    assert out.loss.item() == pytest.approx(0.9 / 3)
    assert out.diagnostics["below"].item() == pytest.approx(1 / 3)
    assert VarianceFloor(gamma=1.0, dims=[1], eps=0.0)(z).loss.item() == pytest.approx(0.9)
    collapsed = torch.zeros(5, 2, requires_grad=True)
    loss = VarianceFloor(gamma=0.5, eps=1e-4)(collapsed).loss
    assert loss.item() == pytest.approx(0.5 - math.sqrt(1e-4))


def test_gradient_spreads_a_narrow_unit_and_leaves_a_wide_one() -> None:
    z = torch.tensor([[0.0, -5.0], [0.1, 5.0], [0.2, 0.0]], requires_grad=True)
    VarianceFloor(gamma=1.0)(z).loss.backward()
    assert z.grad is not None
    assert z.grad[:, 1].abs().sum() == 0
    assert z.grad[0, 0] > 0 and z.grad[2, 0] < 0  # descent moves the extremes outwards


def test_wiring_holds_up_only_the_tied_units_unless_told() -> None:
    spec = SubspaceSpec.parse("shape=2,scale=1,free=2")
    ctx = TermContext(spec, ("shape", "scale"), 10, False)
    wired: Any = build_variance(VarianceConfig(weight=1.0), ctx)
    assert wired.loss.dims == [0, 1, 2]
    everything: Any = build_variance(VarianceConfig(weight=1.0, all_units=True), ctx)
    assert everything.loss.dims is None
    with pytest.raises(ConfigError, match="there are none; set all_units: true"):
        build_variance(VarianceConfig(weight=1.0), TermContext(SubspaceSpec.parse("free=3"), (), 10, False))
    with pytest.raises(ConfigError, match=r"gamma -1\.0 must be > 0"):
        VarianceFloor(gamma=-1.0)
