"""Per-subspace invariance on factor-aware pairs: the squared code distance of two views in every subspace whose
factor they share.

This is VICReg's invariance term (Bardes et al. 2022, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning") restricted, per subspace, to the pairs that share the subspace's factor. With the variance
floor (:mod:`disco.losses.variance`) it replaces InfoNCE's uniformity: InfoNCE also rewards a subspace for telling its
positive apart from candidates that share the factor, which on pairs that share every factor but one (``change_one``)
it can only do by encoding the other, shared factors; the floor asks only that each unit varies. Pairs that change
only other factors then make each subspace a function of its own factor (the identifiability argument of Shu et al.
2020 and Locatello et al. 2020 for change pairs).

The loss of one subspace is the mean over its valid pairs (those sharing its factor) of ``||z_a,s - z_b,s||^2 /
width_s``; the term averages the subspaces that have a valid pair. Under DDP each rank sums its own pairs and divides
by the world's count of valid pairs times the world size (the convention of :mod:`disco.losses.distributed`), so the
rank losses average to the mean of the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.distributed import all_reduce_sum, is_distributed
from disco.losses.localisation import change_energies, check_pair_codes
from disco.models.subspaces import SubspaceSpec


class SubspaceInvariance(nn.Module):
    """Mean squared distance between the views of each pair in the subspaces of the factors the pair shares.

    Args:
        spec: the subspace split of the code.
        factor_names: the dataset's factor names (columns of ``shared``).
        gather_distributed: under DDP normalise by the valid pairs of all ranks (the loss of the global batch).
    """

    def __init__(self, spec: SubspaceSpec, factor_names: Sequence[str], gather_distributed: bool = True) -> None:
        super().__init__()
        if not spec.tied:
            raise ConfigError("the subspace spec has no subspace tied to a factor; the invariance term needs one")
        self.spec = spec
        self.factor_names = list(factor_names)
        self.columns = spec.factor_columns(self.factor_names)
        self.gather_distributed = gather_distributed

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, shared: torch.Tensor) -> LossOutput:
        check_pair_codes(z_a, z_b, shared, self.spec.dim, len(self.factor_names))
        keep = shared.bool()[:, self.columns].to(z_a.dtype)  # (B, S): pair shares the subspace's factor
        sums, counts = (change_energies(z_a, z_b, self.spec.tied) * keep).sum(dim=0), keep.sum(dim=0)
        world, global_sums = 1, sums.detach()
        if self.gather_distributed and is_distributed():
            world = torch.distributed.get_world_size()
            counts, global_sums = all_reduce_sum(counts), all_reduce_sum(global_sums)
        n_active = (counts > 0).sum().clamp_min(1).to(z_a.dtype)
        loss = (sums * world / counts.clamp_min(1)).sum() / n_active
        per_sub = global_sums / counts.clamp_min(1)
        diagnostics = {f"raw/{s.name}": per_sub[i] for i, s in enumerate(self.spec.tied)}
        diagnostics["raw"] = per_sub.sum() / n_active
        return LossOutput(loss, diagnostics)
