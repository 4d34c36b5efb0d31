"""Domain shifts of any image dataset: seeded, on-device transforms that change appearance and keep every factor.

The dSprites variants of disentanglement_lib (Locatello et al. 2019, ``data/ground_truth/dsprites.py``), used for
transfer by Dittadi et al. 2021 ("On the Transfer of Disentangled Representations in Realistic Settings") and Dapueto
et al. 2024 (Color-dSprites to Noisy-dSprites), with images in [0, 1] and grey images made RGB first:

* ``plain``: the images unchanged (RGB);
* ``color``: the image times one colour ``c ~ U(0.5, 1)^3`` (the black background stays black);
* ``noisy``: ``min(x + u, 1)`` with ``u ~ U(0, 1)`` per pixel and channel (the white sprite stays white);
* ``texture``: scream-dSprites with a procedural texture in place of the painting (which cannot be shipped):
  ``background = (random 64×64 crop of the texture + v) / 2`` with ``v ~ U(0, 1)^3`` per image, and the sprite's
  pixels (grey value > 0.5) become ``1 − background``;
* ``shift`` (for 3D Shapes and other colour renders): blur with the 3×3 binomial kernel (edge pixels replicated), a
  colour cast ``c ~ U(0.8, 1.2)^3``, and noise ``U(−0.08, 0.08)`` per pixel and channel, clipped to [0, 1].

Randomness is a function of (domain seed, image key): every image (its dataset row is the key) is rendered the same
way in every batch, on any device, so a domain is a fixed dataset, not an augmentation. The draws come from a counter-
based integer hash on the device (:func:`uniform`), so no generator state travels and no per-item Python runs.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F

_MASK = 0xFFFFFFFF
_M1 = 0x7FEB352D  # odd multipliers below 2**31: products of 32-bit values stay inside int64
_M2 = 0x5BD1E995


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (xorshift-multiply rounds) of int64 tensors holding values in [0, 2^32)."""
    x = x & _MASK
    x = x ^ (x >> 16)
    x = (x * _M1) & _MASK
    x = x ^ (x >> 15)
    x = (x * _M2) & _MASK
    return x ^ (x >> 16)


def uniform(keys: torch.Tensor, count: int, *, seed: int, stream: int) -> torch.Tensor:
    """``(B, count)`` float32 draws in [0, 1), a fixed function of ``(seed, stream, key, position)``; on ``keys``'s
    device. Different streams of one domain are independent draws for the same image."""
    device = keys.device
    salt = _mix(torch.tensor([(seed * 1_000_003 + stream) & _MASK], dtype=torch.long, device=device))
    base = _mix((keys.to(torch.long) & _MASK) ^ salt)
    pos = _mix(torch.arange(count, dtype=torch.long, device=device) + 0x632BE5AB)
    bits = _mix(_mix(base[:, None] ^ pos[None, :]) + base[:, None])
    return (bits >> 8).to(torch.float32) / float(1 << 24)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Float ``(B, C, H, W)`` images with 3 channels (a grey channel repeated)."""
    if images.shape[1] == 3:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")


class Domain(ABC):
    """A domain shift: ``domain(images, keys)`` maps float images in [0, 1] ``(B, C, H, W)`` and their keys ``(B,)``
    (dataset rows) to the shifted images ``(B, 3, H, W)``. Subclasses set ``name`` and implement :meth:`apply`."""

    name = "domain"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)

    def __call__(self, images: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or keys.shape != (images.shape[0],):
            raise ValueError(
                f"expected images (B, C, H, W) and keys (B,), got {tuple(images.shape)}, {tuple(keys.shape)}"
            )
        return self.apply(to_rgb(images.float()), keys.to(images.device))

    @abstractmethod
    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """The shifted images ``(B, 3, H, W)`` of RGB images ``rgb`` with keys ``keys``."""

    def draws(self, keys: torch.Tensor, count: int, stream: int) -> torch.Tensor:
        """This domain's ``(B, count)`` uniform draws of ``stream`` for images ``keys``."""
        return uniform(keys, count, seed=self.seed, stream=stream)


class PlainDomain(Domain):
    """The images as they are, made RGB: the source domain of a transfer to a colour domain."""

    name = "plain"

    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return rgb


class ColorDomain(Domain):
    """Color-dSprites: the image times one colour ``U(0.5, 1)^3`` per image."""

    name = "color"

    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        colour = 0.5 + 0.5 * self.draws(keys, 3, stream=0)
        return rgb * colour[:, :, None, None]


class NoisyDomain(Domain):
    """Noisy-dSprites: ``min(x + U(0, 1), 1)`` per pixel and channel."""

    name = "noisy"

    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        noise = self.draws(keys, rgb[0].numel(), stream=0).view(rgb.shape)
        return torch.clamp(rgb + noise, max=1.0)


def procedural_texture(size: int = 256, seed: int = 0) -> torch.Tensor:
    """A ``(3, size, size)`` texture in [0, 1]: per channel a sum of 12 random oriented sine gratings (wavelengths 4 to
    64 pixels) warped by a low-frequency field, min-max scaled; the stand-in for scream-dSprites' painting."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij"
    )
    warp = 6.0 * torch.sin(2 * math.pi * (xx + 2 * yy) / size)
    channels = []
    for _ in range(3):
        acc = torch.zeros(size, size, dtype=torch.float64)
        for _ in range(12):
            theta = float(torch.rand(1, generator=g)) * math.pi
            wavelength = 4.0 * 16.0 ** float(torch.rand(1, generator=g))
            phase = float(torch.rand(1, generator=g)) * 2 * math.pi
            proj = (xx + warp) * math.cos(theta) + (yy - warp) * math.sin(theta)
            acc += torch.sin(2 * math.pi * proj / wavelength + phase) / wavelength**0.5
        channels.append((acc - acc.min()) / (acc.max() - acc.min()))
    return torch.stack(channels).to(torch.float32)


class TextureDomain(Domain):
    """Scream-dSprites with :func:`procedural_texture`: background = (random crop + ``U(0, 1)^3``) / 2, and the
    sprite's pixels (mean over channels > 0.5) take ``1 − background``."""

    name = "texture"

    def __init__(self, seed: int = 0, texture_size: int = 256) -> None:
        super().__init__(seed)
        self.texture = procedural_texture(texture_size, seed)

    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        size, h, w = self.texture.shape[1], rgb.shape[2], rgb.shape[3]
        if h > size or w > size:
            raise ValueError(f"images of {h}x{w} are larger than the {size}x{size} texture")
        texture = self.texture.to(rgb.device)
        offset = self.draws(keys, 2, stream=0)
        top = (offset[:, 0] * (size - h + 1)).long()
        left = (offset[:, 1] * (size - w + 1)).long()
        rows = (top[:, None] + torch.arange(h, device=rgb.device))[:, :, None]  # (B, h, 1)
        cols = (left[:, None] + torch.arange(w, device=rgb.device))[:, None, :]  # (B, 1, w)
        crop = texture[:, rows, cols].permute(1, 0, 2, 3)  # (B, 3, h, w)
        background = (crop + self.draws(keys, 3, stream=1)[:, :, None, None]) / 2
        sprite = rgb.mean(dim=1, keepdim=True) > 0.5
        return torch.where(sprite, 1.0 - background, background)


class ShiftDomain(Domain):
    """A render shift for colour datasets (3D Shapes): 3×3 binomial blur, colour cast ``U(0.8, 1.2)^3``, noise
    ``U(−0.08, 0.08)`` per pixel and channel, clipped to [0, 1]."""

    name = "shift"

    def apply(self, rgb: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        k1 = torch.tensor([1.0, 2.0, 1.0], device=rgb.device) / 4
        kernel = (k1[:, None] * k1[None, :]).expand(3, 1, 3, 3)
        blurred = F.conv2d(F.pad(rgb, (1, 1, 1, 1), mode="replicate"), kernel, groups=3)
        cast = 0.8 + 0.4 * self.draws(keys, 3, stream=0)
        noise = 0.16 * self.draws(keys, rgb[0].numel(), stream=1).view(rgb.shape) - 0.08
        return torch.clamp(blurred * cast[:, :, None, None] + noise, 0.0, 1.0)


#: Domain name -> class; a new domain is one class and one line here.
DOMAINS: dict[str, type[Domain]] = {
    d.name: d for d in (PlainDomain, ColorDomain, NoisyDomain, TextureDomain, ShiftDomain)
}


def make_domain(name: str, seed: int = 0) -> Domain:
    """The domain ``name`` (see :data:`DOMAINS`) with draws seeded by ``seed``; an unknown name is a ValueError line."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose from {', '.join(DOMAINS)}")
    return DOMAINS[name](seed)
