"""Factor activity: which units are alive, and where the change of each factor lands in the code.

* :func:`active_units` — Burda et al. 2016 ("Importance Weighted Autoencoders", Sec. 5.2): a unit is active when the
  variance over inputs of its posterior mean exceeds a threshold (0.01).
* :func:`activity_matrix` — an interventional map in the spirit of the "modularity by intervention" analyses
  (Suter et al. 2019, "Robustly Disentangled Causal Mechanisms"; Higgins et al. 2017's BetaVAE pairs): for each factor
  k, draw grid points uniformly, change ONLY factor k to a different uniformly drawn class, encode both and average
  the change of the code:

    - per dimension: A[k, d] = mean |z_d(x') − z_d(x)|;
    - per subspace s of width w_s: S[k, s] = mean ‖z_s(x') − z_s(x)‖₂ / √w_s (the RMS change per dimension of the
      subspace; rotation-invariant inside the subspace, equal to |Δ| for width 1).

  Each row is normalised to sum to 1 (a row whose factor moves nothing stays all-zero), so entry (k, ·) is the share
  of factor k's change landing in each dimension / subspace. Changes are in the code's own units (no
  standardisation, so near-dead units with tiny noise get tiny shares).
  Scores: ``exclusivity`` = mean over factors with a tied subspace of the share landing in its own subspace(s)
  (subspaces tie to factors by equal names, or by an explicit ``subspace_factors`` mapping);
  ``dimension_exclusivity`` = mean over factors of the largest per-dimension share. The headline score is the
  exclusivity when some subspace is tied to a factor, else the dimension exclusivity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from metrics._checks import check_codes
from metrics.defaults import ACTIVITY, SEED
from metrics.sampling import check_factor_sizes, varying_factors
from metrics.types import MetricError, MetricResult, Representer


def active_units(codes: np.ndarray, *, threshold: float = ACTIVITY.threshold) -> MetricResult:
    """Number of active units (Burda et al. 2016): dims whose variance over inputs (ddof=0) of the mean exceeds ``threshold``.

    ``codes`` are posterior means (N, D). Details: ``variances``, ``active`` (bool mask), ``fraction`` active.
    """
    arr = np.asarray(codes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] == 0:
        raise MetricError(f"codes must be a 2-D array with at least 2 rows (N samples, D dims), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MetricError("codes contain NaN or inf; check the encoder output")
    variances = arr.var(axis=0)
    mask = variances > threshold
    return MetricResult(
        name="active_units",
        score=float(mask.sum()),
        details={"variances": variances, "active": mask, "fraction": float(mask.mean())},
        settings={"threshold": threshold},
    )


@dataclass(frozen=True)
class InterventionPairs:
    """Codes of pairs that differ in one factor: ``codes_a``/``codes_b`` (M, D) and ``changed`` (M,) factor indices."""

    codes_a: np.ndarray
    codes_b: np.ndarray
    changed: np.ndarray


def _encode(represent: Representer, classes: np.ndarray, dim: int | None) -> np.ndarray:
    """Call the representer and check its output: (n, D) finite floats, D consistent across calls."""
    out = np.asarray(represent(classes), dtype=np.float64)
    if out.ndim != 2 or out.shape[0] != classes.shape[0] or (dim is not None and out.shape[1] != dim):
        raise MetricError(
            f"represent returned shape {out.shape} for {classes.shape[0]} inputs; it must return (N, D) codes"
        )
    if not np.all(np.isfinite(out)):
        raise MetricError("represent returned NaN or inf codes; check the encoder")
    return out


def sample_intervention_pairs(
    represent: Representer,
    factor_sizes: Sequence[int],
    *,
    num_samples: int = ACTIVITY.num_samples,
    seed: int = SEED,
) -> InterventionPairs:
    """Draw ``num_samples`` pairs (split evenly over the factors with more than one class) that differ in one factor.

    Base classes are uniform on the grid; the changed factor takes a uniformly drawn different class. The representer
    is called once per factor on the stacked (base, changed) classes.
    """
    sizes = check_factor_sizes(factor_sizes)
    varying = varying_factors(factor_sizes)
    per_factor = max(1, int(num_samples) // varying.size)
    rng = np.random.default_rng(seed)
    codes_a: list[np.ndarray] = []
    codes_b: list[np.ndarray] = []
    dim: int | None = None
    for k in varying:
        base = rng.integers(0, sizes, size=(per_factor, sizes.size), dtype=np.int64)
        other = base.copy()
        other[:, k] = (base[:, k] + rng.integers(1, sizes[k], size=per_factor)) % sizes[k]
        codes = _encode(represent, np.concatenate([base, other]), dim)
        dim = codes.shape[1]
        codes_a.append(codes[:per_factor])
        codes_b.append(codes[per_factor:])
    changed = np.repeat(varying, per_factor)
    return InterventionPairs(np.concatenate(codes_a), np.concatenate(codes_b), changed)


def _normalise_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to sum to 1; all-zero rows stay zero, NaN rows stay NaN."""
    total = m.sum(axis=1, keepdims=True)
    return np.where(total > 0, m / np.where(total > 0, total, 1.0), 0.0 * m)


def _subspace_ties(
    subspace_names: list[str], factor_names: list[str], subspace_factors: Mapping[str, str | Sequence[str]] | None
) -> dict[int, list[int]]:
    """Factor index → indices of the subspaces tied to it (a subspace may be tied to several factors, e.g. a
    ``position`` subspace to ``pos_x`` and ``pos_y``)."""
    mapping = dict(subspace_factors) if subspace_factors is not None else {n: n for n in subspace_names}
    unknown = [s for s in mapping if s not in subspace_names]
    if subspace_factors is not None and unknown:
        raise MetricError(f"subspace_factors names unknown subspaces {unknown}; use names from {subspace_names}")
    ties: dict[int, list[int]] = {}
    for s_idx, s_name in enumerate(subspace_names):
        tied = mapping.get(s_name)
        for f_name in [tied] if isinstance(tied, str) else list(tied or []):
            if f_name not in factor_names:
                if subspace_factors is not None:
                    raise MetricError(
                        f"subspace {s_name!r} is tied to unknown factor {f_name!r}; use one of {factor_names}"
                    )
                continue
            ties.setdefault(factor_names.index(f_name), []).append(s_idx)
    return ties


def activity_matrix(
    represent: Representer | None,
    factor_sizes: Sequence[int],
    *,
    num_samples: int = ACTIVITY.num_samples,
    seed: int = SEED,
    subspaces: Sequence[tuple[str, int]] | None = None,
    factor_names: Sequence[str] | None = None,
    subspace_factors: Mapping[str, str | Sequence[str]] | None = None,
    pairs: InterventionPairs | None = None,
) -> MetricResult:
    """Factor × dimension and factor × subspace activity matrices and their exclusivity scores (see the module doc).

    Pass ``represent`` (classes (N, K) → codes) to draw ``num_samples`` intervention pairs with ``seed``, or precomputed
    ``pairs`` (then ``represent`` may be None). Details: ``dimension_matrix`` (K × D, rows sum to 1, NaN rows for
    factors that cannot change), ``raw_dimension_change`` (K × D mean |Δ|), ``dimension_exclusivity``,
    ``per_factor_max_share``; with ``subspaces``: ``subspace_matrix`` (K × S), ``raw_subspace_change``,
    ``exclusivity``, ``per_factor_exclusivity``, ``subspace_names``.
    """
    sizes = check_factor_sizes(factor_sizes)
    k_total = sizes.size
    names = [str(n) for n in factor_names] if factor_names is not None else [f"factor_{k}" for k in range(k_total)]
    if len(names) != k_total:
        raise MetricError(f"got {len(names)} factor names for {k_total} factors; pass one name per factor")
    if pairs is None:
        if represent is None:
            raise MetricError("activity_matrix needs a representer or precomputed pairs; pass represent= or pairs=")
        pairs = sample_intervention_pairs(represent, factor_sizes, num_samples=num_samples, seed=seed)
    za = check_codes(pairs.codes_a, name="codes_a")
    zb = np.asarray(pairs.codes_b, dtype=np.float64)
    changed = np.asarray(pairs.changed).reshape(-1).astype(np.int64)
    if zb.shape != za.shape or changed.size != za.shape[0]:
        raise MetricError(f"pairs disagree in shape: codes_a {za.shape}, codes_b {zb.shape}, changed {changed.shape}")
    if not np.all(np.isfinite(zb)):
        raise MetricError("codes_b contain NaN or inf; check the encoder output")
    if changed.min() < 0 or changed.max() >= k_total:
        raise MetricError(f"changed factor indices must lie in [0, {k_total}); got {changed.min()}..{changed.max()}")
    delta = zb - za
    dim = za.shape[1]
    present = np.bincount(changed, minlength=k_total) > 0
    raw = np.full((k_total, dim), np.nan)
    for k in np.flatnonzero(present):
        raw[k] = np.abs(delta[changed == k]).mean(axis=0)
    shares = _normalise_rows(raw)
    max_share = shares.max(axis=1)
    details: dict[str, Any] = {
        "factor_names": names,
        "dimension_matrix": shares,
        "raw_dimension_change": raw,
        "per_factor_max_share": max_share,
        "dimension_exclusivity": float(np.mean(max_share[present])),
        "pairs_per_factor": np.bincount(changed, minlength=k_total),
    }
    score: float = details["dimension_exclusivity"]
    score_kind = "dimension_exclusivity"
    if subspaces is not None:
        widths = [int(w) for _, w in subspaces]
        if not widths or any(w < 1 for w in widths) or sum(widths) != dim:
            raise MetricError(f"subspace widths {widths} must be >= 1 and sum to the code width {dim}")
        sub_names = [str(n) for n, _ in subspaces]
        bounds = np.cumsum([0, *widths])
        raw_sub = np.full((k_total, len(widths)), np.nan)
        for k in np.flatnonzero(present):
            dk = delta[changed == k]
            raw_sub[k] = [
                np.mean(np.linalg.norm(dk[:, bounds[s] : bounds[s + 1]], axis=1)) / np.sqrt(widths[s])
                for s in range(len(widths))
            ]
        sub_shares = _normalise_rows(raw_sub)
        ties = _subspace_ties(sub_names, names, subspace_factors)
        own = np.full(k_total, np.nan)
        for f_idx, cols in ties.items():
            if present[f_idx]:
                own[f_idx] = sub_shares[f_idx, cols].sum()
        details.update(
            subspace_names=sub_names,
            subspace_matrix=sub_shares,
            raw_subspace_change=raw_sub,
            per_factor_exclusivity=own,
        )
        if np.isfinite(own).any():
            details["exclusivity"] = float(np.nanmean(own))
            score, score_kind = details["exclusivity"], "exclusivity"
    return MetricResult(
        name="activity",
        score=score,
        details=details,
        settings={"num_samples": int(changed.size), "seed": seed, "score": score_kind},
    )
