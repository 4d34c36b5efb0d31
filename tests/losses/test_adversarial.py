"""Gradient reversal and the domain-adversarial loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from disco.errors import ConfigError
from disco.losses.adversarial import DomainAdversarialLoss, GradientReversal, grad_reverse


@pytest.mark.parametrize("lambda_", [0.0, 0.5, 2.0])
def test_gradient_is_flipped_and_scaled(lambda_):
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = GradientReversal(lambda_)(x)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -lambda_ * w)
    x2 = torch.randn(2, dtype=torch.float64, requires_grad=True)
    (grad_reverse(x2, lambda_) ** 2).sum().backward()
    assert torch.allclose(x2.grad, -lambda_ * 2 * x2.detach())


def test_domain_loss_is_bce_and_encoder_gradient_is_reversed():
    torch.manual_seed(0)
    loss_fn = DomainAdversarialLoss(dim=4, hidden=8, lambda_=0.7)
    src = torch.randn(6, 4, requires_grad=True)
    tgt = torch.randn(5, 4, requires_grad=True)
    out = loss_fn(src, tgt)
    logits = loss_fn.discriminator(torch.cat([src, tgt])).squeeze(1)
    labels = torch.cat([torch.ones(6), torch.zeros(5)])
    assert out.loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, labels).item(), rel=1e-6)
    assert out.diagnostics["acc"].item() == pytest.approx(((logits > 0).float() == labels).float().mean().item())
    out.loss.backward()
    plain_src = src.detach().clone().requires_grad_(True)
    F.binary_cross_entropy_with_logits(
        loss_fn.discriminator(torch.cat([plain_src, tgt.detach()])).squeeze(1), labels
    ).backward()
    assert torch.allclose(src.grad, -0.7 * plain_src.grad, atol=1e-7)
    assert all(p.grad is not None for p in loss_fn.discriminator.parameters())
    loss_fn.lambda_ = 0.0
    assert loss_fn.reversal.lambda_ == 0.0


def test_discriminator_learns_to_separate_shifted_domains():
    torch.manual_seed(0)
    loss_fn = DomainAdversarialLoss(dim=2, hidden=16)
    opt = torch.optim.Adam(loss_fn.parameters(), lr=1e-2)
    for _ in range(100):
        out = loss_fn(torch.randn(32, 2) + 2, torch.randn(32, 2) - 2)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert out.diagnostics["acc"].item() > 0.95
    with pytest.raises(ConfigError):
        loss_fn(torch.randn(3, 2), torch.randn(3, 3))
