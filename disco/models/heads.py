"""Per-subspace projection heads for the contrastive loss.

SimCLR (Chen et al. 2020, "A simple framework for contrastive learning of visual representations") showed that a small
MLP head between the representation and the contrastive loss improves the representation; here each named subspace
gets its own head so that the loss on one subspace cannot mix in the others.
"""

from __future__ import annotations

import torch
from torch import nn

from disco.errors import ConfigError
from disco.models.subspaces import Subspace, SubspaceSpec


class SubspaceProjection(nn.Module):
    """Apply a 2-layer MLP (``width → hidden → out_dim``, ReLU) to each subspace slice and concatenate the results.

    With ``out_dim=None`` the module is the identity and :attr:`out_spec` equals ``spec``. The projected code is
    described by :attr:`out_spec` (same names and tied factors, every width ``out_dim``), so losses that take a
    :class:`SubspaceSpec` work on it unchanged.

    Args:
        spec: the subspaces of the input code.
        out_dim: width of each projected subspace, or ``None`` to disable the heads.
        hidden: hidden width of each head.
    """

    def __init__(self, spec: SubspaceSpec, out_dim: int | None = None, hidden: int = 64) -> None:
        super().__init__()
        if out_dim is not None and out_dim < 1:
            raise ConfigError(f"projection out_dim is {out_dim}; use a positive width or None to disable the heads")
        self.spec = spec
        self.out_dim = out_dim
        self.heads = nn.ModuleDict()
        if out_dim is None:
            self.out_spec = spec
            return
        subs = []
        for i, s in enumerate(spec):
            self.heads[s.name] = nn.Sequential(nn.Linear(s.width, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))
            subs.append(Subspace(s.name, out_dim, i * out_dim, s.factor))
        self.out_spec = SubspaceSpec(subs)

    @property
    def enabled(self) -> bool:
        return self.out_dim is not None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Project ``z`` (B, spec.dim) to (B, out_spec.dim)."""
        if self.out_dim is None:
            return z
        parts = self.spec.split(z)
        return torch.cat([self.heads[name](part) for name, part in parts.items()], dim=-1)

    def forward_dict(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Projected subspaces by name."""
        return self.out_spec.split(self.forward(z))
