"""Unsupervised Disentanglement Ranking, UDR (Duan et al. 2020, ICLR, "Unsupervised Model Selection for Variational
Disentangled Representation Learning").

Idea: disentangled models trained with different seeds agree with each other up to permutation and sign of their
latents, entangled ones each in their own way. Protocol, as disentanglement_lib (``evaluation/udr/metrics/udr.py``),
for M models whose codes ``(N, D_m)`` encode the SAME N inputs:

1. each model's codes are standardised per dimension (mean 0, std 1 over the rows; a constant dimension becomes 0),
   and its uninformative latents are set to 0;
2. for every ordered pair (i, j), i ≠ j, a similarity R (D_i × D_j, rows: latents of i, columns: latents of j):
   ``"spearman"`` (UDR_S) R[a, b] = |Spearman correlation(z_i[:, a], z_j[:, b])|, or ``"lasso"`` (UDR_L)
   R[a, b] = |w_ab|, the weights of ``sklearn.linear_model.Lasso(alpha=0.1)`` predicting every latent of j from all
   latents of i;
3. R keeps only the informative rows and columns (d_a of them for model i, d_b for model j). With
   c_b = max_a R[a, b]² / Σ_a R[a, b] per column and r_a = max_b R[a, b]² / Σ_b R[a, b] per row (0 where the sum is 0),
   the pair's score is

   * ``weighting="dlib"`` (the reference code): UDR_ij = ½ (mean_b c_b + mean_a r_a);
   * ``weighting="paper"`` (the paper's equation): UDR_ij = (Σ_b c_b + Σ_a r_a) / (d_a + d_b);

   the two agree whenever d_a = d_b. A pair where either model has no informative latent scores 0 (the reference
   fails on it);
4. model j's score is the median of UDR_ij over the other models i (column j of the pairwise matrix, as the
   reference; for Spearman the matrix is symmetric, for the Lasso row i is the regressing model).

The headline ``score`` here is the mean of the per-model scores; ranking models uses ``details["model_scores"]``.
Ceilings: with the Lasso, a pair that agrees exactly up to permutation and sign scores 1 − alpha = 0.9, not 1 (on
standardised, uncorrelated latents the matched weight is soft-thresholded to 1 − alpha); with Spearman, the sampling
noise of the unmatched correlations (~1/√N each) lowers it slightly below 1 (≈ 0.97 for 5 latents and 10000 rows).

Informative latents: disentanglement_lib keeps latents whose average KL(q(z_d|x) ‖ p(z_d)) exceeds 0.01, which needs
the encoder's variances. Pass those per-dimension KLs as ``kl`` to get exactly that filter (``kl_threshold``). With
codes only (``kl=None``) a latent is informative when its variance over the inputs exceeds ``var_threshold`` (0.01)
times the largest variance of that model: the active-unit rule (Burda et al. 2016, variance of the posterior mean >
0.01) made relative, so that it does not depend on the scale of non-VAE codes; for a VAE whose informative means have
variance ≈ 1 it is the same rule. A dimension with no variance is never informative.

Spearman here is the Pearson correlation of the average-tie ranks (what ``scipy.stats.spearmanr`` computes), one
matrix product per pair; a constant column has correlation 0 (scipy returns NaN; such columns are filtered anyway
unless ``kl`` calls them informative).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.stats
from sklearn.linear_model import Lasso

from metrics._checks import check_codes, require_samples
from metrics.defaults import SEED, UDR
from metrics.types import MetricError, MetricResult

_METHODS = ("spearman", "lasso")
_WEIGHTINGS = ("dlib", "paper")


def _standardise(x: np.ndarray) -> np.ndarray:
    """Per-column (x − mean) / std over the rows (ddof=0); a constant column becomes all zeros."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _standard_ranks(x: np.ndarray) -> np.ndarray:
    """Average-tie ranks of each column, standardised (the Spearman correlation is their mean product)."""
    return _standardise(scipy.stats.rankdata(x, axis=0))


def spearman_similarity(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Spearman correlation| between every column of ``x`` ``(N, Dx)`` and of ``y`` ``(N, Dy)``: ``(Dx, Dy)``.

    Columns without variation correlate 0 with everything.
    """
    return np.abs(_standard_ranks(x).T @ _standard_ranks(y)) / x.shape[0]


def lasso_similarity(x: np.ndarray, y: np.ndarray, *, alpha: float = UDR.lasso_alpha, seed: int = SEED) -> np.ndarray:
    """|Lasso weights| predicting every column of ``y`` from all columns of ``x``: ``(Dx, Dy)``, entry [a, b] = |w_ab|."""
    model = Lasso(alpha=alpha, random_state=seed).fit(x, y)
    return np.abs(np.asarray(model.coef_, dtype=np.float64).reshape(y.shape[1], x.shape[1])).T


def _strength(sim: np.ndarray, axis: int) -> np.ndarray:
    """max² / sum of each column (axis=0) or row (axis=1) of a non-negative matrix; 0 where the sum is 0."""
    total = sim.sum(axis=axis)
    top = sim.max(axis=axis)
    return np.where(total > 0, np.square(top) / np.where(total > 0, total, 1.0), 0.0)


def udr_pair_score(
    similarity: np.ndarray,
    informative_a: np.ndarray | None = None,
    informative_b: np.ndarray | None = None,
    *,
    weighting: str = UDR.weighting,
) -> float:
    """UDR of one pair from its similarity ``(D_a, D_b)`` (non-negative) and boolean masks of informative latents.

    ``"dlib"``: ½ (mean over columns of max²/sum + mean over rows of max²/sum); ``"paper"``: the two sums over
    d_a + d_b. Masks default to all latents; 0 when either side has no informative latent.
    """
    if weighting not in _WEIGHTINGS:
        raise MetricError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
    sim = np.asarray(similarity, dtype=np.float64)
    rows = np.ones(sim.shape[0], bool) if informative_a is None else np.asarray(informative_a, bool)
    cols = np.ones(sim.shape[1], bool) if informative_b is None else np.asarray(informative_b, bool)
    sim = sim[np.ix_(rows, cols)]
    d_a, d_b = sim.shape
    if d_a == 0 or d_b == 0:
        return 0.0
    per_col = _strength(sim, axis=0)
    per_row = _strength(sim, axis=1)
    if weighting == "dlib":
        return float(0.5 * (per_col.mean() + per_row.mean()))
    return float((per_col.sum() + per_row.sum()) / (d_a + d_b))


def _check_models(codes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate the models' codes: at least 2, each a valid ``(N, D_m)`` array, all with the same N."""
    if isinstance(codes, np.ndarray):
        codes = list(codes) if codes.ndim == 3 else [codes]
    if len(codes) < 2:
        raise MetricError("UDR needs the codes of at least 2 models (a list of (N, D_m) arrays on the same inputs)")
    arrays = [check_codes(c, name=f"codes[{m}]") for m, c in enumerate(codes)]
    n = arrays[0].shape[0]
    for m, arr in enumerate(arrays[1:], start=1):
        if arr.shape[0] != n:
            raise MetricError(
                f"codes[{m}] has {arr.shape[0]} rows but codes[0] has {n}; encode the same inputs with every model"
            )
    return arrays


def informative_latents(
    arrays: Sequence[np.ndarray],
    kl: Sequence[np.ndarray] | None = None,
    *,
    kl_threshold: float = UDR.kl_threshold,
    var_threshold: float = UDR.var_threshold,
) -> list[np.ndarray]:
    """Boolean mask of informative latents per model: ``kl[m] > kl_threshold`` when KLs are given, else
    ``var > var_threshold · max var`` (per-dimension variance over the rows, ddof=0)."""
    if kl is None:
        masks = []
        for x in arrays:
            var = x.var(axis=0)
            masks.append(var > var_threshold * var.max())
        return masks
    if len(kl) != len(arrays):
        raise MetricError(f"kl has {len(kl)} entries but there are {len(arrays)} models; pass one KL vector per model")
    masks = []
    for m, (x, k) in enumerate(zip(arrays, kl, strict=True)):
        vec = np.asarray(k, dtype=np.float64).reshape(-1)
        if vec.shape[0] != x.shape[1] or not np.all(np.isfinite(vec)):
            raise MetricError(f"kl[{m}] must hold {x.shape[1]} finite values (one per latent), got shape {vec.shape}")
        masks.append(vec > kl_threshold)
    return masks


def udr(
    codes: Sequence[np.ndarray],
    *,
    method: str = UDR.method,
    kl: Sequence[np.ndarray] | None = None,
    kl_threshold: float = UDR.kl_threshold,
    var_threshold: float = UDR.var_threshold,
    lasso_alpha: float = UDR.lasso_alpha,
    weighting: str = UDR.weighting,
    num_samples: int | None = UDR.num_samples,
    seed: int = SEED,
) -> MetricResult:
    """UDR (Duan et al. 2020) of several models encoded on the same inputs; ``score`` = mean of the per-model scores.

    ``codes``: one ``(N, D_m)`` array per model (widths may differ). ``kl``: optional per-model ``(D_m,)`` average KL
    per latent, the reference's informativeness filter (else the relative-variance rule of the module docstring).
    ``num_samples`` draws that many rows (the same for every model; ``seed``), None uses all. Details:
    ``model_scores`` (M,), ``pairwise`` (M, M; NaN diagonal; model j's score is the median of column j),
    ``similarity`` (``[i][j]`` the (D_i, D_j) matrix, None on the diagonal), ``informative`` (masks per model),
    ``num_informative``.
    """
    if method not in _METHODS:
        raise MetricError(f"method must be one of {_METHODS}, got {method!r}")
    if weighting not in _WEIGHTINGS:
        raise MetricError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
    arrays = _check_models(codes)
    n = arrays[0].shape[0]
    if num_samples is not None and num_samples != n:
        require_samples(n, num_samples, "UDR")
        rows = np.sort(np.random.default_rng(seed).choice(n, size=num_samples, replace=False))
        arrays = [x[rows] for x in arrays]
    if arrays[0].shape[0] < 3:
        raise MetricError(f"UDR needs at least 3 samples, got {arrays[0].shape[0]}")
    masks = informative_latents(arrays, kl, kl_threshold=kl_threshold, var_threshold=var_threshold)
    reps = [_standardise(x) * mask for x, mask in zip(arrays, masks, strict=True)]
    ranks = [_standard_ranks(r) for r in reps] if method == "spearman" else []
    num_models = len(reps)
    pairwise = np.full((num_models, num_models), np.nan)
    similarity: list[list[np.ndarray | None]] = [[None] * num_models for _ in range(num_models)]
    for i in range(num_models):
        for j in range(num_models):
            if i == j or (method == "spearman" and j < i):
                continue
            if method == "spearman":
                sim = np.abs(ranks[i].T @ ranks[j]) / reps[i].shape[0]
                similarity[j][i] = sim.T
            else:
                sim = lasso_similarity(reps[i], reps[j], alpha=lasso_alpha, seed=seed)
            similarity[i][j] = sim
            pairwise[i, j] = udr_pair_score(sim, masks[i], masks[j], weighting=weighting)
            if method == "spearman":
                pairwise[j, i] = pairwise[i, j]
    model_scores = np.array([np.median(np.delete(pairwise[:, j], j)) for j in range(num_models)])
    return MetricResult(
        name="udr",
        score=float(model_scores.mean()),
        details={
            "model_scores": model_scores,
            "pairwise": pairwise,
            "similarity": similarity,
            "informative": masks,
            "num_informative": [int(mask.sum()) for mask in masks],
        },
        settings={
            "method": method,
            "weighting": weighting,
            "filter": "kl" if kl is not None else "relative_variance",
            "kl_threshold": kl_threshold,
            "var_threshold": var_threshold,
            "lasso_alpha": lasso_alpha,
            "num_samples": int(arrays[0].shape[0]),
            "seed": seed,
        },
    )
