"""Shared input validation and the discrete information-theory kernels of the metrics.

The discretisation and the plug-in estimators follow disentanglement_lib (Locatello et al. 2019, "Challenging Common
Assumptions in the Unsupervised Learning of Disentangled Representations", ``evaluation/metrics/utils.py``):
``_histogram_discretize`` (equal-width bins over the sample, per latent), ``discrete_mutual_info`` and
``discrete_entropy`` (sklearn's ``mutual_info_score``, in nats). Here the whole ``(D, K)`` MI matrix comes from one
``np.bincount`` per factor on combined indices instead of ``D * K`` calls to sklearn.

Row conventions: codes are ``(N, D)`` floats, factors ``(N, K)`` integer class indices (one row per sample).
"""

from __future__ import annotations

import numpy as np

from metrics.types import MetricError

#: Above this many cells (or when the table dwarfs the data), the MI matrix is computed pair by pair on sparse joint
#: keys instead of one dense bincount.
_DENSE_CELLS_LIMIT = 20_000_000


def finite_2d(values: np.ndarray, name: str, *, columns: str, fix: str) -> np.ndarray:
    """``values`` as a float64 ``(N, C)`` array (a 1-D array is one column): non-empty, numeric and finite, else one
    :class:`MetricError` line naming ``name``, the ``columns`` it should have and, for NaN/inf, the ``fix``."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricError(f"{name} must be a non-empty 2-D array (N samples, {columns}), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise MetricError(f"{name} must be numeric (real numbers), got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = int(bad.any(axis=1).sum())
        raise MetricError(f"{name} contain NaN or inf in {rows} of {arr.shape[0]} rows; {fix}")
    return arr


def check_codes(codes: np.ndarray, *, name: str = "codes") -> np.ndarray:
    """Validate codes ``(N, D)``: finite, 2-D, non-empty, not all dimensions constant. Returns float64."""
    arr = finite_2d(codes, name, columns="D dims", fix="check the encoder output")
    if arr.shape[0] > 1 and np.all(arr.max(axis=0) == arr.min(axis=0)):
        raise MetricError(f"all {arr.shape[1]} {name} dimensions are constant; the encoder output is collapsed")
    return arr


def check_factors(factors: np.ndarray) -> np.ndarray:
    """Validate factors ``(N, K)``: 2-D, non-empty, integer class indices (floats holding integers are accepted)."""
    arr = np.asarray(factors)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise MetricError(f"factors must be a non-empty 2-D array (N samples, K factors), got shape {arr.shape}")
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if not np.issubdtype(arr.dtype, np.floating):
        raise MetricError(f"factors must be integer class indices, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise MetricError("factors must be integer class indices, got non-integer values; pass classes, not values")
    return arr.astype(np.int64)


def check_codes_factors(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of codes ``(N, D)`` and factors ``(N, K)``; returns (float64 codes, int64 factors).

    Raises :class:`MetricError` with a one-line message for NaN/inf codes, all-constant codes, mismatched lengths or
    non-integer factors.
    """
    arr_f = check_factors(factors)
    arr_c = check_codes(codes)
    if arr_c.shape[0] != arr_f.shape[0]:
        raise MetricError(
            f"codes have {arr_c.shape[0]} rows but factors have {arr_f.shape[0]}; pass one factor row per code row"
        )
    return arr_c, arr_f


def require_samples(n: int, needed: int, metric: str) -> None:
    """Raise :class:`MetricError` when a protocol needs ``needed`` samples and only ``n`` are given."""
    if n < needed:
        raise MetricError(
            f"{metric} needs at least {needed} samples but got {n}; pass more samples or lower num_train/num_test"
        )


def subsample_rows(n: int, num: int | None, seed: int, metric: str) -> np.ndarray | slice:
    """Rows of the protocol's sample: every row (a slice, no copy) when ``num`` is None or ``n``, else a seeded subset."""
    if num is None or num == n:
        return slice(None)
    require_samples(n, num, metric)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=num, replace=False))


def discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Equal-width histogram discretisation of each latent over the sample (disentanglement_lib ``_histogram_discretize``).

    Column ``d`` becomes ``np.digitize(x, np.histogram(x, num_bins)[1][:-1])``: integers in ``1..num_bins``; a
    constant column maps to a single bin. Returns int64 ``(N, D)``.
    """
    arr = np.asarray(codes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if num_bins < 1:
        raise MetricError(f"num_bins must be >= 1, got {num_bins}")
    cols = np.ascontiguousarray(arr.T)
    out = np.empty(cols.shape, dtype=np.int64)
    for d, col in enumerate(cols):
        out[d] = np.digitize(col, np.histogram_bin_edges(col, bins=num_bins)[:-1])
    return out.T


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel each column of an integer array ``(N, C)`` to ``0..n_c-1``; returns (labels, number of classes per column)."""
    arr = np.asarray(labels)
    if arr.ndim == 1:
        arr = arr[:, None]
    cols = np.ascontiguousarray(arr.T, dtype=np.int64)
    out = np.empty(cols.shape, dtype=np.int64)
    counts = np.empty(cols.shape[0], dtype=np.int64)
    for c, col in enumerate(cols):
        lo, hi = int(col.min()), int(col.max())
        if hi - lo <= 4 * col.size + 1024:
            shifted = col - lo
            present = np.bincount(shifted, minlength=hi - lo + 1) > 0
            mapping = np.cumsum(present) - 1
            out[c] = mapping[shifted]
            counts[c] = int(present.sum())
        else:
            uniq, inverse = np.unique(col, return_inverse=True)
            out[c] = inverse.reshape(-1)
            counts[c] = uniq.size
    return out.T, counts


def _mi_from_counts(joint: np.ndarray, n: int) -> np.ndarray:
    """Plug-in MI in nats from joint counts ``(D, A, B)`` over the non-zero cells only, clipped at 0; returns (D,).

    A labelling with a single occupied bin (a constant latent or factor) has exactly zero MI, as sklearn's
    ``mutual_info_score`` returns; the log terms would otherwise leave ~1e-16 of round-off, which turns a dead unit
    into a "perfectly modular" one downstream (modularity's ``top > 0`` test).
    """
    row = joint.sum(axis=2)
    col = joint.sum(axis=1)
    d_idx, a_idx, b_idx = np.nonzero(joint)
    vals = joint[d_idx, a_idx, b_idx].astype(np.float64)
    terms = vals * (np.log(vals) + np.log(n) - np.log(row[d_idx, a_idx]) - np.log(col[d_idx, b_idx]))
    mi = np.bincount(d_idx, weights=terms, minlength=joint.shape[0]) / n
    single = (np.count_nonzero(row, axis=1) <= 1) | (np.count_nonzero(col, axis=1) <= 1)
    return np.where(single, 0.0, np.clip(mi, 0.0, None))


def _mi_sparse_pair(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> float:
    """Plug-in MI of two compacted label vectors through their sparse joint keys (for very many classes)."""
    n = a.size
    if na <= 1 or nb <= 1:
        return 0.0
    keys, joint = np.unique(a * nb + b, return_counts=True)
    ca = np.bincount(a, minlength=na)[keys // nb]
    cb = np.bincount(b, minlength=nb)[keys % nb]
    mi = float(np.sum(joint * (np.log(joint) + np.log(n) - np.log(ca) - np.log(cb))) / n)
    return max(mi, 0.0)


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in mutual information (nats) between every column of ``a`` ``(N, Da)`` and every column of ``b`` ``(N, Db)``.

    Equals ``sklearn.metrics.mutual_info_score(b[:, j], a[:, i])`` entry by entry (disentanglement_lib's
    ``discrete_mutual_info``), computed with one ``np.bincount`` per column of ``b`` over combined indices.
    1-D inputs count as one column; the result is always ``(Da, Db)``.
    """
    la, na = compact_labels(a)
    lb, nb = compact_labels(b)
    if la.shape[0] != lb.shape[0]:
        raise MetricError(f"label arrays have {la.shape[0]} and {lb.shape[0]} rows; they must match")
    n, da = la.shape
    out = np.zeros((da, lb.shape[1]), dtype=np.float64)
    a_max = int(na.max())
    offsets = np.arange(da, dtype=np.int64) * a_max
    la_cols = la.T + offsets[:, None]
    for j in range(lb.shape[1]):
        cb = int(nb[j])
        cells = da * a_max * cb
        if cells <= min(_DENSE_CELLS_LIMIT, max(1 << 20, 32 * n * da)):
            keys = la_cols * cb + lb[:, j]
            joint = np.bincount(keys.ravel(), minlength=da * a_max * cb).reshape(da, a_max, cb)
            out[:, j] = _mi_from_counts(joint, n)
        else:
            for i in range(da):
                out[i, j] = _mi_sparse_pair(la[:, i], int(na[i]), lb[:, j], cb)
    return out


def mutual_info_score(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in MI (nats) of two label vectors; the scalar form of :func:`discrete_mutual_info`."""
    return float(discrete_mutual_info(np.ravel(a), np.ravel(b))[0, 0])


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each column of an integer array ``(N, K)`` (disentanglement_lib ``discrete_entropy``)."""
    lab, counts = compact_labels(labels)
    n = lab.shape[0]
    out = np.empty(lab.shape[1], dtype=np.float64)
    for k in range(lab.shape[1]):
        p = np.bincount(lab[:, k], minlength=int(counts[k])) / n
        p = p[p > 0]
        out[k] = float(-np.sum(p * np.log(p)))
    return out


def varying_factors(factors: np.ndarray, what: str) -> tuple[list[int], list[int]]:
    """The columns of ``factors`` (a training sample) that take at least two values, and the constant ones; a
    :class:`MetricError` line naming ``what`` when every column is constant."""
    kept = [k for k in range(factors.shape[1]) if np.ptp(factors[:, k]) > 0]
    if not kept:
        raise MetricError(
            f"{what} needs a factor with at least two classes (values) in the training sample; every factor is constant"
        )
    return kept, [k for k in range(factors.shape[1]) if k not in kept]
