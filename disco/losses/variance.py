"""Variance floor per code unit: a hinge on the batch standard deviation (the variance term of VICReg, Bardes et al.
2022, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised Learning").

A contrastive subspace whose factor the encoder cannot yet see collapses to a point, and with squared-distance (or
cosine) logits a collapsed subspace is a stationary point of InfoNCE: every candidate is equally far, so no gradient
asks the trunk for the missing feature. Keeping every unit's standard deviation at ``gamma`` or more leaves the
subspace spread, so the contrastive term's invariance has something to act on. Under DDP the deviation is that of the
global batch (codes gathered with gradients, :mod:`disco.losses.distributed`), which equals one process with the
concatenated batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.distributed import gather_with_grad


class VarianceFloor(nn.Module):
    """``mean_d relu(gamma - sqrt(var_d(z) + eps))`` over the code units ``dims`` (default: all).

    Args:
        gamma: the target standard deviation of every unit.
        dims: the code columns to hold up (e.g. those of the tied subspaces), None for all.
        eps: numerical floor inside the square root (VICReg uses 1e-4).
    """

    def __init__(self, gamma: float = 1.0, dims: Sequence[int] | None = None, eps: float = 1e-4) -> None:
        super().__init__()
        if gamma <= 0:
            raise ConfigError(f"variance floor gamma {gamma} must be > 0 (a standard deviation)")
        self.gamma, self.eps = float(gamma), float(eps)
        self.dims = None if dims is None else list(dims)

    def forward(self, z: torch.Tensor) -> LossOutput:
        if z.ndim != 2 or z.shape[0] < 2:
            raise ConfigError(f"the variance floor needs codes (batch >= 2, dim), got {tuple(z.shape)}")
        z = gather_with_grad(z)
        if self.dims is not None:
            z = z[:, self.dims]
        std = torch.sqrt(z.var(dim=0) + self.eps)
        loss = torch.relu(self.gamma - std).mean()
        return LossOutput(loss, {"min_std": std.min().detach(), "below": (std < self.gamma).float().mean().detach()})
