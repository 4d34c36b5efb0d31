"""Deterministic train/validation/test split of a dataset by index."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from disco.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, torch.Tensor]:
    """Disjoint, covering, sorted index sets ``{"train", "val", "test"}`` of ``range(n)``.

    A seeded random permutation is cut at the cumulative fractions (rounded down; the remainder goes to "train"), so
    the same ``(n, fractions, seed)`` always gives the same split on any machine.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions {tuple(fractions)} must be three non-negative numbers summing to 1, e.g. 0.8,0.1,0.1"
        )
    if n < 0:
        raise ConfigError(f"cannot split {n} items; n must be >= 0")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    n_val, n_test = int(n * fractions[1]), int(n * fractions[2])
    n_train = n - n_val - n_test
    parts = torch.split(perm, [n_train, n_val, n_test])
    return {name: part.sort().values for name, part in zip(SPLIT_NAMES, parts, strict=True)}
