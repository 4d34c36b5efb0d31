"""Adversarial domain alignment with a gradient reversal layer (Ganin & Lempitsky 2015, "Unsupervised domain adaptation
by backpropagation").

A small discriminator learns to tell the domains (or the two views) apart; the reversal layer passes features unchanged
forward and multiplies the gradient by ``-lambda`` backward, so one optimiser step trains the discriminator to separate
and the encoder to confuse it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambda_ * grad, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``-lambda_`` backward."""
    out: torch.Tensor = _ReverseGrad.apply(x, float(lambda_))
    return out


class GradientReversal(nn.Module):
    """Module form of :func:`grad_reverse`; ``lambda_`` may be changed between steps (Ganin's schedule)."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = float(lambda_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)


class DomainAdversarialLoss(nn.Module):
    """Binary cross-entropy of a discriminator ``dim -> hidden -> hidden -> 1`` on reversed features.

    ``forward(source, target)`` labels source rows 1 and target rows 0; the discriminator's parameters belong to this
    module and must be given to the optimiser. Diagnostics: ``acc`` (discriminator accuracy; 0.5 means aligned).
    """

    def __init__(self, dim: int, hidden: int = 64, lambda_: float = 1.0) -> None:
        super().__init__()
        if dim < 1 or hidden < 1:
            raise ConfigError(f"domain discriminator needs dim >= 1 and hidden >= 1, got {dim} and {hidden}")
        self.reversal = GradientReversal(lambda_)
        self.discriminator = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    @property
    def lambda_(self) -> float:
        return self.reversal.lambda_

    @lambda_.setter
    def lambda_(self, value: float) -> None:
        self.reversal.lambda_ = float(value)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> LossOutput:
        if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
            raise ConfigError(
                f"domain features must be (m, d) and (n, d), got {tuple(source.shape)} and {tuple(target.shape)}"
            )
        feats = self.reversal(torch.cat([source, target]))
        logits = self.discriminator(feats).squeeze(1)
        labels = torch.cat([logits.new_ones(source.shape[0]), logits.new_zeros(target.shape[0])])
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        acc = ((logits > 0).to(labels.dtype) == labels).to(logits.dtype).mean()
        return LossOutput(loss, {"raw": loss.detach(), "acc": acc.detach()})
