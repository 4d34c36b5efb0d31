"""Change localisation: when a pair differs in exactly one factor, the code should change only in that factor's subspace.

Weakly supervised pairs that differ in one factor identify disentangled representations (Shu et al. 2020, "Weakly
supervised disentanglement with guarantees"; Locatello et al. 2020, "Weakly-supervised disentanglement without
compromises"). This term reads the pair as a classification problem: the per-subspace change energy
``||z_a,s - z_b,s||^2 / width_s`` divided by a temperature gives logits over subspaces, and the cross-entropy with the
subspace of the changed factor pushes the change into that subspace and out of all others.

With ``energy="log"`` the logits are ``log(energy + eps) / temperature``: at temperature 1 the softmax is the changed
subspace's *share* of the pair's change energy, so the loss no longer depends on the code's scale. The squared energy
has a vanishing gradient at a collapsed subspace (``d||Δz||^2 = 2Δz``), so it cannot open the subspace of a factor the
encoder has not found yet; the log-share's gradient grows as the changed subspace's energy shrinks (``2Δz / (||Δz||^2 +
eps)``), which asks the encoder for the missing feature where the squared form goes silent.

The loss is a mean over the valid pairs (those that changed exactly one tied factor), so under DDP it needs no codes
from other ranks, only the number of valid pairs of the whole world: each rank sums its own pairs' cross-entropies and
divides by the global count over the world size (the convention of :mod:`disco.losses.distributed`). The rank losses
then average to the mean over the global batch, whose valid pairs are unevenly spread over the ranks; one all-reduce
of three numbers per step, none with one process. The diagnostics are those of the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.distributed import all_reduce_sum, is_distributed
from disco.models.subspaces import Subspace, SubspaceSpec


def change_energies(z_a: torch.Tensor, z_b: torch.Tensor, subspaces: Sequence[Subspace]) -> torch.Tensor:
    """``(B, S)`` mean squared change ``||z_a,s - z_b,s||^2 / width_s`` of each subspace between the two views."""
    diff = (z_a - z_b).pow(2)
    return torch.stack([diff[:, s.slice].sum(dim=1) / s.width for s in subspaces], dim=1)


def check_pair_codes(z_a: torch.Tensor, z_b: torch.Tensor, shared: torch.Tensor, dim: int, n_factors: int) -> None:
    """Refuse views that are not both ``(B, dim)`` and a ``shared`` mask that is not ``(B, n_factors)``."""
    if z_a.shape != z_b.shape or z_a.ndim != 2 or z_a.shape[1] != dim:
        raise ConfigError(
            f"codes of shape {tuple(z_a.shape)} and {tuple(z_b.shape)} do not match the subspace spec of width "
            f"{dim}; give both views as (batch, {dim})"
        )
    if shared.shape != (z_a.shape[0], n_factors):
        raise ConfigError(f"shared has shape {tuple(shared.shape)}, expected ({z_a.shape[0]}, {n_factors})")


def localisation_sum(
    energies: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum over ``valid`` rows of ``-log softmax(energies / temperature)[target]`` and the per-row argmax hits
    ``(B,)`` bool; the sum is 0 (with zero gradient) when no row is valid."""
    log_p = F.log_softmax(energies / temperature, dim=1)
    picked = log_p.gather(1, target.clamp_min(0)[:, None]).squeeze(1)
    picked = torch.where(valid, picked, torch.zeros_like(picked))
    correct = (energies.argmax(dim=1) == target) & valid
    return -picked.sum(), correct


def localisation_loss(
    energies: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over ``valid`` rows of ``-log softmax(energies / temperature)[target]`` and the per-row argmax hits.

    Returns ``(loss, correct (B,) bool)``; the loss is 0 (with zero gradient) when no row is valid.
    """
    total, correct = localisation_sum(energies, target, valid, temperature)
    return total / valid.sum().clamp_min(1).to(total.dtype), correct


class ChangeLocalisation(nn.Module):
    """Cross-entropy of "which subspace changed" on pairs that differ in exactly one tied factor.

    Args:
        spec: the subspace split of the code.
        factor_names: the dataset's factor names (columns of ``shared``).
        temperature: scale of the change energies in the softmax.
        include_free: let free (untied) subspaces compete too, so a change hidden in free dimensions is penalised.
        gather_distributed: under DDP normalise by the valid pairs of all ranks (the loss of the global batch).
        energy: logits from the ``squared`` change energies or from their ``log`` (the changed subspace's share).
        eps: added to the energies before the log (``energy="log"`` only).
    """

    _tied_pos: torch.Tensor

    def __init__(
        self,
        spec: SubspaceSpec,
        factor_names: Sequence[str],
        temperature: float = 1.0,
        include_free: bool = True,
        gather_distributed: bool = True,
        energy: Literal["squared", "log"] = "squared",
        eps: float = 1e-3,
    ) -> None:
        super().__init__()
        if energy not in ("squared", "log"):
            raise ConfigError(f"localisation energy {energy!r} is not one of squared, log")
        if eps <= 0:
            raise ConfigError(f"localisation eps {eps} must be > 0; 1e-3 is a good start")
        if temperature <= 0:
            raise ConfigError(f"localisation temperature {temperature} must be > 0; 1.0 is a good start")
        if not spec.tied:
            raise ConfigError("the subspace spec has no subspace tied to a factor; change localisation needs one")
        self.spec = spec
        self.factor_names = list(factor_names)
        self.columns = spec.factor_columns(self.factor_names)
        self.temperature = float(temperature)
        self.gather_distributed = gather_distributed
        self.energy = energy
        self.eps = float(eps)
        self.classes = [s for s in spec if include_free or s.factor is not None]
        tied_pos = [self.classes.index(s) for s in spec.tied]
        self.register_buffer("_tied_pos", torch.tensor(tied_pos, dtype=torch.long), persistent=False)

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor, shared: torch.Tensor) -> LossOutput:
        check_pair_codes(z_a, z_b, shared, self.spec.dim, len(self.factor_names))
        changed = ~shared.bool()[:, self.columns]
        valid = changed.sum(dim=1) == 1
        target = torch.where(
            valid, self._tied_pos[changed.to(torch.long).argmax(dim=1)], torch.full_like(valid, -1, dtype=torch.long)
        )
        energies = change_energies(z_a, z_b, self.classes)
        if self.energy == "log":
            energies = torch.log(energies + self.eps)
        if self.gather_distributed and is_distributed():
            total, correct = localisation_sum(energies, target, valid, self.temperature)
            counts = torch.stack([total.detach(), valid.sum().to(total.dtype), correct.sum().to(total.dtype)])
            global_total, n_global, hits = all_reduce_sum(counts).unbind()
            n = n_global.clamp_min(1)
            loss = total * torch.distributed.get_world_size() / n  # the rank losses average to the global mean
            diagnostics = {"raw": global_total / n, "acc": hits / n, "valid": n_global.round().long()}
            return LossOutput(loss, diagnostics)
        loss, correct = localisation_loss(energies, target, valid, self.temperature)
        n_valid = valid.sum()
        acc = correct.sum().to(loss.dtype) / n_valid.clamp_min(1).to(loss.dtype)
        return LossOutput(loss, {"raw": loss.detach(), "acc": acc.detach(), "valid": n_valid.detach()})
