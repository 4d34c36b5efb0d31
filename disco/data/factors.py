"""Factor spaces: the grid of generative factors behind a ground-truth dataset.

A dataset such as dSprites (Matthey et al. 2017) or 3D Shapes (Burgess & Kim 2018) enumerates every combination of its
factors exactly once, last factor fastest. Flat index and per-factor class indices are then related by mixed-radix
arithmetic, which is what the samplers use to draw pairs without per-item Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from disco.errors import ConfigError


@dataclass(frozen=True)
class FactorSpace:
    """Names, sizes and values of a dataset's factors, in storage order (last factor varies fastest).

    ``values[k]`` holds the float value of each class of factor ``k`` (as stored in the official ``latents_values`` /
    ``labels`` arrays); when omitted the class indices themselves are used.
    """

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    values: tuple[np.ndarray, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.sizes):
            raise ConfigError(
                f"factor space has {len(self.names)} names but {len(self.sizes)} sizes; give one size per name"
            )
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"factor names {self.names} repeat; give each factor a unique name")
        if any(s < 1 for s in self.sizes):
            raise ConfigError(f"factor sizes {self.sizes} must all be >= 1")
        if not self.values:
            object.__setattr__(self, "values", tuple(np.arange(s, dtype=np.float64) for s in self.sizes))
        if len(self.values) != len(self.sizes) or any(
            len(v) != s for v, s in zip(self.values, self.sizes, strict=False)
        ):
            raise ConfigError("factor values must give exactly one value per class of each factor")

    @property
    def num_factors(self) -> int:
        return len(self.sizes)

    @property
    def size(self) -> int:
        """Number of grid points (images in a full dataset)."""
        return int(np.prod(self.sizes, dtype=np.int64))

    @property
    def strides(self) -> tuple[int, ...]:
        """Flat-index stride of each factor (last factor has stride 1)."""
        out, acc = [], 1
        for s in reversed(self.sizes):
            out.append(acc)
            acc *= s
        return tuple(reversed(out))

    def index(self, name: str) -> int:
        """Position of factor ``name``; raises :class:`ConfigError` naming the valid names."""
        if name not in self.names:
            raise ConfigError(f"unknown factor {name!r}; this dataset's factors are {', '.join(self.names)}")
        return self.names.index(name)

    def classes_to_index(self, classes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Flat index of each row of per-factor classes ``(..., K)``; works on numpy arrays and torch tensors."""
        if isinstance(classes, torch.Tensor):
            strides_t = torch.tensor(self.strides, dtype=torch.long, device=classes.device)
            return (classes.long() * strides_t).sum(-1)
        return (np.asarray(classes, dtype=np.int64) * np.asarray(self.strides, dtype=np.int64)).sum(-1)

    def index_to_classes(self, index: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Per-factor classes ``(..., K)`` of each flat index; inverse of :meth:`classes_to_index`."""
        if isinstance(index, torch.Tensor):
            strides_t = torch.tensor(self.strides, dtype=torch.long, device=index.device)
            sizes_t = torch.tensor(self.sizes, dtype=torch.long, device=index.device)
            return (index.long().unsqueeze(-1) // strides_t) % sizes_t
        idx = np.asarray(index, dtype=np.int64)[..., None]
        return (idx // np.asarray(self.strides, dtype=np.int64)) % np.asarray(self.sizes, dtype=np.int64)

    def classes_to_values(self, classes: np.ndarray) -> np.ndarray:
        """Float factor values ``(N, K)`` of class indices ``(N, K)``."""
        classes = np.asarray(classes, dtype=np.int64)
        return np.stack([self.values[k][classes[:, k]] for k in range(self.num_factors)], axis=1)

    def subset(self, steps: Sequence[int]) -> FactorSpace:
        """The sub-grid that keeps every ``steps[k]``-th class of factor ``k`` (steps must divide the sizes)."""
        if len(steps) != self.num_factors:
            raise ConfigError(f"need one subsample step per factor ({self.num_factors}), got {len(steps)}")
        for name, size, step in zip(self.names, self.sizes, steps, strict=True):
            if step < 1 or size % step:
                raise ConfigError(
                    f"subsample step {step} for factor {name!r} does not divide its size {size}; pick a divisor of {size}"
                )
        return FactorSpace(
            self.names,
            tuple(s // st for s, st in zip(self.sizes, steps, strict=True)),
            tuple(v[::st] for v, st in zip(self.values, steps, strict=True)),
        )
