"""Ada-GVAE / Ada-ML-VAE (Locatello et al. 2020): the aggregates on a hand-computed 3-dimension pair (adaptive threshold
and labels mask), the midpoint threshold rule against a loop, the loss against a straightforward per-pair loop, and
gradients."""

from __future__ import annotations

import math

import pytest
import torch

from disco.errors import ConfigError
from disco.losses.weak_vae import (
    WeakVAELoss,
    adaptive_shared,
    aggregate,
    gaussian_kl,
    labels_shared,
    weak_posteriors,
)

# One pair, three dimensions: dim 0 identical posteriors, dim 1 close ones, dim 2 far apart.
MU1, VAR1 = [0.0, 1.0, 2.0], [1.0, 1.0, 4.0]
MU2, VAR2 = [0.0, 1.5, 0.0], [1.0, 3.0, 1.0]
# KL(q1 ‖ q2) = ½(log σ2² − log σ1² + (σ1² + (μ1 − μ2)²)/σ2² − 1) per dimension, by hand:
KL = [0.0, 0.5 * (math.log(3.0) + 1.25 / 3.0 - 1.0), 0.5 * (-math.log(4.0) + 8.0 - 1.0)]  # 0, 0.2576, 2.8069


def _pair() -> tuple[torch.Tensor, ...]:
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return t(MU1), t(VAR1).log(), t(MU2), t(VAR2).log()


def test_per_dimension_kl_by_hand() -> None:
    m1, lv1, m2, lv2 = _pair()
    torch.testing.assert_close(gaussian_kl(m1, lv1, m2, lv2), torch.tensor([KL], dtype=torch.float64))


def test_adaptive_threshold_shares_dimensions_below_the_midpoint() -> None:
    m1, lv1, m2, lv2 = _pair()
    # midpoint (2.8069 + 0)/2 = 1.40: dims 0 and 1 are shared, dim 2 is not
    assert adaptive_shared(gaussian_kl(m1, lv1, m2, lv2)).tolist() == [[True, True, False]]


def test_threshold_rule_against_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    kl = torch.rand(50, 7, generator=g) ** 3
    kl[3] = 0.4  # every KL equal: nothing is below the midpoint
    kl[4] = torch.tensor([0.0, 1.0, 2.0, 0.5, 1.5, 0.99, 1.01])  # exactly at the midpoint is not shared
    expected = torch.zeros_like(kl, dtype=torch.bool)
    for i in range(kl.shape[0]):
        row = kl[i].tolist()
        mid = (max(row) + min(row)) / 2
        for d, v in enumerate(row):
            expected[i, d] = v < mid
    got = adaptive_shared(kl)
    assert torch.equal(got, expected)
    assert not got[3].any()
    assert got[4].tolist() == [True, False, False, True, False, True, False]


@pytest.mark.parametrize(
    ("aggregation", "mean", "var"),
    [
        # GVAE: averages of the means and of the variances
        ("gvae", [0.0, 1.25], [1.0, 2.0]),
        # ML-VAE: σ² = σ1²σ2²/(σ1² + σ2²) = 1/2 and 3/4; μ = σ²(μ1/σ1² + μ2/σ2²) = 0 and 0.75·(1 + 0.5) = 1.125
        ("mlvae", [0.0, 1.125], [0.5, 0.75]),
    ],
)
def test_aggregates_of_the_adaptive_pair_by_hand(aggregation: str, mean: list[float], var: list[float]) -> None:
    m1, lv1, m2, lv2 = _pair()
    dims = adaptive_shared(gaussian_kl(m1, lv1, m2, lv2))
    a_mean, a_logvar, b_mean, b_logvar = weak_posteriors(m1, lv1, m2, lv2, dims, aggregation)
    f64 = torch.float64
    # shared dims 0, 1 take the aggregate in BOTH views; dim 2 keeps each view's own posterior
    torch.testing.assert_close(a_mean, torch.tensor([[*mean, 2.0]], dtype=f64))
    torch.testing.assert_close(b_mean, torch.tensor([[*mean, 0.0]], dtype=f64))
    torch.testing.assert_close(a_logvar.exp(), torch.tensor([[*var, 4.0]], dtype=f64))
    torch.testing.assert_close(b_logvar.exp(), torch.tensor([[*var, 1.0]], dtype=f64))


@pytest.mark.parametrize(("aggregation", "mean0", "var0"), [("gvae", 0.0, 1.0), ("mlvae", 0.0, 0.5)])
def test_labels_mask_by_hand(aggregation: str, mean0: float, var0: float) -> None:
    """Subspaces a (dim 0) and b (dim 1) tied to factors a and b, dim 2 free: a pair sharing only factor a aggregates
    dim 0 alone; sharing both aggregates dims 0 and 1; the free dim is never shared."""
    tie = torch.tensor([[True, False, False], [False, True, False]])
    shared = torch.tensor([[True, False], [True, True], [False, False]])
    assert labels_shared(shared, tie).tolist() == [[True, False, False], [True, True, False], [False, False, False]]
    m1, lv1, m2, lv2 = _pair()
    dims = labels_shared(shared[:1], tie)
    a_mean, a_logvar, b_mean, b_logvar = weak_posteriors(m1, lv1, m2, lv2, dims, aggregation)
    f64 = torch.float64
    torch.testing.assert_close(a_mean, torch.tensor([[mean0, 1.0, 2.0]], dtype=f64))
    torch.testing.assert_close(b_mean, torch.tensor([[mean0, 1.5, 0.0]], dtype=f64))
    torch.testing.assert_close(a_logvar.exp(), torch.tensor([[var0, 1.0, 4.0]], dtype=f64))
    torch.testing.assert_close(b_logvar.exp(), torch.tensor([[var0, 3.0, 1.0]], dtype=f64))


def test_mlvae_aggregate_is_the_normalised_product_of_the_two_densities() -> None:
    """N(z; μ1, σ1²)·N(z; μ2, σ2²) ∝ N(z; μ, σ²): the log-ratio is constant in z."""
    m1, lv1, m2, lv2 = (torch.tensor([v], dtype=torch.float64) for v in (0.3, -0.5, -1.2, 0.8))
    mean, logvar = aggregate(m1, lv1, m2, lv2, "mlvae")

    def logpdf(z: torch.Tensor, m: torch.Tensor, lv: torch.Tensor) -> torch.Tensor:
        return -0.5 * (math.log(2 * math.pi) + lv + (z - m) ** 2 / lv.exp())

    z = torch.linspace(-3, 3, 7, dtype=torch.float64)
    ratio = logpdf(z, m1, lv1) + logpdf(z, m2, lv2) - logpdf(z, mean, logvar)
    torch.testing.assert_close(ratio, ratio[:1].expand_as(ratio))


def _loop_loss(
    x: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    eps: torch.Tensor,
    decoder: torch.nn.Module,
    aggregation: str,
    beta: float,
    likelihood: str,
    shared_dims: list[list[bool]] | None = None,
) -> torch.Tensor:
    """The objective of Locatello et al. 2020 pair by pair and dimension by dimension, with plain Python arithmetic."""
    b, d = mean.shape[0] // 2, mean.shape[1]
    total = torch.zeros((), dtype=mean.dtype)
    for i in range(b):
        mu = [mean[i].tolist(), mean[b + i].tolist()]
        var = [logvar[i].exp().tolist(), logvar[b + i].exp().tolist()]
        kl12 = [
            0.5 * (math.log(var[1][j] / var[0][j]) + (var[0][j] + (mu[0][j] - mu[1][j]) ** 2) / var[1][j] - 1)
            for j in range(d)
        ]
        mid = (max(kl12) + min(kl12)) / 2
        new_mu = [list(mu[0]), list(mu[1])]
        new_var = [list(var[0]), list(var[1])]
        for j in range(d):
            share = kl12[j] < mid if shared_dims is None else shared_dims[i][j]
            if not share:
                continue
            if aggregation == "gvae":
                m_j, v_j = (mu[0][j] + mu[1][j]) / 2, (var[0][j] + var[1][j]) / 2
            else:
                v_j = 1.0 / (1.0 / var[0][j] + 1.0 / var[1][j])
                m_j = v_j * (mu[0][j] / var[0][j] + mu[1][j] / var[1][j])
            new_mu[0][j] = new_mu[1][j] = m_j
            new_var[0][j] = new_var[1][j] = v_j
        for view, row in ((0, i), (1, b + i)):
            m_t = torch.tensor(new_mu[view], dtype=mean.dtype)
            v_t = torch.tensor(new_var[view], dtype=mean.dtype)
            logits = decoder((m_t + v_t.sqrt() * eps[row])[None])[0]
            if likelihood == "bernoulli":
                recon = torch.nn.functional.binary_cross_entropy_with_logits(logits, x[row], reduction="sum")
            else:
                recon = ((x[row] - torch.sigmoid(logits)) ** 2).sum()  # variance 0.5: ½·Σ(·)²/0.5
            kl = sum(0.5 * (new_mu[view][j] ** 2 + new_var[view][j] - math.log(new_var[view][j]) - 1) for j in range(d))
            total = total + recon + beta * kl
    return total / b


def _batch(b: int = 5, d: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * b, 1, 4, 4, generator=g, dtype=torch.float64)
    mean = torch.randn(2 * b, d, generator=g, dtype=torch.float64)
    logvar = 0.5 * torch.randn(2 * b, d, generator=g, dtype=torch.float64)
    mean[b : b + 2, :2] = mean[:2, :2] + 0.01  # two pairs with clearly shared dimensions
    eps = torch.randn(2 * b, d, generator=g, dtype=torch.float64)
    return x, mean, logvar, eps


def _decoder(d: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.Unflatten(-1, (1, 4, 4))).double()


@pytest.mark.parametrize("aggregation", ["gvae", "mlvae"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_adaptive_loss_matches_the_per_pair_loop(aggregation: str, likelihood: str) -> None:
    x, mean, logvar, eps = _batch()
    decoder = _decoder()
    loss = WeakVAELoss(likelihood=likelihood, beta=2.0, aggregation=aggregation, shared="adaptive")
    out = loss(x, mean, logvar, decoder, eps=eps)
    expected = _loop_loss(x, mean, logvar, eps, decoder, aggregation, 2.0, likelihood)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.diagnostics["recon"] + 2.0 * out.diagnostics["kl"], expected.detach())


@pytest.mark.parametrize("aggregation", ["gvae", "mlvae"])
def test_labels_loss_matches_the_per_pair_loop(aggregation: str) -> None:
    x, mean, logvar, eps = _batch()
    tie = torch.tensor([[True, True, False, False], [False, False, True, False]])  # factor 0: dims 0-1, 1: dim 2
    shared = torch.tensor([[True, False], [False, True], [True, True], [False, False], [True, False]])
    dims = [[bool(shared[i, 0]), bool(shared[i, 0]), bool(shared[i, 1]), False] for i in range(5)]
    decoder = _decoder()
    out = WeakVAELoss(beta=1.0, aggregation=aggregation, shared="labels", tie=tie)(
        x, mean, logvar, decoder, shared=shared, eps=eps
    )
    torch.testing.assert_close(out.loss, _loop_loss(x, mean, logvar, eps, decoder, aggregation, 1.0, "bernoulli", dims))


@pytest.mark.parametrize("aggregation", ["gvae", "mlvae"])
def test_gradients_reach_both_views_and_the_decoder(aggregation: str) -> None:
    x, mean, logvar, _ = _batch()
    mean.requires_grad_()
    logvar.requires_grad_()
    decoder = _decoder()
    WeakVAELoss(aggregation=aggregation)(x, mean, logvar, decoder).loss.backward()
    assert mean.grad is not None and logvar.grad is not None
    assert bool((mean.grad[:5].abs().sum(1) > 0).all()) and bool((mean.grad[5:].abs().sum(1) > 0).all())
    assert bool(torch.isfinite(logvar.grad).all()) and float(logvar.grad.abs().sum()) > 0
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in decoder.parameters())


def test_errors() -> None:
    with pytest.raises(ConfigError, match="aggregation"):
        WeakVAELoss(aggregation="mean")
    with pytest.raises(ConfigError, match="tied to factors"):
        WeakVAELoss(shared="labels", tie=torch.zeros(2, 3, dtype=torch.bool))
    loss = WeakVAELoss(shared="labels", tie=torch.ones(2, 3, dtype=torch.bool))
    x, mean, logvar, _ = _batch(d=3)
    with pytest.raises(ConfigError, match="shared of shape"):
        loss(x, mean, logvar, lambda z: z, shared=None)
