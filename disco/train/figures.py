"""Images of a run: latent traversal grids per subspace and metric heatmaps (matplotlib Agg, saved as PNG).

Traversals follow Higgins et al. 2017: decode a base code while sweeping one latent dimension at a time; a disentangled
subspace changes one factor only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from disco.models.subspaces import SubspaceSpec


def traversal_images(
    decoder: nn.Module, base: torch.Tensor, spec: SubspaceSpec, low: torch.Tensor, high: torch.Tensor, steps: int = 8
) -> dict[str, np.ndarray]:
    """Per subspace, an image ``(rows·H, steps·W, C)`` in [0, 1]: one row per dimension ``d`` of the subspace, swept
    over ``linspace(low[d], high[d], steps)`` (e.g. the 2nd and 98th percentiles of the codes) with the other
    dimensions held at ``base`` (D,)."""
    out: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for sub in spec:
            codes = base.repeat(sub.width * steps, 1)
            for j in range(sub.width):
                d = sub.start + j
                codes[j * steps : (j + 1) * steps, d] = torch.linspace(float(low[d]), float(high[d]), steps)
            imgs = torch.sigmoid(decoder(codes)).float().cpu()
            c, h, w = imgs.shape[1:]
            grid = imgs.reshape(sub.width, steps, c, h, w).permute(0, 3, 1, 4, 2).reshape(sub.width * h, steps * w, c)
            out[sub.name] = grid.numpy()
    return out


def save_image(image: np.ndarray, path: Path, title: str) -> Path:
    """Save an ``(H, W, C)`` image in [0, 1] as a titled PNG."""
    fig, ax = plt.subplots(figsize=(max(2.0, image.shape[1] / 64), max(1.5, image.shape[0] / 64 + 0.4)))
    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return _save(fig, path)


def save_heatmap(
    matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], title: str, path: Path
) -> Path:
    """Save a labelled heatmap of a 2-D array (e.g. the MI matrix latents × factors) as PNG."""
    m = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * m.shape[1], 1.0 + 0.35 * m.shape[0]))
    im = ax.imshow(m, cmap="viridis", aspect="auto")
    ax.set_xticks(range(m.shape[1]), labels=list(col_labels), rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(m.shape[0]), labels=list(row_labels), fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def latent_labels(spec: SubspaceSpec) -> list[str]:
    """``name[i]`` for every code dimension, in code order."""
    return [f"{s.name}[{i}]" if s.width > 1 else s.name for s in spec for i in range(s.width)]
