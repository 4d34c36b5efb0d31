"""Weakly-supervised VAEs on pairs of images: Ada-GVAE and Ada-ML-VAE (Locatello et al. 2020, "Weakly-Supervised
Disentanglement Without Compromises", ICML), and their variants that are told which factors a pair shares.

For a pair with encoder posteriors ``q1 = N(μ1, σ1²)`` and ``q2 = N(μ2, σ2²)`` (diagonal), some dimensions are declared
SHARED and, in those dimensions only, both posteriors are replaced by one aggregate ``a(q1, q2)``:

- ``gvae`` (Group-VAE, Hosoya 2019): the average, mean ``(μ1 + μ2)/2`` and variance ``(σ1² + σ2²)/2``;
- ``mlvae`` (ML-VAE, Bouchacourt et al. 2018): the product of experts ``q1·q2`` normalised, variance
  ``1/(1/σ1² + 1/σ2²)`` and mean ``σ²·(μ1/σ1² + μ2/σ2²)``.

Which dimensions are shared:

- ``adaptive`` (Ada-*): per pair, the per-dimension ``KL(q1 ‖ q2)``; a dimension is shared when its KL is below the
  midpoint ``(max_d KL + min_d KL)/2`` of that pair (the paper's estimate of the unknown number of shared factors: two
  bins of equal width; a KL exactly at the midpoint falls in the upper bin). When every dimension has the same KL, none
  is shared. The learner reads only that the two images form a pair.
- ``labels``: a dimension is shared when it belongs to a subspace tied to a factor the pair shares (``shared`` of the
  pair batch); untied (free) dimensions are never shared. It reads which factors are shared, never their values.

Codes are then sampled from the (partly replaced) posteriors of both views, both views are reconstructed, and the loss
is the paper's objective averaged over pairs: ``recon_1 + recon_2 + β·(KL(q̃1 ‖ p) + KL(q̃2 ‖ p))``, ``p = N(0, I)``.

Deviations from the reference implementation (disentanglement_lib, ``methods/weak/weak_vae.py``), all deliberate:

- its ML-VAE aggregate has variance ``2σ1²σ2²/(σ1² + σ2²)``, twice the product of experts' (the normalised GEOMETRIC
  mean ``√(q1·q2)``), with the same mean; here it is the plain product of experts of the paper and of ML-VAE;
- it averages the two views' reconstruction and KL; here they are summed as in the paper's objective (same optimum,
  the loss is twice as large);
- its "labels" variant ties latent dimension ``i`` to factor ``i`` and averages every other dimension, free ones
  included; here the tie comes from the subspace spec and free dimensions stay per view;
- its KL is ``2·KL(q1 ‖ q2)`` (the midpoint rule does not depend on the scale).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.vae import bernoulli_recon, gaussian_recon, kl_per_dim

AGGREGATIONS: tuple[str, ...] = ("gvae", "mlvae")
SHARED_RULES: tuple[str, ...] = ("adaptive", "labels")


def gaussian_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Elementwise ``KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2))`` of diagonal Gaussians (the inputs' shape)."""
    return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mean1 - mean2).pow(2)) * torch.exp(-logvar2) - 1.0)


def adaptive_shared(kl: torch.Tensor) -> torch.Tensor:
    """Shared dimensions ``(B, D)`` bool of pairs with per-dimension KLs ``kl`` ``(B, D)``: those whose KL lies below
    the midpoint of the pair's smallest and largest KL (Locatello et al. 2020)."""
    threshold = 0.5 * (kl.amax(dim=1, keepdim=True) + kl.amin(dim=1, keepdim=True))
    return kl < threshold


def labels_shared(shared: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
    """Shared dimensions ``(B, D)`` bool from the factors each pair shares, ``shared`` ``(B, K)`` bool, and which
    dimensions each factor's subspace covers, ``tie`` ``(K, D)`` bool (all false for untied dimensions)."""
    return (shared.unsqueeze(2) & tie.unsqueeze(0)).any(dim=1)


def aggregate(
    mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor, aggregation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, logvar)`` of the aggregate posterior: ``gvae`` averages means and variances, ``mlvae`` is the normalised
    product of the two Gaussians (precision-weighted). Computed in log space for stability."""
    if aggregation == "gvae":
        return 0.5 * (mean1 + mean2), torch.logaddexp(logvar1, logvar2) - math.log(2.0)
    if aggregation == "mlvae":
        # σ² = σ1²σ2²/(σ1² + σ2²); μ = (μ1σ2² + μ2σ1²)/(σ1² + σ2²) = μ1·sigmoid(lv2 − lv1) + μ2·sigmoid(lv1 − lv2)
        logvar = logvar1 + logvar2 - torch.logaddexp(logvar1, logvar2)
        mean = mean1 * torch.sigmoid(logvar2 - logvar1) + mean2 * torch.sigmoid(logvar1 - logvar2)
        return mean, logvar
    raise ConfigError(f"unknown aggregation {aggregation!r}; valid names: {', '.join(AGGREGATIONS)}")


def weak_posteriors(
    mean1: torch.Tensor,
    logvar1: torch.Tensor,
    mean2: torch.Tensor,
    logvar2: torch.Tensor,
    shared_dims: torch.Tensor,
    aggregation: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Both views' posteriors with the ``shared_dims`` ``(B, D)`` replaced by the aggregate: ``(mean1, logvar1, mean2,
    logvar2)``."""
    mean, logvar = aggregate(mean1, logvar1, mean2, logvar2, aggregation)
    return (
        torch.where(shared_dims, mean, mean1),
        torch.where(shared_dims, logvar, logvar1),
        torch.where(shared_dims, mean, mean2),
        torch.where(shared_dims, logvar, logvar2),
    )


class WeakVAELoss(nn.Module):
    """The negative ELBO of a pair with aggregated shared dimensions (see the module docstring).

    Args:
        likelihood: ``"bernoulli"`` or ``"gaussian"`` (as :class:`~disco.losses.vae.VAELoss`).
        beta: weight of the KL to the prior (Locatello et al. use β = 1).
        aggregation: ``"gvae"`` or ``"mlvae"``.
        shared: ``"adaptive"`` (KL threshold) or ``"labels"`` (the factors the pair shares, through ``tie``).
        tie: ``(K, D)`` bool, which code dimensions belong to the subspace tied to factor ``k`` (``labels`` only).
        gaussian_variance: fixed decoder variance of the Gaussian likelihood.
    """

    tie: torch.Tensor | None

    def __init__(
        self,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        aggregation: str = "gvae",
        shared: str = "adaptive",
        tie: torch.Tensor | None = None,
        gaussian_variance: float = 0.5,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"unknown likelihood {likelihood!r}; valid names: bernoulli, gaussian")
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation {aggregation!r}; valid names: {', '.join(AGGREGATIONS)}")
        if shared not in SHARED_RULES:
            raise ConfigError(f"unknown shared rule {shared!r}; valid names: {', '.join(SHARED_RULES)}")
        if shared == "labels" and (tie is None or not bool(tie.any())):
            raise ConfigError("weak_vae with shared: labels needs subspaces tied to factors; name one after a factor")
        self.likelihood, self.beta, self.aggregation, self.shared = likelihood, float(beta), aggregation, shared
        self.gaussian_variance = gaussian_variance
        self.register_buffer("tie", None if tie is None else tie.bool(), persistent=False)

    def shared_dims(self, mean: torch.Tensor, logvar: torch.Tensor, shared: torch.Tensor | None = None) -> torch.Tensor:
        """Shared dimensions ``(B, D)`` of the pairs whose views are rows ``[:B]``, ``[B:]`` of ``mean``/``logvar``."""
        b = mean.shape[0] // 2
        if self.shared == "adaptive":
            kl = gaussian_kl(mean[:b], logvar[:b], mean[b:], logvar[b:])
            return adaptive_shared(kl.detach())
        assert self.tie is not None
        if shared is None or shared.shape != (b, self.tie.shape[0]):
            got = None if shared is None else tuple(shared.shape)
            raise ConfigError(
                f"weak_vae with shared: labels needs shared of shape ({b}, {self.tie.shape[0]}), got {got}"
            )
        return labels_shared(shared.bool(), self.tie)

    def forward(
        self,
        x: torch.Tensor,
        mean: torch.Tensor,
        logvar: torch.Tensor,
        decode: Callable[[torch.Tensor], torch.Tensor],
        shared: torch.Tensor | None = None,
        eps: torch.Tensor | None = None,
    ) -> LossOutput:
        """Loss of the pairs whose views are rows ``[:B]`` and ``[B:]`` of images ``x`` (2B, C, H, W) in [0, 1] and
        posteriors ``mean``/``logvar`` (2B, D); ``decode`` maps codes to logits, ``shared`` (B, K) is read by the
        ``labels`` rule, ``eps`` (2B, D) is the reparameterisation noise (drawn here if None)."""
        b = mean.shape[0] // 2
        dims = self.shared_dims(mean, logvar, shared)
        m1, lv1, m2, lv2 = weak_posteriors(mean[:b], logvar[:b], mean[b:], logvar[b:], dims, self.aggregation)
        mean_t, logvar_t = torch.cat([m1, m2]), torch.cat([lv1, lv2])
        noise = torch.randn_like(mean_t) if eps is None else eps
        logits = decode(mean_t + torch.exp(0.5 * logvar_t) * noise)
        if self.likelihood == "bernoulli":
            recon = 2.0 * bernoulli_recon(x, logits)  # mean over 2B rows → recon_1 + recon_2 per pair
        else:
            recon = 2.0 * gaussian_recon(x, logits, self.gaussian_variance)
        kl = 2.0 * kl_per_dim(mean_t, logvar_t).sum()
        loss = recon + self.beta * kl
        diag = {
            "recon": recon.detach(),
            "kl": kl.detach(),
            "raw": (recon + kl).detach(),
            "shared_dims": dims.to(mean.dtype).sum(1).mean().detach(),
        }
        return LossOutput(loss, diag)
