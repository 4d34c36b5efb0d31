"""Encoders mapping images (or vectors) to the mean and log-variance of a diagonal Gaussian code.

All encoders take float input in [0, 1] and return ``(mean, logvar)``, each ``(B, latent_dim)``. They are
TorchScript-compatible (``torch.jit.script``), which the export command relies on.

- :class:`ConvEncoder` is the field's standard 64×64 encoder (Higgins et al. 2017, β-VAE; the architecture used by
  Locatello et al. 2019, "Challenging common assumptions in the unsupervised learning of disentangled representations"):
  conv 32 k4 s2 → conv 32 k4 s2 → conv 64 k4 s2 → conv 64 k4 s2 → fc 256 → fc 2·latent, ReLU, padding 1.
- :class:`ResNetEncoder` is a wider residual variant (He et al. 2016, "Deep residual learning") for richer images such as
  3D Shapes; it uses GroupNorm (Wu & He 2018) so it behaves the same at batch size 1.
- :class:`MLPEncoder` is for vector data; it flattens all trailing dimensions.

Both 64×64 encoders also expose ``encode_with_hidden(x) -> (mean, logvar, hidden)`` with ``hidden_dim`` (256) trunk
features, the input of a trunk-level auxiliary head (:mod:`disco.losses.auxiliary`).
"""

from collections.abc import Sequence

import torch
from torch import nn


class ConvEncoder(nn.Module):
    """Standard 64×64 convolutional encoder (Higgins et al. 2017; Locatello et al. 2019 layer list).

    Args:
        in_channels: image channels (1 for dSprites, 3 for 3D Shapes).
        latent_dim: code width; the last layer outputs ``2 * latent_dim`` values (mean, log-variance).
    """

    def __init__(self, in_channels: int = 1, latent_dim: int = 10) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.hidden_dim = 256
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 2 * latent_dim))

    def encode_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean, logvar, hidden)``: the code and the 256 trunk features the last layer reads (an auxiliary head's
        input, :mod:`disco.losses.auxiliary`)."""
        hidden = self.head[2](self.head[1](self.head[0](self.features(x))))
        mean, logvar = self.head[3](hidden).chunk(2, dim=1)
        return mean, logvar, hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar, _ = self.encode_with_hidden(x)
        return mean, logvar


class ResidualBlock(nn.Module):
    """Pre-activation residual block (He et al. 2016) with GroupNorm; ``stride=2`` halves the resolution."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.norm2 = nn.GroupNorm(min(groups, out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.act = nn.SiLU()
        self.skip: nn.Module = (
            nn.Conv2d(in_ch, out_ch, 1, stride=stride) if stride != 1 or in_ch != out_ch else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class ResNetEncoder(nn.Module):
    """Residual 64×64 encoder: stem conv, four stride-2 residual blocks (64→4 pixels), fc 256 → 2·latent.

    Channel widths are ``width, width, 2·width, 2·width``. BatchNorm-free (GroupNorm), so batch size 1 works.
    """

    def __init__(self, in_channels: int = 3, latent_dim: int = 10, width: int = 64) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        chans = [width, width, 2 * width, 2 * width]
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1)]
        prev = width
        for c in chans:
            blocks.append(ResidualBlock(prev, c, stride=2))
            prev = c
        blocks += [nn.GroupNorm(min(8, prev), prev), nn.SiLU()]
        self.features = nn.Sequential(*blocks)
        self.hidden_dim = 256
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(prev * 4 * 4, 256), nn.SiLU(), nn.Linear(256, 2 * latent_dim))

    def encode_with_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean, logvar, hidden)``: the code and the 256 trunk features the last layer reads."""
        hidden = self.head[2](self.head[1](self.head[0](self.features(x))))
        mean, logvar = self.head[3](hidden).chunk(2, dim=1)
        return mean, logvar, hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar, _ = self.encode_with_hidden(x)
        return mean, logvar


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Fully connected encoder for vector data; input ``(B, ...)`` is flattened to ``(B, input_dim)``."""

    def __init__(self, input_dim: int, latent_dim: int = 10, hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.latent_dim = latent_dim
        self.net = mlp([input_dim, *hidden, 2 * latent_dim])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x.flatten(1))
        mean, logvar = out.chunk(2, dim=1)
        return mean, logvar
