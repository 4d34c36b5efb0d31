"""Center loss (Wen et al. 2016, "A discriminative feature learning approach for deep face recognition"): pull each
feature towards a learnable center of its class, ``0.5 ||x_i - c_{y_i}||^2`` averaged over the batch."""

from __future__ import annotations

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


def center_loss(features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``0.5 ||features_i - centers[labels_i]||^2``."""
    return 0.5 * (features - centers[labels]).pow(2).sum(dim=1).mean()


class CenterLoss(nn.Module):
    """Center loss with ``num_classes`` learnable centers of width ``dim`` (trained by the optimiser, not Wen et al.'s
    separate update rule; give them their own learning rate to mimic its ``alpha``)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        if num_classes < 1 or dim < 1:
            raise ConfigError(f"center loss needs num_classes >= 1 and dim >= 1, got {num_classes} and {dim}")
        self.num_classes, self.dim = int(num_classes), int(dim)
        self.centers = nn.Parameter(torch.randn(self.num_classes, self.dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if features.ndim != 2 or features.shape[1] != self.dim or labels.shape != (features.shape[0],):
            raise ConfigError(
                f"center loss needs features (N, {self.dim}) and labels (N,), got {tuple(features.shape)} and "
                f"{tuple(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ConfigError(f"center loss labels must lie in [0, {self.num_classes}); check num_classes")
        loss = center_loss(features, labels, self.centers.to(features.dtype))
        return LossOutput(loss, {"raw": loss.detach()})
