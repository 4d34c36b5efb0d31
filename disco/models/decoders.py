"""Decoders mapping a code ``z`` (B, latent_dim) to reconstruction logits, mirroring :mod:`disco.models.encoders`.

The outputs are logits: apply ``sigmoid`` for pixel intensities in [0, 1]; :mod:`disco.losses.vae` consumes them
directly (Bernoulli likelihood, Higgins et al. 2017; Locatello et al. 2019).
"""

from collections.abc import Sequence

import torch
from torch import nn

from disco.models.encoders import mlp


class ConvDecoder(nn.Module):
    """Transposed-convolution mirror of :class:`~disco.models.encoders.ConvEncoder` (Locatello et al. 2019):
    fc 256 → fc 1024 → (64, 4, 4) → deconv 64 → deconv 32 → deconv 32 → deconv ``out_channels``, k4 s2 p1, ReLU."""

    def __init__(self, latent_dim: int = 10, out_channels: int = 1) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.out_channels = out_channels
        self.fc = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 64 * 4 * 4), nn.ReLU())
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, out_channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.fc(z).view(-1, 64, 4, 4))


class UpBlock(nn.Module):
    """Residual block that doubles the resolution (nearest upsampling) with GroupNorm (He et al. 2016)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = nn.GroupNorm(min(groups, out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.act = nn.SiLU()
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.skip: nn.Module = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        h = self.conv1(self.act(self.norm1(x)))
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class ResNetDecoder(nn.Module):
    """Mirror of :class:`~disco.models.encoders.ResNetEncoder`: fc → (2·width, 4, 4) → four upsampling residual
    blocks (4→64 pixels) → 3×3 conv to ``out_channels`` logits."""

    def __init__(self, latent_dim: int = 10, out_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.out_channels = out_channels
        self.top = 2 * width
        self.fc = nn.Sequential(nn.Linear(latent_dim, 256), nn.SiLU(), nn.Linear(256, self.top * 4 * 4))
        chans = [2 * width, width, width, width]
        blocks: list[nn.Module] = []
        prev = self.top
        for c in chans:
            blocks.append(UpBlock(prev, c))
            prev = c
        blocks += [nn.GroupNorm(min(8, prev), prev), nn.SiLU(), nn.Conv2d(prev, out_channels, 3, padding=1)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.fc(z).view(-1, self.top, 4, 4))


class MLPDecoder(nn.Module):
    """Fully connected decoder; ``output_shape`` is an int (flat output) or the per-sample shape to reshape to."""

    def __init__(
        self, latent_dim: int = 10, output_shape: int | Sequence[int] = 64, hidden: Sequence[int] = (256, 256)
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        shape = [int(output_shape)] if isinstance(output_shape, int) else [int(s) for s in output_shape]
        self.output_shape = shape
        numel = 1
        for s in shape:
            numel *= s
        self.net = mlp([latent_dim, *hidden[::-1], numel])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return out.view([out.shape[0], *self.output_shape])
