"""microbatched: same outputs and gradients as one pass."""

from __future__ import annotations

import torch

from disco.models.encoders import ConvEncoder
from disco.models.microbatch import microbatched


def test_microbatched_encoder_matches_one_pass_outputs_and_gradients() -> None:
    torch.manual_seed(0)
    enc = ConvEncoder(1, 3)
    x = torch.rand(10, 1, 64, 64)
    full = microbatched(enc, x, None)
    parts = microbatched(enc, x, 4)
    assert isinstance(full, tuple) and isinstance(parts, tuple)
    for a, b in zip(full, parts, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    grads = []
    for out in (full, parts):
        enc.zero_grad()
        (out[0].pow(2).sum() + out[1].sum()).backward()
        grads.append([p.grad.clone() for p in enc.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_microbatched_tensor_output() -> None:
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(7, 3)
    torch.testing.assert_close(microbatched(lin, x, 3), lin(x))
