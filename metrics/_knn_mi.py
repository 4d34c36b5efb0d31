"""k-nearest-neighbour mutual information between continuous codes and a discrete factor (Ross 2014).

Ross, "Mutual Information between Discrete and Continuous Data Sets", PLoS ONE 2014 — the estimator behind
``sklearn.feature_selection.mutual_info_classif``. For every sample i of class c (class size N_c, k = min(k, N_c − 1)),
let r_i be the distance (max-norm) to its k-th nearest neighbour within class c and m_i the number of samples of any
class strictly closer than r_i (i included). Then

    I(X; Y) ≈ ψ(N) + <ψ(k)> − <ψ(N_c)> − <ψ(m_i)>,   clipped at 0,

over the samples whose class has more than one member. As in sklearn, each code column is scaled to unit standard
deviation (ddof=1, no centring) and a 1e-10-sized Gaussian jitter (seeded) breaks ties, so the estimate is
deterministic for a seed. One-dimensional codes use an exact sort-based neighbour search vectorised over columns;
multi-dimensional subspaces use a KD-tree with the Chebyshev metric.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma
from sklearn.neighbors import KDTree


def prepare_continuous(codes: np.ndarray, seed: int) -> np.ndarray:
    """Scale each column to unit std (ddof=1, constant columns untouched) and add a seeded 1e-10 jitter, as sklearn."""
    x = np.array(codes, dtype=np.float64, copy=True)
    std = x.std(axis=0, ddof=1) if x.shape[0] > 1 else np.ones(x.shape[1])
    x /= np.where(std > 0, std, 1.0)
    rng = np.random.default_rng(seed)
    x += 1e-10 * np.maximum(1.0, np.abs(x).mean(axis=0)) * rng.standard_normal(x.shape)
    return x


def _kth_within_class_1d(values: np.ndarray, k: int) -> np.ndarray:
    """Distance to the k-th nearest other sample of each entry, per column of ``values`` (n, D), by sorting."""
    n = values.shape[0]
    order = np.argsort(values, axis=0, kind="stable")
    s = np.take_along_axis(values, order, axis=0)
    cand = np.full((n, values.shape[1], 2 * k), np.inf)
    for step in range(1, k + 1):
        cand[step:, :, step - 1] = s[step:] - s[:-step]
        cand[:-step, :, k + step - 1] = s[step:] - s[:-step]
    kth_sorted = np.partition(cand, k - 1, axis=2)[:, :, k - 1]
    out = np.empty_like(kth_sorted)
    np.put_along_axis(out, order, kth_sorted, axis=0)
    return out


def _count_within(values: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Number of entries j with ``|values[j] - values[i]| <= radius[i]`` for each i (differences as computed, exactly)."""
    s = np.sort(values)
    n = s.size
    hi = np.searchsorted(s, values + radius, side="right")
    lo = np.searchsorted(s, values - radius, side="left")
    for _ in range(64):
        down = (hi > 0) & (s[np.maximum(hi - 1, 0)] - values > radius)
        up = (hi < n) & (s[np.minimum(hi, n - 1)] - values <= radius)
        right = (lo < n) & (values - s[np.minimum(lo, n - 1)] > radius)
        left = (lo > 0) & (values - s[np.maximum(lo - 1, 0)] <= radius)
        if not (down.any() or up.any() or right.any() or left.any()):
            break
        hi = hi - down + up
        lo = lo + right - left
    return hi - lo


def knn_mi_columns(x: np.ndarray, labels: np.ndarray, n_neighbors: int = 3) -> np.ndarray:
    """Ross MI (nats) between each column of ``x`` (N, D) — already prepared — and ``labels`` (N,); returns (D,)."""
    y = np.asarray(labels).reshape(-1)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = counts[inverse] > 1
    if keep.sum() == 0 or classes.size < 2:
        return np.zeros(x.shape[1])
    x, inverse = x[keep], inverse[keep]
    n = x.shape[0]
    label_counts = counts[inverse].astype(np.float64)
    radius = np.empty(x.shape)
    k_all = np.empty(n)
    for c in np.flatnonzero(counts > 1):
        mask = inverse == c
        k = min(n_neighbors, int(counts[c]) - 1)
        radius[mask] = np.nextafter(_kth_within_class_1d(x[mask], k), 0)
        k_all[mask] = k
    m_all = np.empty(x.shape)
    for d in range(x.shape[1]):
        m_all[:, d] = np.maximum(_count_within(x[:, d], radius[:, d]), 1)
    mi = digamma(n) + digamma(k_all).mean() - digamma(label_counts).mean() - digamma(m_all).mean(axis=0)
    return np.clip(mi, 0.0, None)


def knn_mi_joint(x: np.ndarray, labels: np.ndarray, n_neighbors: int = 3) -> float:
    """Ross MI (nats) between the joint multi-dimensional code ``x`` (N, w) — already prepared — and ``labels``."""
    y = np.asarray(labels).reshape(-1)
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = counts[inverse] > 1
    if keep.sum() == 0 or classes.size < 2:
        return 0.0
    x, inverse = x[keep], inverse[keep]
    n = x.shape[0]
    label_counts = counts[inverse].astype(np.float64)
    radius = np.empty(n)
    k_all = np.empty(n)
    for c in np.flatnonzero(counts > 1):
        mask = inverse == c
        k = min(n_neighbors, int(counts[c]) - 1)
        dist, _ = KDTree(x[mask], metric="chebyshev").query(x[mask], k=k + 1)
        radius[mask] = np.nextafter(dist[:, -1], 0)
        k_all[mask] = k
    m_all = KDTree(x, metric="chebyshev").query_radius(x, radius, count_only=True).astype(np.float64)
    mi = digamma(n) + digamma(k_all).mean() - digamma(label_counts).mean() - digamma(np.maximum(m_all, 1.0)).mean()
    return max(float(mi), 0.0)
