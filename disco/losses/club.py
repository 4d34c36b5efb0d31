"""CLUB: a contrastive log-ratio upper bound of mutual information (Cheng et al. 2020, "CLUB: A Contrastive Log-ratio
Upper Bound of Mutual Information", ICML), sampled variant (CLUB-S, O(B·d)).

A variational Gaussian ``q_θ(y|x) = N(μ_θ(x), diag σ²_θ(x))`` is fitted by maximum likelihood on (detached) samples;
the bound is ``E_i[log q(y_i|x_i) − log q(y_π(i)|x_i)]`` with π a random permutation of the batch. The penalty uses a
detached snapshot of the network's parameters, so the encoder's optimiser never moves θ and θ's own optimiser step may
run before the encoder's backward pass; θ is trained only through
:meth:`CLUBEstimator.auxiliary_loss` with its own optimiser (a few inner steps per encoder step are fine).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call


class CLUBEstimator(nn.Module):
    """Variational network ``q(y|x)`` plus the sampled CLUB upper bound of I(x; y).

    Args:
        x_dim: width of the conditioning block.
        y_dim: width of the predicted block.
        hidden: hidden width of the mean and log-variance MLPs.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.mu = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim))
        self.logvar = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, y_dim), nn.Tanh())

    def _params(self, x: torch.Tensor, detach_params: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if not detach_params:
            return self.mu(x), self.logvar(x)
        params = {k: v.detach().clone() for k, v in self.named_parameters()}
        mu = functional_call(self.mu, {k[3:]: v for k, v in params.items() if k.startswith("mu.")}, (x,))
        lv = functional_call(self.logvar, {k[7:]: v for k, v in params.items() if k.startswith("logvar.")}, (x,))
        return mu, lv

    @staticmethod
    def gaussian_log_density(y: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``log N(y; μ, diag exp(logvar))`` summed over the last dimension."""
        return -0.5 * ((y - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)

    def log_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean ``log q_θ(y_i | x_i)`` over the batch (the quantity θ maximises)."""
        mu, lv = self._params(x, detach_params=False)
        return self.gaussian_log_density(y, mu, lv).mean()

    def auxiliary_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of ``q_θ`` on detached samples; minimise it with the estimator's own optimiser."""
        return -self.log_likelihood(x.detach(), y.detach())

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sampled CLUB bound ``mean_i[log q(y_i|x_i) − log q(y_π(i)|x_i)]``; differentiable in x and y, not θ."""
        mu, lv = self._params(x, detach_params=True)
        perm = torch.randperm(y.shape[0], generator=generator, device="cpu").to(y.device)
        positive = self.gaussian_log_density(y, mu, lv)
        negative = self.gaussian_log_density(y[perm], mu, lv)
        return (positive - negative).mean()
