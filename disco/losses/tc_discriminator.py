"""Total correlation between subspaces by density-ratio estimation (Kim & Mnih 2018, "Disentangling by Factorising",
FactorVAE), generalised from single dimensions to named subspaces.

Samples of the product of subspace marginals ``Π_s q(z_s)`` are made by permuting each SUBSPACE (its whole block of
columns) independently across the batch. A discriminator ``D`` learns to tell joint codes (label 1) from permuted ones
(label 0); at its optimum its logit equals ``log q(z) / Π_s q(z_s)``, so the batch mean of the logit on joint codes
estimates the total correlation TC = KL(q(z) ‖ Π_s q(z_s)).

The penalty uses a detached snapshot (copy) of the discriminator's parameters, and
:meth:`TCDiscriminator.auxiliary_loss` recomputes everything on DETACHED codes: the discriminator's backward pass and
optimiser step never touch the encoder's graph, so they may run before or after the encoder's backward pass without the
in-place modification errors of the naive FactorVAE implementation. Kim & Mnih use Adam(1e-4, betas=(0.5, 0.9))
for the discriminator and γ ∈ [10, 100].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from disco.models.subspaces import SubspaceSpec


def permute_subspaces(z: torch.Tensor, spec: SubspaceSpec, generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each subspace's block of columns independently across the batch (rows of a block stay together)."""
    parts = []
    for s in spec:
        perm = torch.randperm(z.shape[0], generator=generator, device="cpu").to(z.device)
        parts.append(z[perm, s.start : s.stop])
    return torch.cat(parts, dim=1)


class TCDiscriminator(nn.Module):
    """MLP discriminator of joint vs. subspace-permuted codes; its logit on joint codes estimates the TC.

    Args:
        spec: the code's subspaces (the blocks that are permuted independently).
        hidden: hidden layer widths (Kim & Mnih use six layers of 1000 units; two of 256 are plenty for ~10-d codes).
    """

    def __init__(self, spec: SubspaceSpec, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        prev = spec.dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.LeakyReLU(0.2)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)

    def logits(self, z: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """Discriminator logit ``log D/(1−D)`` per row, (B,)."""
        if detach_params:
            params = {k: v.detach().clone() for k, v in self.net.named_parameters()}
            return functional_call(self.net, params, (z,)).squeeze(-1)
        return self.net(z).squeeze(-1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """TC estimate ``mean_i logit(z_i)``; differentiable in ``z`` only."""
        return self.logits(z, detach_params=True).mean()

    def auxiliary_loss(
        self, z: torch.Tensor, z_other: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Binary cross-entropy of the discriminator: joint codes ``z`` vs. subspace-permuted codes (made from
        ``z_other`` if given — FactorVAE uses a second batch — else from ``z``). Inputs are detached here."""
        z = z.detach()
        z_perm = permute_subspaces((z if z_other is None else z_other).detach(), self.spec, generator)
        real, fake = self.logits(z), self.logits(z_perm)
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )
