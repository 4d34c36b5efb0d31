"""Deep CORAL (Sun & Saenko 2016, "Deep CORAL: correlation alignment for deep domain adaptation"): align second-order
statistics, ``||C_s - C_t||_F^2 / (4 d^2)`` with ``C`` the unbiased feature covariance of each domain."""

from __future__ import annotations

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance ``(d, d)`` of the rows of ``x (n, d)``, ``n >= 2``."""
    xc = x - x.mean(dim=0, keepdim=True)
    return xc.T @ xc / (x.shape[0] - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||cov(source) - cov(target)||_F^2 / (4 d^2)``."""
    d = source.shape[1]
    return (covariance(source) - covariance(target)).pow(2).sum() / (4 * d * d)


class CORALLoss(nn.Module):
    """CORAL alignment between a source and a target batch of codes (no hyperparameters)."""

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> LossOutput:
        if (
            source.ndim != 2
            or target.ndim != 2
            or source.shape[1] != target.shape[1]
            or min(len(source), len(target)) < 2
        ):
            raise ConfigError(
                f"CORAL needs two batches (m, d) and (n, d) with m, n >= 2, got {tuple(source.shape)} and "
                f"{tuple(target.shape)}"
            )
        loss = coral_loss(source, target)
        return LossOutput(loss, {"raw": loss.detach()})
