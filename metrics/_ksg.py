"""Kraskov–Stögbauer–Grassberger mutual information between two continuous variables.

Kraskov, Stögbauer & Grassberger, "Estimating mutual information", Phys. Rev. E 69, 066138 (2004), algorithm 1 — the
estimator behind ``sklearn.feature_selection.mutual_info_regression``. For every sample i let ε_i be the max-norm
distance to its k-th nearest neighbour in the joint space (x, y), and n_x(i), n_y(i) the numbers of other samples
strictly closer than ε_i in x alone and in y alone. Then

    I(X; Y) ≈ ψ(N) + ψ(k) − <ψ(n_x + 1)> − <ψ(n_y + 1)>,   clipped at 0.

Every one of the k − 1 joint neighbours closer than ε_i is closer in x and in y too, so n_x, n_y ≥ k − 1 and the
estimate never exceeds ψ(N) − ψ(k), which it reaches for Y = X (without ties).

Preprocessing is sklearn's: every variable is divided by its standard deviation (ddof=0, as ``sklearn.preprocessing
.scale``; no centring) and gets a Gaussian jitter of 1e-10 × max(1, mean |value|) that breaks ties, drawn from
``np.random.RandomState(seed)`` — first for all code columns, then for the target — so that :func:`ksg_mi` equals
``mutual_info_regression(x, y, n_neighbors=k, random_state=seed)``. The joint neighbours come from a KD-tree with the
Chebyshev metric on each (x_j, y) plane; the marginal counts from an exact sort-based search (``metrics._knn_mi``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma
from sklearn.neighbors import KDTree

from metrics._knn_mi import _count_within
from metrics.defaults import SEED
from metrics.types import MetricError


def prepare(values: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Scale each column of ``values`` (N, C) to unit std (ddof=0, constant columns untouched) and add sklearn's jitter."""
    x = np.array(values, dtype=np.float64, copy=True)
    std = x.std(axis=0)
    x /= np.where(std > 0, std, 1.0)
    x += 1e-10 * np.maximum(1.0, np.abs(x).mean(axis=0)) * rng.standard_normal(x.shape)
    return x


def ksg_prepared(x: np.ndarray, y: np.ndarray, n_neighbors: int = 3) -> np.ndarray:
    """KSG MI (nats) between each column of the prepared ``x`` (N, D) and the prepared ``y`` (N,); returns (D,)."""
    n, dims = x.shape
    nx = np.empty((n, dims))
    ny = np.empty((n, dims))
    for j in range(dims):
        dist, _ = KDTree(np.column_stack([x[:, j], y]), metric="chebyshev").query(
            np.column_stack([x[:, j], y]), k=n_neighbors + 1
        )
        radius = np.nextafter(dist[:, -1], 0)
        nx[:, j] = _count_within(x[:, j], radius) - 1
        ny[:, j] = _count_within(y, radius) - 1
    mi = digamma(n) + digamma(n_neighbors) - digamma(nx + 1).mean(axis=0) - digamma(ny + 1).mean(axis=0)
    return np.clip(mi, 0.0, None)


def ksg_mi(x: np.ndarray, y: np.ndarray, n_neighbors: int = 3, seed: int = SEED) -> np.ndarray:
    """KSG MI (nats) between each column of ``x`` ((N,) or (N, D)) and ``y`` (N,); returns (D,) ((1,) for 1-D x).

    Equals ``sklearn.feature_selection.mutual_info_regression(x, y, n_neighbors=n_neighbors, random_state=seed)``.
    """
    x2 = np.asarray(x, dtype=np.float64)
    x2 = x2[:, None] if x2.ndim == 1 else x2
    y1 = np.asarray(y, dtype=np.float64).reshape(-1)
    if x2.ndim != 2 or x2.shape[0] != y1.size:
        raise MetricError(f"x must be (N,) or (N, D) with N = len(y) = {y1.size}, got shape {x2.shape}")
    if not 1 <= n_neighbors < y1.size:
        raise MetricError(f"n_neighbors must be in [1, N - 1] = [1, {y1.size - 1}], got {n_neighbors}")
    rng = np.random.RandomState(seed)
    px = prepare(x2, rng)
    py = prepare(y1[:, None], rng)[:, 0]
    return ksg_prepared(px, py, n_neighbors)
