"""Unbiased multi-kernel MMD against the explicit double sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.mmd import MMDLoss, median_bandwidth


def mmd_double_sum(x, y, sigmas):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def k(u, v):
        return np.mean([np.exp(-((u - v) ** 2).sum() / (2 * s * s)) for s in sigmas])

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_bandwidths_match_double_sum(dtype):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=g, dtype=dtype), torch.randn(8, 3, generator=g, dtype=dtype) + 0.5
    out = MMDLoss(bandwidths=(0.5, 1.0, 3.0))(x, y)
    ref = mmd_double_sum(x, y, (0.5, 1.0, 3.0))
    assert out.loss.item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float32 else 1e-12)


def test_median_heuristic_matches_double_sum():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 2, generator=g, dtype=torch.float64), torch.randn(7, 2, generator=g, dtype=torch.float64)
    pooled = np.concatenate([x.numpy(), y.numpy()])
    d2 = [((pooled[i] - pooled[j]) ** 2).sum() for i in range(12) for j in range(i + 1, 12)]
    sigma = np.sqrt(np.median(d2))
    assert median_bandwidth(x, y).item() == pytest.approx(sigma, rel=1e-12)
    out = MMDLoss(multipliers=(0.5, 2.0))(x, y)
    assert out.loss.item() == pytest.approx(mmd_double_sum(x, y, (0.5 * sigma, 2 * sigma)), rel=1e-12)
    assert out.diagnostics["bandwidth"].item() == pytest.approx(sigma)


def test_separates_shifted_samples_and_gradcheck():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 2, generator=g, dtype=torch.float64)
    same = MMDLoss()(x, torch.randn(64, 2, generator=g, dtype=torch.float64)).loss.item()
    shifted = MMDLoss()(x, torch.randn(64, 2, generator=g, dtype=torch.float64) + 2).loss.item()
    assert abs(same) < 0.05 < shifted
    xs = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    ys = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    loss_fn = MMDLoss(bandwidths=(0.5, 2.0))  # the median bandwidth is detached, so gradcheck needs fixed ones
    assert torch.autograd.gradcheck(lambda a, b: loss_fn(a, b).loss, (xs, ys))


def test_errors():
    with pytest.raises(ConfigError):
        MMDLoss(multipliers=())
    with pytest.raises(ConfigError):
        MMDLoss(bandwidths=(1.0, -1.0))
    with pytest.raises(ConfigError):
        MMDLoss()(torch.randn(1, 2), torch.randn(4, 2))
