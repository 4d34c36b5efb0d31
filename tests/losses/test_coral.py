"""Deep CORAL against NumPy covariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.coral import CORALLoss


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_numpy(dtype):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(10, 4, generator=g, dtype=dtype), torch.randn(7, 4, generator=g, dtype=dtype) * 2
    out = CORALLoss()(s, t)
    cs, ct = np.cov(s.double().numpy(), rowvar=False), np.cov(t.double().numpy(), rowvar=False)
    ref = ((cs - ct) ** 2).sum() / (4 * 16)
    assert out.loss.item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float32 else 1e-12)


def test_identical_covariances_give_zero_and_gradcheck():
    x = torch.randn(9, 3, dtype=torch.float64)
    # a shift and a permutation of rows leave the covariance unchanged
    assert CORALLoss()(x, x[torch.randperm(9)] + 5).loss.item() == pytest.approx(0.0, abs=1e-12)
    s = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: CORALLoss()(a, b).loss, (s, t))
    with pytest.raises(ConfigError):
        CORALLoss()(torch.randn(4, 3), torch.randn(4, 2))
