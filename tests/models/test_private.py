"""The private-branch encoder (Domain Separation Networks): the shared columns are the base encoder's, the private
columns its own branch's, and gradients of one part never reach the other's weights."""

from __future__ import annotations

import torch

from disco.models.factory import build_encoder
from disco.models.private import PrivateBranchEncoder

COLUMNS = [1, 4]


def make() -> PrivateBranchEncoder:
    torch.manual_seed(0)
    enc = build_encoder("private_branch", base="conv64", base_kwargs={"in_channels": 3, "latent_dim": 6}, columns=COLUMNS,
                        in_channels=3)  # fmt: skip
    assert isinstance(enc, PrivateBranchEncoder)
    return enc


def test_columns_come_from_the_base_encoder_and_the_branch() -> None:
    enc = make()
    x = torch.rand(5, 3, 64, 64)
    mean, logvar = enc(x)
    base_mean, base_logvar = enc.shared(x)
    shared = [0, 2, 3, 5]
    torch.testing.assert_close(mean[:, shared], base_mean[:, shared])
    torch.testing.assert_close(logvar[:, shared], base_logvar[:, shared])
    torch.testing.assert_close(mean[:, COLUMNS], enc.private(x))
    assert torch.equal(logvar[:, COLUMNS], torch.zeros(5, 2))
    scripted = torch.jit.script(enc)  # disco export scripts it
    torch.testing.assert_close(scripted(x)[0], mean)


def test_gradients_stay_in_their_branch() -> None:
    enc = make()
    x = torch.rand(4, 3, 64, 64)
    mean, _ = enc(x)
    private_loss = mean[:, COLUMNS].pow(2).sum()
    shared_params = list(enc.shared.parameters())
    grads = torch.autograd.grad(private_loss, shared_params + list(enc.private.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads[: len(shared_params)])
    assert any(g is not None and g.abs().sum() > 0 for g in grads[len(shared_params) :])
    mean, _ = enc(x)
    shared_loss = mean[:, [0, 2, 3, 5]].pow(2).sum()
    grads = torch.autograd.grad(shared_loss, list(enc.private.parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
