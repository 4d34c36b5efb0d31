"""Triplet margin loss with pluggable miners (Schroff et al. 2015, FaceNet; Hermans et al. 2017).

``max(0, d(a, p) - d(a, n) + margin)`` over the triples a miner picks (see :mod:`disco.losses.miners`), averaged over
the triples with a non-zero loss by default (Hermans et al. 2017's "batch all" averaging, so easy triples do not dilute
the gradient) or over all mined triples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.margin import safe_sqrt
from disco.losses.miners import Miner, get_miner

DISTANCES = ("euclidean", "squared", "cosine")


def pairwise_distance(x: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """``(N, N)`` distances: ``euclidean`` (zero gradient where two points coincide),
    ``squared`` euclidean, or ``cosine`` (1 - cosine similarity)."""
    if kind == "cosine":
        xn = F.normalize(x, dim=1)
        return 1.0 - xn @ xn.T
    sq = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    if kind == "squared":
        return sq
    if kind == "euclidean":
        return safe_sqrt(sq)
    raise ConfigError(f"unknown distance {kind!r}; use one of {', '.join(DISTANCES)}")


def triplet_margin_loss(
    dist: torch.Tensor, triplets: tuple[torch.Tensor, torch.Tensor, torch.Tensor], margin: float, nonzero_mean: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean hinge ``max(0, d_ap - d_an + margin)`` over the given triples; returns ``(loss, per_triplet_losses)``."""
    a, p, n = triplets
    per = F.relu(dist[a, p] - dist[a, n] + margin)
    count = (per > 0).sum() if nonzero_mean else torch.tensor(per.numel(), device=per.device)
    loss = per.sum() / count.clamp_min(1).to(per.dtype) + dist.sum() * 0.0
    return loss, per


class TripletLoss(nn.Module):
    """Triplet loss on ``(embeddings (N, d), labels (N,))`` with a named or custom miner.

    Args:
        margin: required gap between positive and negative distances.
        miner: ``batch_all``, ``batch_hard``, ``semi_hard`` or a callable ``(dist, labels, margin) -> (a, p, n)``.
        distance: ``euclidean``, ``squared`` or ``cosine``.
        nonzero_mean: average over the triples with a positive loss (else over all mined triples).
    """

    def __init__(
        self,
        margin: float = 0.2,
        miner: str | Miner = "batch_all",
        distance: str = "euclidean",
        nonzero_mean: bool = True,
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ConfigError(f"triplet margin {margin} must be >= 0")
        if distance not in DISTANCES:
            raise ConfigError(f"unknown distance {distance!r}; use one of {', '.join(DISTANCES)}")
        self.margin = float(margin)
        self.miner: Miner = get_miner(miner) if isinstance(miner, str) else miner
        self.distance = distance
        self.nonzero_mean = nonzero_mean

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if embeddings.ndim != 2 or labels.shape != (embeddings.shape[0],):
            raise ConfigError(
                f"triplet loss needs embeddings (N, d) and labels (N,), got {tuple(embeddings.shape)} and "
                f"{tuple(labels.shape)}"
            )
        dist = pairwise_distance(embeddings, self.distance)
        triplets = self.miner(dist, labels, self.margin)
        loss, per = triplet_margin_loss(dist, triplets, self.margin, self.nonzero_mean)
        active = (per > 0).sum()
        frac = active.to(loss.dtype) / max(per.numel(), 1)
        return LossOutput(
            loss,
            {
                "raw": loss.detach(),
                "triplets": torch.tensor(per.numel()),
                "active": active.detach(),
                "active_frac": frac,
            },
        )
