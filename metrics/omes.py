"""OMES, Overlap Multiple Encoding Scores (Dapueto, Noceti & Odone 2024, "Transferring disentangled representations:
bridging the gap between synthetic and real images", NeurIPS).

The paper calls OMES intervention-based, but the authors' code (github.com/JacopoDapueto/transfer_disentanglement,
``src/evaluation/metrics/omes.py`` and ``src/utils/postprocess_utils.py``) computes it from an *observational* sample
of encoded images and their factor classes (``representations.npz``, ``classes.csv``; their postprocessing encodes
~15000 images): the interventions are pairs mined from that sample. :func:`omes` follows the code, so it takes
``codes`` (N, D) and ``factors`` (N, K) like the other observational metrics. The protocol:

1. Pairs (:func:`one_factor_pairs`). For factor k, the sample's distinct grid points (first occurrence of each) are
   grouped into lines that agree on every factor but k. A line with m >= 2 points is visited once per point, as the
   authors loop over every sampled grid point: each visit shuffles the line and pairs its points two by two (the last
   one left out when m is odd), so a line yields m * floor(m / 2) pairs. The two sides of a pair differ in factor k
   only. At most ``num_pairs`` (100000) pairs per factor are kept, drawn without replacement.
2. Association (:func:`association_matrix`). ``A[d, k] = 1 - |corr(z_d(a), z_d(b))|`` over the pairs (a, b) of
   factor k (the authors' ``where(c > 0, 1 - c, -1 - c)`` then ``abs``): 0 when latent d ignores factor k (both sides
   share every other factor, so z_d(a) = z_d(b)), near 1 when it follows k alone.
3. Latents whose standard deviation over the sample is below ``active_threshold`` (0.05, ``ddof=1``) are dropped.
4. Scores (:func:`omes_from_pairs`), with A the D' × K' matrix of active latents and scored factors:
   overlap ``O[d, k] = 1 - mean_j |[j = k] - A[d, j]|`` (latent d encodes k and nothing else) and multiple encoding
   ``M[d, k] = 1 - mean_e |[e = d] - A[e, k]|`` (factor k lives in latent d alone). ``pooling="avg"`` gives factor k
   ``sum_d O[d, k] A[d, k]^2 / sum_d A[d, k]`` (the authors' ``np.average(O * A, weights=A)``), ``"max"`` gives
   ``max_d O[d, k] A[d, k]``; likewise for M. Factor k scores ``alpha * overlap_k + (1 - alpha) * multiple_k`` and
   OMES is the mean over factors. The authors' defaults are ``alpha=0.5`` and ``pooling="avg"``; they also report a
   sweep over alpha and both poolings.

Note: for a factor with m classes, a latent that encodes it perfectly has ``corr = -1/(m - 1)`` over uniformly paired
distinct classes, so ``A = 1 - 1/(m - 1)``: the ceiling is below 1, and 0 for binary factors (a flaw of the definition,
reproduced).

Differences from the authors' code, none of which changes a well-defined score:

* A and the score are not rounded to 4 decimals;
* the activity test uses the whole sample (the authors resample 10000 rows with replacement);
* a latent with zero variance over one factor's pairs (correlation undefined, NaN for the authors) gets ``A = 0``; a
  factor whose column of A is all zero scores 0 (the authors' weighted average raises); a factor with fewer than 2
  pairs, or a single class, is left out (``details["skipped_factors"]``) and K' counts the scored factors only;
* the random draws use ``numpy.random.default_rng(seed)`` instead of the global NumPy and ``random`` states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from metrics._checks import check_codes_factors, subsample_rows
from metrics.defaults import OMES, SEED
from metrics.types import MetricError, MetricResult

Pairs = Sequence[tuple[np.ndarray, np.ndarray]]


def one_factor_pairs(factors: np.ndarray, rng: np.random.Generator, num_pairs: int | None = None) -> list[np.ndarray]:
    """Row-index pairs (P_k, 2) of ``factors`` (N, K) differing in factor k only, mined as the authors do (see above)."""
    _, first = np.unique(factors, axis=0, return_index=True)
    first = np.sort(first)
    out = []
    for k in range(factors.shape[1]):
        rest = np.delete(factors[first], k, axis=1)
        _, line, size = np.unique(rest, axis=0, return_inverse=True, return_counts=True)
        line = line.reshape(-1)
        members = np.flatnonzero(size[line] >= 2)
        # A line of m points is visited m times: one copy of its points per visit, shuffled within the visit.
        reps = size[line[members]]
        rows = np.repeat(members, reps)
        visit = np.arange(rows.size) - np.repeat(np.cumsum(reps) - reps, reps)
        block = line[rows] * (int(size.max()) + 1) + visit
        order = np.lexsort((rng.random(rows.size), block))
        rows, block = rows[order], block[order]
        _, start, count = np.unique(block, return_index=True, return_counts=True)
        rank = np.arange(rows.size) - np.repeat(start, count)
        left = np.flatnonzero((rank % 2 == 0) & (rank + 1 < np.repeat(count, count)))
        pairs = np.stack([first[rows[left]], first[rows[left + 1]]], axis=1)
        if num_pairs is not None and pairs.shape[0] > num_pairs:
            pairs = pairs[rng.choice(pairs.shape[0], size=num_pairs, replace=False)]
        out.append(pairs)
    return out


def association_matrix(pairs: Pairs) -> np.ndarray:
    """``A[d, k] = 1 - |corr(x_d, y_d)|`` over the pairs ``(x, y)`` (each (P_k, D)) of factor k; 0 where undefined."""
    columns = []
    for x, y in pairs:
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        norm = np.sqrt(np.sum(xc**2, axis=0) * np.sum(yc**2, axis=0))
        ok = norm > 0
        corr = np.sum(xc * yc, axis=0) / np.where(ok, norm, 1.0)
        columns.append(np.where(ok, 1.0 - np.minimum(np.abs(corr), 1.0), 0.0))
    return np.stack(columns, axis=1)


def _pool(scores: np.ndarray, assoc: np.ndarray, pooling: str) -> np.ndarray:
    """Per-factor pooling over latents of ``scores * assoc`` (D, K): association-weighted mean or maximum."""
    if pooling == "max":
        return np.max(scores * assoc, axis=0)
    weight = assoc.sum(axis=0)
    return np.where(weight > 0, np.sum(scores * assoc**2, axis=0) / np.where(weight > 0, weight, 1.0), 0.0)


def omes_from_pairs(
    pairs: Pairs,
    *,
    active: np.ndarray | None = None,
    alpha: float = OMES.alpha,
    pooling: str = OMES.pooling,
) -> MetricResult:
    """OMES of already-encoded pairs: ``pairs[k] = (x, y)``, codes (P_k, D) of pair sides differing in factor k only.

    ``active`` (D,) bool keeps those latents (None: all). Details: ``association`` (D' × K, active latents),
    ``overlap`` and ``multiple_encoding`` (means over factors of the pooled component scores; OMES = alpha * overlap +
    (1 - alpha) * multiple_encoding), ``overlap_scores``, ``multiple_encoding_scores``, ``factor_scores`` (K,), and
    ``associated_dims`` (K,, the active latent with the best overlap per factor, -1 when none: the authors' report).
    """
    if not 0.0 <= alpha <= 1.0:
        raise MetricError(f"alpha must lie in [0, 1], got {alpha}; 0.5 weighs both components equally")
    if pooling not in ("avg", "max"):
        raise MetricError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    if len(pairs) == 0 or any(x.ndim != 2 or x.shape != y.shape or x.shape[0] < 2 for x, y in pairs):
        raise MetricError("pairs must hold, per factor, two (P, D) arrays of equal shape with P >= 2 pairs")
    assoc = association_matrix(pairs)
    idx = np.arange(assoc.shape[0]) if active is None else np.flatnonzero(active)
    assoc = assoc[idx]
    if assoc.shape[0] == 0:
        raise MetricError("no active latent is left; OMES needs at least one latent that varies")
    gap = np.abs(1.0 - assoc) - assoc  # |[j = k] - A| minus the off-target term |A|, added back below
    overlap = 1.0 - (assoc.sum(axis=1, keepdims=True) + gap) / assoc.shape[1]
    multiple = 1.0 - (assoc.sum(axis=0, keepdims=True) + gap) / assoc.shape[0]
    overlap_k, multiple_k = _pool(overlap, assoc, pooling), _pool(multiple, assoc, pooling)
    factor_scores = alpha * overlap_k + (1.0 - alpha) * multiple_k
    best = np.argmax(overlap, axis=0)
    associated = np.where(np.isclose(overlap[best, np.arange(assoc.shape[1])], 0.0), -1, idx[best])
    details: dict[str, Any] = {
        "association": assoc,
        "active_dims": idx.tolist(),
        "overlap": float(np.mean(overlap_k)),
        "multiple_encoding": float(np.mean(multiple_k)),
        "overlap_scores": overlap_k,
        "multiple_encoding_scores": multiple_k,
        "factor_scores": factor_scores,
        "associated_dims": associated,
    }
    settings = {"alpha": alpha, "pooling": pooling}
    return MetricResult(name="omes", score=float(np.mean(factor_scores)), details=details, settings=settings)


def omes(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    seed: int = SEED,
    num_train: int | None = OMES.num_train,
    num_pairs: int | None = OMES.num_pairs,
    alpha: float = OMES.alpha,
    pooling: str = OMES.pooling,
    active_threshold: float = OMES.active_threshold,
) -> MetricResult:
    """OMES of codes (N, D) against factor classes (N, K), from pairs mined in the sample (observational, see above).

    ``num_train`` rows are drawn (seeded; None: every row). Details as :func:`omes_from_pairs`, the association and
    per-factor scores over ``scored_factors`` only, plus ``num_pairs`` (pairs used per scored factor),
    ``skipped_factors`` and ``num_active_dims``.
    """
    if num_pairs is not None and num_pairs < 2:
        raise MetricError(f"num_pairs must be >= 2 (or None for all), got {num_pairs}")
    x, y = check_codes_factors(codes, factors)
    rows = subsample_rows(x.shape[0], num_train, seed, "OMES")
    x, y = x[rows], y[rows]
    rng = np.random.default_rng(seed)
    pairs = one_factor_pairs(y, rng, num_pairs)
    scored = [k for k, p in enumerate(pairs) if p.shape[0] >= 2]
    if not scored:
        raise MetricError(
            "no two samples differ in exactly one factor; OMES mines its pairs from the sample: pass a larger one"
        )
    active = np.std(x, axis=0, ddof=1) >= active_threshold if x.shape[0] > 1 else np.zeros(x.shape[1], bool)
    if not active.any():
        raise MetricError(f"every latent has standard deviation below active_threshold={active_threshold}")
    result = omes_from_pairs(
        [(x[pairs[k][:, 0]], x[pairs[k][:, 1]]) for k in scored], active=active, alpha=alpha, pooling=pooling
    )
    result.details.update(
        scored_factors=scored,
        skipped_factors=[k for k in range(y.shape[1]) if k not in scored],
        num_pairs=[int(pairs[k].shape[0]) for k in scored],
        num_active_dims=int(active.sum()),
    )
    result.settings.update(
        num_train=num_train, num_pairs=num_pairs, active_threshold=active_threshold, seed=seed, source="observational"
    )
    return result
