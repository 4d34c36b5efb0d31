"""Maximum mean discrepancy with a multi-kernel Gaussian (Gretton et al. 2012, "A kernel two-sample test"; Long et al.
2015, DAN, "Learning transferable features with deep adaptation networks").

The unbiased U-statistic ``MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i,x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i,y_j)
- 2/(mn) sum_{i,j} k(x_i,y_j)`` with ``k`` the mean of Gaussian kernels ``exp(-||u-v||^2 / (2 sigma^2))``. The
bandwidths are fixed, or the median heuristic (square root of the median squared distance between distinct points of
the pooled sample, detached) times multipliers. The estimate can be slightly negative when the two samples agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(m, n)`` squared euclidean distances from explicit differences."""
    return (x[:, None, :] - y[None, :, :]).pow(2).sum(-1)


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Median heuristic: ``sqrt(median ||u - v||^2)`` over distinct pairs of the pooled sample (detached; the median of
    an even count is the mean of the two middle values, as in NumPy)."""
    z = torch.cat([x, y]).detach()
    d = squared_distances(z, z)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    values = d[iu[0], iu[1]].sort().values
    k = values.numel()
    median = values[k // 2] if k % 2 else 0.5 * (values[k // 2 - 1] + values[k // 2])
    return median.clamp_min(1e-12).sqrt()


def gaussian_kernel(sq_dist: torch.Tensor, bandwidths: torch.Tensor) -> torch.Tensor:
    """Mean over ``bandwidths`` (sigmas) of ``exp(-sq_dist / (2 sigma^2))``."""
    scale = (2.0 * bandwidths.to(sq_dist.dtype).pow(2)).view(-1, *([1] * sq_dist.ndim))
    return torch.exp(-sq_dist[None] / scale).mean(dim=0)


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor, bandwidths: torch.Tensor) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between samples ``x (m, d)`` and ``y (n, d)``, ``m, n >= 2``."""
    m, n = x.shape[0], y.shape[0]
    k_xx = gaussian_kernel(squared_distances(x, x), bandwidths)
    k_yy = gaussian_kernel(squared_distances(y, y), bandwidths)
    k_xy = gaussian_kernel(squared_distances(x, y), bandwidths)
    xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return xx + yy - 2.0 * k_xy.mean()


class MMDLoss(nn.Module):
    """Multi-kernel MMD^2 between two samples of codes.

    Args:
        multipliers: factors applied to the median-heuristic bandwidth (one Gaussian kernel each).
        bandwidths: fixed kernel widths (sigmas); when given the median heuristic is not used.
    """

    def __init__(
        self, multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0), bandwidths: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        values = list(bandwidths) if bandwidths is not None else list(multipliers)
        if not values or any(v <= 0 for v in values):
            raise ConfigError(f"MMD bandwidths/multipliers {values} must be a non-empty list of positive numbers")
        self.fixed = bandwidths is not None
        self.values = tuple(float(v) for v in values)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> LossOutput:
        if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[0] < 2 or y.shape[0] < 2:
            raise ConfigError(
                f"MMD needs two samples (m, d) and (n, d) with m, n >= 2, got {tuple(x.shape)} and {tuple(y.shape)}"
            )
        values = torch.tensor(self.values, dtype=x.dtype, device=x.device)
        base = torch.ones((), dtype=x.dtype, device=x.device) if self.fixed else median_bandwidth(x, y)
        loss = mmd2_unbiased(x, y, base * values)
        return LossOutput(loss, {"raw": loss.detach(), "bandwidth": base.detach()})
