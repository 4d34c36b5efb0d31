"""Bulk sampling of factor classes for the metrics' protocols.

Every protocol of disentanglement_lib (Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised
Learning of Disentangled Representations") draws factor classes uniformly over the grid. The interventional scores
(FactorVAE score, Kim & Mnih 2018; BetaVAE score, Higgins et al. 2017) draw batches in which one factor is held fixed.
The reference draws one batch at a time in a Python loop; here every batch of a protocol is drawn in one vectorised
call so that the representer can be called once on all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.types import MetricError

#: Number of classes of each factor, in factor order.
FactorSizes = Sequence[int] | np.ndarray


def check_factor_sizes(factor_sizes: FactorSizes) -> np.ndarray:
    """Return ``factor_sizes`` as an int64 array, raising :class:`MetricError` unless it is a non-empty list of ints >= 1."""
    sizes = np.asarray(list(factor_sizes))
    if sizes.ndim != 1 or sizes.size == 0:
        raise MetricError(f"factor_sizes must be a non-empty list of integers, got {list(factor_sizes)!r}")
    if not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
        raise MetricError(f"factor_sizes must be integers >= 1, got {list(factor_sizes)!r}")
    return sizes.astype(np.int64)


def varying_factors(factor_sizes: FactorSizes) -> np.ndarray:
    """Indices of the factors with more than one class.

    A factor with a single class (dSprites' colour) cannot be intervened on; disentanglement_lib leaves it out of the
    dSprites factors, and so do the interventional protocols here. Raises :class:`MetricError` when none varies.
    """
    sizes = check_factor_sizes(factor_sizes)
    idx = np.flatnonzero(sizes > 1)
    if idx.size == 0:
        raise MetricError(f"no factor has more than one class (factor_sizes={sizes.tolist()}); nothing to score")
    return idx


def sample_factors(factor_sizes: FactorSizes, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` grid points uniformly: an ``(n, K)`` int64 array, column ``k`` uniform on ``[0, factor_sizes[k])``."""
    sizes = check_factor_sizes(factor_sizes)
    return rng.integers(0, sizes, size=(int(n), sizes.size), dtype=np.int64)


def sample_fixed_factor_batches(
    factor_sizes: FactorSizes, num_batches: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Batches in which one factor is fixed and every other factor is uniform (FactorVAE score, Kim & Mnih 2018).

    For each batch a factor ``k`` is drawn uniformly among the varying factors (:func:`varying_factors`), the batch's
    factors are drawn uniformly and column ``k`` is overwritten by a single uniform value, as in disentanglement_lib.

    Returns ``(fixed, classes)``: ``fixed`` (num_batches,) int64 factor indices, ``classes`` (num_batches, batch_size, K).
    """
    sizes = check_factor_sizes(factor_sizes)
    candidates = varying_factors(sizes)
    fixed = candidates[rng.integers(0, candidates.size, size=int(num_batches))]
    classes = rng.integers(0, sizes, size=(int(num_batches), int(batch_size), sizes.size), dtype=np.int64)
    values = rng.integers(0, sizes[fixed], dtype=np.int64)
    classes[np.arange(fixed.size), :, fixed] = values[:, None]
    return fixed, classes


def sample_shared_factor_pairs(
    factor_sizes: FactorSizes, num_batches: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batches of pairs sharing one factor (BetaVAE score, Higgins et al. 2017).

    For each batch a factor ``k`` is drawn uniformly among the varying factors; both sides of every pair are drawn
    uniformly and side b takes side a's class of factor ``k`` (disentanglement_lib's ``factors2[:, k] = factors1[:, k]``).

    Returns ``(shared, classes_a, classes_b)`` with shapes (num_batches,), (num_batches, batch_size, K) twice.
    """
    sizes = check_factor_sizes(factor_sizes)
    candidates = varying_factors(sizes)
    shared = candidates[rng.integers(0, candidates.size, size=int(num_batches))]
    shape = (int(num_batches), int(batch_size), sizes.size)
    classes_a = rng.integers(0, sizes, size=shape, dtype=np.int64)
    classes_b = rng.integers(0, sizes, size=shape, dtype=np.int64)
    rows = np.arange(shared.size)
    classes_b[rows, :, shared] = classes_a[rows, :, shared]
    return shared, classes_a, classes_b


def grid_index(classes: np.ndarray, factor_sizes: FactorSizes) -> np.ndarray:
    """Flat row-major grid index of each row of ``classes`` (..., K): the last factor varies fastest (dSprites layout)."""
    sizes = check_factor_sizes(factor_sizes)
    strides = np.ones(sizes.size, dtype=np.int64)
    strides[:-1] = np.cumprod(sizes[::-1])[::-1][1:]
    return np.asarray(classes, dtype=np.int64) @ strides


def split_indices(n: int, num_train: int, num_test: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random disjoint train/test split of ``range(n)``; raises :class:`MetricError` when ``n`` is too small."""
    if num_train + num_test > n:
        raise MetricError(f"needs {num_train + num_test} samples ({num_train} train + {num_test} test), got {n}")
    perm = rng.permutation(n)
    return perm[:num_train], perm[num_train : num_train + num_test]
