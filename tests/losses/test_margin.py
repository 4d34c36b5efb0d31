"""Hadsell et al. margin contrastive loss against a per-pair loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.margin import MarginContrastiveLoss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_loop(dtype):
    g = torch.Generator().manual_seed(0)
    za, zb = torch.randn(10, 3, generator=g, dtype=dtype), torch.randn(10, 3, generator=g, dtype=dtype)
    same = torch.tensor([1, 0, 1, 0, 0, 1, 1, 0, 0, 0], dtype=torch.bool)
    out = MarginContrastiveLoss(margin=2.0)(za, zb, same)
    per = []
    for a, b, s in zip(za.double().numpy(), zb.double().numpy(), same.tolist(), strict=True):
        d = np.linalg.norm(a - b)
        per.append(0.5 * d**2 if s else 0.5 * max(0.0, 2.0 - d) ** 2)
    assert out.loss.item() == pytest.approx(np.mean(per), rel=1e-5 if dtype == torch.float32 else 1e-12)
    assert out.diagnostics["pull"].item() == pytest.approx(
        np.mean([p for p, s in zip(per, same.tolist(), strict=True) if s]), rel=1e-5
    )
    assert out.diagnostics["push"].item() == pytest.approx(
        np.mean([p for p, s in zip(per, same.tolist(), strict=True) if not s]), rel=1e-5
    )


def test_closed_forms_and_zero_distance_gradient():
    z = torch.zeros(2, 3, requires_grad=True)
    out = MarginContrastiveLoss(margin=1.5)(z, torch.zeros(2, 3), torch.tensor([True, False]))
    out.loss.backward()
    assert out.loss.item() == pytest.approx(0.5 * 1.5**2 / 2)  # identical dissimilar pair sits margin short
    assert torch.isfinite(z.grad).all()
    far = MarginContrastiveLoss(margin=1.0)(torch.zeros(1, 2), torch.full((1, 2), 3.0), torch.tensor([False]))
    assert far.loss.item() == 0.0


def test_gradcheck_and_errors():
    za = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    zb = torch.randn(4, 3, dtype=torch.float64)
    same = torch.tensor([True, False, True, False])
    loss_fn = MarginContrastiveLoss(margin=3.0)
    assert torch.autograd.gradcheck(lambda a: loss_fn(a, zb, same).loss, (za,))
    with pytest.raises(ConfigError):
        MarginContrastiveLoss(margin=0)
    with pytest.raises(ConfigError):
        loss_fn(za, zb, same[:2])
