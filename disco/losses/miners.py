"""Triplet miners: pick (anchor, positive, negative) index triples from a distance matrix and labels.

A miner takes ``dist (N, N)`` and ``labels (N,)`` (and the margin) and returns three long tensors of equal length,
in the style of pytorch-metric-learning. ``batch_all`` keeps every valid triple (Hermans et al. 2017, "In defense of
the triplet loss", batch all); ``batch_hard`` keeps the farthest positive and nearest negative per anchor (Hermans et
al. 2017, batch hard); ``semi_hard`` keeps, per anchor-positive pair, the nearest negative farther than the positive
(Schroff et al. 2015, FaceNet), whose loss is non-zero only inside the margin.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from disco.errors import ConfigError

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
Miner = Callable[[torch.Tensor, torch.Tensor, float], Triplets]


def _label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_all(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> Triplets:
    """Every triple with ``labels[a] == labels[p]``, ``a != p`` and ``labels[n] != labels[a]``."""
    pos, neg = _label_masks(labels)
    valid = pos[:, :, None] & neg[:, None, :]
    a, p, n = valid.nonzero(as_tuple=True)
    return a, p, n


def batch_hard(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> Triplets:
    """Per anchor with a positive and a negative: the farthest positive and the nearest negative."""
    pos, neg = _label_masks(labels)
    d = dist.detach()
    hardest_pos = d.masked_fill(~pos, float("-inf")).argmax(dim=1)
    hardest_neg = d.masked_fill(~neg, float("inf")).argmin(dim=1)
    anchors = (pos.any(dim=1) & neg.any(dim=1)).nonzero(as_tuple=True)[0]
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def semi_hard(dist: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> Triplets:
    """Per anchor-positive pair: the nearest negative with ``d(a, n) > d(a, p)``; pairs without one are dropped, so
    the hardest negatives (closer than the positive), which make training collapse, are never chosen."""
    pos, neg = _label_masks(labels)
    d = dist.detach()
    a, p = pos.nonzero(as_tuple=True)
    d_ap = d[a, p]
    farther = neg[a] & (d[a] > d_ap[:, None])
    n = d[a].masked_fill(~farther, float("inf")).argmin(dim=1)
    keep = farther.any(dim=1)
    return a[keep], p[keep], n[keep]


MINERS: dict[str, Miner] = {"batch_all": batch_all, "batch_hard": batch_hard, "semi_hard": semi_hard}


def get_miner(name: str) -> Miner:
    """The miner registered under ``name``."""
    if name not in MINERS:
        raise ConfigError(f"unknown triplet miner {name!r}; use one of {', '.join(MINERS)}")
    return MINERS[name]
