"""Margin contrastive loss on labelled pairs (Hadsell, Chopra & LeCun 2006, "Dimensionality reduction by learning an
invariant mapping"): similar pairs are pulled together, dissimilar pairs pushed at least ``margin`` apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


def safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """Square root whose gradient at 0 is 0 instead of infinite (coincident points)."""
    positive = sq > 0
    return torch.where(positive, torch.where(positive, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


def margin_contrastive_loss(z_a: torch.Tensor, z_b: torch.Tensor, same: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair ``0.5 d^2`` for similar pairs and ``0.5 max(0, margin - d)^2`` for dissimilar ones, ``d`` euclidean
    (with a zero gradient at d = 0)."""
    sq = (z_a - z_b).pow(2).sum(dim=1)
    push = F.relu(margin - safe_sqrt(sq)).pow(2)
    return 0.5 * torch.where(same.bool(), sq, push)


class MarginContrastiveLoss(nn.Module):
    """Hadsell et al. (2006) loss averaged over pairs; ``same (B,)`` is true where pair b shows the same label."""

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        if margin <= 0:
            raise ConfigError(f"contrastive margin {margin} must be > 0")
        self.margin = float(margin)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, same: torch.Tensor) -> LossOutput:
        if z_a.shape != z_b.shape or z_a.ndim != 2 or same.shape != (z_a.shape[0],):
            raise ConfigError(
                f"margin loss needs two (B, d) codes and same (B,), got {tuple(z_a.shape)}, {tuple(z_b.shape)}, "
                f"{tuple(same.shape)}"
            )
        per = margin_contrastive_loss(z_a, z_b, same, self.margin)
        loss = per.mean()
        s = same.bool()
        pos = per[s].mean() if s.any() else per.new_zeros(())
        neg = per[~s].mean() if (~s).any() else per.new_zeros(())
        return LossOutput(loss, {"raw": loss.detach(), "pull": pos.detach(), "push": neg.detach()})
