"""build_encoder / build_decoder: names, kwargs and one-line errors."""

from __future__ import annotations

import pytest
import torch

from disco.errors import ConfigError
from disco.models.decoders import ConvDecoder, MLPDecoder, ResNetDecoder
from disco.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder
from disco.models.factory import build_decoder, build_encoder


def test_build_by_name() -> None:
    assert isinstance(build_encoder("conv64", in_channels=3, latent_dim=4), ConvEncoder)
    assert isinstance(build_encoder("resnet64", in_channels=3, latent_dim=4, width=8), ResNetEncoder)
    assert isinstance(build_encoder("mlp", input_dim=5, latent_dim=2, hidden=[7, 7]), MLPEncoder)
    assert isinstance(build_decoder("conv64", latent_dim=4, out_channels=3), ConvDecoder)
    assert isinstance(build_decoder("resnet64", latent_dim=4, out_channels=3, width=8), ResNetDecoder)
    assert isinstance(build_decoder("mlp", latent_dim=4, output_shape=[2, 3]), MLPDecoder)


def test_same_name_and_kwargs_rebuild_loadable_weights() -> None:
    kwargs = {"in_channels": 1, "latent_dim": 6}
    a, b = build_encoder("conv64", **kwargs), build_encoder("conv64", **kwargs)
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(a(x)[0], b(x)[0])


@pytest.mark.parametrize("builder", [build_encoder, build_decoder])
def test_unknown_name_lists_valid_names(builder: object) -> None:
    with pytest.raises(ConfigError) as err:
        builder("vgg16")  # type: ignore[operator]
    msg = str(err.value)
    assert "\n" not in msg
    names = "conv64, mlp, private_branch, resnet64" if builder is build_encoder else "conv64, mlp, resnet64"
    assert "'vgg16'" in msg and names in msg


def test_bad_kwargs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="bad arguments for encoder 'conv64'"):
        build_encoder("conv64", latent=3)
