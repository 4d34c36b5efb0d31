"""Build encoders and decoders by name; ``(name, kwargs)`` is what a checkpoint stores to rebuild an encoder.

Names: ``"conv64"`` (the standard 64×64 conv net of Higgins et al. 2017 / Locatello et al. 2019), ``"resnet64"``
(residual variant, He et al. 2016), ``"mlp"`` (vector data) and ``"private_branch"`` (a base encoder whose private
domain columns come from a branch of their own, :mod:`disco.models.private`; built by training with
``model.private_branch: true``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from disco.errors import ConfigError
from disco.models.decoders import ConvDecoder, MLPDecoder, ResNetDecoder
from disco.models.encoders import ConvEncoder, MLPEncoder, ResNetEncoder
from disco.models.private import PrivateBranchEncoder

ENCODERS: dict[str, type[nn.Module]] = {
    "conv64": ConvEncoder,
    "resnet64": ResNetEncoder,
    "mlp": MLPEncoder,
    "private_branch": PrivateBranchEncoder,
}
DECODERS: dict[str, type[nn.Module]] = {"conv64": ConvDecoder, "resnet64": ResNetDecoder, "mlp": MLPDecoder}


def _build(kind: str, registry: dict[str, type[nn.Module]], name: str, kwargs: dict[str, Any]) -> nn.Module:
    if name not in registry:
        raise ConfigError(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(registry))}")
    kwargs = {k: tuple(v) if isinstance(v, list) and k == "hidden" else v for k, v in kwargs.items()}
    try:
        return registry[name](**kwargs)
    except TypeError as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"bad arguments for {kind} {name!r}: {msg}; check the {kind} kwargs in the config") from err


def build_encoder(name: str, **kwargs: Any) -> nn.Module:
    """An encoder by name, e.g. ``build_encoder("conv64", in_channels=1, latent_dim=10)``."""
    return _build("encoder", ENCODERS, name, kwargs)


def build_decoder(name: str, **kwargs: Any) -> nn.Module:
    """A decoder by name, e.g. ``build_decoder("conv64", latent_dim=10, out_channels=1)``."""
    return _build("decoder", DECODERS, name, kwargs)
