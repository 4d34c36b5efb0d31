"""An encoder with a private branch for the domain subspaces (Bousmalis et al. 2016, "Domain Separation Networks").

A transfer run aligns the shared subspaces across domains and keeps the domain in the private ones (names starting
with ``domain``). When both read one trunk, aligning the shared code makes the trunk itself domain-invariant and the
private code loses the domain with it (measured on Noisy-dSprites: domain classifier on the private subspace 0.54-0.58
with a 0.1-weight ``domain_head``). Here, as in DSN, the private columns come from their own small convolutional
encoder of the image, so the shared encoder may forget the domain while the private branch keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from disco.models.colour import GreyWorld


class StylePool(nn.Module):
    """Instance statistics of the feature maps of each convolution: the per-channel mean and standard deviation, the
    "style" of an image in the sense of Huang & Belongie 2017 ("Arbitrary Style Transfer in Real-time with Adaptive
    Instance Normalization"). A domain shift (a colour cast, pixel noise, a texture, blur) moves these statistics
    wherever the sprite is; global average pooling of the last layer alone mostly sees how much of the image the sprite
    covers, i.e. its scale."""

    def __init__(self, convs: Sequence[nn.Module], log: bool = False) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats: list[torch.Tensor] = []
        h = x
        for conv in self.convs:
            h = torch.relu(conv(h))
            stats.append(h.mean(dim=(2, 3)))
            stats.append(h.flatten(2).std(dim=2))
        out = torch.cat(stats, dim=1)
        return torch.log(out + 1e-3) if self.log else out


class PrivateBranchEncoder(nn.Module):
    """``base`` encoder for every column but ``columns``, which a small conv net (two stride-2 4×4 convolutions of
    ``width`` and ``2·width`` channels, ReLU, a pooling, a linear layer) computes from the image instead. ``pool``:
    ``avg`` (global average pooling of the last layer), ``style`` (per-channel mean and standard deviation of both
    layers, :class:`StylePool`) or ``logstyle`` (their logarithms). The log-variance of the private columns is 0 (the private code is deterministic).

    Args:
        base: factory name of the shared encoder (``conv64``, ``resnet64``).
        base_kwargs: its keyword arguments (``in_channels``, ``latent_dim``, ...).
        columns: code columns of the private subspaces.
        in_channels: image channels.
        width: channels of the branch's first convolution.
        pool: ``avg``, ``style`` or ``logstyle``.
        shared_input: ``raw`` (the shared encoder reads the image) or ``greyworld`` (it reads the image divided by its
            per-channel mean, :class:`disco.models.colour.GreyWorld`: blind to a colour cast, while the private branch
            still reads the raw image and so the cast).
    """

    def __init__(
        self,
        base: str,
        base_kwargs: dict[str, Any],
        columns: list[int],
        in_channels: int = 1,
        width: int = 16,
        pool: str = "avg",
        shared_input: str = "raw",
    ) -> None:
        super().__init__()
        from disco.models.factory import build_encoder

        if not columns:
            raise ValueError("a private branch needs at least one private column")
        if shared_input not in ("raw", "greyworld"):
            raise ValueError(f"unknown shared_input {shared_input!r}; use raw or greyworld")
        self.shared = build_encoder(base, **base_kwargs)
        self.shared_input: nn.Module = GreyWorld() if shared_input == "greyworld" else nn.Identity()
        convs = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
        ]
        if pool == "avg":
            self.private = nn.Sequential(
                convs[0],
                nn.ReLU(),
                convs[1],
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
                nn.Linear(2 * width, len(columns)),
            )
        elif pool in ("style", "logstyle"):
            self.private = nn.Sequential(StylePool(convs, log=pool == "logstyle"), nn.Linear(6 * width, len(columns)))
        else:
            raise ValueError(f"unknown private branch pool {pool!r}; use avg, style or logstyle")
        self.register_buffer("columns", torch.tensor(columns, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.shared(self.shared_input(x))
        private = self.private(x)
        mean = mean.index_copy(1, self.columns, private.to(mean.dtype))
        logvar = logvar.index_copy(1, self.columns, torch.zeros_like(private, dtype=logvar.dtype))
        return mean, logvar
