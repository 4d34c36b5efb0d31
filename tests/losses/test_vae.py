"""VAE loss: reconstruction likelihoods, analytic KL (closed form and Monte Carlo), β, capacity schedule, β-TCVAE
(stratified estimator against loops, decomposition identity), reparameterisation and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from disco.errors import ConfigError
from disco.losses.vae import (
    CapacitySchedule,
    TCVAEWeights,
    VAELoss,
    bernoulli_recon,
    gaussian_recon,
    kl_per_dim,
    reparameterize,
    stratified_log_weights,
    tcvae_terms,
)


def batch(b: int = 4, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, 1, 8, 8, generator=g) > 0.5).double()
    logits = torch.randn(b, 1, 8, 8, generator=g, dtype=torch.float64)
    mean = torch.randn(b, d, generator=g, dtype=torch.float64)
    logvar = torch.randn(b, d, generator=g, dtype=torch.float64) * 0.5 - 1.0
    z = mean + (0.5 * logvar).exp() * torch.randn(b, d, generator=g, dtype=torch.float64)
    return x, logits, mean, logvar, z


def test_bernoulli_and_gaussian_recon_match_explicit_formulas() -> None:
    x, logits, *_ = batch()
    xn, ln = x.numpy(), logits.numpy()
    p = 1 / (1 + np.exp(-ln))
    bern = -(xn * np.log(p) + (1 - xn) * np.log(1 - p)).reshape(4, -1).sum(1).mean()
    assert bernoulli_recon(x, logits).item() == pytest.approx(bern, rel=1e-10)
    sq = ((xn - p) ** 2).reshape(4, -1).sum(1).mean()
    assert gaussian_recon(x, logits).item() == pytest.approx(sq, rel=1e-10)
    assert gaussian_recon(x, logits, variance=2.0).item() == pytest.approx(sq / 4, rel=1e-10)
    assert VAELoss("gaussian")(x, logits, *batch()[2:4]).diagnostics["recon"].item() == pytest.approx(sq, rel=1e-10)


def test_kl_matches_closed_form_and_monte_carlo() -> None:
    _, _, mean, logvar, _ = batch(b=3, d=2)
    mu, var = mean.numpy(), np.exp(logvar.numpy())
    closed = 0.5 * (mu**2 + var - np.log(var) - 1)  # KL(N(mu, var) || N(0, 1)) per sample and dimension
    torch.testing.assert_close(kl_per_dim(mean, logvar), torch.tensor(closed.mean(0)))
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(200_000, 3, 2, generator=g, dtype=torch.float64)
    z = mean + (0.5 * logvar).exp() * eps
    log_q = -0.5 * (math.log(2 * math.pi) + logvar + eps**2)
    log_p = -0.5 * (math.log(2 * math.pi) + z**2)
    mc = (log_q - log_p).mean(0).mean(0)
    torch.testing.assert_close(kl_per_dim(mean, logvar), mc, rtol=0.02, atol=0.005)


def test_beta_vae_loss_and_diagnostics() -> None:
    x, logits, mean, logvar, z = batch()
    out = VAELoss(beta=4.0)(x, logits, mean, logvar, z)
    recon, kl = bernoulli_recon(x, logits), kl_per_dim(mean, logvar).sum()
    torch.testing.assert_close(out.loss, recon + 4.0 * kl)
    d = out.diagnostics
    torch.testing.assert_close(d["recon"], recon)
    torch.testing.assert_close(d["kl"], kl)
    torch.testing.assert_close(d["elbo"], -(recon + kl))
    torch.testing.assert_close(d["raw"], recon + kl)
    torch.testing.assert_close(sum(d[f"kl_dim/{i}"] for i in range(3)), kl)
    assert all(not v.requires_grad for v in d.values())


def test_capacity_schedule_values_and_loss() -> None:
    sched = CapacitySchedule(c_max=25.0, gamma=1000.0, steps=100_000)
    assert [sched.value(s) for s in (0, 50_000, 100_000, 250_000)] == [0.0, 12.5, 25.0, 25.0]
    assert sched.value(-5) == 0.0
    x, logits, mean, logvar, z = batch()
    out = VAELoss(capacity=CapacitySchedule(c_max=2.0, gamma=10.0, steps=10))(x, logits, mean, logvar, z, step=5)
    recon, kl = bernoulli_recon(x, logits), kl_per_dim(mean, logvar).sum()
    torch.testing.assert_close(out.loss, recon + 10.0 * (kl - 1.0).abs())
    assert out.diagnostics["capacity"].item() == 1.0


def test_stratified_weights() -> None:
    m, n = 5, 100
    w = stratified_log_weights(m, n).exp()
    torch.testing.assert_close(w.sum(1), torch.ones(m, dtype=torch.float64))
    for i in range(m):
        assert w[i, i].item() == pytest.approx(1 / n)
        assert w[i, (i + 1) % m].item() == pytest.approx((n - m + 1) / (n * (m - 1)))
        others = [w[i, j].item() for j in range(m) if j not in (i, (i + 1) % m)]
        assert others == pytest.approx([1 / (m - 1)] * (m - 2))


def normal_pdf(z: float, mu: float, logvar: float) -> float:
    var = math.exp(logvar)
    return math.exp(-((z - mu) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)


def test_tcvae_terms_match_loop_implementation() -> None:
    _, _, mean, logvar, z = batch(b=6, d=3, seed=3)
    n_data = 50
    terms = tcvae_terms(z, mean, logvar, n_data)
    w = stratified_log_weights(6, n_data).exp()
    zs, ms, ls = z.tolist(), mean.tolist(), logvar.tolist()
    log_qz, log_prod, log_qzx, log_pz = [], [], [], []
    for i in range(6):
        joint = sum(
            w[i, j].item() * math.prod(normal_pdf(zs[i][d], ms[j][d], ls[j][d]) for d in range(3)) for j in range(6)
        )
        log_qz.append(math.log(joint))
        log_prod.append(
            sum(
                math.log(sum(w[i, j].item() * normal_pdf(zs[i][d], ms[j][d], ls[j][d]) for j in range(6)))
                for d in range(3)
            )
        )
        log_qzx.append(sum(math.log(normal_pdf(zs[i][d], ms[i][d], ls[i][d])) for d in range(3)))
        log_pz.append(sum(math.log(normal_pdf(zs[i][d], 0.0, 0.0)) for d in range(3)))
    ref = {
        "log_qz": np.mean(log_qz),
        "log_prod_qzj": np.mean(log_prod),
        "log_qz_x": np.mean(log_qzx),
        "log_pz": np.mean(log_pz),
    }
    for k, v in ref.items():
        assert terms[k].item() == pytest.approx(v, rel=1e-10)
    assert terms["tc"].item() == pytest.approx(ref["log_qz"] - ref["log_prod_qzj"], rel=1e-9, abs=1e-12)
    total = terms["mi"] + terms["tc"] + terms["dwkl"]
    assert total.item() == pytest.approx(ref["log_qz_x"] - ref["log_pz"], rel=1e-10)


def test_tcvae_terms_vanish_for_a_posterior_that_ignores_the_input() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 4, generator=g, dtype=torch.float64)
    zeros = torch.zeros_like(z)
    terms = tcvae_terms(z, zeros, zeros, dataset_size=1000)
    for k in ("mi", "tc", "dwkl"):
        assert abs(terms[k].item()) < 1e-10


def test_tcvae_total_correlation_detects_correlated_codes() -> None:
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(512, 1, generator=g), torch.randn(512, 1, generator=g)
    logvar = torch.full((512, 2), -4.0)
    corr_mean, ind_mean = torch.cat([u, u], 1), torch.cat([u, v], 1)
    tc_corr = tcvae_terms(reparameterize(corr_mean, logvar, g), corr_mean, logvar, 512)["tc"].item()
    tc_ind = tcvae_terms(reparameterize(ind_mean, logvar, g), ind_mean, logvar, 512)["tc"].item()
    assert tc_corr > 1.0
    assert abs(tc_ind) < 0.3


def test_tcvae_with_unit_weights_is_close_to_the_plain_kl_on_a_large_batch() -> None:
    g = torch.Generator().manual_seed(0)
    b, d = 1024, 4
    mean = torch.randn(b, d, generator=g, dtype=torch.float64) * 0.8
    logvar = torch.randn(b, d, generator=g, dtype=torch.float64) * 0.3 - 1.0
    z = reparameterize(mean, logvar, g)
    x = torch.rand(b, 1, 2, 2, generator=g, dtype=torch.float64)
    logits = torch.zeros_like(x)
    plain = VAELoss(beta=1.0)(x, logits, mean, logvar, z)
    tcvae = VAELoss(tcvae=TCVAEWeights(1.0, 1.0, 1.0), dataset_size=100_000)(x, logits, mean, logvar, z)
    kl = plain.diagnostics["kl"].item()
    d_ = tcvae.diagnostics
    assert (d_["mi"] + d_["tc"] + d_["dwkl"]).item() == pytest.approx(kl, rel=0.03)
    assert tcvae.loss.item() == pytest.approx(plain.loss.item(), rel=0.03)
    high_beta = VAELoss(tc_beta=6.0, dataset_size=100_000)(x, logits, mean, logvar, z)
    expected = tcvae.loss + 5.0 * d_["tc"]
    torch.testing.assert_close(high_beta.loss, expected)


def test_reparameterize_uses_the_generator() -> None:
    mean, logvar = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0)]])
    z = reparameterize(mean, logvar, torch.Generator().manual_seed(7))
    eps = torch.randn((1, 2), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(z, mean + torch.tensor([[1.0, 2.0]]) * eps)
    big = reparameterize(mean.expand(100_000, 2), logvar.expand(100_000, 2), torch.Generator().manual_seed(0))
    torch.testing.assert_close(big.mean(0), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(big.std(0), torch.tensor([1.0, 2.0]), atol=0.03, rtol=0)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="dataset_size"):
        VAELoss(tc_beta=4.0)
    with pytest.raises(ConfigError, match="not both"):
        VAELoss(capacity=CapacitySchedule(), tcvae=TCVAEWeights(), dataset_size=10)
    with pytest.raises(ConfigError, match="bernoulli, gaussian"):
        VAELoss("poisson")
    x, logits, mean, logvar, _ = batch()
    with pytest.raises(ConfigError, match="pass z"):
        VAELoss(tc_beta=2.0, dataset_size=100)(x, logits, mean, logvar)
    with pytest.raises(ConfigError, match="smaller than the batch"):
        stratified_log_weights(8, 4)
