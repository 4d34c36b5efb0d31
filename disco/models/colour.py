"""Colour constancy of an encoder's input: the grey-world normalisation of Buchsbaum 1980 ("A spatial processor model
for object colour perception", J. Franklin Inst. 310).

Grey world assumes that the average colour of a scene is grey: each channel of an image is divided by its mean over
the image, ``x_k / mean(x_k)``. An image multiplied by one colour ``c`` per channel (a colour cast,
:class:`disco.data.domains.ShiftDomain`, ``color`` dSprites) therefore maps to the same input as the image itself:
``(c_k x_k) / mean(c_k x_k) = x_k / mean(x_k)``. What survives is the colour of each
region relative to the image's average colour; a uniform image becomes all ones, whatever its colour.
"""

from __future__ import annotations

import torch
from torch import nn


class GreyWorld(nn.Module):
    """``x / max(mean over H, W of x, eps)`` per image and channel, for images ``(B, C, H, W)`` in [0, 1]; ``eps``
    keeps an all-black channel at 0 instead of dividing by zero."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        if eps <= 0:
            raise ValueError(f"grey-world eps must be > 0, got {eps}")
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.mean(dim=(2, 3), keepdim=True).clamp_min(self.eps)
