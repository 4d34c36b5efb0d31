"""Trunk-level auxiliary classifiers: factor classes predicted from the encoder's hidden features, not from the code.

Deep supervision (Lee et al. 2015, "Deeply-Supervised Nets", AISTATS; the auxiliary classifiers of Szegedy et al.
2015, "Going deeper with convolutions", CVPR) attaches a classifier to an intermediate layer so that the layers below
it receive a direct training signal. Here the layer is the encoder's last hidden layer (the 256 trunk features that the
code layer reads), and the signal is one linear softmax head per named factor on both views' classes.

Why disco has it: a per-subspace contrastive term on a 1- or 2-unit subspace only passes gradient to the trunk through
that subspace's weights. When a hard factor (dSprites orientation) is not yet in the trunk features, the subspace
collapses, and a collapsed subspace sends the trunk almost no gradient to find the factor (README, "Fifth round,
labels": the subspace's own classifier stayed at cross-entropy ln 40 for 2,400 steps while a plain conv64 softmax
learned orientation by step 600). The auxiliary head lets the trunk learn the factor on its own; the code layer then
reads it. It needs the factor classes (``data.supervision: labels``), and the heads are discarded after training.

With a factor symmetry (:mod:`disco.data.symmetry`: a square's orientation classes repeat every quarter turn) the head
of that factor is scored on the set of classes that show the row's image, by the likelihood of the set,
``-log sum_{c in E(y)} p(c | h)`` (the partial-label likelihood of Jin & Ghahramani 2002, "Learning with Multiple
Labels", NeurIPS), so it is not asked to tell apart four identical squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from disco.data.symmetry import FactorSymmetry
from disco.errors import ConfigError
from disco.losses.base import LossOutput


class TrunkClassification(nn.Module):
    """One linear softmax head per factor in ``factors`` on trunk features ``h`` (N, ``hidden_dim``).

    Args:
        hidden_dim: width of the trunk features.
        factor_names: the dataset's factor names (columns of the class arrays).
        factor_sizes: classes of each factor, in ``factor_names`` order.
        factors: the factors to predict.
        symmetries: factor symmetries; a predicted factor with one is scored on its set of equivalent classes, and a
            prediction counts as correct when it falls in that set.
    """

    def __init__(
        self,
        hidden_dim: int,
        factor_names: Sequence[str],
        factor_sizes: Sequence[int],
        factors: Sequence[str],
        symmetries: Sequence[FactorSymmetry] = (),
    ) -> None:
        super().__init__()
        if len(factor_sizes) != len(factor_names):
            raise ConfigError("the auxiliary term needs the number of classes of every factor (the dataset's sizes)")
        unknown = [f for f in factors if f not in factor_names]
        if unknown or not factors:
            raise ConfigError(
                f"objective.auxiliary.factors {unknown or '[]'} are not factors of the dataset; name some of "
                f"{list(factor_names)}"
            )
        self.names = [str(f) for f in factors]
        self.columns = [list(factor_names).index(f) for f in factors]
        self.heads = nn.ModuleList(nn.Linear(hidden_dim, int(factor_sizes[k])) for k in self.columns)
        by_column = {sym.column: sym for sym in symmetries}
        self.symmetries = [by_column.get(k) for k in self.columns]

    def forward(self, h: torch.Tensor, classes: torch.Tensor) -> LossOutput:
        """Summed per-factor cross-entropy of ``h`` (N, hidden) against ``classes`` (N, K) long; diagnostics: each
        factor's cross-entropy and accuracy (``ce/<factor>``, ``acc/<factor>``)."""
        if classes.ndim != 2 or classes.shape[0] != h.shape[0]:
            raise ConfigError(f"classes of shape {tuple(classes.shape)} do not match features {tuple(h.shape)}")
        loss = h.new_zeros(())
        diag: dict[str, torch.Tensor] = {}
        for name, k, head, sym in zip(self.names, self.columns, self.heads, self.symmetries, strict=True):
            logits = head(h)
            if sym is None:
                ce = F.cross_entropy(logits, classes[:, k])
                hit = logits.argmax(1) == classes[:, k]
            else:
                accepted = sym.equivalent_classes(classes[:, k], classes[:, sym.by_column])
                ce = (logits.logsumexp(1) - logits.masked_fill(~accepted, float("-inf")).logsumexp(1)).mean()
                hit = accepted.gather(1, logits.argmax(1, keepdim=True)).squeeze(1)
            loss = loss + ce
            diag[f"ce/{name}"] = ce.detach()
            diag[f"acc/{name}"] = hit.to(h.dtype).mean().detach()
        diag["raw"] = loss.detach()
        return LossOutput(loss, diag)
