"""Offline dSprites replica (Matthey et al. 2017): binary 64×64 sprites rendered by vectorised inside tests.

Same factor grid, values, array names, dtypes and order as the official
``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5``: ``imgs`` (N, 64, 64) uint8 0/1, ``latents/classes`` (N, 6) int64,
``latents/values`` (N, 6) float64 — 737,280 images for the full grid. A sprite (square, ellipse or heart) is scaled by
``scale``, rotated by ``orientation`` and centred at a point that moves over ``pos_x``/``pos_y`` in [0, 1], mapped so
the largest rotated sprite stays inside the frame. Pixels are rendered in batches with torch (no per-image loop).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import torch

from disco.data.datasets import DSPRITES
from disco.data.replicas.common import grid_classes, replica_attrs, subsample_steps, write_replica_file

SIZE = 64
SQUARE_HALF = 8.0  # half side of the square at scale 1, in pixels
ELLIPSE_AXES = (10.0, 5.0)  # semi-axes of the ellipse at scale 1
HEART_UNIT = 8.0  # pixels per unit of the heart curve at scale 1
MARGIN = 12.5  # sprite centre range [MARGIN, SIZE - MARGIN]: the largest rotated sprite stays inside the frame
MAX_RADIUS = 11.4  # farthest sprite pixel from the centre at scale 1 (the square's half diagonal is 11.3)
_EPS = 1e-4  # boundary tolerance so that exact symmetries (a square turned by 90°) render identically


def sprite_centre(pos: torch.Tensor) -> torch.Tensor:
    """Pixel coordinate of the sprite centre for a position value in [0, 1]."""
    return MARGIN + pos * (SIZE - 2 * MARGIN)


def render_dsprites(
    shape: np.ndarray, scale: np.ndarray, orientation: np.ndarray, pos_x: np.ndarray, pos_y: np.ndarray
) -> np.ndarray:
    """Render sprites from factor VALUES (shape 1 square, 2 ellipse, 3 heart; radians) -> uint8 ``(n, 64, 64)`` 0/1.

    ``pos_x`` moves the sprite along image columns, ``pos_y`` along rows; orientation turns it counter-clockwise.
    """
    t = {
        k: torch.as_tensor(np.asarray(v, dtype=np.float32))
        for k, v in {"shape": shape, "scale": scale, "angle": orientation, "x": pos_x, "y": pos_y}.items()
    }
    n = len(t["shape"])
    out = torch.zeros((n, SIZE * SIZE), dtype=torch.uint8)
    for value in (1, 2, 3):
        rows = torch.nonzero(t["shape"].round() == value).reshape(-1)
        if len(rows) == 0:
            continue
        cx, cy = sprite_centre(t["x"][rows]), sprite_centre(t["y"][rows])
        # Only a window×window patch around the centre can hold sprite pixels: render that patch and paste it.
        window = min(SIZE, 2 * math.ceil(MAX_RADIUS * float(t["scale"][rows].max())) + 4)
        offsets = torch.arange(window, dtype=torch.long)
        x0 = (cx.floor().long() - window // 2).clamp(0, SIZE - window)
        y0 = (cy.floor().long() - window // 2).clamp(0, SIZE - window)
        cos, sin = torch.cos(t["angle"][rows]), torch.sin(t["angle"][rows])
        inv_s = (1.0 / t["scale"][rows])[:, None, None]
        dx = ((x0[:, None] + offsets).float() + 0.5 - cx[:, None])[:, None, :] * inv_s
        dy = ((y0[:, None] + offsets).float() + 0.5 - cy[:, None])[:, :, None] * inv_s
        # Sprite frame: rotate the pixel offsets by -angle (image rows point down, so this is a visual CCW turn).
        u = dx * cos[:, None, None] - dy * sin[:, None, None]
        v = dx * sin[:, None, None] + dy * cos[:, None, None]
        flat = ((y0[:, None] + offsets) * SIZE)[:, :, None] + (x0[:, None] + offsets)[:, None, :]
        patch = _inside(value, u, v).to(torch.uint8)
        out[rows] = out[rows].scatter_(1, flat.reshape(len(rows), -1), patch.reshape(len(rows), -1))
    return out.reshape(n, SIZE, SIZE).numpy()


def _inside(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    if shape == 1:
        return torch.maximum(u.abs(), v.abs()) <= SQUARE_HALF + _EPS
    if shape == 2:
        a, b = ELLIPSE_AXES
        return (u / a).square() + (v / b).square() <= 1.0 + _EPS
    # Heart curve (x² + y² − 1)³ − x² y³ ≤ 0 with y pointing up, shifted so the heart is centred on the sprite.
    x = u / HEART_UNIT
    y = -v / HEART_UNIT + 0.1
    r = x.square() + y.square() - 1.0
    return r * r * r - x.square() * y * y * y <= _EPS


def dsprites_chunks(classes: np.ndarray, chunk: int = 4096) -> Iterator[np.ndarray]:
    """Images of the given official class rows ``(M, 6)``, ``chunk`` at a time."""
    values = DSPRITES.classes_to_values(classes)
    for start in range(0, len(classes), chunk):
        v = values[start : start + chunk]
        yield render_dsprites(v[:, 1], v[:, 2], v[:, 3], v[:, 4], v[:, 5])


def make_dsprites(
    out_path: str | Path, subsample: Mapping[str, int] | None = None, *, force: bool = False, chunk: int = 4096
) -> Path:
    """Write a dSprites replica (full grid, or every ``step``-th value of the factors named in ``subsample``)."""
    steps = subsample_steps(DSPRITES, subsample)
    classes = grid_classes(DSPRITES, steps)
    return write_replica_file(
        Path(out_path),
        force=force,
        image_key="imgs",
        image_shape=(SIZE, SIZE),
        labels={"latents/classes": classes, "latents/values": DSPRITES.classes_to_values(classes)},
        chunks=dsprites_chunks(classes, chunk),
        attrs=replica_attrs("dsprites", DSPRITES, steps),
    )
