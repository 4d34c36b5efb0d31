"""Supervised ceiling: each factor's classes predicted from THAT factor's subspace alone.

This is a REFERENCE for what the data and the encoder allow when every factor value of every image is given (the
upper end of the supervision axis; cf. the supervised models of Locatello et al. 2020, "Disentangling Factors of
Variation Using Few Labels", ICLR), NOT a disentanglement method: it learns nothing the labels do not state.

One classification head per subspace tied to a factor reads only that subspace; the loss is ``Σ_k CE(head_k(z_{s_k}),
y_k)`` (cross-entropy averaged over the rows, summed over the tied factors). Untied (free) subspaces are unused; a
factor tied to no subspace is not predicted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.models.subspaces import SubspaceSpec

HEADS: tuple[str, ...] = ("linear",)


class FactorClassification(nn.Module):
    """Per tied subspace ``s`` (factor ``k``) a head ``width(s) → sizes[k]`` and its cross-entropy.

    Args:
        spec: the code's subspaces; the tied ones get a head.
        factor_names: the dataset's factor names (columns of the class arrays).
        factor_sizes: the number of classes of each factor, in ``factor_names`` order.
        head: ``"linear"`` (one affine map per factor).
    """

    def __init__(
        self, spec: SubspaceSpec, factor_names: Sequence[str], factor_sizes: Sequence[int], head: str = "linear"
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"unknown supervised head {head!r}; valid names: {', '.join(HEADS)}")
        if len(factor_sizes) != len(factor_names):
            raise ConfigError("the supervised term needs the number of classes of every factor (the dataset's sizes)")
        self.subspaces = spec.tied
        if not self.subspaces:
            raise ConfigError("the supervised term needs subspaces tied to factors; name a subspace after a factor")
        self.columns = spec.factor_columns(factor_names)
        self.names = [str(s.factor) for s in self.subspaces]
        self.heads = nn.ModuleList(
            nn.Linear(s.width, int(factor_sizes[k])) for s, k in zip(self.subspaces, self.columns, strict=True)
        )

    def forward(self, z: torch.Tensor, classes: torch.Tensor) -> LossOutput:
        """Summed per-factor cross-entropy of codes ``z`` (N, D) against factor classes ``classes`` (N, K) long;
        diagnostics: each factor's cross-entropy and accuracy, and the mean accuracy."""
        if classes.ndim != 2 or classes.shape[0] != z.shape[0]:
            raise ConfigError(f"classes of shape {tuple(classes.shape)} do not match codes {tuple(z.shape)}")
        loss = z.new_zeros(())
        diag: dict[str, torch.Tensor] = {}
        accs = []
        for s, k, name, head in zip(self.subspaces, self.columns, self.names, self.heads, strict=True):
            logits = head(z[:, s.slice])
            ce = F.cross_entropy(logits, classes[:, k])
            acc = (logits.argmax(1) == classes[:, k]).to(z.dtype).mean().detach()
            loss = loss + ce
            diag[f"ce/{name}"], diag[f"acc/{name}"] = ce.detach(), acc
            accs.append(acc)
        diag["raw"] = loss.detach()
        diag["acc"] = torch.stack(accs).mean()
        return LossOutput(loss, diag)
