"""Cross-seed consistency: how well one run's codes predict another's, under maps of increasing freedom.

An identifiability check in the sense of the identifiability literature: a model class is identifiable up to some
group of transformations when runs on the same data (different seeds) learn codes equal up to that group —
permutation and element-wise rescaling/sign for ICA-type results (Hyvärinen & Morioka 2016; Khemakhem et al. 2020,
"Variational Autoencoders and Nonlinear ICA", whose mean correlation coefficient (MCC) after optimal matching is
reported here too), or an invertible linear map (Roeder et al. 2021, "On Linear Identifiability of Learned
Representations"). Locatello et al. 2019 show that without such guarantees unsupervised runs disagree from seed to
seed.

Protocol, for codes A ``(N, Da)`` and B ``(N, Db)`` of the same N inputs: the rows are split at random (``seed``)
into ``num_train`` rows that fit each map and ``num_test`` other rows that score it. ``ã``/``b̃`` are the codes
standardised with the training rows' per-dimension mean and std (a constant dimension becomes 0), ρ the (Da × Db)
Pearson correlation of A and B on the training rows. Each map is the least-squares best member of its family on the
training rows:

* ``identity``: b̃_j ≈ β_j ã_j with β_j = max(ρ_jj, 0) (same dimension, same orientation; offset and scale are free
  through the standardisation). Needs Da = Db, else NaN with the reason in ``details["reasons"]``.
* ``permutation_sign``: a one-to-one matching π of the standardised dimensions, maximising Σ |ρ| over the matched
  pairs (``scipy.optimize.linear_sum_assignment``), then b̃_j ≈ ρ_π(j)j ã_π(j) (the sign, and the least-squares
  scale, of the matched correlation). B dimensions left unmatched (Db > Da) are predicted by their training mean.
* ``linear``: B ≈ A W, least squares on the raw codes without intercept (a map through the origin, so a difference
  of offsets between the runs costs it). Least squares without intercept on the training-standardised codes would be
  exactly the affine fit (centring is an intercept), which is why this one is on raw codes.
* ``affine``: B ≈ A W + c, least squares with intercept on the raw codes (the same predictions as ``linear`` on
  standardised codes).

The score of a map is the held-out R² of B's dimensions on the test rows, R²_j = 1 − Σ (b_j − b̂_j)² / Σ (b_j − mean b_j)²
(negative when worse than the test mean), averaged uniformly over B's dimensions (``r2``) and weighted by their test
variances in the raw units (``r2_weighted``, sklearn's ``variance_weighted``). Dimensions of B with no test variance
are left out. Both directions are fitted, and ``r2_symmetric`` averages A→B and B→A. The headline ``score`` is the
symmetric ``permutation_sign`` R² (order-independent; ≈ ρ² of the matched latents, 1 when B is A permuted, flipped
and rescaled, ≈ 0 for independent codes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from metrics._checks import check_codes, require_samples
from metrics.defaults import CONSISTENCY, SEED
from metrics.types import MetricError, MetricResult

#: The maps, in order of increasing freedom.
MAPS: tuple[str, ...] = ("identity", "permutation_sign", "linear", "affine")


def split_rows(n: int, num_train: int | None, num_test: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint train/test rows: ``num_train`` and ``num_test`` of ``n``; a None side takes the remaining rows,
    both None a half/half split."""
    if num_train is None and num_test is None:
        num_train = n // 2
    if num_train is None:
        num_train = n - int(num_test or 0)
    if num_test is None:
        num_test = n - num_train
    require_samples(n, num_train + num_test, "cross-seed consistency")
    if num_train < 2 or num_test < 2:
        raise MetricError(
            f"cross-seed consistency needs at least 2 train and 2 test rows, got {num_train} and {num_test}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    return perm[:num_train], perm[num_train : num_train + num_test]


def r2_per_dim(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """R² of each column of ``pred`` for ``y`` ``(n, D)`` around y's own mean; NaN for a column without variance."""
    sst = np.square(y - y.mean(axis=0)).sum(axis=0)
    sse = np.square(y - pred).sum(axis=0)
    return np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), np.nan)


def _summaries(per_dim: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(uniform mean, variance-weighted mean) of per-dimension R² over the dimensions where it is defined."""
    ok = np.isfinite(per_dim)
    if not ok.any():
        return float("nan"), float("nan")
    return float(per_dim[ok].mean()), float(np.sum(per_dim[ok] * weights[ok]) / np.sum(weights[ok]))


def _least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares W of ``y ≈ x W`` through the normal equations of the RMS-scaled columns of ``x``.

    The (D × D) Gram system is solved by SVD (``np.linalg.lstsq``): on this project's shared CPUs the SVD of the tall
    (n × D) matrix costs ~0.1 s per fit under contended BLAS threads, the Gram route ~0.2 ms (same W to ~1e-12 on
    well-conditioned codes; directions below ~1e-7 of the largest singular value count as rank-deficient).
    """
    scale = np.sqrt(np.mean(np.square(x), axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    xs = x / scale
    w = np.linalg.lstsq(xs.T @ xs, xs.T @ y, rcond=None)[0]
    return w / scale[:, None]


def map_r2(
    a_tr: np.ndarray, a_te: np.ndarray, b_tr: np.ndarray, b_te: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit every map of :data:`MAPS` from A to B on training rows, score it on test rows (float64 arrays).

    Returns the per-B-dimension test R² of each map, and the permutation matching: ``pairs`` (A dim, B dim),
    ``signs``, ``train_corr``, ``mcc`` (mean |correlation| of the matched pairs on the test rows).
    """
    da, db = a_tr.shape[1], b_tr.shape[1]
    mean_a, mean_b = a_tr.mean(axis=0), b_tr.mean(axis=0)
    std_a, std_b = a_tr.std(axis=0), b_tr.std(axis=0)
    std_a, std_b = np.where(std_a > 0, std_a, 1.0), np.where(std_b > 0, std_b, 1.0)
    za_tr, za_te = (a_tr - mean_a) / std_a, (a_te - mean_a) / std_a
    zb_tr = (b_tr - mean_b) / std_b
    rho = za_tr.T @ zb_tr / a_tr.shape[0]

    def from_standard(pred_std: np.ndarray) -> np.ndarray:
        return pred_std * std_b + mean_b

    per_dim: dict[str, np.ndarray] = {}
    if da == db:
        beta = np.clip(np.diag(rho), 0.0, None)
        per_dim["identity"] = r2_per_dim(b_te, from_standard(za_te * beta))
    else:
        per_dim["identity"] = np.full(db, np.nan)
    rows, cols = linear_sum_assignment(np.abs(rho), maximize=True)
    pred = np.zeros((a_te.shape[0], db))
    pred[:, cols] = za_te[:, rows] * rho[rows, cols]
    per_dim["permutation_sign"] = r2_per_dim(b_te, from_standard(pred))
    per_dim["linear"] = r2_per_dim(b_te, a_te @ _least_squares(a_tr, b_tr))
    w_aff = _least_squares(a_tr - mean_a, b_tr - mean_b)
    per_dim["affine"] = r2_per_dim(b_te, (a_te - mean_a) @ w_aff + mean_b)
    zb_te = (b_te - b_te.mean(axis=0)) / np.where(b_te.std(axis=0) > 0, b_te.std(axis=0), 1.0)
    za_te_c = (a_te - a_te.mean(axis=0)) / np.where(a_te.std(axis=0) > 0, a_te.std(axis=0), 1.0)
    test_corr = np.sum(za_te_c[:, rows] * zb_te[:, cols], axis=0) / a_te.shape[0]
    matching = {
        "pairs": [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)],
        "signs": np.sign(rho[rows, cols]).astype(int).tolist(),
        "train_corr": rho[rows, cols],
        "mcc": float(np.mean(np.abs(test_corr))),
    }
    return per_dim, matching


def _finite_mean(values: np.ndarray) -> float:
    """Mean of the finite entries (NaN when there is none)."""
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def _check_pair(codes_a: np.ndarray, codes_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = check_codes(codes_a, name="codes_a")
    b = check_codes(codes_b, name="codes_b")
    if a.shape[0] != b.shape[0]:
        raise MetricError(
            f"codes_a has {a.shape[0]} rows but codes_b has {b.shape[0]}; encode the same inputs with both runs"
        )
    return a, b


def cross_seed_consistency(
    codes_a: np.ndarray,
    codes_b: np.ndarray,
    *,
    num_train: int | None = CONSISTENCY.num_train,
    num_test: int | None = CONSISTENCY.num_test,
    seed: int = SEED,
) -> MetricResult:
    """Held-out R² of the identity, permutation/sign, linear and affine maps between two runs' codes (see module doc).

    ``score`` = symmetric ``permutation_sign`` R² (mean of A→B and B→A, each averaged uniformly over dimensions).
    Details: ``r2``/``r2_weighted`` (A→B), ``r2_reverse``/``r2_reverse_weighted`` (B→A), ``r2_symmetric``/
    ``r2_symmetric_weighted``, each a dict over :data:`MAPS`; ``per_dim`` and ``per_dim_reverse`` (R² per target
    dimension); ``matching`` and ``matching_reverse`` (matched (A dim, B dim) pairs, signs, training correlations,
    ``mcc`` = mean |test correlation| of the matched pairs); ``reasons`` (why a map is NaN).
    """
    a, b = _check_pair(codes_a, codes_b)
    tr, te = split_rows(a.shape[0], num_train, num_test, seed)
    fwd, match_fwd = map_r2(a[tr], a[te], b[tr], b[te])
    bwd, match_bwd = map_r2(b[tr], b[te], a[tr], a[te])
    var_b, var_a = b[te].var(axis=0), a[te].var(axis=0)
    details: dict[str, Any] = {}
    for key, per_dim, weights in (("r2", fwd, var_b), ("r2_reverse", bwd, var_a)):
        sums = {m: _summaries(per_dim[m], weights) for m in MAPS}
        details[key] = {m: s[0] for m, s in sums.items()}
        details[f"{key}_weighted"] = {m: s[1] for m, s in sums.items()}
    for suffix in ("", "_weighted"):
        details[f"r2_symmetric{suffix}"] = {
            m: 0.5 * (details[f"r2{suffix}"][m] + details[f"r2_reverse{suffix}"][m]) for m in MAPS
        }
    details["per_dim"] = fwd
    details["per_dim_reverse"] = bwd
    details["matching"] = match_fwd
    details["matching_reverse"] = match_bwd
    details["reasons"] = (
        {}
        if a.shape[1] == b.shape[1]
        else {"identity": f"codes_a has {a.shape[1]} dims and codes_b {b.shape[1]}; identity needs equal widths"}
    )
    return MetricResult(
        name="cross_seed_consistency",
        score=details["r2_symmetric"]["permutation_sign"],
        details=details,
        settings={"num_train": int(tr.size), "num_test": int(te.size), "seed": seed},
    )


def consistency_matrix(
    codes: Sequence[np.ndarray],
    *,
    num_train: int | None = CONSISTENCY.num_train,
    num_test: int | None = CONSISTENCY.num_test,
    seed: int = SEED,
) -> MetricResult:
    """:func:`cross_seed_consistency` for every pair of several runs (same inputs, same split for every pair).

    ``score`` = mean over pairs of the symmetric ``permutation_sign`` R². Details, per map of :data:`MAPS`:
    ``directional[map]`` (M, M): entry [i, j] = R² predicting run j from run i; ``directional_weighted[map]``;
    ``symmetric[map]`` (M, M, symmetric); ``mean_symmetric[map]`` (mean over pairs); ``mcc`` (M, M) of the
    permutation matching. Diagonals are NaN (a run against itself).
    """
    if isinstance(codes, np.ndarray):
        codes = list(codes) if codes.ndim == 3 else [codes]
    if len(codes) < 2:
        raise MetricError("consistency_matrix needs the codes of at least 2 runs (a list of (N, D) arrays)")
    arrays = [check_codes(c, name=f"codes[{m}]") for m, c in enumerate(codes)]
    for m, arr in enumerate(arrays[1:], start=1):
        if arr.shape[0] != arrays[0].shape[0]:
            raise MetricError(
                f"codes[{m}] has {arr.shape[0]} rows but codes[0] has {arrays[0].shape[0]}; "
                "encode the same inputs with every run"
            )
    num_runs = len(arrays)
    blank = np.full((num_runs, num_runs), np.nan)
    directional = {m: blank.copy() for m in MAPS}
    weighted = {m: blank.copy() for m in MAPS}
    symmetric = {m: blank.copy() for m in MAPS}
    mcc = blank.copy()
    settings: dict[str, Any] = {}
    for i in range(num_runs):
        for j in range(i + 1, num_runs):
            res = cross_seed_consistency(arrays[i], arrays[j], num_train=num_train, num_test=num_test, seed=seed)
            settings = res.settings
            for name in MAPS:
                directional[name][i, j] = res.details["r2"][name]
                directional[name][j, i] = res.details["r2_reverse"][name]
                weighted[name][i, j] = res.details["r2_weighted"][name]
                weighted[name][j, i] = res.details["r2_reverse_weighted"][name]
                symmetric[name][i, j] = symmetric[name][j, i] = res.details["r2_symmetric"][name]
            mcc[i, j] = res.details["matching"]["mcc"]
            mcc[j, i] = res.details["matching_reverse"]["mcc"]
    upper = np.triu_indices(num_runs, k=1)
    mean_symmetric = {m: _finite_mean(symmetric[m][upper]) for m in MAPS}
    return MetricResult(
        name="consistency_matrix",
        score=mean_symmetric["permutation_sign"],
        details={
            "directional": directional,
            "directional_weighted": weighted,
            "symmetric": symmetric,
            "mean_symmetric": mean_symmetric,
            "mcc": mcc,
        },
        settings=settings,
    )
