"""Interventional Robustness Score (Suter, Miladinović, Schölkopf & Bauer 2019, "Robustly Disentangled Causal
Mechanisms: Validating Deep Representations for Interventional Robustness", ICML).

:func:`irs` follows disentanglement_lib (``evaluation/metrics/irs.py``: ``compute_irs`` and
``scalable_disentanglement_score``) on an observational sample of ``num_train`` (10000) codes and factor classes:

1. the factor classes are discretised by disentanglement_lib's histogram discretizer (``num_bins`` = 20 equal-width
   bins per factor; a relabelling for factors with at most 20 classes, a merge of neighbouring classes above);
2. constant latents are dropped (disentanglement_lib's ``_drop_constant_dims``: no threshold, any variation keeps a
   latent); with none left the score is 0;
3. for every active latent z_d, ``max_deviations[d] = max_n |z_d - mean(z_d)|``;
4. for every factor k and each of its classes c, the within-class deviations ``|z_d - E[z_d | g_k = c]|`` are
   summarised by their ``diff_quantile`` quantile (``np.percentile``'s linear interpolation); their mean over the
   classes of k, divided by ``max_deviations[d]``, is the normalised deviation, and ``irs_matrix = 1 - it`` (A × K);
5. each latent's disentanglement score is its row maximum (``parents`` the argmax factor), and IRS is their average
   weighted by ``max_deviations``.

The within-class quantiles of one factor come from a single ``np.lexsort`` of all latents at once (class, then
deviation) instead of a loop over classes; this changes the arithmetic only at round-off level.

Differences from the reference:

* a factor with a single class in the sample (dSprites' colour) is left out (``details["skipped_factors"]``):
  disentanglement_lib's dSprites loader drops colour, and a constant factor would otherwise give every latent an IRS
  entry of ``1 - q99/max`` that measures the code's tails, not its robustness;
* a latent is constant when its maximum equals its minimum. The reference tests ``np.var(z) > 0``, which round-off
  fails for many constant values (a unit stuck at 0.7 has a float variance of ~1e-32): such a dead unit stays, with a
  ``max_deviation`` of ~1e-16 and IRS entries that are ratios of round-off (it barely moves the weighted score, but its
  ``disentanglement_scores`` and ``parents`` are noise);
* ``num_active_dims`` counts the active latents; the reference reports ``np.sum`` of the active codes' values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metrics._checks import check_codes_factors, compact_labels, discretize, subsample_rows
from metrics.defaults import IRS, SEED
from metrics.types import MetricError, MetricResult


def group_quantiles(values: np.ndarray, labels: np.ndarray, num_groups: int, q: float) -> np.ndarray:
    """Quantile ``q`` (linear interpolation, as ``np.percentile``) of each column of ``values`` (N, D) within each group.

    ``labels`` (N,) are group indices ``0..num_groups-1``, each present. Returns (num_groups, D).
    """
    n, d = values.shape
    counts = np.bincount(labels, minlength=num_groups)
    cols = np.ascontiguousarray(values.T)
    order = np.lexsort((cols, np.broadcast_to(labels, (d, n))), axis=-1)
    ordered = np.take_along_axis(cols, order, axis=1)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = q * (counts - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, counts - 1)
    frac = position - low
    below, above = ordered[:, starts + low], ordered[:, starts + high]
    return (below + (above - below) * frac).T


def group_means(values: np.ndarray, labels: np.ndarray, num_groups: int) -> np.ndarray:
    """Mean of each column of ``values`` (N, D) within each group ``0..num_groups-1`` (all present): (num_groups, D)."""
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=num_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return np.add.reduceat(values[order], starts, axis=0) / counts[:, None]


def irs_matrix(codes: np.ndarray, labels: np.ndarray, diff_quantile: float) -> tuple[np.ndarray, np.ndarray]:
    """IRS matrix (A × K) of active latents ``codes`` (N, A) against compacted factor labels (N, K), and max deviations.

    Every latent must vary (``max_deviations > 0``); every label column is ``0..G_k-1`` with each class present.
    """
    max_deviations = np.max(np.abs(codes - codes.mean(axis=0)), axis=0)
    deviation = np.empty((codes.shape[1], labels.shape[1]))
    for k in range(labels.shape[1]):
        groups = int(labels[:, k].max()) + 1
        means = group_means(codes, labels[:, k], groups)
        diffs = np.abs(codes - means[labels[:, k]])
        deviation[:, k] = group_quantiles(diffs, labels[:, k], groups, diff_quantile).mean(axis=0)
    return 1.0 - deviation / max_deviations[:, None], max_deviations


def irs(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = SEED,
    num_train: int | None = IRS.num_train,
    diff_quantile: float = IRS.diff_quantile,
    num_bins: int | None = IRS.num_bins,
) -> MetricResult:
    """Interventional Robustness Score of codes (N, D) against factor classes (N, K), as disentanglement_lib.

    ``num_train`` rows are drawn (seeded; None: every row). Details, over the ``active_dims`` (A latents):
    ``irs_matrix`` (A × K', K' the scored factors), ``disentanglement_scores`` (A,), ``parents`` (A,, indices into the
    factor columns), ``max_deviations`` (A,), ``num_active_dims``, ``scored_factors``, ``skipped_factors``.
    """
    if not 0.0 <= diff_quantile <= 1.0:
        raise MetricError(f"diff_quantile must lie in [0, 1], got {diff_quantile}; 0.99 is the reference value")
    if num_bins is not None and num_bins < 1:
        raise MetricError(f"num_bins must be >= 1 (or None for the raw classes), got {num_bins}")
    x, y = check_codes_factors(codes, factors)
    rows = subsample_rows(x.shape[0], num_train, seed, "IRS")
    x, y = x[rows], y[rows]
    labels, counts = compact_labels(discretize(y, num_bins) if num_bins is not None else y)
    scored = np.flatnonzero(counts > 1)
    if scored.size == 0:
        raise MetricError("every factor has a single class in the sample; IRS needs factors that vary")
    active = np.max(x, axis=0) > np.min(x, axis=0)
    settings = {"num_train": num_train, "diff_quantile": diff_quantile, "num_bins": num_bins, "seed": seed}
    details: dict[str, Any] = {
        "num_active_dims": int(active.sum()),
        "active_dims": np.flatnonzero(active).tolist(),
        "scored_factors": scored.tolist(),
        "skipped_factors": np.flatnonzero(counts <= 1).tolist(),
    }
    if not active.any():
        return MetricResult(name="irs", score=0.0, details=details, settings=settings)
    matrix, max_deviations = irs_matrix(x[:, active], labels[:, scored], diff_quantile)
    per_latent = matrix.max(axis=1)
    details.update(
        irs_matrix=matrix,
        disentanglement_scores=per_latent,
        parents=scored[matrix.argmax(axis=1)],
        max_deviations=max_deviations,
    )
    score = float(np.average(per_latent, weights=max_deviations))
    return MetricResult(name="irs", score=score, details=details, settings=settings)
