"""Mutual-information penalties between named subspaces of a code.

``SubspaceIndependence(spec, estimator=...)`` penalises statistical dependence between subspaces with one of:

- ``"dcor"``: distance correlation (Székely et al. 2007), mean over all pairs of subspaces; scale-invariant, in [0, 1].
- ``"hsic"``: unbiased HSIC (Song et al. 2012) with median-heuristic RBF kernels, mean over pairs.
- ``"crosscov"``: squared Frobenius norm of the cross-covariance (XCov, Cheung et al. 2015), of standardised features
  by default (``standardised=False`` can be gamed by shrinking the features).
- ``"club"``: sampled CLUB upper bound of I(z_a; z_b) (Cheng et al. 2020), one variational net per pair.
- ``"tc"``: total correlation across all subspaces by a density-ratio discriminator with per-subspace permutation
  (Kim & Mnih 2018, FactorVAE); one value, not pairwise.

``per_dimension=True`` treats every single dimension of the chosen subspaces as its own subspace (named
``<subspace>[i]`` for wider ones): with ``"tc"`` it is FactorVAE's TC over dimensions (each column permuted on its own).

``"club"`` and ``"tc"`` own networks: train them with a separate optimiser on
:meth:`SubspaceIndependence.auxiliary_parameters` using :meth:`SubspaceIndependence.auxiliary_loss` on detached codes
(or call :meth:`SubspaceIndependence.update_auxiliary`), and keep those parameters out of the encoder's optimiser.

Recommended weights (the penalty is O(0.01–1) while a summed Bernoulli reconstruction is hundreds of nats and InfoNCE is
about log B): dcor 1–10, hsic 10–100 (its values are small, ~1e-3–1e-1), crosscov 0.1–1, club 0.1–1, tc 10–100
(Kim & Mnih's γ). ``diagnostics["raw"]`` holds the unweighted mean, ``"raw/<a>|<b>"`` each pair.

Under DDP (``gather_distributed=True``, the default) every estimator is a statistic of the GLOBAL batch: the codes of all
ranks are gathered with gradients (:func:`~disco.losses.distributed.gather_views`, in the row order of one process
holding the whole batch) and every rank evaluates the penalty of that batch, so all ranks hold the same value. The
gather's backward sums each row's gradient over the ranks and DDP averages over them, so N ranks × B codes step exactly
like one process with N·B codes (dCor or HSIC of two half batches is not the dCor or HSIC of the whole). The auxiliary
losses (CLUB's likelihood, the TC discriminator's cross-entropy, whose permuted codes mix subspaces across the whole
batch) are gathered the same way, without gradient. With one process nothing is gathered.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.club import CLUBEstimator
from disco.losses.dependence import (
    block_sq_dists,
    cross_covariance,
    distance_correlation_matrix,
    hsic_unbiased_matrix,
    rbf_kernels_median,
)
from disco.losses.distributed import gather_views, is_distributed
from disco.losses.tc_discriminator import TCDiscriminator
from disco.models.subspaces import Subspace, SubspaceSpec

ESTIMATORS: tuple[str, ...] = ("dcor", "hsic", "crosscov", "club", "tc")


def single_dimensions(s: Subspace) -> list[Subspace]:
    """Subspace ``s`` as width-1 subspaces at the same columns (``s`` itself when it has width 1)."""
    if s.width == 1:
        return [s]
    return [Subspace(f"{s.name}[{i}]", 1, s.start + i, s.factor) for i in range(s.width)]


class SubspaceIndependence(nn.Module):
    """Dependence penalty between subspaces of a code ``z`` (B, spec.dim).

    Args:
        spec: the code's subspaces.
        estimator: one of :data:`ESTIMATORS`.
        subspaces: names of the subspaces to decorrelate (default: all).
        weight: multiplies the loss (diagnostics stay unweighted).
        squared: dcor only — penalise dCor² instead of dCor.
        standardised: crosscov only — standardise features first (recommended).
        hidden: club only — hidden width of each variational net.
        tc_hidden: tc only — discriminator hidden widths.
        max_samples: score at most this many rows (evenly spaced, so both views of a concatenated pair batch are
            used); dcor and hsic cost O(B²), so 256 rows keep them at a few ms on CPU. ``None`` uses all rows. Under
            DDP the rows are taken from the global batch.
        gather_distributed: under DDP evaluate the penalty on the codes of all ranks (gathered with gradients).
        per_dimension: split the chosen subspaces into single dimensions (FactorVAE's TC with ``"tc"``).
    """

    membership: torch.Tensor

    def __init__(
        self,
        spec: SubspaceSpec,
        estimator: str = "dcor",
        subspaces: Sequence[str] | None = None,
        weight: float = 1.0,
        *,
        squared: bool = False,
        standardised: bool = True,
        hidden: int = 64,
        tc_hidden: Sequence[int] = (256, 256),
        max_samples: int | None = None,
        gather_distributed: bool = True,
        per_dimension: bool = False,
    ) -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ConfigError(f"unknown independence estimator {estimator!r}; valid names: {', '.join(ESTIMATORS)}")
        chosen = [spec[n] for n in subspaces] if subspaces is not None else list(spec)
        if per_dimension:
            chosen = [d for s in chosen for d in single_dimensions(s)]
        if len(chosen) < 2:
            raise ConfigError(
                f"independence penalty needs at least two subspaces, got {[s.name for s in chosen]}; add subspaces"
            )
        self.spec = spec
        self.estimator = estimator
        self.weight = float(weight)
        self.squared = squared
        self.standardised = standardised
        if max_samples is not None and max_samples < 4:
            raise ConfigError(f"independence max_samples is {max_samples}; use at least 4 (or None for all rows)")
        self.max_samples = max_samples
        self.gather_distributed = gather_distributed
        self.per_dimension = per_dimension
        self.chosen: tuple[Subspace, ...] = tuple(chosen)
        self.pairs: tuple[tuple[Subspace, Subspace], ...] = tuple(combinations(self.chosen, 2))
        self.club = nn.ModuleDict()
        self.tc: TCDiscriminator | None = None
        membership = torch.zeros(sum(s.width for s in chosen), len(chosen))
        start = 0
        for i, s in enumerate(chosen):
            membership[start : start + s.width, i] = 1.0
            start += s.width
        self.register_buffer("membership", membership, persistent=False)
        if estimator == "club":
            for n, (a, b) in enumerate(self.pairs):
                self.club[str(n)] = CLUBEstimator(a.width, b.width, hidden)
        if estimator == "tc":
            self.tc = TCDiscriminator(self.sub_spec, tc_hidden)

    @property
    def sub_spec(self) -> SubspaceSpec:
        """Spec of the selected subspaces packed side by side (the input layout of the TC discriminator)."""
        subs, start = [], 0
        for s in self.chosen:
            subs.append(Subspace(s.name, s.width, start, s.factor))
            start += s.width
        return SubspaceSpec(subs)

    def _blocks(self, z: torch.Tensor) -> list[torch.Tensor]:
        if z.dim() != 2 or z.shape[1] != self.spec.dim:
            raise ConfigError(
                f"code has shape {tuple(z.shape)} but the subspace spec expects (B, {self.spec.dim}); fix the spec"
            )
        return [z[:, s.slice] for s in self.chosen]

    def _global(self, z: torch.Tensor, views: int) -> torch.Tensor:
        """``z`` of all ranks (see :func:`~disco.losses.distributed.gather_views`); ``z`` itself when alone."""
        if not (self.gather_distributed and is_distributed()):
            return z
        self._blocks(z)  # a code of the wrong shape fails on every rank before any communication
        return gather_views(z, views).rows

    def pair_values(self, z: torch.Tensor, views: int = 1) -> dict[str, torch.Tensor]:
        """The estimator's value per pair ``"a|b"`` (or ``{"tc": value}`` for the TC discriminator).

        ``z`` holds ``views`` equal blocks of rows (2 for the stacked views of a pair batch); under DDP each block is
        gathered from all ranks and the value is that of the global batch. Computed in float32 at least, with autocast
        disabled (distance and kernel matrices lose too much in 16 bits).
        """
        z = self._global(z, views)
        if z.dtype in (torch.float16, torch.bfloat16):
            z = z.float()
        if self.max_samples is not None and z.shape[0] > self.max_samples:
            rows = torch.linspace(0, z.shape[0] - 1, self.max_samples, device=z.device).round().long()
            z = z[rows]
        with torch.autocast(device_type=z.device.type, enabled=False):
            return self._pair_values(z)

    def _pair_values(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        blocks = self._blocks(z)
        idx = {s.name: i for i, s in enumerate(self.chosen)}
        if self.estimator == "tc":
            assert self.tc is not None
            return {"tc": self.tc(torch.cat(blocks, dim=1))}
        keys = [(f"{a.name}|{b.name}", idx[a.name], idx[b.name]) for a, b in self.pairs]
        if self.estimator in ("dcor", "hsic"):
            packed = torch.cat(blocks, dim=1)
            sq = block_sq_dists(packed, self.membership.to(packed.device))
            if self.estimator == "dcor":
                mat = distance_correlation_matrix(sq, self.squared)
            else:
                mat = hsic_unbiased_matrix(rbf_kernels_median(sq))
            rows = torch.tensor([i for _, i, _ in keys], device=z.device)
            cols = torch.tensor([j for _, _, j in keys], device=z.device)
            values = mat[rows, cols]
            return {k: values[n] for n, (k, _, _) in enumerate(keys)}
        if self.estimator == "crosscov":
            return {k: cross_covariance(blocks[i], blocks[j], self.standardised) for k, i, j in keys}
        return {k: self.club[str(n)](blocks[i], blocks[j]) for n, (k, i, j) in enumerate(keys)}

    def forward(self, z: torch.Tensor, views: int = 1) -> LossOutput:
        """Mean penalty over pairs of subspaces (the TC value for ``"tc"``), times ``weight``; ``z`` holds ``views``
        equal blocks of rows, which matters only for the row order of the global batch under DDP."""
        values = self.pair_values(z, views)
        raw = torch.stack(list(values.values())).mean()
        diagnostics = {"raw": raw.detach()}
        if self.estimator != "tc":
            diagnostics.update({f"raw/{k}": v.detach() for k, v in values.items()})
        return LossOutput(self.weight * raw, diagnostics)

    @property
    def has_auxiliary(self) -> bool:
        """Whether the estimator owns networks that need their own optimiser (``"club"``, ``"tc"``)."""
        return self.estimator in ("club", "tc")

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters of the estimator's own networks (empty for the closed-form estimators)."""
        return list(self.club.parameters()) + (list(self.tc.parameters()) if self.tc is not None else [])

    def auxiliary_loss(self, z: torch.Tensor, views: int = 1) -> torch.Tensor:
        """Training loss of the estimator's networks on DETACHED codes: summed CLUB negative log-likelihoods, or the
        TC discriminator's cross-entropy; zero for the closed-form estimators. Under DDP it is the loss of the global
        batch (gathered without gradient), the same on every rank."""
        blocks = self._blocks(z)
        if not self.has_auxiliary:
            return z.new_zeros(())
        if self.gather_distributed and is_distributed():
            blocks = self._blocks(gather_views(z.detach(), views, grad=False).rows)
        blocks = [b.detach() for b in blocks]
        if self.tc is not None:
            return self.tc.auxiliary_loss(torch.cat(blocks, dim=1))
        idx = {s.name: i for i, s in enumerate(self.chosen)}
        total = z.new_zeros(())
        for n, (a, b) in enumerate(self.pairs):
            net = self.club[str(n)]
            assert isinstance(net, CLUBEstimator)
            total = total + net.auxiliary_loss(blocks[idx[a.name]], blocks[idx[b.name]])
        return total

    def update_auxiliary(self, z: torch.Tensor, optimizer: torch.optim.Optimizer, steps: int = 1) -> torch.Tensor:
        """Run ``steps`` optimiser steps of :meth:`auxiliary_loss` on ``z.detach()``; returns the last loss (detached)."""
        loss = z.new_zeros(())
        if not self.has_auxiliary:
            return loss
        z = z.detach()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = self.auxiliary_loss(z)
            loss.backward()
            optimizer.step()
        return loss.detach()
