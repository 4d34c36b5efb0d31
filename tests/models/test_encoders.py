"""Encoders: output shapes, the conv64 parameter count against the REFERENCE.md layer list, TorchScript export."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from disco.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder


def conv_params(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out


def fc_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(("c", "d"), [(1, 10), (3, 6)])
def test_conv_encoder_parameter_count_matches_reference_layer_list(c: int, d: int) -> None:
    # conv 32 k4 s2 → conv 32 k4 s2 → conv 64 k4 s2 → conv 64 k4 s2 → fc 256 → 2·latent; 64 → 4 pixels after 4 halvings
    expected = (
        conv_params(c, 32, 4)
        + conv_params(32, 32, 4)
        + conv_params(32, 64, 4)
        + conv_params(64, 64, 4)
        + fc_params(64 * 4 * 4, 256)
        + fc_params(256, 2 * d)
    )
    assert n_params(ConvEncoder(c, d)) == expected


def test_conv_encoder_layer_geometry() -> None:
    enc = ConvEncoder(1, 10)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
        (32, (4, 4), (2, 2), (1, 1)),
        (32, (4, 4), (2, 2), (1, 1)),
        (64, (4, 4), (2, 2), (1, 1)),
        (64, (4, 4), (2, 2), (1, 1)),
    ]
    x = torch.rand(2, 1, 64, 64)
    assert enc.features(x).shape == (2, 64, 4, 4)


@pytest.mark.parametrize(
    ("enc", "shape", "d"),
    [
        (ConvEncoder(1, 10), (5, 1, 64, 64), 10),
        (ConvEncoder(3, 4), (2, 3, 64, 64), 4),
        (ResNetEncoder(3, 7, width=16), (1, 3, 64, 64), 7),
        (MLPEncoder(12, 3, hidden=(8,)), (4, 3, 4), 3),
    ],
)
def test_encoder_output_shapes(enc: nn.Module, shape: tuple[int, ...], d: int) -> None:
    mean, logvar = enc(torch.rand(shape))
    assert mean.shape == (shape[0], d) and logvar.shape == (shape[0], d)
    assert torch.isfinite(mean).all() and torch.isfinite(logvar).all()


def test_mean_and_logvar_are_the_two_halves_of_the_last_layer() -> None:
    torch.manual_seed(0)
    enc = ConvEncoder(1, 3)
    x = torch.rand(2, 1, 64, 64)
    out = enc.head(enc.features(x))
    mean, logvar = enc(x)
    torch.testing.assert_close(mean, out[:, :3])
    torch.testing.assert_close(logvar, out[:, 3:])


def test_resnet_encoder_is_batch_independent() -> None:
    # GroupNorm, no BatchNorm: encoding one image alone gives the same code as in a batch
    torch.manual_seed(0)
    enc = ResNetEncoder(3, 5, width=16).train()
    x = torch.rand(3, 3, 64, 64)
    mean_batch, _ = enc(x)
    mean_single, _ = enc(x[1:2])
    torch.testing.assert_close(mean_single, mean_batch[1:2], atol=1e-5, rtol=1e-4)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in enc.modules())


def test_mlp_encoder_flattens_trailing_dims() -> None:
    torch.manual_seed(0)
    enc = MLPEncoder(12, 2, hidden=(5,))
    x = torch.rand(3, 3, 4)
    m1, l1 = enc(x)
    m2, l2 = enc(x.reshape(3, 12))
    torch.testing.assert_close(m1, m2)
    torch.testing.assert_close(l1, l2)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize(
    ("enc", "shape"),
    [(ConvEncoder(1, 10), (2, 1, 64, 64)), (ResNetEncoder(3, 4, width=8), (2, 3, 64, 64)), (MLPEncoder(6, 2), (2, 6))],
)
def test_encoders_script_and_trace(enc: nn.Module, shape: tuple[int, ...]) -> None:
    enc.eval()
    x = torch.rand(shape)
    ref_mean, ref_logvar = enc(x)
    scripted = torch.jit.script(enc)
    traced = torch.jit.trace(enc, (x,))
    for exported in (scripted, traced):
        mean, logvar = exported(x)
        torch.testing.assert_close(mean, ref_mean)
        torch.testing.assert_close(logvar, ref_logvar)
