"""Supervised ceiling: each factor predicted from THAT factor's subspace alone.

This is a REFERENCE for what the data and the encoder allow when every factor value of every image is given (the
upper end of the supervision axis; cf. the supervised models of Locatello et al. 2020, "Disentangling Factors of
Variation Using Few Labels", ICLR), NOT a disentanglement method: it learns nothing the labels do not state.

One head per subspace tied to a factor reads only that subspace; untied (free) subspaces are unused and a factor tied
to no subspace is not predicted. Heads (``head``):

- ``linear``: an affine map ``width → classes`` and cross-entropy. On a 1-unit subspace the classes must be cut out of
  one axis by competing lines, which trains very slowly for factors with many ordered classes (dSprites position, 32
  classes: 5 % accuracy after 600 steps); kept for comparison.
- ``mlp``: ``width → 64 → classes`` with a ReLU, and cross-entropy: any partition of the subspace is reachable.
- ``regression``: the L2 supervised loss of Locatello et al. 2020 on normalised factor values. The first unit of the
  subspace regresses the class index standardised over the grid, ``(c − (n − 1)/2) / sqrt((n² − 1)/12)``; the other
  units of a wider subspace are held at 0. Accuracy reads the class whose standardised index is nearest.

The loss is the sum over tied factors of the per-factor loss averaged over the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.models.subspaces import SubspaceSpec

HEADS: tuple[str, ...] = ("linear", "mlp", "regression")
MLP_HIDDEN = 64


def standardised_classes(classes: torch.Tensor, size: int) -> torch.Tensor:
    """Class indices of a factor with ``size`` classes, standardised to mean 0 and variance 1 over a uniform grid."""
    if size < 2:
        return torch.zeros_like(classes, dtype=torch.get_default_dtype())
    return (classes.to(torch.get_default_dtype()) - (size - 1) / 2) / math.sqrt((size * size - 1) / 12)


def _head(kind: str, width: int, size: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(width, size)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(width, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, size))
    return nn.Identity()


class FactorClassification(nn.Module):
    """Per tied subspace ``s`` (factor ``k``) a ``head`` that predicts factor ``k`` from ``z[:, s]`` alone.

    Args:
        spec: the code's subspaces; the tied ones get a head.
        factor_names: the dataset's factor names (columns of the class arrays).
        factor_sizes: the number of classes of each factor, in ``factor_names`` order.
        head: ``"linear"``, ``"mlp"`` or ``"regression"`` (see the module docstring).
        only: the names of the tied subspaces to predict (default: all of them), e.g. an auxiliary classifier on one
            subspace beside another objective.
    """

    def __init__(
        self,
        spec: SubspaceSpec,
        factor_names: Sequence[str],
        factor_sizes: Sequence[int],
        head: str = "regression",
        only: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"unknown supervised head {head!r}; valid names: {', '.join(HEADS)}")
        if len(factor_sizes) != len(factor_names):
            raise ConfigError("the supervised term needs the number of classes of every factor (the dataset's sizes)")
        self.subspaces = spec.tied
        if not self.subspaces:
            raise ConfigError("the supervised term needs subspaces tied to factors; name a subspace after a factor")
        if only is not None:
            unknown = set(only) - {s.name for s in self.subspaces}
            if unknown or not only:
                raise ConfigError(
                    f"the supervised term's subspaces {sorted(unknown) or '[]'} are not tied subspaces; name some of "
                    f"{[s.name for s in self.subspaces]}"
                )
            self.subspaces = tuple(s for s in self.subspaces if s.name in set(only))
        self.kind = head
        columns = dict(zip((s.name for s in spec.tied), spec.factor_columns(factor_names), strict=True))
        self.columns = [columns[s.name] for s in self.subspaces]
        self.sizes = [int(factor_sizes[k]) for k in self.columns]
        self.names = [str(s.factor) for s in self.subspaces]
        self.heads = nn.ModuleList(_head(head, s.width, n) for s, n in zip(self.subspaces, self.sizes, strict=True))

    def _factor_loss(
        self, zs: torch.Tensor, y: torch.Tensor, head: nn.Module, size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and accuracy of one factor's classes ``y`` (N,) from its subspace codes ``zs`` (N, width)."""
        if self.kind != "regression":
            logits = head(zs)
            return F.cross_entropy(logits, y), (logits.argmax(1) == y).to(zs.dtype).mean()
        target = torch.zeros_like(zs)
        target[:, 0] = standardised_classes(y, size).to(zs.dtype)
        grid = standardised_classes(torch.arange(size, device=zs.device), size).to(zs.dtype)
        nearest = (zs[:, :1].detach() - grid).abs().argmin(1)
        return F.mse_loss(zs, target, reduction="none").sum(1).mean(), (nearest == y).to(zs.dtype).mean()

    def forward(self, z: torch.Tensor, classes: torch.Tensor) -> LossOutput:
        """Summed per-factor loss of codes ``z`` (N, D) against factor classes ``classes`` (N, K) long;
        diagnostics: each factor's loss (``ce/<factor>``, the squared error for ``regression``) and accuracy, and the
        mean accuracy."""
        if classes.ndim != 2 or classes.shape[0] != z.shape[0]:
            raise ConfigError(f"classes of shape {tuple(classes.shape)} do not match codes {tuple(z.shape)}")
        loss = z.new_zeros(())
        diag: dict[str, torch.Tensor] = {}
        accs = []
        for s, k, name, head, size in zip(
            self.subspaces, self.columns, self.names, self.heads, self.sizes, strict=True
        ):
            term, acc = self._factor_loss(z[:, s.slice], classes[:, k], head, size)
            loss = loss + term
            diag[f"ce/{name}"], diag[f"acc/{name}"] = term.detach(), acc.detach()
            accs.append(acc.detach())
        diag["raw"] = loss.detach()
        diag["acc"] = torch.stack(accs).mean()
        return LossOutput(loss, diag)
