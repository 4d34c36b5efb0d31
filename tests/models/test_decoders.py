"""Decoders: output shapes mirror the encoders' inputs; conv64 decoder parameter count by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from disco.models.decoders import ConvDecoder, MLPDecoder, ResNetDecoder
from disco.models.encoders import ConvEncoder


@pytest.mark.parametrize(
    ("dec", "d", "out"),
    [
        (ConvDecoder(10, 1), 10, (1, 64, 64)),
        (ConvDecoder(4, 3), 4, (3, 64, 64)),
        (ResNetDecoder(6, 3, width=8), 6, (3, 64, 64)),
        (MLPDecoder(3, (2, 5)), 3, (2, 5)),
        (MLPDecoder(3, 7, hidden=(4,)), 3, (7,)),
    ],
)
def test_decoder_output_shapes(dec: nn.Module, d: int, out: tuple[int, ...]) -> None:
    y = dec(torch.randn(4, d))
    assert y.shape == (4, *out)
    assert torch.isfinite(y).all()


def test_conv_decoder_parameter_count() -> None:
    d, c = 10, 1
    expected = (
        (d * 256 + 256)
        + (256 * 1024 + 1024)
        + (64 * 64 * 16 + 64)
        + (64 * 32 * 16 + 32)
        + (32 * 32 * 16 + 32)
        + (32 * c * 16 + c)
    )
    assert sum(p.numel() for p in ConvDecoder(d, c).parameters()) == expected


def test_conv_autoencoder_roundtrip_shapes() -> None:
    enc, dec = ConvEncoder(3, 5), ConvDecoder(5, 3)
    x = torch.rand(2, 3, 64, 64)
    mean, _ = enc(x)
    assert dec(mean).shape == x.shape
