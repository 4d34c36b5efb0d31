"""Augmentation activity: where each augmentation-tagged factor's change lands in the code, without ground truth.

The analogue of :func:`metrics.activity.activity_matrix` for data with no factor labels. Instead of intervening on a
ground-truth factor, the caller makes pairs of views of one image that differ ONLY in one tagged augmentation (e.g.
``disco.data.augment.FactorAugmenter.make_pairs`` with ``changed`` forcing exactly one augmentation per pair) and
encodes both views. Since both views come from one image, everything else — the content — is unchanged, so an
identifiable code moves only the subspace tied to that augmentation (von Kügelgen et al. 2021, "Self-Supervised
Learning with Data Augmentations Provably Isolates Content from Style"). For each factor k:

  - per subspace s of width w_s: S[k, s] = mean over pairs of ‖z_s(x') − z_s(x)‖₂ / √w_s;
  - per dimension: A[k, d] = mean over pairs of |z_d(x') − z_d(x)|.

Each row is normalised to sum to 1 (a row whose factor moves nothing stays all-zero), exactly as in
:mod:`metrics.activity`, so entry (k, ·) is the share of factor k's change landing in each subspace / dimension.
The score ``exclusivity`` is the mean over factors with a tied subspace of the share landing in its own subspace(s);
subspaces tie to factors by equal names or by an explicit ``subspace_factors`` mapping. As in :mod:`metrics.activity`,
when no subspace is tied to a factor (e.g. a code without named subspaces) the headline score falls back to
``dimension_exclusivity``, the mean over factors of the largest per-dimension share, and ``exclusivity`` is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from metrics.activity import _normalise_rows, _subspace_ties
from metrics.types import MetricError, MetricResult


def _pair_deltas(pairs: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Validated per-factor code changes ``z_b − z_a``, each ``(M_k, D)`` float64 with one D for all factors."""
    if not pairs:
        raise MetricError("pairs is empty; pass at least one augmentation factor -> (codes_a, codes_b)")
    deltas: list[np.ndarray] = []
    for name, views in pairs.items():
        if not isinstance(views, (tuple, list)) or len(views) != 2:
            raise MetricError(f"pairs[{name!r}] must be a tuple (codes_a, codes_b)")
        za, zb = (np.asarray(v, dtype=np.float64) for v in views)
        if za.ndim != 2 or za.shape != zb.shape:
            raise MetricError(
                f"pairs[{name!r}]: codes must be two (M, D) arrays of one shape, got {za.shape}, {zb.shape}"
            )
        if za.shape[0] == 0:
            raise MetricError(f"factor {name!r} has no pairs; pass at least one pair per factor")
        if deltas and za.shape[1] != deltas[0].shape[1]:
            raise MetricError(f"pairs[{name!r}] has codes of width {za.shape[1]}, other factors {deltas[0].shape[1]}")
        if not (np.all(np.isfinite(za)) and np.all(np.isfinite(zb))):
            raise MetricError(f"pairs[{name!r}] contain NaN or inf codes; check the encoder output")
        deltas.append(zb - za)
    return deltas


def augmentation_activity(
    pairs: Mapping[str, tuple[np.ndarray, np.ndarray]],
    subspaces: Sequence[tuple[str, int]],
    *,
    subspace_factors: Mapping[str, str | Sequence[str]] | None = None,
) -> MetricResult:
    """Factor × subspace share of each augmentation's code change and its exclusivity (see the module doc).

    Args:
        pairs: tagged factor name -> (codes of view a, codes of view b), each ``(M, D)``; the views of a pair differ
            only in that factor's augmentation.
        subspaces: (name, width) of each subspace, in code order; widths must sum to D.
        subspace_factors: subspace name -> factor name (or names); default ties each subspace to the factor of the
            same name.

    Returns ``MetricResult(name="augmentation_activity", score=exclusivity)`` (``dimension_exclusivity`` when no
    subspace is tied; ``settings["score"]`` says which) with details ``subspace_matrix`` (K × S, rows sum to 1 or are
    zero), ``raw_matrix`` (K × S, unnormalised), ``dimension_matrix`` (K × D, rows sum to 1 or are zero),
    ``exclusivity``, ``dimension_exclusivity``, ``per_factor_exclusivity`` (K, NaN for factors without a tied
    subspace), ``factor_names``, ``subspace_names``, ``pairs_per_factor``.
    """
    deltas = _pair_deltas(pairs)
    names = [str(n) for n in pairs]
    dim = deltas[0].shape[1]
    widths = [int(w) for _, w in subspaces]
    if not widths or any(w < 1 for w in widths) or sum(widths) != dim:
        raise MetricError(f"subspace widths {widths} must be >= 1 and sum to the code width {dim}")
    sub_names = [str(n) for n, _ in subspaces]
    bounds = np.cumsum([0, *widths])
    raw = np.array(
        [
            [
                np.linalg.norm(d[:, bounds[s] : bounds[s + 1]], axis=1).mean() / np.sqrt(widths[s])
                for s in range(len(widths))
            ]
            for d in deltas
        ]
    )
    shares = _normalise_rows(raw)
    dim_shares = _normalise_rows(np.array([np.abs(d).mean(axis=0) for d in deltas]))
    dimension_exclusivity = float(dim_shares.max(axis=1).mean())
    own = np.full(len(names), np.nan)
    for f_idx, cols in _subspace_ties(sub_names, names, subspace_factors).items():
        own[f_idx] = shares[f_idx, cols].sum()
    tied = bool(np.isfinite(own).any())
    exclusivity = float(np.nanmean(own)) if tied else float("nan")
    return MetricResult(
        name="augmentation_activity",
        score=exclusivity if tied else dimension_exclusivity,
        details={
            "subspace_matrix": shares,
            "raw_matrix": raw,
            "dimension_matrix": dim_shares,
            "exclusivity": exclusivity,
            "dimension_exclusivity": dimension_exclusivity,
            "per_factor_exclusivity": own,
            "factor_names": names,
            "subspace_names": sub_names,
            "pairs_per_factor": np.array([d.shape[0] for d in deltas]),
        },
        settings={
            "subspace_factors": None if subspace_factors is None else dict(subspace_factors),
            "score": "exclusivity" if tied else "dimension_exclusivity",
        },
    )
