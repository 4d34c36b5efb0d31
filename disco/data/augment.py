"""Factor-aware augmentation: pairs with a known ``shared`` matrix for data without ground-truth factors.

Each augmentation is tagged with the named factor it changes — hue rotation -> colour, rotation -> orientation,
translation -> position, zoom -> scale. For every image the augmenter draws, per augmentation, whether the two views
differ in it (probability ``p_change``). Both views get the same random base parameter; a view pair that differs gets
a parameter at least ``min_delta`` of the range away (both inside the range), so ``shared[b, k]`` is exactly "augmentation k was
not applied differently". This is the augmentation-as-factor idea of contrastive disentanglement (e.g. Wang et al.
2021, "Self-Supervised Learning Disentangled Group Representation as Feature"; von Kügelgen et al. 2021, "Self-Supervised
Learning with Data Augmentations Provably Isolates Content from Style"). Geometry is one ``affine_grid`` +
``grid_sample`` per view; hue is a rotation of RGB about the grey axis (a 3×3 channel mix per image). Pure torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from disco.data.pairs import PairBatch
from disco.errors import ConfigError

AUGMENTATIONS = ("hue", "rotation", "translation", "zoom")
DEFAULT_FACTORS: dict[str, str] = {
    "colour": "hue",
    "orientation": "rotation",
    "position": "translation",
    "scale": "zoom",
}


class FactorAugmenter:
    """Make two views of each image that differ in a random subset of tagged augmentations.

    Args:
        factors: factor name -> augmentation kind (one of :data:`AUGMENTATIONS`), in column order of ``shared``.
        p_change: probability that a pair differs in each augmentation.
        max_rotation: rotations are drawn in ``[-max_rotation, max_rotation]`` radians.
        max_translation: shifts in each axis are drawn in ``[-max_translation, max_translation]`` of the image size.
        zoom_range: zoom factors are drawn log-uniformly in this range.
        min_delta: smallest difference between two differing views, as a fraction of each parameter's range.
        seed: seed of the augmenter's random generator.
    """

    def __init__(
        self,
        factors: Mapping[str, str] | None = None,
        *,
        p_change: float = 0.5,
        max_rotation: float = math.pi,
        max_translation: float = 0.2,
        zoom_range: tuple[float, float] = (0.8, 1.25),
        min_delta: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.factors = dict(DEFAULT_FACTORS if factors is None else factors)
        if not self.factors:
            raise ConfigError("give at least one factor=augmentation pair, e.g. colour=hue")
        for name, kind in self.factors.items():
            if kind not in AUGMENTATIONS:
                raise ConfigError(
                    f"unknown augmentation {kind!r} for factor {name!r}; choose one of {', '.join(AUGMENTATIONS)}"
                )
        if len(set(self.factors.values())) != len(self.factors):
            raise ConfigError("each augmentation may be tagged with one factor only; remove the duplicate")
        if not 0.0 <= p_change <= 1.0 or not 0.0 < min_delta <= 0.5:
            raise ConfigError("p_change must lie in [0, 1] and min_delta in (0, 0.5]")
        if not 0 < zoom_range[0] < zoom_range[1]:
            raise ConfigError(f"zoom_range {zoom_range} must be two increasing positive numbers")
        self.p_change, self.min_delta = p_change, min_delta
        self.ranges: dict[str, tuple[float, float]] = {
            "hue": (-math.pi, math.pi),
            "rotation": (-max_rotation, max_rotation),
            "translation": (-2 * max_translation, 2 * max_translation),  # affine_grid coordinates span 2 per image
            "zoom": (math.log(zoom_range[0]), math.log(zoom_range[1])),
        }
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(self.factors)

    def _gen(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def _params(
        self, kind: str, changed: torch.Tensor, dims: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters ``(B, dims)`` of both views: equal where not changed, at least min_delta·range apart otherwise."""
        lo, hi = self.ranges[kind]
        width = hi - lo
        b, dev = len(changed), changed.device
        base = lo + width * torch.rand(b, dims, generator=gen, device=dev)
        # A step in [gap, width - gap] taken modulo the range keeps both views in range and at least gap apart.
        gap = self.min_delta * width
        step = gap + (width - 2 * gap) * torch.rand(b, dims, generator=gen, device=dev)
        other = lo + torch.remainder(base - lo + step, width)
        return base, torch.where(changed[:, None], other, base)

    def make_pairs(self, x: torch.Tensor) -> PairBatch:
        """Two augmented views of each image of ``x`` (float ``(B, C, H, W)`` in [0, 1]) and their ``shared`` matrix."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ConfigError(f"augmentation needs float images (B, C, H, W), got {x.dtype} {tuple(x.shape)}")
        if "hue" in self.factors.values() and x.shape[1] != 3:
            raise ConfigError(f"hue augmentation needs RGB images, got {x.shape[1]} channel(s); tag no factor with hue")
        gen = self._gen(x.device)
        b = x.shape[0]
        changed = torch.rand(b, len(self.factors), generator=gen, device=x.device) < self.p_change
        params: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for col, kind in enumerate(self.factors.values()):
            params[kind] = self._params(kind, changed[:, col], 2 if kind == "translation" else 1, gen)
        views = [self._apply(x, {k: p[i] for k, p in params.items()}) for i in (0, 1)]
        return PairBatch(views[0], views[1], ~changed, self.factor_names)

    def _apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        b = x.shape[0]
        if {"rotation", "translation", "zoom"} & params.keys():
            zero = torch.zeros(b, device=x.device, dtype=x.dtype)
            angle = params["rotation"][:, 0] if "rotation" in params else zero
            shift = (
                params["translation"] if "translation" in params else torch.zeros(b, 2, device=x.device, dtype=x.dtype)
            )
            scale = params["zoom"][:, 0].exp() if "zoom" in params else zero + 1.0
            # Output point p samples input point R(-angle)(p - shift)/scale: the content turns by angle, grows by scale
            # and moves by shift.
            cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
            inv = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # (B, 2, 2)
            offset = -(inv @ shift[:, :, None])
            grid = F.affine_grid(torch.cat([inv, offset], 2), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        if "hue" in params:
            x = torch.einsum("bij,bjhw->bihw", hue_matrix(params["hue"][:, 0]), x).clamp_(0.0, 1.0)
        return x

    def state_dict(self) -> dict[str, Any]:
        return {str(dev): g.get_state() for dev, g in self._generators.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for dev, st in state.items():
            self._gen(torch.device(dev)).set_state(st.cpu())


def hue_matrix(angle: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 3)`` rotations of RGB space by ``angle`` about the grey axis (Rodrigues' formula): a hue shift."""
    u = torch.full((3,), 1.0 / math.sqrt(3.0), device=angle.device, dtype=angle.dtype)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]], device=angle.device, dtype=angle.dtype)
    cross = cross / math.sqrt(3.0)
    eye = torch.eye(3, device=angle.device, dtype=angle.dtype)
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return c * eye + s * cross + (1 - c) * torch.outer(u, u)
