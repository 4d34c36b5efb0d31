"""Center loss (Wen et al. 2016, "A discriminative feature learning approach for deep face recognition"): pull each
feature towards a center of its class, ``0.5 ||x_i - c_{y_i}||^2`` averaged over the batch, next to a softmax
classifier (``L = L_CE + λ L_center``; the head belongs to the caller)."""

from __future__ import annotations

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


def center_loss(features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``0.5 ||features_i - centers[labels_i]||^2``."""
    return 0.5 * (features - centers[labels]).pow(2).sum(dim=1).mean()


def center_update(features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, alpha: float) -> torch.Tensor:
    """Wen et al.'s update (their Eq. 4): ``c_j <- c_j - alpha · Σ_{i: y_i = j} (c_j - x_i) / (1 + n_j)``, where
    ``n_j`` counts the batch's samples of class ``j`` (classes absent from the batch do not move)."""
    x = features.detach().to(centers.dtype)
    count = torch.zeros(centers.shape[0], dtype=centers.dtype, device=centers.device)
    count.index_add_(0, labels, torch.ones_like(labels, dtype=centers.dtype))
    sums = torch.zeros_like(centers).index_add_(0, labels, x)
    delta = (count[:, None] * centers - sums) / (1.0 + count[:, None])
    return centers - alpha * delta


class CenterLoss(nn.Module):
    """Center loss with ``num_classes`` centers of width ``dim``.

    ``alpha=None``: the centers are parameters trained by the optimiser (give them their own learning rate to mimic
    ``alpha``). ``alpha`` given: the centers are a buffer updated online by Wen et al.'s rule (:func:`center_update`)
    after each training-mode call, as in the paper; the loss then has no gradient with respect to them.
    """

    centers: torch.Tensor

    def __init__(self, num_classes: int, dim: int, alpha: float | None = None) -> None:
        super().__init__()
        if num_classes < 1 or dim < 1:
            raise ConfigError(f"center loss needs num_classes >= 1 and dim >= 1, got {num_classes} and {dim}")
        if alpha is not None and not 0.0 < alpha <= 1.0:
            raise ConfigError(f"center loss alpha {alpha} must lie in (0, 1]; Wen et al. use 0.5")
        self.num_classes, self.dim, self.alpha = int(num_classes), int(dim), alpha
        init = torch.randn(self.num_classes, self.dim)
        if alpha is None:
            self.centers = nn.Parameter(init)
        else:
            self.register_buffer("centers", init)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if features.ndim != 2 or features.shape[1] != self.dim or labels.shape != (features.shape[0],):
            raise ConfigError(
                f"center loss needs features (N, {self.dim}) and labels (N,), got {tuple(features.shape)} and "
                f"{tuple(labels.shape)}"
            )
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ConfigError(f"center loss labels must lie in [0, {self.num_classes}); check num_classes")
        loss = center_loss(features, labels, self.centers.to(features.dtype))
        if self.alpha is not None and self.training:
            with torch.no_grad():
                self.centers.copy_(center_update(features, labels, self.centers, self.alpha))
        return LossOutput(loss, {"raw": loss.detach()})
