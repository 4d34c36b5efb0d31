"""The β-VAE branch: reconstruction likelihoods, analytic KL, β weighting, capacity annealing and β-TCVAE.

- β-VAE (Higgins et al. 2017, "β-VAE: Learning basic visual concepts with a constrained variational framework"):
  ``recon + β·KL``.
- Capacity annealing (Burgess et al. 2018, "Understanding disentangling in β-VAE"): ``recon + γ·|KL − C(step)|`` with
  ``C`` rising linearly from 0 to ``c_max`` over ``steps`` (field defaults: c_max 25 nats, γ 1000, 100k steps).
- β-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement in VAEs"): the KL's sample estimate splits into
  index-code MI + total correlation + dimension-wise KL, weighted ``alpha·mi + beta·tc + gamma·dwkl``, with log q(z)
  estimated by minibatch-stratified sampling (needs the dataset size).

Under DDP the β-TCVAE estimate of log q(z) is a statistic of the minibatch: with ``gather_distributed`` (the default)
the codes, means and log-variances of all ranks are gathered with gradients, in the row order of one process holding the
whole batch, so each rank's codes are scored against the GLOBAL minibatch of M = world·2B codes with the stratified
weights of that M. ``dataset_size`` stays the size N of the whole training set (not N / world): every rank draws its
pairs from the whole set (the data module draws the world's batch and keeps a slice), so the global batch is one
minibatch of N. Each rank averages its own codes' terms scaled to its share of the global mean (the convention of
:mod:`disco.losses.distributed`), so N ranks step like one process with the N× batch. Reconstruction and analytic KL are
per-image means and need nothing from the other ranks.

Loss scales: the summed Bernoulli reconstruction of a 64×64 image is hundreds of nats early in training (tens when
trained), the KL ~10–30 nats, while InfoNCE is about log B (≈4 for B=64). A weight of 1 on this term with contrastive
weights 1–10 is a reasonable start. ``diagnostics["raw"]`` is the negative ELBO ``recon + kl`` (unweighted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from disco.errors import ConfigError
from disco.losses.base import LossOutput
from disco.losses.distributed import gather_views, is_distributed

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``z = mean + exp(logvar / 2) · ε``, ε ~ N(0, I) (Kingma & Welling 2014)."""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    return mean + (0.5 * logvar).exp() * eps


def bernoulli_recon(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Bernoulli negative log-likelihood: sigmoid cross-entropy with logits summed over pixels, mean over the batch.

    ``x`` may be any values in [0, 1] (the cross-entropy of soft targets, as in disentanglement_lib)."""
    ce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return ce.flatten(1).sum(1).mean()


def gaussian_recon(x: torch.Tensor, logits: torch.Tensor, variance: float = 0.5) -> torch.Tensor:
    """Gaussian negative log-likelihood with FIXED variance, mean ``sigmoid(logits)``, constants dropped:
    ``Σ (x − sigmoid(logits))² / (2·variance)`` summed over pixels, mean over the batch. The default ``variance=0.5``
    makes it the plain summed squared error (disentanglement_lib's ``l2_loss``)."""
    se = (x - torch.sigmoid(logits)).pow(2)
    return se.flatten(1).sum(1).mean() / (2.0 * variance)


def kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic ``KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − log σ² − 1)`` per dimension, mean over the batch: (D,)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - logvar - 1.0).mean(0)


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise ``log N(z; mean, exp(logvar))`` (broadcasting)."""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def stratified_log_weights(batch_size: int, dataset_size: int, device: torch.device | None = None) -> torch.Tensor:
    """Log weights ``(M, M)`` of minibatch-stratified sampling (Chen et al. 2018, appendix C.2): for row i the own
    sample gets ``1/N``, sample ``(i+1) mod M`` gets ``(N−M+1)/(N(M−1))`` and the other M−2 get ``1/(M−1)``; rows sum
    to 1."""
    m, n = batch_size, dataset_size
    if m < 2:
        raise ConfigError(f"β-TCVAE needs a batch of at least 2 codes, got {m}; increase the batch size")
    if n < m:
        raise ConfigError(f"dataset_size {n} is smaller than the batch {m}; pass the training set's size")
    w = torch.full((m, m), 1.0 / (m - 1), dtype=torch.float64)
    idx = torch.arange(m)
    w[idx, idx] = 1.0 / n
    w[idx, (idx + 1) % m] = (n - m + 1) / (n * (m - 1))
    return w.log().to(device=device)


def tcvae_terms(
    z: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int,
    anchors: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """β-TCVAE decomposition (Chen et al. 2018) with minibatch-stratified sampling.

    Returns batch means of ``log q(z|x)``, ``log q(z)``, ``Σ_j log q(z_j)``, ``log p(z)`` and ``mi = log q(z|x) −
    log q(z)``, ``tc = log q(z) − Σ_j log q(z_j)``, ``dwkl = Σ_j log q(z_j) − log p(z)``; ``mi + tc + dwkl`` is exactly
    the sample estimate of the KL, ``log q(z|x) − log p(z)``. ``anchors`` (row indices) restricts the means to those
    codes while every row stays in the minibatch that estimates q(z) (one rank's codes in the global batch under DDP).
    """
    b = z.shape[0]
    logw = stratified_log_weights(b, dataset_size, z.device).to(z.dtype)
    za, ma, la = z, mean, logvar
    if anchors is not None:
        logw, za, ma, la = logw[anchors], z[anchors], mean[anchors], logvar[anchors]
    # mat[i, j, d] = log q(z_i,d | x_j)
    mat = gaussian_log_density(za.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(logw + mat.sum(2), dim=1)
    log_prod_qzj = torch.logsumexp(logw.unsqueeze(2) + mat, dim=1).sum(1)
    log_qz_x = gaussian_log_density(za, ma, la).sum(1)
    log_pz = gaussian_log_density(za, torch.zeros_like(za), torch.zeros_like(za)).sum(1)
    out = {
        "log_qz_x": log_qz_x.mean(),
        "log_qz": log_qz.mean(),
        "log_prod_qzj": log_prod_qzj.mean(),
        "log_pz": log_pz.mean(),
    }
    out["mi"] = out["log_qz_x"] - out["log_qz"]
    out["tc"] = out["log_qz"] - out["log_prod_qzj"]
    out["dwkl"] = out["log_prod_qzj"] - out["log_pz"]
    return out


@dataclass(frozen=True)
class CapacitySchedule:
    """Burgess et al. 2018: target KL ``C(step) = c_max · min(step / steps, 1)``, loss ``recon + gamma·|KL − C|``."""

    c_max: float = 25.0
    gamma: float = 1000.0
    steps: int = 100_000

    def value(self, step: int) -> float:
        if self.steps <= 0:
            return self.c_max
        return self.c_max * min(max(step, 0) / self.steps, 1.0)


@dataclass(frozen=True)
class TCVAEWeights:
    """β-TCVAE weights (Chen et al. 2018): ``alpha·mi + beta·tc + gamma·dwkl``; the paper uses alpha = gamma = 1."""

    alpha: float = 1.0
    beta: float = 6.0
    gamma: float = 1.0


class VAELoss(nn.Module):
    """Negative ELBO with β (Higgins et al. 2017), capacity annealing (Burgess et al. 2018) or β-TCVAE (Chen et al. 2018).

    Args:
        likelihood: ``"bernoulli"`` (sigmoid cross-entropy, the field's default) or ``"gaussian"`` (fixed variance
            ``gaussian_variance``, summed squared error at the default 0.5).
        beta: KL weight (ignored with ``capacity`` or β-TCVAE); the field sweeps β ∈ {1, 2, 4, 6, 8, 16}.
        capacity: a :class:`CapacitySchedule` to use ``recon + γ|KL − C(step)|`` instead of β.
        tcvae: :class:`TCVAEWeights` to use the β-TCVAE objective (requires ``dataset_size`` and ``z``).
        dataset_size: number of training images N (β-TCVAE's stratified estimator of log q(z)); the whole training
            set also under DDP (see the module docstring).
        tc_beta: shorthand for ``tcvae=TCVAEWeights(1, tc_beta, 1)``.
        gaussian_variance: fixed decoder variance of the Gaussian likelihood.
        gather_distributed: β-TCVAE under DDP: estimate log q(z) on the minibatch of all ranks (gathered with
            gradients).
    """

    def __init__(
        self,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        capacity: CapacitySchedule | None = None,
        tcvae: TCVAEWeights | None = None,
        dataset_size: int | None = None,
        tc_beta: float | None = None,
        gaussian_variance: float = 0.5,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"unknown likelihood {likelihood!r}; valid names: bernoulli, gaussian")
        if tcvae is None and tc_beta is not None:
            tcvae = TCVAEWeights(1.0, float(tc_beta), 1.0)
        if tcvae is not None and capacity is not None:
            raise ConfigError("choose either capacity annealing or β-TCVAE, not both; remove one from the config")
        if tcvae is not None and dataset_size is None:
            raise ConfigError("β-TCVAE needs dataset_size (the number of training images); set it in the config")
        self.likelihood = likelihood
        self.beta = float(beta)
        self.capacity = capacity
        self.tcvae = tcvae
        self.dataset_size = dataset_size
        self.gaussian_variance = gaussian_variance
        self.gather_distributed = gather_distributed

    def reconstruction(self, x: torch.Tensor, x_logits: torch.Tensor) -> torch.Tensor:
        if self.likelihood == "bernoulli":
            return bernoulli_recon(x, x_logits)
        return gaussian_recon(x, x_logits, self.gaussian_variance)

    def forward(
        self,
        x: torch.Tensor,
        x_logits: torch.Tensor,
        mean: torch.Tensor,
        logvar: torch.Tensor,
        z: torch.Tensor | None = None,
        step: int = 0,
        views: int = 1,
    ) -> LossOutput:
        """Loss for images ``x`` (B, C, H, W) in [0, 1], decoder logits of the same shape, posterior ``mean``/``logvar``
        (B, D), sampled codes ``z`` (needed for β-TCVAE) and the global training ``step`` (capacity schedule).
        ``views``: the rows are that many equal blocks (the two views of a pair batch); it fixes the row order of the
        global minibatch of β-TCVAE under DDP, as one process holding the whole batch would have it."""
        recon = self.reconstruction(x, x_logits)
        kl_dims = kl_per_dim(mean, logvar)
        kl = kl_dims.sum()
        diag: dict[str, torch.Tensor] = {"recon": recon.detach(), "kl": kl.detach(), "elbo": -(recon + kl).detach()}
        diag["raw"] = (recon + kl).detach()
        diag.update({f"kl_dim/{i}": v.detach() for i, v in enumerate(kl_dims)})
        if self.tcvae is not None:
            if z is None:
                raise ConfigError("β-TCVAE needs the sampled codes z; pass z to VAELoss.forward")
            terms = self._tcvae_terms(z, mean, logvar, views)
            w = self.tcvae
            loss = recon + w.alpha * terms["mi"] + w.beta * terms["tc"] + w.gamma * terms["dwkl"]
            diag.update({k: terms[k].detach() for k in ("mi", "tc", "dwkl")})
        elif self.capacity is not None:
            c = self.capacity.value(step)
            loss = recon + self.capacity.gamma * (kl - c).abs()
            diag["capacity"] = torch.tensor(c)
        else:
            loss = recon + self.beta * kl
        return LossOutput(loss, diag)

    def _tcvae_terms(
        self, z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, views: int
    ) -> dict[str, torch.Tensor]:
        """:func:`tcvae_terms` of this rank's codes; under DDP against the global minibatch, each mean scaled to this
        rank's share of the global mean (``world · n_local / N_global``, 1 for equal batches)."""
        assert self.dataset_size is not None
        if not (self.gather_distributed and is_distributed()):
            return tcvae_terms(z, mean, logvar, self.dataset_size)
        d = z.shape[1]
        world = gather_views(torch.cat([z, mean, logvar], dim=1), views)
        gz, gmean, glogvar = world.rows.split(d, dim=1)
        terms = tcvae_terms(gz, gmean, glogvar, self.dataset_size, anchors=world.local)
        scale = world.mean_scale()
        return {k: v * scale for k, v in terms.items()}
